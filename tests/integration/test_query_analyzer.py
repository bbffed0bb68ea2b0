"""Every KQL query is checked offline by Microsoft's Kusto analyzer.

Uses ``tools/kql-check/check.js`` (npm ``@kusto/language-service-next``) via
``shared.tooling.querycheck``. The analyzer and node are required: if they are missing
these tests fail (they never skip) and tell you to run ``npm ci``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.tooling.querycheck import (
    CheckReport,
    FileReport,
    QueryCheckError,
    check_queries,
    format_report,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUERIES_DIR = PROJECT_ROOT / "queries"
SCHEMAS_DIR = QUERIES_DIR / "schemas"


def _query_files() -> list[Path]:
    return sorted(p for p in QUERIES_DIR.rglob("*.kql") if SCHEMAS_DIR not in p.parents)


QUERY_FILES = _query_files()


def _check(paths: list[Path]) -> CheckReport:
    """Run the checker; a missing toolchain is a failure, not a skip."""
    try:
        return check_queries(paths, project_root=PROJECT_ROOT)
    except QueryCheckError as exc:
        pytest.fail(f"KQL analyzer unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def all_queries_report() -> CheckReport:
    # One node process for all repository queries (the analyzer's cold start
    # is ~1.5 s; each further query costs a few milliseconds).
    if not QUERY_FILES:
        return CheckReport(files=())  # the parametrized test fails on this
    return _check(QUERY_FILES)


def _codes(report: FileReport) -> list[str]:
    return [d.code for d in report.errors]


# --- toolchain -------------------------------------------------------------


def test_analyzer_toolchain_installed() -> None:
    assert shutil.which("node"), (
        "node is not on PATH; install Node.js 20 and run `npm ci`"
    )
    package = PROJECT_ROOT / "node_modules" / "@kusto" / "language-service-next"
    assert (package / "Kusto.Language.Bridge.min.js").is_file(), (
        f"{package} is missing; run `npm ci` in {PROJECT_ROOT}"
    )


# --- (a) the repository's queries -------------------------------------------


# An empty queries/ folder must fail, not silently skip: fall back to a
# single None case that fails below.
_QUERY_PARAMS = [
    pytest.param(p, id=str(p.relative_to(QUERIES_DIR))) for p in QUERY_FILES
] or [pytest.param(None, id="no-kql-files")]


@pytest.mark.parametrize("query_file", _QUERY_PARAMS)
def test_repository_query_has_no_errors(
    query_file: Path | None, all_queries_report: CheckReport
) -> None:
    assert query_file is not None, f"no .kql files found under {QUERIES_DIR}"
    file_report = all_queries_report.for_file(query_file)
    assert not file_report.errors, "\n" + "\n".join(str(d) for d in file_report.errors)
    assert file_report.columns, f"{query_file} has no tabular result"


# --- (b) broken queries are caught ------------------------------------------
# All small cases are written to one folder and analyzed by a single node
# process (one cold start instead of one per test).

PARAMS = "declare query_parameters(window_start:datetime, window_end:datetime);\n"
GW = "ApiManagementGatewayLogs\n"

CASES: dict[str, str] = {
    "valid_parameterised": PARAMS + "ApiManagementGatewayLogs\n"
    "| where TimeGenerated >= window_start and TimeGenerated < window_end\n"
    "| summarize Requests = count() by ApimSubscriptionId, bin(TimeGenerated, 1h)\n",
    "undeclared_parameter": "declare query_parameters(window_start:datetime);\n"
    "ApiManagementGatewayLogs\n"
    "| where TimeGenerated >= window_start and TimeGenerated < window_end\n",
    "misspelled_column": PARAMS
    + "ApiManagementGatewayLogs\n| where ResponseCod == 200\n",
    "unknown_table": "ApiManagementGatewayLog\n| take 10\n",
    "unknown_function": "ApiManagementGatewayLogs | extend m = toupperr(Method)\n",
    "syntax_error": "ApiManagementGatewayLogs | take\n",
    # Type errors the analyzer flags (observed with 12.4.1):
    "type_string_lt_number": GW + "| where ApimSubscriptionId < 5\n",
    "type_int_plus_string": GW + '| extend x = ResponseCode + "a"\n',
    "type_datetime_gt_string": GW + '| where TimeGenerated > "2024-01-01"\n',
    "type_has_on_int": GW + '| where ResponseCode has "a"\n',
    "type_sum_of_string": GW + "| summarize sum(ApimSubscriptionId)\n",
    # ...and one it does NOT flag: equality between mismatched scalars
    # (also `ApimSubscriptionId == 5`, `Method == 1`, `ResponseCode in ("a")`
    # and iff() with mismatched branch types pass the analyzer).
    "type_int_eq_string": 'ApiManagementGatewayLogs | where ResponseCode == "abc"\n',
    # (c) result columns
    "columns_gateway": "ApiManagementGatewayLogs\n"
    "| summarize Requests = count(), Bytes = sum(ResponseSize) by ApimSubscriptionId\n",
    "columns_llm": PARAMS + "ApiManagementGatewayLlmLog\n"
    "| where TimeGenerated between (window_start .. window_end)\n"
    "| summarize PromptTokens = sum(PromptTokens), AvgTokens = avg(TotalTokens)"
    " by ModelName\n",
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FileReport]:
    folder = tmp_path_factory.mktemp("kql_cases")
    for name, text in CASES.items():
        (folder / f"{name}.kql").write_text(text, encoding="utf-8")
    report = _check([folder])
    by_name = {r.file.stem: r for r in report.files}
    assert sorted(by_name) == sorted(CASES)
    return by_name


def test_valid_parameterised_query_passes(cases: dict[str, FileReport]) -> None:
    report = cases["valid_parameterised"]
    assert report.diagnostics == ()
    assert report.column_types == {
        "ApimSubscriptionId": "string",
        "TimeGenerated": "datetime",
        "Requests": "long",
    }


def test_undeclared_parameter_is_caught(cases: dict[str, FileReport]) -> None:
    report = cases["undeclared_parameter"]
    assert _codes(report) == ["KS142"]
    assert "window_end" in report.errors[0].message


def test_misspelled_column_is_caught(cases: dict[str, FileReport]) -> None:
    report = cases["misspelled_column"]
    assert _codes(report) == ["KS142"]
    error = report.errors[0]
    assert "ResponseCod" in error.message
    # 1-based position of "ResponseCod" on line 3 ("| where " is 8 chars).
    assert (error.line, error.column) == (3, 9)
    assert error.file.name == "misspelled_column.kql"


def test_unknown_table_is_caught(cases: dict[str, FileReport]) -> None:
    report = cases["unknown_table"]
    assert _codes(report) == ["KS204"]
    assert "ApiManagementGatewayLog" in report.errors[0].message


def test_unknown_function_is_caught(cases: dict[str, FileReport]) -> None:
    report = cases["unknown_function"]
    assert _codes(report) == ["KS211"]
    assert "toupperr" in report.errors[0].message


def test_syntax_error_is_caught(cases: dict[str, FileReport]) -> None:
    assert _codes(cases["syntax_error"]) == ["KS006"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("type_string_lt_number", "KS106"),
        ("type_int_plus_string", "KS106"),
        ("type_datetime_gt_string", "KS106"),
        ("type_has_on_int", "KS106"),
        ("type_sum_of_string", "KS138"),
    ],
)
def test_type_error_is_caught(
    cases: dict[str, FileReport], case: str, code: str
) -> None:
    assert _codes(cases[case]) == [code]


def test_string_compared_with_number_is_caught(cases: dict[str, FileReport]) -> None:
    # Kusto.Language itself accepts `ResponseCode == "abc"`; check.js adds CB001 for it because
    # engines disagree on such comparisons (Kusto converts, DuckDB does not).
    codes = [d.code for d in cases["type_int_eq_string"].errors]
    assert codes == ["CB001"]
    assert "int with string" in cases["type_int_eq_string"].errors[0].message


def test_report_aggregates_errors_across_files(tmp_path: Path) -> None:
    (tmp_path / "ok.kql").write_text(
        "ApiManagementGatewayLogs | take 1\n", encoding="utf-8"
    )
    sub = tmp_path / "nested"
    sub.mkdir()
    (sub / "bad.kql").write_text("NoSuchTable | take 1\n", encoding="utf-8")
    report = _check([tmp_path])
    # Directories are walked in sorted order: nested/bad.kql, then ok.kql.
    assert [p.file.name for p in report.files] == ["bad.kql", "ok.kql"]
    assert [d.code for d in report.errors] == ["KS204"]
    assert not report.ok
    text = format_report(report)
    assert "bad.kql:1:1: error KS204" in text
    assert "ok.kql: ok" in text


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(QueryCheckError, match="no such file"):
        check_queries([tmp_path / "missing.kql"], project_root=PROJECT_ROOT)


def test_bad_schema_dir_raises(tmp_path: Path) -> None:
    query = tmp_path / "q.kql"
    query.write_text("print 1\n", encoding="utf-8")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "t.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(QueryCheckError, match="cannot read schema"):
        check_queries(
            [query], schemas_dir=tmp_path / "schemas", project_root=PROJECT_ROOT
        )


def test_missing_npm_package_raises(tmp_path: Path) -> None:
    fake_root = tmp_path / "root"
    script = fake_root / "tools" / "kql-check" / "check.js"
    script.parent.mkdir(parents=True)
    script.write_text("", encoding="utf-8")
    with pytest.raises(QueryCheckError, match="npm ci"):
        check_queries([tmp_path], project_root=fake_root)


# --- (c) result columns -----------------------------------------------------


def test_result_columns_and_types(cases: dict[str, FileReport]) -> None:
    report = cases["columns_gateway"]
    assert report.diagnostics == ()
    assert [str(c) for c in report.columns] == [
        "ApimSubscriptionId:string",
        "Requests:long",
        "Bytes:long",
    ]


def test_llm_token_columns(cases: dict[str, FileReport]) -> None:
    report = cases["columns_llm"]
    assert report.diagnostics == ()
    assert report.column_types == {
        "ModelName": "string",
        "PromptTokens": "long",
        "AvgTokens": "real",
    }


def test_analyzer_result_types_match_the_code_contracts() -> None:
    """A query that renames or retypes a column the code reads breaks here, not in production."""
    from shared.queries import CONTRACTS, QUERIES_DIR

    paths = [QUERIES_DIR / f"{name}.kql" for name in CONTRACTS]
    report = check_queries(paths)
    for name, contract in CONTRACTS.items():
        reported = report.for_file(QUERIES_DIR / f"{name}.kql").column_types
        assert reported == dict(contract), f"{name}: analyzer says {reported}"
