"""Offline checks of the deployment assets: infra/ (Bicep + APIM policies), azure.yaml,
.funcignore, and the app-settings contract between infra and shared.settings.SETTINGS.

There is no Bicep compiler offline, so these tests do what can be done without one:
well-formed policy XML with the required elements, a structural parse of every .bicep
file (pycep-parser, skipped if not installed), module parameter wiring, unused
params/vars, secrets hygiene, Flex Consumption shape, role assignments and diagnostics.
"""

from __future__ import annotations

import fnmatch
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

BicepDoc = dict[str, Any]  # what pycep parses a Bicep file into (JSON-like)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
POLICIES = INFRA / "policies"
MAIN_BICEP = INFRA / "main.bicep"
MAIN_PARAMETERS = INFRA / "main.parameters.json"
API_SETTINGS_BICEP = INFRA / "app" / "api-settings.bicep"

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
POLICY_FILES = sorted(POLICIES.glob("*.xml"))

# Built-in role definition ids the template may use, and nothing else.
ROLE_GUIDS = {
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "API Management Service Contributor": "312a565d-c81f-4fd8-895a-4e21e48d571c",
    "Cognitive Services OpenAI User": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
}

# App settings that belong to the Functions host / platform, not to the app registry.
HOST_SETTING_PATTERNS = (
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage__*",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_*",
)

# Settings Flex Consumption replaces with functionAppConfig (must not be app settings).
FLEX_FORBIDDEN_SETTINGS = (
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
)

SECRET_PATTERNS = (
    "AccountKey=",
    "listKeys(",
    "listSecrets(",
    "SharedAccessKey",
    "DefaultEndpointsProtocol=",
    "InstrumentationKey=",
)

KEYVAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=https?://|^@Microsoft\.KeyVault\(SecretUri=\$\{")


# ---------------------------------------------------------------------------
# Bicep text helpers (no compiler available offline)
# ---------------------------------------------------------------------------
def _scan_bicep(src: str, *, blank_strings: bool) -> str:
    """Return `src` without // and /* */ comments.

    With blank_strings, the literal text of every string is replaced by spaces while
    `${...}` interpolations are kept, so identifier searches only see code.
    """
    out: list[str] = []
    i, n = 0, len(src)
    # Stack of contexts: "code" (with a brace depth) or "str"/"mstr".
    stack: list[list[Any]] = [["code", 0]]
    while i < n:
        ctx = stack[-1]
        c = src[i]
        if ctx[0] == "code":
            if src.startswith("//", i):
                j = src.find("\n", i)
                i = n if j < 0 else j
                continue
            if src.startswith("/*", i):
                j = src.find("*/", i + 2)
                i = n if j < 0 else j + 2
                out.append(" ")
                continue
            if src.startswith("'''", i):
                stack.append(["mstr", 0])
                out.append("'''")
                i += 3
                continue
            if c == "'":
                stack.append(["str", 0])
                out.append(c)
                i += 1
                continue
            if c == "{":
                ctx[1] += 1
            elif c == "}":
                if ctx[1] == 0 and len(stack) > 1:  # end of an interpolation
                    stack.pop()
                    out.append(c)
                    i += 1
                    continue
                ctx[1] -= 1
            out.append(c)
            i += 1
            continue
        if ctx[0] == "mstr":
            if src.startswith("'''", i):
                stack.pop()
                out.append("'''")
                i += 3
                continue
            out.append(" " if blank_strings and c != "\n" else c)
            i += 1
            continue
        # single-line string
        if c == "\\" and i + 1 < n:
            out.append("  " if blank_strings else src[i : i + 2])
            i += 2
            continue
        if c == "'":
            stack.pop()
            out.append(c)
            i += 1
            continue
        if src.startswith("${", i):
            stack.append(["code", 0])
            out.append("${")
            i += 2
            continue
        out.append(" " if blank_strings else c)
        i += 1
    return "".join(out)


