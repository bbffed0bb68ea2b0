"""The usage CSV builds its cells column by column (the all-subscription month CSV writes tens of
thousands of rows); it must write exactly what the JSON row of the same report row gives through the
generic CSV cell rules (:func:`shared.core.csv_cells.csv_lines`), byte for byte, for any cost."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.api import presenters
from shared.core.pricing import Cost
from shared.core.usage import COUNTER_NAMES, Counters, Granularity
from shared.services.report import GROUP_FIELDS, ReportRow, UsageQuery, grouped_fields
from shared.services.usage_report import UsageRows

START = datetime(2026, 10, 1, tzinfo=UTC)
KINDS = ("input", "cached_input", "output", "audio_input", "cached_audio_input", "audio_output", "cache_write",
         "ptu_hour", "some_future_kind")
TYPES = ("global", "datazone", "regional", "uncatalogued", "other")
BASES = ("payg", "batch", "ptu-allocated", "override")
# Names a spreadsheet would run, split or choke on, plain numbers, and ordinary ones.
NAMES = st.sampled_from(["sub-001", "=cmd|' /c calc'!A0", "+team;@x", "a,b", "-1", "42", "1e3", "", "  @x", "x\ty",
                         "line\nbreak", "quote\"d", "gpt-4o-2024-08-06", "\uff1dfull"])
AMOUNTS = st.one_of(
    st.decimals(min_value=Decimal("-1e6"), max_value=Decimal("1e9"), places=8, allow_nan=False),
    st.just(Decimal("0")), st.just(Decimal("-0")), st.just(Decimal("0.000")), st.just(Decimal("1E+3")),
    # more digits than the default context's 28: the sums round there, and the cells must round alike
    st.just(Decimal("12345678901234567890.123456789012345678901")))
COSTS = st.builds(
    Cost, amount=AMOUNTS, unpriced_tokens=st.integers(0, 10**12), unpriced_models=st.frozensets(NAMES, max_size=2),
    by_kind=st.dictionaries(st.sampled_from(KINDS), AMOUNTS, max_size=5),
    by_deployment_type=st.dictionaries(st.sampled_from(TYPES), AMOUNTS, max_size=3),
    by_basis=st.dictionaries(st.sampled_from(BASES), AMOUNTS, max_size=4), list_amount=AMOUNTS,
    uncatalogued=st.frozensets(NAMES, max_size=3), unpriced_meters=st.frozensets(NAMES, max_size=3),
    price_as_of=st.one_of(st.none(), st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 1, 1))))
COUNTERS = st.builds(Counters, **{name: st.integers(0, 10**13) for name in COUNTER_NAMES})
GROUPINGS = st.sampled_from([GROUP_FIELDS, ("model",), ("subscription", "deployment"), ("costCenter", "model"), ()])


def generic_csv(query: UsageQuery, currency: str, rows: list[ReportRow]) -> str:
    """The record route: each row as its JSON record, through the generic cell rules, under the
    header the usage CSV declares."""
    header = next(csv.reader(io.StringIO(presenters.usage_csv(UsageRows(query, currency, iter(()))).__next__())))
    return presenters.csv_text(header, [presenters._cells(presenters._grouped_row(row, query.group_by, currency))
                                        for row in rows])


@settings(max_examples=150, deadline=None)
@given(group_by=GROUPINGS, currency=st.sampled_from(["USD", "EUR", "=X"]),
       lines=st.lists(st.tuples(st.lists(NAMES, min_size=6, max_size=6), COUNTERS, COSTS,
                                st.integers(0, 40)), min_size=1, max_size=12))
def test_the_usage_csv_writes_what_the_json_rows_give_through_the_cell_rules(
        group_by: tuple[str, ...], currency: str, lines: list[tuple[list[str], Counters, Cost, int]]) -> None:
    query = UsageQuery((), START, datetime(2026, 11, 1, tzinfo=UTC), Granularity.DAY, group_by=group_by)
    width = len(grouped_fields(group_by))
    rows = [ReportRow(START.replace(day=1 + day % 28, hour=day % 24), tuple(names[:width]), counters, cost)
            for names, counters, cost, day in lines]
    written = "".join(presenters.usage_csv(UsageRows(query, currency, iter(rows))))
    assert written == generic_csv(query, currency, rows)


def test_a_known_row_is_written_cell_by_cell() -> None:
    """One row written out by hand: defused names, exact money, the split, joined lists."""
    query = UsageQuery((), START, datetime(2026, 11, 1, tzinfo=UTC), Granularity.MONTH, group_by=("model",))
    cost = Cost(Decimal("1.50"), 7, by_kind={"input": Decimal("0.5"), "audio_input": Decimal("0.25"),
                                             "audio_output": Decimal("0.75")},
                by_deployment_type={"global": Decimal("1.5")}, by_basis={"payg": Decimal("1.0"),
                                                                         "override": Decimal("0.5")},
                list_amount=Decimal("2"), uncatalogued=frozenset({"b", "=a"}),
                unpriced_meters=frozenset({"d: output (no price)"}), price_as_of=date(2026, 9, 30))
    written = "".join(presenters.usage_csv(UsageRows(query, "EUR", iter([
        ReportRow(START, ("=HYPERLINK(1)",), Counters(requests=3, prompt_tokens=10), cost)]))))
    header, line = list(csv.reader(io.StringIO(written)))
    cells = dict(zip(header, line, strict=True))
    assert cells["periodStart"] == "2026-10-01T00:00:00Z" and cells["model"] == "'=HYPERLINK(1)"
    assert (cells["requests"], cells["promptTokens"], cells["completionTokens"]) == ("3", "10", "0")
    assert (cells["cost"], cells["currency"], cells["unpricedTokens"]) == ("1.50", "EUR", "7")
    assert (cells["costInput"], cells["costAudio"], cells["costOutput"], cells["costCachedInput"]) == (
        "0.50", "1.00", "0.00", "0.00")
    assert (cells["costGlobal"], cells["costDataZone"], cells["costPayg"], cells["costOverride"]) == (
        "1.50", "0.00", "1.00", "0.50")
    assert (cells["costBasis"], cells["listCost"], cells["priceAsOf"]) == ("payg;override", "2.00", "2026-09-30")
    assert (cells["uncatalogued"], cells["unpricedMeters"]) == ("'=a;b", "d: output (no price)")
