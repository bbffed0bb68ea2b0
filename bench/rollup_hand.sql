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
           CAST(g."RequestHeaders" AS VARCHAR) AS headers, g."_ResourceId" AS resource_id, l.*,
           coalesce(l.model_name, '') <> '' AS llm_named,
           coalesce(l.llm_prompt, 0) > 0 OR coalesce(l.llm_completion, 0) > 0 OR coalesce(l.llm_total, 0) > 0
               AS from_llm,
           CASE WHEN $usage_source = 'auto' THEN coalesce(g."BackendResponseBody", '') ELSE '' END AS body
    FROM "ApiManagementGatewayLogs" g LEFT JOIN llm l ON g."CorrelationId" IS NOT DISTINCT FROM l."CorrelationId"
    WHERE g."TimeGenerated" >= $window_start AND g."TimeGenerated" < $window_end
      -- LLM traffic: named by the LLM log, or Azure OpenAI / Anthropic Messages / Gemini by operation or path
      AND (coalesce(l.model_name, '') <> ''
           OR lower(g."OperationId") IN ('chatcompletions_create', 'completions_create', 'embeddings_create',
                                         'responses_create', 'response_create', 'createresponse', 'responses_post',
                                         'messages_create', 'createmessage', 'generatecontent',
                                         'streamgeneratecontent')
           OR contains(lower(g."Url"), '/openai/')
           OR contains(lower(g."Url"), ':generatecontent') OR contains(lower(g."Url"), ':streamgeneratecontent')
           OR contains(lower(g."Url"), '/publishers/anthropic/')
           OR ends_with(lower(g."Url"), '/messages') OR contains(lower(g."Url"), '/messages?'))
), events AS (
    -- The line a stream's usage is read from: the last event line holding a usage (or usageMetadata) object.
    SELECT *, starts_with(body, 'data:') OR starts_with(body, 'event:') AS body_sse,
           starts_with(body, 'data:') OR starts_with(body, 'event:') OR starts_with(body, '[') AS body_streamed,
           CASE WHEN starts_with(body, 'data:') OR starts_with(body, 'event:')
                THEN TRY_CAST(regexp_extract(body, '(?s)^(?:.*\n)?data: ?(\{[^\n]*"usage(?:Metadata)?"[ \t]*:[ \t]*\{[^\n]*)', 1)
                              AS JSON) END AS event,
           CASE WHEN body <> '' THEN regexp_extract(body, '(?m)^(?:data: ?)?\{(?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*")*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*?(?:"(?:response|message)"[ \t]*:[ \t]*\{(?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*"|[\[{](?:[^"{}\[\]\n]|"(?:[^"\\\n]|\\.)*")*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*[\]}])*?)?"model"[ \t]*:[ \t]*"([^"\n]+)"', 1) ELSE '' END AS body_model
    FROM requests
), parsed AS (
    -- The response's own usage: a JSON body's top-level usage (usageMetadata: Gemini); Gemini's JSON array's
    -- last element's; in a stream, that line's own: a Responses API event's in its response object, Anthropic's
    -- message_delta once message_stop came (its input side from message_start where it leaves it out), a
    -- Gemini chunk's when it is the final one (a finishReason).
    SELECT *,
           CASE WHEN body = '' THEN NULL
                WHEN starts_with(body, '[') THEN TRY_CAST(body AS JSON) -> '$[#-1].usageMetadata'
                WHEN NOT body_sse THEN CASE WHEN coalesce(json_type(TRY_CAST(body AS JSON), '$.usage'), 'NULL') <> 'NULL'
                                            THEN TRY_CAST(body AS JSON) -> '$.usage'
                                            ELSE TRY_CAST(body AS JSON) -> '$.usageMetadata' END
                WHEN starts_with(coalesce(event ->> '$.type', ''), 'response.') THEN event -> '$.response.usage'
                WHEN event ->> '$.type' = 'message_delta'
                    THEN CASE WHEN contains(body, '"message_stop"') THEN event -> '$.usage' END
                WHEN coalesce(json_type(event, '$.usageMetadata'), 'NULL') <> 'NULL'
                    THEN CASE WHEN coalesce(event ->> '$.candidates[0].finishReason', '') <> ''
                              THEN event -> '$.usageMetadata' END
                ELSE event -> '$.usage' END AS usage,
           CASE WHEN event ->> '$.type' = 'message_delta'
                THEN TRY_CAST(regexp_extract(body, '(?m)^data: ?(\{[^\n]*"type"[ \t]*:[ \t]*"message_start"[^\n]*)', 1)
                              AS JSON) -> '$.message.usage' END AS start_usage,
           -- the tier that served it, read where the usage is (a JSON body's top level, the usage line's top
           -- level, a Responses API event's response object): 'priority' or ''
           CASE WHEN contains(body, '"priority"')
                     AND CASE WHEN NOT body_sse THEN TRY_CAST(body AS JSON) ->> '$.service_tier'
                              WHEN starts_with(coalesce(event ->> '$.type', ''), 'response.')
                                  THEN event ->> '$.response.service_tier'
                              ELSE event ->> '$.service_tier' END = 'priority'
                THEN 'priority' ELSE '' END AS service_tier
    FROM events
), body AS (
    -- Counts nested as OpenAI nests them (see the .kql): Anthropic's prompt adds its cache reads and writes,
    -- Gemini's completion its thoughts.
    SELECT *, coalesce(body_total_raw, body_prompt + body_completion) AS body_total
    FROM (SELECT *,
                 coalesce(CASE WHEN usage IS NOT NULL THEN coalesce(
                     TRY_CAST(usage ->> '$.prompt_tokens' AS DOUBLE),
                     TRY_CAST(coalesce(usage ->> '$.input_tokens', start_usage ->> '$.input_tokens') AS DOUBLE)
                     + coalesce(TRY_CAST(coalesce(usage ->> '$.cache_read_input_tokens',
                                                  start_usage ->> '$.cache_read_input_tokens') AS DOUBLE), 0)
                     + coalesce(TRY_CAST(coalesce(usage ->> '$.cache_creation_input_tokens',
                                                  start_usage ->> '$.cache_creation_input_tokens') AS DOUBLE), 0),
                     TRY_CAST(usage ->> '$.promptTokenCount' AS DOUBLE)
                     + coalesce(TRY_CAST(usage ->> '$.toolUsePromptTokenCount' AS DOUBLE), 0)) END, -1)
                     AS body_prompt,
                 coalesce(CASE WHEN usage IS NOT NULL THEN coalesce(
                     TRY_CAST(coalesce(usage ->> '$.completion_tokens', usage ->> '$.output_tokens') AS DOUBLE),
                     CASE WHEN usage ->> '$.promptTokenCount' IS NOT NULL
                          THEN coalesce(TRY_CAST(usage ->> '$.candidatesTokenCount' AS DOUBLE), 0)
                               + coalesce(TRY_CAST(usage ->> '$.thoughtsTokenCount' AS DOUBLE), 0) END) END, 0)
                     AS body_completion,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(usage ->> '$.total_tokens', usage ->> '$.totalTokenCount')
                                                           AS DOUBLE) END AS body_total_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.prompt_tokens_details.cached_tokens', usage ->> '$.input_tokens_details.cached_tokens',
                     usage ->> '$.input_token_details.cached_tokens', usage ->> '$.cache_read_input_tokens',
                     start_usage ->> '$.cache_read_input_tokens', usage ->> '$.cachedContentTokenCount') AS DOUBLE) END
                     AS cached_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.cache_creation_input_tokens', start_usage ->> '$.cache_creation_input_tokens') AS DOUBLE) END
                     AS cache_write_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.completion_tokens_details.reasoning_tokens', usage ->> '$.output_tokens_details.reasoning_tokens',
                     usage ->> '$.output_tokens_details.thinking_tokens', usage ->> '$.thoughtsTokenCount') AS DOUBLE) END
                     AS reasoning_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.prompt_tokens_details.audio_tokens', usage ->> '$.input_tokens_details.audio_tokens',
                     usage ->> '$.input_token_details.audio_tokens') AS DOUBLE) END AS audio_in_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.prompt_tokens_details.cached_tokens_details.audio_tokens',
                     usage ->> '$.input_tokens_details.cached_tokens_details.audio_tokens',
                     usage ->> '$.input_token_details.cached_tokens_details.audio_tokens') AS DOUBLE) END AS cached_audio_raw,
                 CASE WHEN usage IS NOT NULL THEN TRY_CAST(coalesce(
                     usage ->> '$.completion_tokens_details.audio_tokens', usage ->> '$.output_tokens_details.audio_tokens',
                     usage ->> '$.output_token_details.audio_tokens') AS DOUBLE) END AS audio_out_raw
          FROM parsed)
), flags AS (
    SELECT *, NOT from_llm AND body_valid AS from_body
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
       CASE WHEN llm_named THEN model_name WHEN body_model <> '' THEN body_model
            WHEN regexp_extract("Url", '/models/([^/:?]+):', 1) <> '' THEN regexp_extract("Url", '/models/([^/:?]+):', 1)
            ELSE 'unknown' END AS "Model",
       CASE WHEN coalesce(deployment_name, '') <> '' THEN deployment_name
            WHEN regexp_extract("Url", '/deployments/([^/?]+)', 1) <> ''
                THEN regexp_extract("Url", '/deployments/([^/?]+)', 1)
            ELSE 'unknown' END AS "Deployment",
       count(*) AS "Requests",
       CAST(sum(CASE WHEN from_llm THEN llm_prompt WHEN from_body THEN body_prompt ELSE 0 END) AS BIGINT) AS "PromptTokens",
       CAST(sum(CASE WHEN from_llm THEN llm_completion WHEN from_body THEN body_completion ELSE 0 END) AS BIGINT)
           AS "CompletionTokens",
       CAST(sum(CASE WHEN from_llm THEN llm_total WHEN from_body THEN body_total ELSE 0 END) AS BIGINT) AS "TotalTokens",
       CAST(coalesce(sum(cached_raw) FILTER (WHERE body_valid AND cached_raw BETWEEN 0 AND 999999999
                                       AND round(cached_raw) = cached_raw), 0) AS BIGINT) AS "CachedTokens",
       count(*) FILTER (WHERE streamed) AS "StreamedRequests",
       count(*) FILTER (WHERE "ResponseCode" >= 400) AS "ErrorRequests",
       count(*) FILTER (WHERE unmetered) AS "UnmeteredRequests",
       count(*) FILTER (WHERE unmetered AND streamed) AS "UnmeteredStreamed",
       count(*) FILTER (WHERE unmetered AND body <> ''
                        AND NOT CASE WHEN body_sse
                                     THEN contains(body, '[DONE]') OR contains(body, '"message_stop"')
                                          OR regexp_matches(body, '"type":\s*"response\.(completed|incomplete|failed)"[^\n]*\}\s*$')
                                          OR regexp_matches(body, '"finishReason"[^\n]*\}\s*$')
                                     ELSE regexp_matches(body, '[}\]]\s*$') END) AS "UnmeteredTruncated",
       CAST(coalesce(sum(reasoning_raw) FILTER (WHERE body_valid AND reasoning_raw BETWEEN 0 AND 999999999
                                       AND round(reasoning_raw) = reasoning_raw), 0) AS BIGINT) AS "ReasoningTokens",
       CAST(coalesce(sum(audio_in_raw) FILTER (WHERE body_valid AND audio_in_raw BETWEEN 0 AND 999999999
                                       AND round(audio_in_raw) = audio_in_raw), 0) AS BIGINT) AS "AudioPromptTokens",
       CAST(coalesce(sum(cached_audio_raw) FILTER (WHERE body_valid AND cached_audio_raw BETWEEN 0 AND 999999999
                                       AND round(cached_audio_raw) = cached_audio_raw), 0) AS BIGINT) AS "CachedAudioTokens",
       CAST(coalesce(sum(audio_out_raw) FILTER (WHERE body_valid AND audio_out_raw BETWEEN 0 AND 999999999
                                       AND round(audio_out_raw) = audio_out_raw), 0) AS BIGINT) AS "AudioCompletionTokens",
       CAST(coalesce(sum(cache_write_raw) FILTER (WHERE body_valid AND cache_write_raw BETWEEN 0 AND 999999999
                                       AND round(cache_write_raw) = cache_write_raw), 0) AS BIGINT) AS "CacheWriteTokens",
       -- the APIM service: the resource id's name after .../providers/microsoft.apimanagement/service/
       lower(regexp_extract(resource_id, '(?i)/providers/microsoft\.apimanagement/service/([^/]+)', 1)) AS "ApimService",
       service_tier AS "ServiceTier"
FROM classified
GROUP BY ALL