@cache
def bicep_text(path: Path) -> str:
    """Bicep source with comments removed (string literals kept)."""
    return _scan_bicep(path.read_text(encoding="utf-8"), blank_strings=False)


@cache
def bicep_code(path: Path) -> str:
    """Bicep source with comments removed and string literal text blanked."""
    return _scan_bicep(path.read_text(encoding="utf-8"), blank_strings=True)


def all_bicep_text() -> str:
    return "\n".join(bicep_text(p) for p in BICEP_FILES)


def declared(kind: str, path: Path) -> list[str]:
    return re.findall(rf"(?m)^\s*{kind}\s+([A-Za-z_]\w*)\b", bicep_code(path))


def is_used(name: str, code: str, kind: str) -> bool:
    """True if identifier `name` is referenced (not declared, not an object key)."""
    decl = re.compile(rf"(?m)^\s*{kind}\s+{re.escape(name)}\b")
    code = decl.sub(" ", code)
    ident = re.compile(rf"(?<![\w.$]){re.escape(name)}(?!\w)")
    key = re.compile(rf"(?m)(?:^\s*|[{{,]\s*){re.escape(name)}\s*:(?!:)")
    key_spans = {m.end() - 1 for m in key.finditer(code)}  # position of the ':'
    for m in ident.finditer(code):
        rest = code[m.end() :]
        colon = m.end() + (len(rest) - len(rest.lstrip(" \t")))
        if colon in key_spans and code[colon : colon + 1] == ":":
            continue
        return True
    return False


def object_block(path: Path, var_name: str) -> dict[str, str]:
    """Top-level `KEY: value` entries of `var <var_name> = { ... }` (one entry a line)."""
    text = bicep_text(path)
    m = re.search(rf"(?m)^var\s+{re.escape(var_name)}\s*=\s*\{{\s*$", text)
    assert m, f"`var {var_name} = {{` not found in {path.relative_to(ROOT)}"
    end = re.compile(r"(?m)^\}").search(text, m.end())
    assert end, f"unterminated `var {var_name}` in {path.relative_to(ROOT)}"
    entries: dict[str, str] = {}
    for line in text[m.end() : end.start()].splitlines():
        if not line.strip():
            continue
        km = re.match(r"^  ('?)([A-Za-z_][\w.-]*)\1\s*:\s*(.+?)\s*$", line)
        assert km, f"unexpected line in `var {var_name}`: {line!r}"
        key, value = km.group(2), km.group(3)
        assert key not in entries, f"duplicate key {key} in `var {var_name}`"
        if value.startswith("'") and value.endswith("'"):
            value = value[1:-1]
        entries[key] = value
    return entries


def infra_app_settings() -> dict[str, str]:
    return object_block(MAIN_BICEP, "appSettings")


def infra_host_settings() -> dict[str, str]:
    return object_block(API_SETTINGS_BICEP, "hostSettings")


def is_host_setting(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in HOST_SETTING_PATTERNS)


# ---------------------------------------------------------------------------
# APIM policies
# ---------------------------------------------------------------------------
def parse_policy(name: str) -> ET.Element:
    return ET.parse(POLICIES / name).getroot()


