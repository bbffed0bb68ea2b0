"""Sign-in in Azure, as the Bicep says it (parsed with pycep-parser): App Service Authentication with
Entra ID only when an Entra client id is given, in place before the app settings that rely on it,
and API_AUTH / TRUST_APP_SERVICE_AUTH following the same switch."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.api.sign_in import OPEN_PATHS

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "infra" / "main.bicep"
AUTH = ROOT / "infra" / "app" / "api-auth.bicep"


@cache
def parsed(path: Path) -> dict[str, Any]:
    pycep = pytest.importorskip("pycep")
    return dict(pycep.BicepParser().parse(file_path=path))


def conditional(value: Any) -> tuple[str, Any, Any]:
    """``cond ? a : b`` as pycep parses it: (condition, true value, false value)."""
    operands = value["operator"]["operands"]
    assert value["operator"]["type"] == "conditional", value
    return operands["condition"], operands["true_value"], operands["false_value"]


def test_auth_settings_require_an_entra_sign_in_except_on_the_open_paths() -> None:
    doc = parsed(AUTH)
    resource = doc["resources"]["authSettings"]
    assert (resource["type"], resource["existing"]) == ("Microsoft.Web/sites/config", False)
    config = resource["config"]
    assert config["name"] == "authsettingsV2" and config["parent"] == "site"
    assert doc["resources"]["site"]["type"] == "Microsoft.Web/sites" and doc["resources"]["site"]["existing"]
    props = config["properties"]
    assert props["platform"] == {"enabled": True}
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"  # API clients get 401, never a login page
    assert validation["excludedPaths"] == "openPaths"
    # exactly the paths the app's own gate leaves open: health for monitors, the dashboard's page and assets
    assert set(doc["variables"]["openPaths"]["value"]) == set(OPEN_PATHS)
    assert len(doc["variables"]["openPaths"]["value"]) == len(OPEN_PATHS)
    assert props["httpSettings"] == {"requireHttps": True}
    entra = props["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True and entra["registration"]["clientId"] == "clientId"
    assert entra["registration"]["openIdIssuer"] == \
        "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"  # this tenant, v2 endpoint
    assert entra["validation"]["allowedAudiences"] == ["clientId", "api://${clientId}"]
    assert set(props["identityProviders"]) == {"azureActiveDirectory"}  # no other provider signs anyone in
    assert props["login"] == {"tokenStore": {"enabled": False}}
    clientid = doc["parameters"]["clientId"]
    assert clientid["default"] is None and {"type": "min_length", "argument": 1} in clientid["decorators"]


def test_sign_in_is_deployed_only_with_an_entra_client_id() -> None:
    doc = parsed(MAIN)
    param = doc["parameters"]["entraClientId"]
    assert (param["type"], param["default"]) == ("string", "")
    assert doc["variables"]["entraSignIn"]["value"] == {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "entraClientId"}}}}}}
    module = doc["modules"]["apiAuth"]
    assert module["detail"]["path"] == "app/api-auth.bicep"
    assert module["config"]["condition"] == "entraSignIn"
    assert module["config"]["config"]["params"]["clientId"] == "entraClientId"
    # the settings that drop the function key and trust the principal headers come after the sign-in
    assert "apiAuth" in doc["modules"]["apiSettings"]["config"]["dependsOn"]


@pytest.mark.parametrize(("setting", "signed_in", "otherwise"), [("API_AUTH", "entra", "functionkey"),
                                                                ("TRUST_APP_SERVICE_AUTH", "true", "false")])
def test_app_settings_follow_the_sign_in_switch(setting: str, signed_in: str, otherwise: str) -> None:
    settings = parsed(MAIN)["variables"]["appSettings"]["value"]
    assert conditional(settings[setting]) == ("entraSignIn", signed_in, otherwise)


def test_azd_reads_the_client_id_from_the_environment() -> None:
    parameters = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    assert parameters["entraClientId"] == {"value": "${CHARGEBACK_ENTRA_CLIENT_ID=}"}  # unset = no sign-in
