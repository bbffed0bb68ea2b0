"""The /api/health availability test in infra/: an Application Insights standard web test (the
resource shape of the "Microsoft.Insights webtests" template reference, API 2022-06-15), linked to
the app's component, deployed exactly when /api/health answers without a key (Entra sign-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
MODULE = INFRA / "core" / "monitor" / "availability-test.bicep"


def parse(path: Path) -> dict[str, Any]:
    pycep = pytest.importorskip("pycep")
    parsed: dict[str, Any] = pycep.BicepParser().parse(file_path=path)
    return parsed


def test_the_module_is_a_standard_web_test_of_the_health_url() -> None:
    doc = parse(MODULE)
    [test] = doc["resources"].values()
    assert (test["type"], test["api_version"], test["existing"]) == ("Microsoft.Insights/webtests", "2022-06-15", False)
    config = test["config"]
    assert config["kind"] == "standard"
    # A web test is shown (and alerted on) with its component only through this tag.
    tag_union = config["tags"]["function"]
    assert tag_union["type"] == "union"
    assert tag_union["parameters"]["arg_2"] == {"'hidden-link:${applicationInsightsId}'": "Resource"}
    props = config["properties"]
    assert props["Kind"] == "standard" and props["Enabled"] is True and props["SyntheticMonitorId"] == "name"
    assert props["Request"] == {"RequestUrl": "healthUrl", "HttpVerb": "GET", "FollowRedirects": False,
                                "ParseDependentRequests": False}
    # 200 only: /api/health answers 503 when degraded (rollup lag) or storage is unreachable.
    assert props["ValidationRules"]["ExpectedHttpStatusCode"] == 200
    assert props["ValidationRules"]["SSLCheck"] is True
    assert props["Locations"]["loop_type"]["detail"]["array_name"] == "testLocations"
    assert props["Locations"]["config"] == {"Id": "id"}
    params = doc["parameters"]
    assert len(params["testLocations"]["default"]) >= 5  # Azure recommends five locations
    assert {"healthUrl", "applicationInsightsId", "name", "location"} <= set(params)


def test_main_deploys_it_against_the_app_health_route_when_health_is_open() -> None:
    module = parse(INFRA / "main.bicep")["modules"]["healthAvailabilityTest"]
    assert module["detail"]["path"] == "core/monitor/availability-test.bicep"
    # With function keys /api/health needs a key, which a web test would keep in plain text.
    assert module["config"]["condition"] == "entraSignIn"
    params = module["config"]["config"]["params"]
    assert params["healthUrl"] == "${api.outputs.uri}/api/health"
    accessor = params["applicationInsightsId"]["operator"]["operands"]
    assert accessor["operand_1"] == "monitoring"
    assert accessor["operand_2"]["operator"]["operands"] == {"operand_1": "outputs",
                                                             "operand_2": "applicationInsightsId"}
