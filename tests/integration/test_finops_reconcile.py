"""Reconciliation with Azure's bill end to end: FOCUS cost export files (built from Microsoft's documented
FocusCost column set, tests/unit/test_reconcile.py) uploaded to Azurite's blob service in Cost
Management's export layout, read by ``GET /api/reconciliation`` and by ``chargeback reconcile``
(files, or the container).

The bill is made from the allocation itself, meter by meter (its FOCUS export), plus 0.004 on one
meter (rounding: shown as 0) and a charge on an account the gateway logs never saw (flagged). An
older run of the same month with other amounts, an October run and a manifest sit beside it and
must not be read.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from shared.tooling.azurite_process import AzuriteProcess
from shared.tooling.cli import main
from tests.billing_support import call
from tests.integration.test_finops_focus import ACCOUNT, NOW, admin, catalog, seed, settings_file  # noqa: F401
from tests.unit.test_reconcile import FOCUS_COLUMNS, focus_record, write_csv

OTHER_ACCOUNT = "/subscriptions/0000-1111/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-west"
UNSEEN_METER = "a1b2c3d4-0000-0000-0000-00000000beef"
RUN_FOLDER = "exports/openai-focus/20261101-20261130"


@pytest.fixture(scope="module")
def blob_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    with AzuriteProcess(tmp_path_factory.mktemp("azurite-blob"), service="blob") as process:
        yield process


@pytest.fixture
def container(blob_azurite: AzuriteProcess, admin: Settings) -> Any:  # noqa: F811
    from azure.storage.blob import BlobServiceClient

    name = admin.table_prefix.lower()  # unique per test
    client = BlobServiceClient.from_connection_string(blob_azurite.connection_string)
    return client.create_container(name)


def allocation_by_meter(settings: Settings) -> dict[str, Decimal]:
    """What the project allocates per Azure meter (teams' lines and idle capacity), from its FOCUS export."""
    response = call(settings, "GET", "/api/chargeback?month=2026-11&format=focus", now=NOW)
    assert response.status_code == 200, response.text
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in csv.DictReader(io.StringIO(response.text)):
        assert row["SkuPriceId"] and row["ResourceId"].startswith(ACCOUNT), row["SkuPriceId"]
        totals[row["SkuPriceId"]] += Decimal(row["BilledCost"])
    return dict(totals)


def bill_csv(charges: list[tuple[str, str, str, str]]) -> bytes:
    folder = Path(__import__("tempfile").mkdtemp())
    return write_csv(folder / "part.csv", FOCUS_COLUMNS, [focus_record(c) for c in charges], bom=True).read_bytes()


def test_reconciliation_from_blob_storage_route_and_command(admin: Settings, settings_file: Path,  # noqa: F811
                                                            container: Any, blob_azurite: AzuriteProcess,
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog(settings_file)
    seed(admin)
    allocated = allocation_by_meter(admin)
    assert len(allocated) >= 3  # input, cached input, output, PTU hours
    rounded = sorted(allocated)[0]
    charges = [(ACCOUNT, meter, "2026-11-05", str(amount + (Decimal("0.004") if meter == rounded else 0)))
               for meter, amount in sorted(allocated.items())]
    charges.append((OTHER_ACCOUNT, UNSEEN_METER, "2026-11-20", "12.34"))
    stale = [(ACCOUNT, meter, "2026-11-03", str(amount * 7)) for meter, amount in allocated.items()]

    container.upload_blob(f"{RUN_FOLDER}/run-old/part_0_0001.csv", bill_csv(stale))
    container.upload_blob("exports/openai-focus/20261001-20261031/run-oct/part_0_0001.csv", bill_csv(stale))
    time.sleep(1.1)  # blob times have whole seconds: the newer run must be later
    container.upload_blob(f"{RUN_FOLDER}/run-new/part_0_0001.csv", bill_csv(charges[:2]))
    container.upload_blob(f"{RUN_FOLDER}/run-new/part_1_0001.csv", bill_csv(charges[2:]))
    container.upload_blob(f"{RUN_FOLDER}/run-new/manifest.json", b'{"not": "a bill"}')

    without = call(admin, "GET", "/api/reconciliation?month=2026-11", now=NOW)
    assert without.status_code == 404 and "COST_EXPORT_CONTAINER" in without.json()["error"]["message"]
    configured = admin.with_overrides(
        COST_EXPORT_CONTAINER=f"{blob_azurite.account_url}/{container.container_name}/exports")
    settings_path = tmp_path / "configured.settings.json"
    settings_path.write_text(json.dumps({"Values": configured._values}))

    response = call(configured, "GET", "/api/reconciliation?month=2026-11", now=NOW)
    assert response.status_code == 200, response.text
    document = response.json()
    lines = {(line["accountId"], line["meterId"]): line for line in document["lines"]}
    for meter, amount in allocated.items():
        line = lines[(ACCOUNT, meter)]
        assert Decimal(line["billed"]) == amount + (Decimal("0.004") if meter == rounded else 0)
        assert Decimal(line["difference"]) == 0, line
    assert Decimal(lines[(ACCOUNT, rounded)]["exactDifference"]) == Decimal("0.004")
    assert "rounding" in lines[(ACCOUNT, rounded)]["reasons"]
    unseen = lines[(OTHER_ACCOUNT, UNSEEN_METER)]
    assert unseen["reasons"] == ["billed-not-in-logs"] and Decimal(unseen["difference"]) == Decimal("12.34")
    assert document["accountsNotInLogs"] == [OTHER_ACCOUNT]
    expected_bill = sum(allocated.values()) + Decimal("0.004") + Decimal("12.34")
    assert Decimal(document["totals"]["billed"]) == expected_bill
    assert Decimal(document["totals"]["unallocated"]) == expected_bill - Decimal(document["totals"]["allocated"])

    as_csv = call(configured, "GET", "/api/reconciliation?month=2026-11&format=csv", now=NOW)
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.status_code == 200 and len(csv_rows) == len(document["lines"])
    assert call(configured, "GET", "/api/reconciliation?month=2026-09", now=NOW).status_code == 404
    assert call(configured, "GET", "/api/reconciliation?month=2026-11&tolerance=x", now=NOW).status_code == 400

    # the command, reading the container: the same document
    capsys.readouterr()
    assert main(["--settings", str(settings_path), "reconcile", "--month", "2026-11", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == document
    # the command, reading files: the text for people names the account the logs never saw
    files = []
    for index, part in enumerate((charges[:2], charges[2:])):
        path = tmp_path / f"part_{index}.csv"
        path.write_bytes(bill_csv(part))
        files.append(str(path))
    assert main(["--settings", str(settings_file), "reconcile", "--month", "2026-11", "--cost-export", *files]) == 0
    text = capsys.readouterr().out
    assert f"billed but never seen in the gateway logs: {OTHER_ACCOUNT}" in text and "rounding" in text
    assert main(["--settings", str(settings_file), "reconcile", "--month", "2026-11", "--csv",
                 "--cost-export", *files]) == 0
    command_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["accountId"], r["meterId"], r["difference"]) for r in command_csv] == [
        (r["accountId"], r["meterId"], r["difference"]) for r in csv_rows]
    assert main(["--settings", str(settings_file), "reconcile", "--month", "2026-11"]) == 2  # no files, no container
    assert main(["--settings", str(settings_file), "reconcile", "--cost-export", str(tmp_path / "nope.csv")]) == 2
