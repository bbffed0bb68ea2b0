"""Azure Retail Prices meters: parsing the 27 real feed rows, hostile names, the effective-dated book."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.core.meters import (
    DEFAULT_METERS,
    ContextTier,
    DeploymentType,
    MeterFileError,
    MeterParseFailure,
    MeterPrice,
    Mode,
    PriceBook,
    PriceKey,
    PriceUnit,
    TokenKind,
    load_default_meters,
    meter_file_text,
    parse_feed,
    parse_meter,
    parse_meter_file,
    version_code_of,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "retail-examples.json"
G, DZ, R = DeploymentType.GLOBAL, DeploymentType.DATAZONE, DeploymentType.REGIONAL
STD, BATCH = Mode.STANDARD, Mode.BATCH
IN, CIN, OUT = TokenKind.INPUT, TokenKind.CACHED_INPUT, TokenKind.OUTPUT


def real_rows() -> list[dict[str, Any]]:
    document = json.loads(EXAMPLES.read_text(encoding="utf-8"), parse_float=Decimal)
    return [entry["row"] for entry in document["rows"]]


def key(model: str, version: str, deployment: DeploymentType, mode: Mode, kind: TokenKind,
        region: str = "eastus2", term: str | None = None) -> PriceKey:
    return PriceKey(model, version, deployment, mode, region, kind, None, term)


def ptu(deployment: DeploymentType, kind: TokenKind = TokenKind.PTU_HOUR, term: str | None = None) -> PriceKey:
    return PriceKey("", "", deployment, Mode.PROVISIONED, "eastus2", kind, None, term)


def k4o(deployment: DeploymentType, mode: Mode, kind: TokenKind, region: str = "eastus2") -> PriceKey:
    return key("gpt-4o", "0806", deployment, mode, kind, region)


def krt(deployment: DeploymentType, mode: Mode, kind: TokenKind) -> PriceKey:
    return key("gpt-4o-realtime", "1217", deployment, mode, kind)


E = "eastus2"
M, HOUR, TERM = PriceUnit.PER_MILLION_TOKENS, PriceUnit.PER_PTU_HOUR, PriceUnit.PER_PTU_TERM
# (meterName, armRegionName, reservationTerm) -> (key, normalised price, unit), for all 27 rows.
EXPECTED: dict[tuple[str, str, str | None], tuple[PriceKey, str, PriceUnit]] = {
    ("gpt-4o-0806-Inp-glbl Tokens", E, None): (k4o(G, STD, IN), "2.50", M),
    ("gpt 4o 0806 cached Inp glbl Tokens", E, None): (k4o(G, STD, CIN), "1.25", M),
    ("gpt-4o-0806-Outp-glbl Tokens", E, None): (k4o(G, STD, OUT), "10.00", M),
    ("gpt 4o 0806 Inp Data Zone Tokens", E, None): (k4o(DZ, STD, IN), "2.75", M),
    ("gpt 4o 0806 cached Inp Data Zone Tokens", E, None): (k4o(DZ, STD, CIN), "1.375", M),
    ("gpt 4o 0806 Outp Data Zone Tokens", E, None): (k4o(DZ, STD, OUT), "11.00", M),
    ("gpt-4o-0806-Inp-regnl Tokens", E, None): (k4o(R, STD, IN), "2.75", M),
    ("gpt 4o 0806 cached Inp regnl Tokens", E, None): (k4o(R, STD, CIN), "1.375", M),
    ("gpt-4o-0806-Outp-regnl Tokens", E, None): (k4o(R, STD, OUT), "11.00", M),
    ("gpt 4o 0806 cached Inp regnl Tokens", "swedencentral", None): (k4o(R, STD, CIN, "swedencentral"), "1.513", M),
    ("gpt-4o-0806-Batch-Inp-glbl Tokens", E, None): (k4o(G, BATCH, IN), "1.25", M),
    ("gpt-4o-0806-Batch-Outp-glbl Tokens", E, None): (k4o(G, BATCH, OUT), "5.00", M),
    ("gpt 4o 0806 Batch Inp Data Zone Tokens", E, None): (k4o(DZ, BATCH, IN), "1.375", M),
    ("gpt 4o 0806 Batch Outp Data Zone Tokens", E, None): (k4o(DZ, BATCH, OUT), "5.50", M),
    ("gpt 4o 1120 Inp glbl Tokens", E, None): (key("gpt-4o", "1120", G, STD, IN), "2.50", M),
    ("gpt-4o-rt-aud-1217 Inp glbl Tokens", E, None): (krt(G, STD, TokenKind.AUDIO_INPUT), "40", M),
    ("gpt-4o-rt-aud-1217 cchd Inp glbl Tokens", E, None): (krt(G, STD, TokenKind.CACHED_AUDIO_INPUT), "2.50", M),
    ("gpt-4o-rt-aud-1217 Outp glbl Tokens", E, None): (krt(G, STD, TokenKind.AUDIO_OUTPUT), "80", M),
    ("gpt-4o-rt-txt-1217 Inp glbl Tokens", E, None): (krt(G, STD, IN), "5.00", M),
    ("o4-mini 0416 Outp glbl Tokens", E, None): (key("o4-mini", "0416", G, STD, OUT), "4.40", M),
    ("GPT 5 Rsng Inpt Glbl 1M Tokens", E, None): (key("gpt-5", "", G, STD, IN), "1.25", M),
    ("GPT 5 Rsng cchd Inpt Glbl 1M Tokens", E, None): (key("gpt-5", "", G, STD, CIN), "0.125", M),
    ("Provisioned Managed Global Unit", E, None): (ptu(G), "1.00", HOUR),
    ("Provisioned Managed Data Zone Unit", E, None): (ptu(DZ), "1.10", HOUR),
    ("Provisioned Managed Regional Unit", E, None): (ptu(R), "2.00", HOUR),
    ("Provisioned Managed Global Unit", E, "1 Month"): (ptu(G, TokenKind.PTU_RESERVATION, "1 Month"), "260", TERM),
    ("Provisioned Managed Global Unit", E, "1 Year"): (ptu(G, TokenKind.PTU_RESERVATION, "1 Year"), "2652", TERM),
}


def test_every_real_row_parses_to_its_key_and_price() -> None:
    rows = real_rows()
    assert len(rows) == 27 == len(EXPECTED)
    seen = set()
    for row in rows:
        parsed = parse_meter(row)
        assert isinstance(parsed, MeterPrice), parsed
        expected_key, expected_price, expected_unit = EXPECTED[(row["meterName"], row["armRegionName"],
                                                                row.get("reservationTerm"))]
        assert parsed.key == expected_key, row["meterName"]
        assert parsed.price == Decimal(expected_price) and isinstance(parsed.price, Decimal)
        assert parsed.price_unit is expected_unit
        assert (parsed.meter_id, parsed.meter_name) == (row["meterId"], row["meterName"])
        assert parsed.sku_name == row["skuName"]
        assert parsed.product_name == row["productName"] and parsed.currency == "USD"
        assert parsed.retail_price == row["retailPrice"] and parsed.unit_of_measure == row["unitOfMeasure"]
        assert parsed.effective_start == datetime.fromisoformat(row["effectiveStartDate"].replace("Z", "+00:00"))
        seen.add(parsed.key)
    assert len(seen) == 27  # no two real meters collapse onto one key


def test_versions_keep_the_raw_code_and_add_the_year_only_when_known() -> None:
    parsed = {p.meter_name: p for p in parse_feed(real_rows()).prices}
    gpt4o = parsed["gpt-4o-0806-Inp-glbl Tokens"]
    assert (gpt4o.key.version, gpt4o.canonical_version, gpt4o.version) == ("0806", "2024-08-06", "2024-08-06")
    assert parsed["o4-mini 0416 Outp glbl Tokens"].canonical_version == "2025-04-16"
    gpt5 = parsed["GPT 5 Rsng Inpt Glbl 1M Tokens"]
    assert (gpt5.key.version, gpt5.canonical_version) == ("", None)
    unknown = parse_meter({**real_rows()[0], "meterName": "gpt-4o-0229-Inp-glbl Tokens"})
    assert isinstance(unknown, MeterPrice)
    assert (unknown.key.version, unknown.canonical_version, unknown.version) == ("0229", None, "0229")
    assert version_code_of("2024-08-06") == "0806"
    with pytest.raises(ValueError):
        version_code_of("2024-13-06")


def test_reservation_rows_share_the_meter_id_of_the_hourly_ptu_but_not_its_key() -> None:
    prices = parse_feed(real_rows()).prices
    global_ptu = [p for p in prices if p.meter_id == "6dcdbfc4-1d28-5883-84c2-dcdb88e21b56"]
    assert sorted((p.key.token_kind.value, p.key.term or "", p.price) for p in global_ptu) == [
        ("ptu_hour", "", Decimal(1)), ("ptu_reservation", "1 Month", Decimal(260)),
        ("ptu_reservation", "1 Year", Decimal(2652))]


def token_row(name: str, **fields: Any) -> dict[str, Any]:
    base = dict(real_rows()[0])
    base.update({"meterName": name, "skuName": name.removesuffix(" Tokens"), "meterId": "m-" + name[:8]})
    base.update(fields)
    return base


@pytest.mark.parametrize(("name", "fields", "expected"), [
    ("GPT 5 Inpt Glbl 1M Tokens", {"unitOfMeasure": "1M", "productName": "Azure OpenAI GPT5"},
     PriceKey("gpt-5", "", G, STD, "eastus2", IN)),
    ("GPT 5 pp Outpt Glbl 1M Tokens", {"unitOfMeasure": "1M", "productName": "Azure OpenAI GPT5"},
     PriceKey("gpt-5", "", G, Mode.PRIORITY, "eastus2", OUT)),
    ("5.4 Inpt DZn ShortCo 1M Tokens", {"unitOfMeasure": "1M", "productName": "Azure OpenAI GPT5"},
     PriceKey("gpt-5.4", "", DZ, STD, "eastus2", IN, ContextTier.SHORT)),
    ("GPT 5.4 cd Inpt Gl LongCo 1M Tokens", {"unitOfMeasure": "1M", "productName": "Azure OpenAI GPT5"},
     PriceKey("gpt-5.4", "", G, STD, "eastus2", CIN, ContextTier.LONG)),
    ("GPT 5 Cd Wr Inpt Glbl 1M Tokens", {"unitOfMeasure": "1M", "productName": "Azure OpenAI GPT5"},
     PriceKey("gpt-5", "", G, STD, "eastus2", TokenKind.CACHE_WRITE)),
    ("gpt 4o mini 0718 Input DZone Tokens", {}, PriceKey("gpt-4o-mini", "0718", DZ, STD, "eastus2", IN)),
    ("gpt-4o-mini-0718-Outpt-rgnl Tokens", {}, PriceKey("gpt-4o-mini", "0718", R, STD, "eastus2", OUT)),
    ("gpt 4o 0806 opt Dz Tokens", {}, PriceKey("gpt-4o", "0806", DZ, STD, "eastus2", OUT)),
    ("gpt 4o 0806 inp rg Tokens", {}, PriceKey("gpt-4o", "0806", R, STD, "eastus2", IN)),
    ("GPT-4O-0806-INPUT-GLOBAL TOKENS", {}, PriceKey("gpt-4o", "0806", G, STD, "eastus2", IN)),
])
def test_spelling_variants_parse_by_component(name: str, fields: dict[str, Any], expected: PriceKey) -> None:
    parsed = parse_meter(token_row(name, **fields))
    assert isinstance(parsed, MeterPrice), parsed
    assert parsed.key == expected


@pytest.mark.parametrize(("name", "fields", "reason"), [
    ("", {}, "meterName is missing"),
    ("gpt-4o-0806-Inp Tokens", {}, "no deployment type"),
    ("gpt-4o-0806-glbl Tokens", {}, "no token kind"),
    ("gpt-4o-0806-Inp-Outp-glbl Tokens", {}, "two direction parts"),
    ("gpt-4o-0806-Inp-glbl-regnl Tokens", {}, "two deployment parts"),
    ("gpt-4o-0806-Batch-pp-Inp-glbl Tokens", {}, "two mode parts"),
    ("gpt-4o-0806-cached-Outp-glbl Tokens", {}, "cached output"),
    ("gpt-4o-aud-txt-0806-Inp-glbl Tokens", {}, "both audio and text"),
    ("gpt-4o-0806-Inp-glbl-frobnicate Tokens", {}, "unknown part 'frobnicate'"),
    ("gpt-4o-0806-Inp-glbl-2024 Tokens", {}, "unknown part '2024'"),
    ("Inp glbl Tokens", {}, "no model name"),
    ("Inp gpt glbl Tokens", {}, "unknown part 'gpt'"),
    ("gpt 4o 0806 Inp Data Tokens", {}, "'data' out of place"),
    ("gpt-4o-0806-Inp-glbl", {}, "must end with 'Tokens'"),
    ("gpt-4o-0806-Inp-glbl 1M Tokens", {}, "name says 1M tokens but the unit is '1K'"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"unitOfMeasure": "100"}, "not a token unit"),
    ("5.4 Inpt Glbl Tokens", {}, "bare number"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"retailPrice": 0.0025}, "not an exact number"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"retailPrice": "-1"}, ">= 0"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"retailPrice": "NaN"}, ">= 0"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"retailPrice": True}, "not an exact number"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"tierMinimumUnits": Decimal(1000)}, "tiered"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"armRegionName": "East US"}, "armRegionName"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"currencyCode": "usd"}, "currencyCode"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"effectiveStartDate": "last tuesday"}, "effectiveStartDate"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"meterId": None}, "meterId is missing"),
    ("gpt-4o-0806-Inp-glbl Tokens", {"productName": "Virtual Machines"}, "not an Azure OpenAI product"),
    ("gpt-4o-0806-Inp-glbl Tokens\x00'; DROP TABLE prices", {}, "must end with 'Tokens'"),
    ("Provisioned Managed Mars Unit", {"unitOfMeasure": "1/Hour"}, "provisioned meter name"),
    ("Provisioned Managed Global Unit", {"unitOfMeasure": "1K"}, "expected 1/Hour"),
    ("Provisioned Managed Global Unit", {"unitOfMeasure": "1/Hour", "type": "Reservation",
                                         "productName": "Azure AI Foundry Provisioned Throughput Reservation",
                                         "reservationTerm": "3 Years"}, "reservationTerm '3 Years'"),
    ("Provisioned Managed Global Unit", {"unitOfMeasure": "1/Hour", "type": "Reservation"}, "do not agree"),
])
def test_hostile_and_unknown_names_are_reported_never_guessed(name: str, fields: dict[str, Any], reason: str) -> None:
    row = token_row(name, **fields)
    parsed = parse_meter(row)
    assert isinstance(parsed, MeterParseFailure), parsed
    assert reason in parsed.reason
    assert parsed.meter_name == (name if isinstance(row.get("meterName"), str) else "")
    assert parsed.meter_id == (row["meterId"] or "")


def test_a_long_unknown_model_name_is_kept_verbatim_not_shortened() -> None:
    parsed = parse_meter(token_row("x" * 5000 + " Inp glbl Tokens"))
    assert isinstance(parsed, MeterPrice) and parsed.key.model == "x" * 5000


def test_the_feed_selects_azure_openai_products_and_reports_the_rest() -> None:
    rows = real_rows()
    other = {**rows[0], "productName": "Virtual Machines Dv5 Series"}
    dev_test = {**rows[0], "type": "DevTestConsumption"}
    broken = {**rows[0], "meterName": "gpt-4o-0806-Inp-glbl-zzz Tokens"}
    feed = parse_feed([*rows, other, dev_test, broken, "not an object"])  # type: ignore[list-item]
    assert len(feed.prices) == 27 and feed.skipped == 3
    assert feed.failures == (MeterParseFailure(rows[0]["meterId"], "gpt-4o-0806-Inp-glbl-zzz Tokens",
                                               "unknown part 'zzz'"),)


# -- the book ----------------------------------------------------------------------------------
def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_merge_of_the_same_feed_twice_gives_the_same_book() -> None:
    prices = parse_feed(real_rows()).prices
    first = PriceBook("USD").merge(prices)
    assert (len(first.added), first.unchanged, first.conflicts) == (27, 0, ())
    second = first.book.merge(prices)
    assert (second.added, second.unchanged, second.conflicts) == ((), 27, ())
    assert second.book == first.book and second.book.rows == first.book.rows
    # Order of the feed does not matter either.
    assert PriceBook("USD").merge(reversed(prices)).book == first.book


def test_a_mid_month_price_change_adds_an_effective_row_and_keeps_the_old_one() -> None:
    prices = parse_feed(real_rows()).prices
    book = PriceBook("USD").merge(prices).book
    gpt4o_input = next(p for p in prices if p.meter_name == "gpt-4o-0806-Inp-glbl Tokens")
    # A later feed no longer has the old row (the feed keeps no history), only the new price.
    cut = replace(gpt4o_input, price=Decimal("2.00"), retail_price=Decimal("0.002"),
                  effective_start=moment("2025-03-15T00:00:00"))
    later_feed = [p for p in prices if p is not gpt4o_input] + [cut]
    merged = book.merge(later_feed)
    assert merged.added == (cut,) and merged.unchanged == 26
    assert len(merged.book.rows) == 28
    key = gpt4o_input.key
    assert merged.book.history(key) == (gpt4o_input, cut)
    assert merged.book.lookup(key, moment("2025-03-14T23:59:59")).price == Decimal("2.5")  # type: ignore[union-attr]
    assert merged.book.lookup(key, moment("2025-03-15T00:00:00")).price == Decimal("2.00")  # type: ignore[union-attr]
    assert merged.book.lookup(key, moment("2024-07-31T23:00:00")) is None  # before the first price: unpriced
    # Merging the later feed again changes nothing; nor does the original feed (its rows are history).
    assert merged.book.merge(later_feed).book == merged.book
    assert merged.book.merge(prices).added == ()


def test_a_restated_price_for_the_same_start_is_a_conflict_and_history_is_kept() -> None:
    prices = parse_feed(real_rows()).prices
    book = PriceBook("USD").merge(prices).book
    restated = replace(prices[0], price=prices[0].price + 1)
    merged = book.merge([restated])
    assert merged.added == () and merged.book == book
    assert [(c.kept, c.offered) for c in merged.conflicts] == [(prices[0], restated)]


def test_an_unchanged_price_under_a_new_start_date_is_not_duplicated() -> None:
    prices = parse_feed(real_rows()).prices
    book = PriceBook("USD").merge(prices).book
    reissued = replace(prices[0], effective_start=moment("2025-06-01T00:00:00"), meter_name="renamed")
    merged = book.merge([reissued])
    assert merged.added == () and merged.unchanged == 1


def test_the_book_refuses_mixed_currencies_and_naive_moments() -> None:
    prices = parse_feed(real_rows()).prices
    with pytest.raises(ValueError, match="EUR"):
        PriceBook("EUR").merge(prices)
    with pytest.raises(ValueError, match="aware"):
        PriceBook("USD", prices).lookup(prices[0].key, datetime(2025, 1, 1))


def test_an_effective_end_ends_the_price() -> None:
    row = replace(parse_feed(real_rows()).prices[0], effective_end=moment("2025-01-01T00:00:00"))
    book = PriceBook("USD", (row,))
    assert book.lookup(row.key, moment("2024-12-31T23:00:00")) == row
    assert book.lookup(row.key, moment("2025-01-01T00:00:00")) is None


# -- the shipped file --------------------------------------------------------------------------
def test_the_shipped_meter_file_is_the_real_rows_as_parsed() -> None:
    shipped = load_default_meters()
    assert shipped.as_of == "2025-08-25" and shipped.book.currency == "USD"
    assert shipped.book == PriceBook("USD", parse_feed(real_rows()).prices)
    # Written by meter_file_text: regenerating it gives the same bytes.
    note = json.loads(DEFAULT_METERS.read_text(encoding="utf-8"))["note"]
    assert meter_file_text(shipped.book, shipped.as_of, note) == DEFAULT_METERS.read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"currency": "usd", "asOf": "2025-01-01", "meters": []}', "currency"),
    ('{"currency": "USD", "asOf": "2025-01-01", "meters": {}}', "meters must be a list"),
    ('{"currency": "USD", "asOf": "2025-01-01", "meters": [{"model": "x"}]}', "meters[0]: deploymentType"),
])
def test_a_malformed_meter_file_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(MeterFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_meter_file(text, "bad.json")
