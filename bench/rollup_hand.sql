-- The rollup aggregate of queries/usage_by_subscription.kql, written by hand in DuckDB SQL
-- (the bench's baseline; bench/rollup_query.py checks both give identical rows).
-- Every chunk row of a request is read (whichever carries the counts), each count the largest.
WITH llm AS (
    SELECT "CorrelationId", max("ModelName") AS model_name, max("DeploymentName") AS deployment_name,
           max("PromptTokens") AS llm_prompt, max("CompletionTokens") AS llm_completion,
           max("TotalTokens") AS llm_total, max(CASE WHEN "IsStreamCompletion" THEN 1 ELSE 0 END) AS llm_stream
    FROM "ApiManagementGatewayLlmLog"
    WHERE "TimeGenerated" >= $window_start - INTERVAL 15 MINUTE AND "TimeGenerated" < $window_end + INTERVAL 15 MINUTE
    GROUP BY "CorrelationId"
), requests AS (
    SELECT g."TimeGenerated", g."ApimSubscriptionId", g."ProductId", g."ResponseCode", g."Url",
           CAST(g."RequestHeaders" AS VARCHAR) AS headers, l.*,
           coalesce(l.model_name, '') <> '' AS llm_named,
           coalesce(l.llm_prompt, 0) > 0 OR coalesce(l.llm_completion, 0) > 0 OR coalesce(l.llm_total, 0) > 0
               AS from_llm,
           CASE WHEN $usage_source = 'auto' THEN coalesce(g."BackendResponseBody", '') ELSE '' END AS body
    FROM "ApiManagementGatewayLogs" g LEFT JOIN llm l ON g."CorrelationId" IS NOT DISTINCT FROM l."CorrelationId"
    WHERE g."TimeGenerated" >= $window_start AND g."TimeGenerated" < $window_end
      AND (coalesce(l.model_name, '') <> ''
           OR lower(g."OperationId") IN ('chatcompletions_create', 'completions_create', 'embeddings_create',
                                         'responses_create', 'response_create', 'createresponse', 'responses_post')
           OR contains(lower(g."Url"), '/openai/'))
), parsed AS (
    -- The response's own usage: a JSON body's top-level one; in a stream, the last event line holding a
    -- usage object, at its top level (a Responses API event's: in its response object).
    SELECT *, CASE WHEN body_streamed
                   THEN CASE WHEN starts_with(coalesce(event ->> '$.type', ''), 'response.') THEN event -> '$.response.usage'
                             ELSE event -> '$.usage' END
                   ELSE TRY_CAST(body AS JSON) -> '$.usage' END AS usage
    FROM (SELECT *, starts_with(body, 'data:') OR starts_with(body, 'event:') AS body_streamed,
                 CASE WHEN starts_with(body, 'data:') OR starts_with(body, 'event:')
                      THEN TRY_CAST(regexp_extract(body, '(?s)^(?:.*\n)?data: ?(\{[^\n]*"usage"[ \t]*:[ \t]*\{[^\n]*)', 1)
                                    AS JSON) END AS event
          FROM requests)
), body AS (
    SELECT *, coalesce(body_total_raw, body_prompt + body_completion) AS body_total
    FROM (SELECT *,
                 coalesce(CASE WHEN usage IS NOT NULL THEN coalesce(TRY_CAST(usage->>'$.prompt_tokens' AS DOUBLE),
                                                                    TRY_CAST(usage->>'$.input_tokens' AS DOUBLE)) END, -1)
                     AS body_prompt,
                 coalesce(CASE WHEN usage IS NOT NULL THEN coalesce(TRY_CAST(usage->>'$.completion_tokens' AS DOUBLE),
                                                                    TRY_CAST(usage->>'$.output_tokens' AS DOUBLE)) END, 0)
                     AS body_completion,
                 CASE WHEN usage IS NOT NULL THEN coalesce(TRY_CAST(usage->>'$.prompt_tokens_details.cached_tokens' AS DOUBLE),
                                                           TRY_CAST(usage->>'$.input_tokens_details.cached_tokens' AS DOUBLE)) END
                     AS body_cached_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(usage->>'$.total_tokens' AS DOUBLE) END AS body_total_raw,
                 regexp_extract(body, '"model"\s*:\s*"([^"]+)"', 1) AS body_model
          FROM parsed)
), flags AS (
    SELECT *, NOT from_llm AND body_valid AS from_body,
           CASE WHEN body_valid AND body_cached_raw BETWEEN 0 AND 999999999 AND round(body_cached_raw) = body_cached_raw
                THEN body_cached_raw ELSE 0 END AS body_cached
    FROM (SELECT *, body_prompt BETWEEN 0 AND 999999999 AND round(body_prompt) = body_prompt
                    AND body_completion BETWEEN 0 AND 999999999 AND round(body_completion) = body_completion
                    AND body_total BETWEEN 0 AND 999999999 AND round(body_total) = body_total AS body_valid
          FROM body)
), classified AS (
    SELECT *,
           CASE WHEN llm_named THEN llm_stream = 1 ELSE body_streamed END AS streamed,
           "ResponseCode" >= 200 AND "ResponseCode" < 300 AND NOT (from_llm OR from_body) AS unmetered,
           ($probe_subscription <> '' AND "ApimSubscriptionId" = $probe_subscription)
               OR ($probe_header <> '' AND CASE WHEN contains(lower(headers), lower('"' || $probe_header || '"'))
                                                THEN regexp_matches(lower(headers), '"' || lower($probe_header) || '"\s*:\s*"1"')
                                                ELSE false END) AS is_probe
    FROM flags
)
SELECT date_trunc('hour', "TimeGenerated") AS "PeriodStart",
       CASE WHEN is_probe THEN 'synthetic-probe' WHEN coalesce("ApimSubscriptionId", '') = '' THEN 'unattributed'
            ELSE "ApimSubscriptionId" END AS "SubscriptionId",
       "ProductId",
       CASE WHEN llm_named THEN model_name WHEN body_model <> '' THEN body_model ELSE 'unknown' END AS "Model",
       CASE WHEN coalesce(deployment_name, '') <> '' THEN deployment_name
            WHEN regexp_extract("Url", '/deployments/([^/?]+)', 1) <> ''
                THEN regexp_extract("Url", '/deployments/([^/?]+)', 1)
            ELSE 'unknown' END AS "Deployment",
       count(*) AS "Requests",
       CAST(sum(CASE WHEN from_llm THEN llm_prompt WHEN from_body THEN body_prompt ELSE 0 END) AS BIGINT) AS "PromptTokens",
       CAST(sum(CASE WHEN from_llm THEN llm_completion WHEN from_body THEN body_completion ELSE 0 END) AS BIGINT)
           AS "CompletionTokens",
       CAST(sum(CASE WHEN from_llm THEN llm_total WHEN from_body THEN body_total ELSE 0 END) AS BIGINT) AS "TotalTokens",
       CAST(sum(body_cached) AS BIGINT) AS "CachedTokens",
       count(*) FILTER (WHERE streamed) AS "StreamedRequests",
       count(*) FILTER (WHERE "ResponseCode" >= 400) AS "ErrorRequests",
       count(*) FILTER (WHERE unmetered) AS "UnmeteredRequests",
       count(*) FILTER (WHERE unmetered AND streamed) AS "UnmeteredStreamed",
       count(*) FILTER (WHERE unmetered AND body <> ''
                        AND NOT CASE WHEN body_streamed
                                     THEN contains(body, '[DONE]')
                                          OR regexp_matches(body, '"type":\s*"response\.(completed|incomplete|failed)"[^\n]*\}\s*$')
                                     ELSE regexp_matches(body, '\}\s*$') END) AS "UnmeteredTruncated"
FROM classified
GROUP BY ALL