def test_policy_files_present() -> None:
    names = {p.name for p in POLICY_FILES}
    assert {
        "managed-identity.xml",
        "token-metrics.xml",
        "token-limit.xml",
        "probe-marker.xml",
        "inbound-all.xml",
    } <= names


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_policy_is_well_formed(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag in {"policies", "fragment"}, f"{path.name}: root <{root.tag}>"
    if root.tag == "policies":
        sections = [child.tag for child in root if isinstance(child.tag, str)]
        assert sections == ["inbound", "backend", "outbound", "on-error"], sections
        for section in root:
            first = next(iter(section), None)
            assert first is not None and first.tag == "base", f"{path.name}: <{section.tag}> must start with <base />"
    # Named values must be {{lower-kebab}}; APIM rejects unknown ones at save time.
    for placeholder in re.findall(r"\{\{([^}]*)\}\}", path.read_text(encoding="utf-8")):
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", placeholder), placeholder


def _assert_managed_identity_block(inbound: ET.Element) -> None:
    children = list(inbound)
    assert children[0].tag == "base"

    def index(pred: Callable[[ET.Element], bool]) -> int:
        for i, el in enumerate(children):
            if pred(el):
                return i
        raise AssertionError("element not found")

    i_del = index(lambda e: e.tag == "set-header" and e.get("name") == "api-key")
    assert children[i_del].get("exists-action") == "delete"

    i_auth = index(lambda e: e.tag == "authentication-managed-identity")
    auth = children[i_auth]
    assert auth.get("resource") == "https://cognitiveservices.azure.com"
    assert auth.get("output-token-variable-name") == "msi-access-token"
    assert auth.get("ignore-error") == "false"

    i_bearer = index(lambda e: e.tag == "set-header" and e.get("name") == "Authorization")
    bearer = children[i_bearer]
    assert bearer.get("exists-action") == "override"
    value = bearer.find("value")
    assert value is not None and value.text is not None
    assert re.fullmatch(
        r'@\(\s*"Bearer "\s*\+\s*\(string\)context\.Variables\["msi-access-token"\]\s*\)', value.text.strip()
    ), value.text

    i_backend = index(lambda e: e.tag == "set-backend-service")
    assert children[i_backend].get("base-url") == "https://{{aoai-endpoint-host}}/openai"

    assert i_del < i_auth < i_bearer, "api-key must be removed before the managed identity token is set"


def test_managed_identity_policy() -> None:
    root = parse_policy("managed-identity.xml")
    assert root.tag == "policies"
    inbound = root.find("inbound")
    assert inbound is not None
    _assert_managed_identity_block(inbound)


def test_token_metrics_policy() -> None:
    root = parse_policy("token-metrics.xml")
    metric = root.find("llm-emit-token-metric")
    assert metric is not None
    assert metric.get("namespace") == "apim-chargeback"
    dims = [d.get("name") for d in metric.findall("dimension")]
    # Azure Monitor: 10 dimension keys per metric, 5 of them taken by APIM defaults.
    assert 1 <= len(dims) <= 5, dims
    assert len(set(dims)) == len(dims)
    assert {"Subscription ID", "API ID"} <= set(dims)


def test_token_limit_policy() -> None:
    root = parse_policy("token-limit.xml")
    limit = root.find("llm-token-limit")
    assert limit is not None
    assert limit.get("counter-key") == "@(context.Subscription.Id)"
    assert limit.get("tokens-per-minute") == "{{tpm-limit}}"
    assert limit.get("token-quota")
    assert limit.get("token-quota-period") == "Monthly"
    assert limit.get("estimate-prompt-tokens") == "true"
    assert limit.get("remaining-tokens-variable-name") == "remainingTokens"


def test_probe_marker_policy() -> None:
    root = parse_policy("probe-marker.xml")
    choose = root.find("choose")
    assert choose is not None
    when = choose.find("when")
    assert when is not None
    cond = when.get("condition", "")
    assert "x-chargeback-probe" in cond and '"1"' in cond
    keep = when.find("set-header[@name='x-chargeback-probe']")
    assert keep is not None and keep.get("exists-action") == "override"
    assert (keep.findtext("value") or "").strip() == "1"


def _canonical(el: ET.Element) -> str:
    """Element as text, insensitive to indentation (text/tail whitespace)."""
    clone = ET.fromstring(ET.tostring(el, encoding="unicode"))
    for node in clone.iter():
        node.text = node.text.strip() if node.text else None
        node.tail = None
    return ET.tostring(clone, encoding="unicode")


def test_inbound_all_combines_everything_in_order() -> None:
    root = parse_policy("inbound-all.xml")
    inbound = root.find("inbound")
    assert inbound is not None
    _assert_managed_identity_block(inbound)

    combined = [_canonical(el) for el in inbound]
    for fragment in ("probe-marker.xml", "token-limit.xml", "token-metrics.xml"):
        for el in parse_policy(fragment):
            assert _canonical(el) in combined, f"inbound-all.xml differs from {fragment} for <{el.tag}>"
    managed_inbound = parse_policy("managed-identity.xml").find("inbound")
    assert managed_inbound is not None
    for text in (_canonical(el) for el in managed_inbound):
        assert text in combined, f"inbound-all.xml differs from managed-identity.xml: {text}"

    tags = [el.tag for el in inbound]
    assert tags.index("choose") < tags.index("authentication-managed-identity")
    assert tags.index("set-backend-service") < tags.index("llm-token-limit") < tags.index("llm-emit-token-metric")


def test_policy_placeholders_are_documented_and_created_by_sandbox() -> None:
    readme = (POLICIES / "README.md").read_text(encoding="utf-8")
    sandbox = "\n".join(bicep_text(p) for p in BICEP_FILES if "sandbox" in p.name)
    used = set()
    for path in POLICY_FILES:
        used |= set(re.findall(r"\{\{([^}]*)\}\}", path.read_text(encoding="utf-8")))
    assert {"aoai-endpoint-host", "tpm-limit"} <= used
    for name in used:
        assert f"`{{{{{name}}}}}`" in readme, f"{{{{{name}}}}} not documented in infra/policies/README.md"
        assert re.search(rf"name:\s*'{re.escape(name)}'", sandbox), f"sandbox does not create named value {name}"


# ---------------------------------------------------------------------------
# Bicep: structure
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bicep_json() -> dict[Path, BicepDoc]:
    pycep = pytest.importorskip("pycep")
    parser = pycep.BicepParser()
    return {path: parser.parse(file_path=path) for path in BICEP_FILES}


def test_every_bicep_file_parses(bicep_json: dict[Path, BicepDoc]) -> None:
    assert set(bicep_json) == set(BICEP_FILES)
    assert MAIN_BICEP in bicep_json
    assert bicep_json[MAIN_BICEP]["globals"]["scope"]["value"] == "resourceGroup"


def _module_config(module: BicepDoc) -> BicepDoc:
    config: BicepDoc = module["config"]
    inner: BicepDoc = config["config"] if "condition" in config else config  # a conditional module nests it
    return inner


def test_module_parameters_match_module_declarations(bicep_json: dict[Path, BicepDoc]) -> None:
    """What a compiler would catch: unknown module params, missing required ones."""
    checked = 0
    for path, doc in bicep_json.items():
        for sym, module in (doc.get("modules") or {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            assert target.is_file(), f"{path.relative_to(ROOT)}: module {sym} -> missing {target}"
            declared_params = bicep_json[target]["parameters"] or {}
            passed = set((_module_config(module).get("params") or {}).keys())
            unknown = passed - set(declared_params)
            assert not unknown, f"{path.relative_to(ROOT)}: module {sym} passes unknown params {sorted(unknown)}"
            required = {name for name, p in declared_params.items() if p.get("default") is None}
            missing = required - passed
            assert not missing, f"{path.relative_to(ROOT)}: module {sym} misses required params {sorted(missing)}"
            checked += 1
    assert checked >= 10


def test_load_text_content_targets_exist() -> None:
    for path in BICEP_FILES:
        for rel in re.findall(r"loadTextContent\('([^']+)'\)", bicep_text(path)):
            assert (path.parent / rel).is_file(), f"{path.relative_to(ROOT)}: {rel} missing"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_param_and_var_is_used(path: Path) -> None:
    code = bicep_code(path)
    for kind in ("param", "var"):
        for name in declared(kind, path):
            assert is_used(name, code, kind), f"{path.relative_to(ROOT)}: {kind} {name} is never used"


def test_parameters_file_matches_main_bicep() -> None:
    params = json.loads(MAIN_PARAMETERS.read_text(encoding="utf-8"))["parameters"]
    declared_params = set(declared("param", MAIN_BICEP))
    unknown = set(params) - declared_params
    assert not unknown, f"main.parameters.json sets params main.bicep lacks: {sorted(unknown)}"
    required = set(re.findall(r"(?m)^param\s+(\w+)\s+\w+\s*$", bicep_code(MAIN_BICEP)))
    assert required <= set(params), (
        f"required params missing from main.parameters.json: {sorted(required - set(params))}"
    )


def test_parameters_file_env_vars_are_defined() -> None:
    """Each ${VAR} is azd-provided, has a default, or is an output azd saves."""
    text = MAIN_PARAMETERS.read_text(encoding="utf-8")
    outputs = set(re.findall(r"(?m)^output\s+(\w+)\s", bicep_code(MAIN_BICEP)))
    azd_builtin = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID", "AZURE_SUBSCRIPTION_ID"}
    for var, has_default in re.findall(r"\$\{([A-Z0-9_]+)(=?)", text):
        assert has_default or var in azd_builtin or var in outputs, f"${{{var}}} has no source"


def test_azd_outputs() -> None:
    outputs = set(re.findall(r"(?m)^output\s+(\w+)\s", bicep_code(MAIN_BICEP)))
    assert {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_KEY_VAULT_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME",
    } <= outputs


def test_azure_yaml_service() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    m = re.search(r"(?ms)^services:\s*\n  api:\s*\n((?:    .*\n?)+)", text)
    assert m, "azure.yaml must define service `api`"
    body = dict(re.findall(r"(?m)^    (\w+):\s*(\S+)\s*$", m.group(1)))
    assert body == {"project": ".", "language": "python", "host": "function"}, body
    # azd finds the app to deploy through this tag.
    assert re.search(r"'azd-service-name':\s*'api'", bicep_text(MAIN_BICEP))


# ---------------------------------------------------------------------------
# Bicep: security and shape
# ---------------------------------------------------------------------------
def test_no_keys_or_connection_strings_anywhere() -> None:
    files = [*BICEP_FILES, MAIN_PARAMETERS, ROOT / "azure.yaml", *POLICY_FILES]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in SECRET_PATTERNS:
            assert pattern.lower() not in text.lower(), f"{path.relative_to(ROOT)} contains {pattern!r}"


def test_secure_params_are_never_output() -> None:
    for path in BICEP_FILES:
        code = bicep_code(path)
        secure = re.findall(r"@secure\(\)\s*(?:@\w+\([^)]*\)\s*)*param\s+(\w+)", code)
        outputs = "\n".join(re.findall(r"(?m)^output\s+.*$", code))
        for name in secure:
            assert not re.search(rf"(?<![\w.]){name}(?!\w)", outputs), f"{path.name}: secure param {name} is output"


def test_storage_is_identity_only() -> None:
    text = bicep_text(INFRA / "core" / "storage" / "storage-account.bicep")
    assert re.search(r"allowSharedKeyAccess:\s*false", text)
    assert re.search(r"allowBlobPublicAccess:\s*false", text)
    assert re.search(r"minimumTlsVersion:\s*'TLS1_2'", text)


def test_flex_consumption_function_app() -> None:
    text = bicep_text(INFRA / "app" / "api.bicep")
    assert re.search(r"resource\s+\w+\s+'Microsoft\.Web/serverfarms@", text)
    assert re.search(r"sku:\s*\{\s*name:\s*'FC1'\s*tier:\s*'FlexConsumption'\s*\}", text)
    assert re.search(r"kind:\s*'functionapp,linux'", text)
    assert re.search(r"identity:\s*\{\s*type:\s*'SystemAssigned'\s*\}", text)
    assert "functionAppConfig:" in text
    assert re.search(r"type:\s*'blobContainer'", text)
    assert re.search(r"authentication:\s*\{\s*type:\s*'SystemAssignedIdentity'\s*\}", text)
    assert re.search(r"runtime:\s*\{\s*name:\s*'python'\s*version:\s*pythonVersion\s*\}", text)
    assert re.search(r"param\s+pythonVersion\s+string\s*=\s*'3\.11'", text)
    assert re.search(r"instanceMemoryMB:\s*instanceMemoryMB", text)
    assert re.search(r"maximumInstanceCount:\s*maximumInstanceCount", text)
    assert re.search(r"httpsOnly:\s*true", text)


def test_host_settings_use_managed_identity() -> None:
    host = infra_host_settings()
    assert host.get("AzureWebJobsStorage__credential") == "managedidentity"
    assert host.get("AzureWebJobsStorage__accountName") == "storageAccountName"
    assert "AzureWebJobsStorage" not in host, "a plain AzureWebJobsStorage would be a connection string"
    for name in host:
        assert is_host_setting(name), f"{name} is not a host setting; put it in main.bicep's appSettings block"
    # The app settings resource is the union of both blocks.
    assert re.search(r"properties:\s*union\(hostSettings,\s*appSettings\)", bicep_text(API_SETTINGS_BICEP))


def test_no_flex_incompatible_settings() -> None:
    names = set(infra_app_settings()) | set(infra_host_settings())
    assert not names & set(FLEX_FORBIDDEN_SETTINGS), sorted(names & set(FLEX_FORBIDDEN_SETTINGS))
    assert "linuxFxVersion" not in all_bicep_text()


def test_key_vault_rbac_mode() -> None:
    text = bicep_text(INFRA / "core" / "security" / "keyvault.bicep")
    assert re.search(r"enableRbacAuthorization:\s*true", text)
    assert re.search(r"enableSoftDelete:\s*true", text)


def test_role_assignments_least_privilege() -> None:
    text = all_bicep_text()
    # Only the expected built-in roles: any other GUID literal would be a new role.
    guids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text, re.I))
    assert guids <= set(ROLE_GUIDS.values()), f"unexpected GUIDs: {sorted(guids - set(ROLE_GUIDS.values()))}"
    for role, guid in ROLE_GUIDS.items():
        assert text.count(guid) == 1, f"{role} ({guid}) must appear exactly once, found {text.count(guid)}"
        owner = next(p for p in BICEP_FILES if guid in bicep_text(p))
        code = bicep_text(owner)
        m = re.search(rf"(?m)^var\s+(\w+)\s*=\s*'{guid}'\s*$", code)
        assert m, f"{role}: GUID must be a named variable in {owner.name}"
        var = m.group(1)
        # Exactly one role assignment resource uses it, for a service principal.
        uses = re.findall(
            rf"resource\s+\w+\s+'Microsoft\.Authorization/roleAssignments@[\w-]+'\s*=\s*\{{"
            rf"(?:(?!\nresource\s).)*?roleDefinitionId:[^\n]*\b{var}\b",
            code,
            re.S,
        )
        assert len(uses) == 1, f"{role}: expected one roleAssignments resource using {var}, found {len(uses)}"
    for path in BICEP_FILES:
        code = bicep_text(path)
        n_assign = len(re.findall(r"'Microsoft\.Authorization/roleAssignments@", code))
        assert len(re.findall(r"principalType:\s*'ServicePrincipal'", code)) == n_assign, path.name
    # Broad roles never assigned.
    for broad in ("Owner", "Contributor'", "User Access Administrator"):
        assert f"'{broad}" not in text


def test_apim_contributor_only_when_enforcement_enabled() -> None:
    main = bicep_text(MAIN_BICEP)
    m = re.search(r"module\s+\w+\s+'app/apim-enforcement-role\.bicep'\s*=\s*if\s*\(([^)]*)\)", main)
    assert m, "apim-enforcement-role module must be conditional"
    assert "enableEnforcement" in m.group(1)
    assert re.search(r"(?m)^param\s+enableEnforcement\s+bool\s*=\s*false\s*$", bicep_code(MAIN_BICEP))


def test_log_analytics_reader_targets_apim_workspace() -> None:
    main = bicep_text(MAIN_BICEP)
    assert re.search(r"module\s+apimLogsWorkspace\s+'core/monitor/workspace-reader\.bicep'", main)
    assert "empty(apimLogAnalyticsWorkspaceId)" in main
    assert "LOG_ANALYTICS_WORKSPACE_ID: apimLogsWorkspace.outputs.customerId" in main


def test_apim_diagnostics() -> None:
    text = bicep_text(INFRA / "core" / "monitor" / "apim-diagnostics.bicep")
    assert re.search(r"'Microsoft\.Insights/diagnosticSettings@", text)
    assert re.search(r"logAnalyticsDestinationType:\s*'Dedicated'", text)
    for category in ("GatewayLogs", "GatewayLlmLogs"):
        assert re.search(rf"category:\s*'{category}'\s*enabled:\s*true", text), category
    # APIM's own diagnostic: every call, LLM logging on, probe header logged, body bytes capped.
    assert re.search(
        r"'Microsoft\.ApiManagement/service/diagnostics@[\w-]+'\s*=\s*\{\s*parent:\s*apim\s*name:\s*'azuremonitor'",
        text,
    )
    assert re.search(r"percentage:\s*100\b", text)
    assert re.search(r"largeLanguageModel:\s*\{\s*logs:\s*'enabled'", text)
    assert re.search(r"param\s+loggedRequestHeaders\s+array\s*=\s*\[\s*'x-chargeback-probe'", text)
    assert text.count("bytes: responseBodyBytes") == 2  # frontend + backend response
    for path in (INFRA / "core" / "monitor" / "apim-diagnostics.bicep", MAIN_BICEP):
        code = bicep_code(path)
        m = re.search(r"@maxValue\((\d+)\)\s*(?:@\w+\([^)]*\)\s*)*param\s+\w*[Bb]ody[Bb]ytes\s+int\s*=\s*(\d+)", code)
        assert m and m.group(1) == "8192" and m.group(2) == "8192", path.name


def test_openai_diagnostics() -> None:
    text = bicep_text(INFRA / "core" / "monitor" / "openai-diagnostics.bicep")
    for category in ("Audit", "RequestResponse"):
        assert re.search(rf"category:\s*'{category}'\s*enabled:\s*true", text), category
    assert re.search(r"metrics:\s*\[\s*\{\s*category:\s*'AllMetrics'\s*enabled:\s*true", text)


def test_sandbox_is_opt_in_and_uses_owner_policy() -> None:
    main = bicep_text(MAIN_BICEP)
    assert re.search(r"(?m)^param\s+deploySandbox\s+bool\s*=\s*false\s*$", bicep_code(MAIN_BICEP))
    assert re.search(r"module\s+sandbox\s+'app/sandbox\.bicep'\s*=\s*if\s*\(deploySandbox\)", main)
    api = bicep_text(INFRA / "app" / "sandbox-api.bicep")
    assert "loadTextContent('../policies/managed-identity.xml')" in api
    assert re.search(r"kind:\s*'OpenAI'", bicep_text(INFRA / "core" / "ai" / "openai.bicep"))
    assert re.search(r"disableLocalAuth:\s*true", bicep_text(INFRA / "core" / "ai" / "openai.bicep"))


# ---------------------------------------------------------------------------
# App settings: infra <-> shared.settings.SETTINGS
# ---------------------------------------------------------------------------
def test_app_settings_block_is_app_only() -> None:
    for name in infra_app_settings():
        assert not is_host_setting(name), f"host setting {name} belongs in app/api-settings.bicep"
    assert not set(infra_app_settings()) & set(infra_host_settings())


def test_app_settings_match_registry() -> None:
    from shared.settings import SETTINGS  # the app's settings registry

    registry = list(SETTINGS)
    assert registry, "shared.settings.SETTINGS is empty"
    infra = infra_app_settings()
    deployable = {s.name: s for s in registry if not getattr(s, "local_only", False)}
    local_only = {s.name for s in registry if getattr(s, "local_only", False)}

    missing = sorted(set(deployable) - set(infra))
    assert not missing, f"settings missing from main.bicep appSettings: {missing}"
    unknown = sorted(set(infra) - set(deployable))
    assert not unknown, f"main.bicep defines app settings not in shared.settings.SETTINGS: {unknown}"
    assert not (local_only & set(infra)), f"local-only settings deployed: {sorted(local_only & set(infra))}"

    for name, setting in deployable.items():
        value = infra[name]
        if setting.secret:
            assert KEYVAULT_REFERENCE.match(value), f"secret {name} must be a Key Vault reference, got {value!r}"
        else:
            assert "@Microsoft.KeyVault(" not in value, f"{name} is not marked secret but is a Key Vault reference"


# ---------------------------------------------------------------------------
# .funcignore
# ---------------------------------------------------------------------------
def _funcignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def funcignored(rel: str) -> bool:
    """gitignore-style match (what func/azd use for .funcignore): a pattern without a
    slash matches any path component; later patterns and `!` negations win."""
    parts = rel.strip("/").split("/")
    ignored = False
    for raw in _funcignore_patterns():
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        pat = pat.rstrip("/")
        if "/" in pat.strip("/"):
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            hit = any(fnmatch.fnmatchcase(p, pat.lstrip("/")) for p in prefixes)
        else:
            hit = any(fnmatch.fnmatchcase(part, pat) for part in parts)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "rel",
    [
        "tests/integration/test_infra.py",
        ".venv/lib/python3.11/site-packages/x.py",
        "node_modules/azurite/package.json",
        "local.settings.json",
        ".local/workspace/logs.json",
        ".git/HEAD",
        "infra/main.bicep",
        "bench/run.py",
        "tools/x.py",
        "shared/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache",
        "README.md",
    ],
)
def test_funcignore_excludes(rel: str) -> None:
    assert funcignored(rel), f"{rel} would be deployed"


@pytest.mark.parametrize(
    "rel",
    [
        "function_app.py",
        "host.json",
        "requirements.txt",
        "shared/__init__.py",
        "shared/settings.py",
        "queries/usage_by_subscription.kql",
        "queries/schemas/ApiManagementGatewayLlmLog.json",
    ],
)
def test_funcignore_keeps(rel: str) -> None:
    assert not funcignored(rel), f"{rel} would not be deployed"


def test_funcignore_keeps_every_app_file() -> None:
    """Patterns match at any depth: nothing the app ships may be caught by accident."""
    app_files = [ROOT / "function_app.py", ROOT / "host.json", ROOT / "requirements.txt"]
    for folder in ("shared", "queries"):
        app_files += [p for p in (ROOT / folder).rglob("*") if p.is_file()]
    # Left out on purpose: developer tooling and the command line
    # (tests/integration/test_deploy_package.py runs the package).
    on_purpose = ("shared/tooling/", "queries/reference/")
    shipped = [p for p in app_files if "__pycache__" not in p.parts and p.suffix != ".pyc"
               and not p.relative_to(ROOT).as_posix().startswith(on_purpose)]
    dropped = [str(p.relative_to(ROOT)) for p in shipped if funcignored(str(p.relative_to(ROOT)))]
    assert not dropped, f".funcignore would drop app files: {dropped}"
