"""The deployment (azure.yaml, infra/, scripts/, .funcignore) held to the code.

Nothing can be deployed from here and the Bicep compiler cannot be installed on these machines, so
these tests read the templates as text (the files are written in a regular shape for it: one
setting or role a line) and compare them with what the code reads and what the app indexes:

- every setting the code reads is in local.settings.sample.json, the settings table (docs/settings.md) and the
  Bicep app settings, and nothing is there that nothing reads; each exception says why;
- the values the template deploys are valid settings, and restate the code's defaults;
- the Event Grid subscriptions and the hook scripts target functions the app indexes, on the
  webhook paths of their trigger types, with the event types and filters the code acts on;
- role definition ids are the built-in ids of the roles their comments name;
- the hook scripts pass `bash -n` and shellcheck (tests/test_azd_hooks.py);
- every Azure call in shared/azure is listed with the RBAC actions it needs, and a role the template
  assigns to that principal grants them (the app's subscription-level reads through a custom role);
- the site keeps the module's hardening, a new workspace's storage refuses keys, and the package azd
  builds from .funcignore holds the app's files and nothing a developer's clone adds;
- the Bicep files are balanced, and local modules get the parameters they declare.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple
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
from tests.powershell_text import balanced

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PROCESSOR = INFRA / "app" / "processor.bicep"
SUBSCRIPTIONS = INFRA / "app" / "event-subscriptions.bicep"
JOB_EVENTS_SUBSCRIPTION = INFRA / "app" / "job-events-subscription.bicep"
HOOK_SH = ROOT / "scripts" / "postdeploy.sh"
HOOK_PS1 = ROOT / "scripts" / "postdeploy.ps1"
SETTINGS_DOC = ROOT / "docs" / "settings.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
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
    "LOCAL_TRAINER": "read only with ML_BACKEND=local",
    "LOCAL_BASE_MODEL": "read only with ML_BACKEND=local",
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
    "AML_DATASTORE": "chatft_prepared_abcdefghijklm",  # one per environment (tests/test_infra_environments.py)
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
    """The first column of the table in docs/settings.md, the settings reference."""
    names: set[str] = set()
    for line in SETTINGS_DOC.read_text().splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 2:
            names.update(re.findall(r"`([^`]+)`", cells[1]))
    return names


def test_the_readme_settings_table_lists_what_the_code_reads_and_nothing_else() -> None:
    table = _readme_settings_table()
    expected = CODE_READS | set(HOST_SETTINGS_LOCAL)
    assert not expected - table, f"missing from the settings table (docs/settings.md): {sorted(expected - table)}"
    assert not table - expected, (
        f"in the settings table (docs/settings.md) but read by nothing: {sorted(table - expected)}"
    )


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


def test_a_gpu_cluster_name_is_a_valid_finetune_compute_one_per_environment() -> None:
    """Empty by default: `cft-gpu-<8 of the environment's token>`, 16 characters at most (an AmlCompute name is
    2-16 letters, digits and hyphens), so two environments on one existing workspace get two clusters."""
    text = MAIN.read_text()
    assert _literal(_params(text)["gpuClusterName"] or "") == ""
    [default] = re.findall(r"var gpuCluster = empty\(gpuClusterName\) \? '([^']+)' : gpuClusterName", text)
    assert default == "cft-gpu-${take(resourceToken, 8)}"
    sample = default.replace("${take(resourceToken, 8)}", "abcdefgh")
    assert len(sample) <= 16 and _SPECS["finetune_compute"].parse(sample) == sample
    assert "toLower(uniqueString(subscription().id, environmentName" in text  # the token differs per environment
    setting = _chatft_app_settings()["FINETUNE_COMPUTE"]
    assert re.fullmatch(r"createGpuCluster \? gpuCluster : 'serverless'", setting)
    assert "gpuClusterName: gpuCluster\n" in text  # the module creates the cluster the setting names


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
    """`chatft doctor --env` reads CHATFT_APP_SETTINGS (shared/entry/cli/commands/doctor.py) from azd's .env."""
    from shared.entry.cli.commands.doctor import APP_SETTINGS_OUTPUT

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


def test_the_powershell_hook_is_balanced() -> None:
    """No PowerShell parser can be installed here: brackets outside strings and comments balance."""
    text = HOOK_PS1.read_text()
    text = re.sub(r"(?m)^\s*#.*$", "", text)
    text = re.sub(r"'[^'\n]*'", "''", text)
    text = re.sub(r'"(?:[^"`\n]|`.)*"', '""', text)
    assert balanced(text)
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
    text = DEPLOY_DOC.read_text()  # docs/deploy.md, "Identity and roles"
    for role in BUILT_IN_ROLES:
        assert f"**{role}**" in text, role
    assert "**chatft app reader**" in text, "the custom role (app/metrics-rbac.bicep)"
    for action in APP_CUSTOM_ROLE_ACTIONS:
        assert f"`{action}`" in text, action


def test_the_app_reads_subscription_level_data_through_a_custom_role_of_three_actions() -> None:
    """Least privilege at subscription scope (issue 18 B7): Monitoring Reader was `*/read` on the whole
    subscription; the custom role holds the batch metrics reads and the vmSizes list, nothing else.

    The resource type and its properties: Microsoft.Authorization/roleDefinitions@2022-04-01
    (Azure/bicep-types-az generated/authorization/microsoft.authorization/2022-04-01/types.md:
    RoleDefinitionProperties roleName, description, type, permissions[actions, notActions, dataActions,
    notDataActions], assignableScopes; writable at Subscription scope). The actions' names: MicrosoftDocs
    azure-docs articles/role-based-access-control/permissions/ai-machine-learning.md
    ("Microsoft.MachineLearningServices/locations/vmsizes/read | Get supported vm sizes") and monitor.md.
    """
    text = (INFRA / "app" / "metrics-rbac.bicep").read_text()
    assert "targetScope = 'subscription'" in text
    [definition] = _custom_roles(text).values()
    assert definition["actions"] == APP_CUSTOM_ROLE_ACTIONS
    assert definition["notActions"] == definition["dataActions"] == definition["notDataActions"] == ()
    assert "assignableScopes: [\n      subscription().id\n    ]" in text
    assert "type: 'CustomRole'" in text
    # One definition per environment (a deterministic GUID name), unique by name in the tenant.
    assert "name: guid(subscription().id, environmentName, 'chatft-app-reader')" in text
    assert re.search(r"roleName: '[^']*\$\{environmentName\}[^']*\$\{resourceToken\}[^']*'", text)
    assignments = _role_assignments()
    assert ("metrics-rbac.bicep", "app", "custom:appReader") in {(a.file, a.principal, a.role) for a in assignments}
    main = MAIN.read_text()
    assert "module metricsRbac 'app/metrics-rbac.bicep' = {" in main, "assigned unconditionally"
    assert not (INFRA / "app" / "metrics-rbac-workspace.bicep").exists()
    assert "43d0d8ad-25c7-4714-9337-8ba259a9fe05" not in "".join(p.read_text() for p in _bicep_files())


# ---------------------------------------------------------------------------------------------
# Every Azure call the app makes, the permission it needs and the role that grants it
#
# The calls are found in shared/azure by AST: a call of a method that one of the SDK classes the
# adapters use defines (introspected from the installed SDKs), or a `getattr(x, "<SDK method>")`.
# `get` and `update` are also dict methods, so they count only on an MLClient operation group
# (`workspace.jobs.get`) or a local bound to one (`ops = client.online_endpoints`).
#
# Sources for each action (MicrosoftDocs/azure-docs, articles/role-based-access-control/):
#   permissions/ai-machine-learning.md (commit 01365cd560a07fc6351755e3fd853ee1f4d0e169):
#     workspaces/read, computes/read, locations/vmsizes/read, locations/usages/read, jobs/read|write,
#     datastores/read, models/versions/read|write, onlineEndpoints/read|write|delete,
#     onlineendpoints/listkeys/action, onlineEndpoints/deployments/read|write, experiments/runs/read;
#   permissions/storage.md, permissions/monitor.md, permissions/integration.md for the Storage, Insights
#   and EventGrid actions. The REST operation each SDK method sends is in the installed SDK:
#   azure/ai/ml/operations/_compute_operations.py (list_sizes and list_usage first GET the workspace for
#   its location, `_get_workspace_location`, then GET .../locations/{location}/vmSizes or /usages,
#   _restclient/arm_ml_service/operations/_operations.py); azure/ai/ml/operations/_model_operations.py,
#   _job_operations.py, _online_endpoint_operations.py, _online_deployment_operations.py,
#   _datastore_operations.py, _workspace_operations_base.py.

ML = "Microsoft.MachineLearningServices/"
WS = ML + "workspaces/"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/"
ENTITIES = "Microsoft.Storage/storageAccounts/tableServices/tables/entities/"
EVENT_SUBSCRIPTIONS = "Microsoft.EventGrid/systemTopics/eventSubscriptions/"

APP_CUSTOM_ROLE_ACTIONS = (
    "Microsoft.Insights/metrics/read",
    "Microsoft.Insights/metricDefinitions/read",
    ML + "locations/vmsizes/read",
)


class Needs(NamedTuple):
    """What one call needs: the RBAC actions (control and data plane), who makes it, and where that
    principal's role is assigned (a Bicep file under infra/), or why no role of the template is involved."""

    actions: tuple[str, ...]
    principal: str  # "app" | "user" | "public" | "caller"
    where: str


def _app(actions: tuple[str, ...], where: str) -> Needs:
    return Needs(actions, "app", where)


PUBLIC_REGISTRY = "the public azureml registry: readable by every identity, no role assigned"
DOCTOR = "only `chatft doctor`, as the person running it, with their own access (Owner/Contributor of what azd created)"

AZURE_CALLS: dict[str, Needs] = {
    # --- Azure ML (shared/azure/azureml/client.py): the app identity, AzureML Data Scientist on the workspace
    "azureml/client.py::AzureMLWorkspace._foundation_model::registry.models.get": Needs((), "public", PUBLIC_REGISTRY),
    "azureml/client.py::AzureMLWorkspace._pipeline_component::registry.components.get": Needs(
        (), "public", PUBLIC_REGISTRY
    ),
    "azureml/client.py::AzureMLWorkspace.foundation_model_tags::registry.models.get": Needs(
        (), "public", PUBLIC_REGISTRY
    ),
    "azureml/client.py::AzureMLWorkspace._system_metadata::registry.models._get": Needs((), "public", PUBLIC_REGISTRY),
    "azureml/client.py::AzureMLWorkspace._compute_plan::workspace.compute.get": _app(
        (WS + "computes/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace._compute_plan::workspace.compute.list_sizes": _app(
        (WS + "read", ML + "locations/vmsizes/read"), "aml.bicep metrics-rbac.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.quota_for::workspace.compute.list_sizes": Needs(
        (WS + "read", ML + "locations/vmsizes/read"), "caller", DOCTOR
    ),
    "azureml/client.py::AzureMLWorkspace.quota_for::workspace.compute.list_usage": Needs(
        (WS + "read", ML + "locations/usages/read"), "caller", DOCTOR
    ),
    "azureml/client.py::AzureMLWorkspace.datastore_target::workspace.datastores.get": Needs(
        (WS + "datastores/read",), "caller", DOCTOR
    ),
    "azureml/client.py::AzureMLWorkspace._existing_job::workspace.jobs.get": _app((WS + "jobs/read",), "aml.bicep"),
    "azureml/client.py::AzureMLWorkspace.job_info::workspace.jobs.get": _app((WS + "jobs/read",), "aml.bicep"),
    # POST .../jobs/{name}/cancel (ARM names a POST to a child action `<type>/<action>/action`): JOB_MAX_HOURS as the
    # app, and `chatft cancel` as the person (AzureML Data Scientist's workspaces/*/action covers it for both).
    "azureml/client.py::AzureMLWorkspace.submit_finetune::workspace.jobs.create_or_update": _app(
        (WS + "jobs/write", WS + "jobs/read", WS + "datastores/read"), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.tracking::workspace.workspaces.get": _app((WS + "read",), "aml.bicep"),
    "azureml/client.py::AzureMLWorkspace.location::workspace.workspaces.get": _app((WS + "read",), "aml.bicep"),
    "azureml/client.py::AzureMLWorkspace.register_model::workspace.models.create_or_update": _app(
        (WS + "models/versions/write", WS + "jobs/read"), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace._model_version::workspace.models.get": _app(
        (WS + "models/versions/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.get_endpoint::workspace.online_endpoints.get": _app(
        (WS + "onlineEndpoints/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.list_endpoints::workspace.online_endpoints.list": _app(
        (WS + "onlineEndpoints/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.set_endpoint_traffic::workspace.online_endpoints.get": _app(
        (WS + "onlineEndpoints/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.get_deployment::workspace.online_deployments.get": _app(
        (WS + "onlineEndpoints/deployments/read",), "aml.bicep"
    ),
    "azureml/client.py::AzureMLWorkspace.endpoint_key::workspace.online_endpoints.get_keys": _app(
        (WS + "onlineendpoints/listkeys/action",), "aml.bicep"
    ),
    # --- long-running operations started without a poller (shared/azure/azureml/lro.py)
    "azureml/lro.py::start_endpoint_put::rest_ops.begin_create_or_update": _app(
        (WS + "onlineEndpoints/write",), "aml.bicep"
    ),
    "azureml/lro.py::start_endpoint_put::ops.begin_create_or_update": _app(
        (WS + "onlineEndpoints/write",), "aml.bicep"
    ),
    "azureml/lro.py::start_deployment_put::rest_ops.begin_create_or_update": _app(
        (WS + "onlineEndpoints/deployments/write",), "aml.bicep"
    ),
    "azureml/lro.py::start_deployment_put::ops.begin_create_or_update": _app(
        (WS + "onlineEndpoints/deployments/write",), "aml.bicep"
    ),
    "azureml/lro.py::start_endpoint_delete::rest_ops.begin_delete": _app((WS + "onlineEndpoints/delete",), "aml.bicep"),
    # POST .../jobs/{name}/cancel (ARM names a POST to a child action `<type>/<action>/action`): JOB_MAX_HOURS as the
    # app, and `chatft cancel` as the person (AzureML Data Scientist's workspaces/*/action covers it for both).
    "azureml/lro.py::start_job_cancel::rest_ops.begin_cancel": _app((WS + "jobs/cancel/action",), "aml.bicep"),
    "azureml/lro.py::start_job_cancel::ops.begin_cancel": _app((WS + "jobs/cancel/action",), "aml.bicep"),
    "azureml/lro.py::start_endpoint_delete::ops.begin_delete": _app((WS + "onlineEndpoints/delete",), "aml.bicep"),
    "azureml/lro.py::start_endpoint_tags_patch::rest_ops.begin_update": _app(
        (WS + "onlineEndpoints/write",), "aml.bicep"
    ),
    "azureml/lro.py::start_endpoint_tags_patch::ops.get": _app((WS + "onlineEndpoints/read",), "aml.bicep"),
    "azureml/lro.py::start_endpoint_tags_patch::ops.begin_create_or_update": _app(
        (WS + "onlineEndpoints/write",), "aml.bicep"
    ),
    # --- MLflow tracking REST (runs/get, runs/search, metrics/get-history), on the workspace's runs
    "azureml/tracking.py::MlflowRest._call::_client.send_request": _app((WS + "experiments/runs/read",), "aml.bicep"),
    # --- Azure Monitor batch metrics: the custom role on the subscription
    "metrics.py::AzureMonitorUsage._query::client().query_resources": _app(
        ("Microsoft.Insights/metrics/read", "Microsoft.Insights/metricDefinitions/read"), "metrics-rbac.bicep"
    ),
    # --- Blob storage: the app's own account (Storage Blob Data Owner)
    "storage.py::ensure_container::container.create_container": _app((BLOBS[:-1] + "/write",), "rbac.bicep"),
    "storage.py::BlobPreparedStore._upload::client.upload_blob": _app((BLOBS + "blobs/write",), "rbac.bicep"),
    "storage.py::BlobPreparedStore.read_bytes::_container.get_blob_client().download_blob": _app(
        (BLOBS + "blobs/read",), "rbac.bicep"
    ),
    "storage.py::BlobPreparedStore.read_first_line::_container.get_blob_client().download_blob": _app(
        (BLOBS + "blobs/read",), "rbac.bicep"
    ),
    "storage.py::BlobPreparedStore.update_bytes::client.download_blob": _app((BLOBS + "blobs/read",), "rbac.bicep"),
    "storage.py::BlobPreparedStore.put_if_newer::client.get_blob_properties": _app(
        (BLOBS + "blobs/read",), "rbac.bicep"
    ),
    "storage.py::_write_unless_changed::client.upload_blob": _app((BLOBS + "blobs/write",), "rbac.bicep"),
    "blobref.py::BlobRef.download_blob::client().download_blob": _app((BLOBS + "blobs/read",), "rbac.bicep"),
    # --- the ledger table (Storage Table Data Contributor on the account; the commands: on the table)
    "table_ledger.py::table_client::service.create_table_if_not_exists": _app(
        ("Microsoft.Storage/storageAccounts/tableServices/tables/write",), "rbac.bicep"
    ),
    "table_ledger.py::TableLedger.get::_table.get_entity": _app((ENTITIES + "read",), "rbac.bicep"),
    "table_ledger.py::TableLedger.claim::_table.create_entity": _app((ENTITIES + "add/action",), "rbac.bicep"),
    "table_ledger.py::TableLedger.claim::_table.get_entity": _app((ENTITIES + "read",), "rbac.bicep"),
    "table_ledger.py::TableLedger.with_status::_table.query_entities": _app((ENTITIES + "read",), "rbac.bicep"),
    "table_ledger.py::TableLedger.unreadable::_table.list_entities": _app((ENTITIES + "read",), "rbac.bicep"),
    "table_ledger.py::TableLedger._replace_if_unchanged::_table.update_entity": _app(
        (ENTITIES + "update/action",), "rbac.bicep"
    ),
    # --- lifecycle events: EventGrid Data Sender on the topic
    "event_publisher.py::EventGridPublisher.send::_get_client().send": _app(
        ("Microsoft.EventGrid/events/send/action",), "events-topic.bicep"
    ),
    # --- `chatft upload` and `chatft status`, as the person running azd (their roles in rbac.bicep)
    "upload.py::UploadContainer._upload_file::client.exists": Needs((BLOBS + "blobs/read",), "user", "rbac.bicep"),
    "upload.py::_interrupted::client.get_blob_properties": Needs((BLOBS + "blobs/read",), "user", "rbac.bicep"),
    "upload.py::UploadContainer.failure_notes::_prepared.list_blobs": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    "upload.py::UploadContainer.failure_notes::_prepared.get_blob_client().download_blob": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    # --- the content claims (shared/azure/content_claims.py, `_claims/<sha256>.json` in the prepared container):
    # taken by `chatft upload` as the person (Blob Data Contributor on the prepared container) and by the ingest
    # as the app (Blob Data Owner on the account), both in rbac.bicep; the person's is the narrower grant
    "content_claims.py::BlobContentClaims._read::_client().download_blob": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    "content_claims.py::BlobContentClaims._write::_client().upload_blob": Needs(
        (BLOBS + "blobs/write",), "user", "rbac.bicep"
    ),
    "content_claims.py::BlobContentClaims.release::_client().delete_blob": Needs(
        (BLOBS + "blobs/delete",), "user", "rbac.bicep"
    ),
    "content_claims.py::BlobContentClaims.seen::_uploads.get_blob_client().get_blob_properties": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    "upload.py::UploadContainer._put::client.get_blob_properties": Needs((BLOBS + "blobs/read",), "user", "rbac.bicep"),
    "upload.py::UploadContainer._put::client.delete_blob": Needs((BLOBS + "blobs/delete",), "user", "rbac.bicep"),
    "upload.py::UploadContainer._send::client.upload_blob": Needs((BLOBS + "blobs/write",), "user", "rbac.bicep"),
    "upload.py::UploadContainer.list_uploads::_uploads.list_blobs": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    "upload.py::UploadContainer.read_report::_prepared.get_blob_client().download_blob": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    "upload.py::UploadContainer.report_prefixes::_prepared.list_blobs": Needs(
        (BLOBS + "blobs/read",), "user", "rbac.bicep"
    ),
    # --- `chatft doctor`'s ARM reads over REST (shared/azure/arm.py): role assignments, the app's settings
    "arm.py::ArmReads._send::_client.send_request": Needs(
        ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Web/sites/config/list/action"), "caller", DOCTOR
    ),
    # --- `chatft doctor` reading the Event Grid subscriptions (azure-mgmt-eventgrid, a CLI dependency)
    "event_routes.py::topics_on::client.system_topics.list_by_subscription": Needs(
        ("Microsoft.EventGrid/systemTopics/read",), "caller", DOCTOR
    ),
    "event_routes.py::routes::client.system_topic_event_subscriptions.list_by_system_topic": Needs(
        (EVENT_SUBSCRIPTIONS + "read",), "caller", DOCTOR
    ),
    "event_routes.py::routes::client.system_topic_event_subscriptions.get_full_url": Needs(
        (EVENT_SUBSCRIPTIONS + "getFullUrl/action",), "caller", DOCTOR
    ),
}

# Built-in roles' permissions as published (MicrosoftDocs/azure-docs, articles/role-based-access-control/
# built-in-roles/ai-machine-learning.md at 0ff2e41d1038f96282c6243d2fc181667ed5ef09, storage.md at
# 1b4e136a1da731e1ed16444eb6ce5701bcd8c0f4, integration.md for EventGrid Data Sender; monitor.md for
# Monitoring Metrics Publisher): (actions, notActions, dataActions).
BUILT_IN_ROLE_PERMISSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "AzureML Data Scientist": (
        (WS + "*/read", WS + "*/action", WS + "*/delete", WS + "*/write"),
        (
            WS + "delete",
            WS + "write",
            WS + "computes/*/write",
            WS + "computes/*/delete",
            WS + "computes/listKeys/action",
            WS + "listKeys/action",
            WS + "hubs/write",
            WS + "hubs/delete",
            WS + "featurestores/write",
            WS + "featurestores/delete",
        ),
        (),
    ),
    "Storage Blob Data Owner": (
        (BLOBS + "*", "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        (),
        (BLOBS + "blobs/*",),
    ),
    "Storage Blob Data Contributor": (
        (
            BLOBS[:-1] + "/delete",
            BLOBS[:-1] + "/read",
            BLOBS[:-1] + "/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ),
        (),
        tuple(BLOBS + f"blobs/{verb}" for verb in ("delete", "read", "write", "move/action", "add/action")),
    ),
    "Storage Blob Data Reader": (
        (BLOBS[:-1] + "/read", "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        (),
        (BLOBS + "blobs/read",),
    ),
    "Storage Table Data Contributor": (
        tuple(f"Microsoft.Storage/storageAccounts/tableServices/tables/{verb}" for verb in ("read", "write", "delete")),
        (),
        tuple(ENTITIES + verb for verb in ("read", "write", "delete", "add/action", "update/action")),
    ),
    "EventGrid Data Sender": (
        (
            "Microsoft.Authorization/*/read",
            "Microsoft.EventGrid/topics/read",
            "Microsoft.EventGrid/domains/read",
            "Microsoft.EventGrid/partnerNamespaces/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.EventGrid/namespaces/read",
        ),
        (),
        ("Microsoft.EventGrid/events/send/action",),
    ),
}


KNOWN_PERMISSIONS = set(BUILT_IN_ROLE_PERMISSIONS) | {
    f"custom:{symbol}"
    for path in INFRA.rglob("*.bicep")
    for symbol in re.findall(
        r"^resource (\w+) 'Microsoft\.Authorization/roleDefinitions@", path.read_text(), re.MULTILINE
    )
}
"""Roles whose permissions this file knows; another role (Queue Data Contributor, Monitoring Metrics Publisher:
the host's own needs) is not counted as granting anything."""


def _matches(pattern: str, action: str) -> bool:
    """Azure RBAC's wildcard: `*` stands for any characters, and `/*/` also for no segment at all (the
    published AzureML Data Scientist lists `workspaces/delete` and `workspaces/write` among its
    NotActions, which only mean something if its `workspaces/*/delete` and `/*/write` cover them).
    Operation names compare case-insensitively (the permissions page spells `onlineEndpoints` and
    `onlineendpoints` both)."""
    regex = re.escape(pattern).replace("/\\*/", "/(?:.*/)?").replace("\\*", ".*")
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def _grants(permissions: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], action: str) -> bool:
    actions, not_actions, data_actions = permissions
    allowed = any(_matches(p, action) for p in actions) and not any(_matches(p, action) for p in not_actions)
    return allowed or any(_matches(p, action) for p in data_actions)


def _custom_roles(text: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """symbol -> {actions, notActions, dataActions, notDataActions} of each roleDefinitions resource."""
    found = {}
    for match in re.finditer(r"^resource (\w+) 'Microsoft\.Authorization/roleDefinitions@", text, re.MULTILINE):
        start, end = _block(text[match.start() :], "=")
        body = text[match.start() + start : match.start() + end]
        found[match.group(1)] = {
            key: tuple(re.findall(r"'([^']+)'", lists.group(1)))
            if (lists := re.search(rf"\b{key}: \[([^\]]*)\]", body))
            else ()
            for key in ("actions", "notActions", "dataActions", "notDataActions")
        }
    return found


class Assignment(NamedTuple):
    file: str
    principal: str  # "app", "user", or the parameter named
    role: str  # a built-in role's name, or "custom:<symbol>"


def _role_assignments() -> list[Assignment]:
    found = []
    for path in _bicep_files():
        text = path.read_text()
        role_vars = dict(re.findall(r"^var (\w+) = '[0-9a-f-]{36}' // (.+)$", text, re.MULTILINE))
        for match in re.finditer(r"^resource \w+ 'Microsoft\.Authorization/roleAssignments@", text, re.MULTILINE):
            start, end = _block(text[match.start() :], "=")
            body = text[match.start() + start : match.start() + end]
            principal = re.search(r"principalId: (\w+)", body)
            builtin = re.search(r"roleDefinitions', (\w+)\)", body)
            custom = re.search(r"roleDefinitionId: (\w+)\.id", body)
            assert principal and (builtin or custom), f"{path.name}: unreadable role assignment"
            role = role_vars[builtin.group(1)].strip() if builtin else f"custom:{custom.group(1)}"  # type: ignore[union-attr]
            who = {"appPrincipalId": "app", "userPrincipalId": "user"}.get(principal.group(1), principal.group(1))
            found.append(Assignment(path.name, who, role))
    return found


def _permissions(assignment: Assignment) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    if assignment.role.startswith("custom:"):
        custom = _custom_roles((INFRA / "app" / assignment.file).read_text())[assignment.role.removeprefix("custom:")]
        return custom["actions"], custom["notActions"], custom["dataActions"]
    return BUILT_IN_ROLE_PERMISSIONS[assignment.role]


AMBIGUOUS = frozenset({"get", "update"})
"""SDK method names that are dict methods too."""
NO_REQUEST = frozenset(
    {
        "close",
        "format_url",
        "from_blob_url",
        "from_connection_string",
        "from_container_url",
        "from_table_url",
        "get_blob_client",
        "get_container_client",
        "get_table_client",
        "prepare_for_sign",
    }
)
"""SDK methods that build a client or a URL and send nothing."""


def _sdk_classes() -> tuple[type, ...]:
    """Every SDK client and operation group the adapters in shared/azure call (installed packages)."""
    from azure.ai.ml import operations as ml
    from azure.ai.ml._restclient.arm_ml_service.operations import OnlineDeploymentsOperations, OnlineEndpointsOperations
    from azure.core import PipelineClient
    from azure.data.tables import TableClient, TableServiceClient
    from azure.eventgrid import EventGridPublisherClient
    from azure.mgmt.eventgrid.operations import SystemTopicEventSubscriptionsOperations, SystemTopicsOperations
    from azure.monitor.querymetrics import MetricsClient
    from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

    return (
        ml.ComponentOperations,
        ml.ComputeOperations,
        ml.DatastoreOperations,
        ml.JobOperations,
        ml.ModelOperations,
        ml.OnlineDeploymentOperations,
        ml.OnlineEndpointOperations,
        ml.WorkspaceOperations,
        OnlineEndpointsOperations,
        OnlineDeploymentsOperations,
        BlobServiceClient,
        ContainerClient,
        BlobClient,
        TableServiceClient,
        TableClient,
        MetricsClient,
        EventGridPublisherClient,
        PipelineClient,
        SystemTopicsOperations,
        SystemTopicEventSubscriptionsOperations,
    )


def _sdk_methods() -> tuple[set[str], set[str]]:
    """(public methods that send a request, every method name incl. private) of the SDK classes."""
    import inspect

    names = {n for cls in _sdk_classes() for n, v in inspect.getmembers(cls) if callable(v) and not n.startswith("__")}
    return {n for n in names if not n.startswith("_")} - NO_REQUEST, names


def _operation_groups() -> set[str]:
    from azure.ai.ml import MLClient

    return {n for n in dir(MLClient) if isinstance(getattr(MLClient, n, None), property)}


def _chain(node: ast.AST) -> str:
    text = ast.unparse(node).removeprefix("self.")
    while True:
        shorter = re.sub(r"\([^()]*\)", "()", text)
        if shorter == text:
            return text
        text = shorter


class _CallFinder(ast.NodeVisitor):
    def __init__(self, module: str, public: set[str], every: set[str], groups: set[str]) -> None:
        self.module, self.public, self.every, self.groups = module, public, every, groups
        self.scope: list[str] = []
        self.aliases: list[set[str]] = [set()]
        self.bound: list[dict[str, str]] = [{}]
        self.found: set[str] = set()

    def _enter(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.aliases.append(set())
        self.bound.append({})
        self.generic_visit(node)
        self.bound.pop()
        self.aliases.pop()
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._enter(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._enter(node, node.name)

    def visit_Assign(self, node: ast.Assign) -> None:
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node.value, ast.Attribute) and node.value.attr in self.groups:
            self.aliases[-1].update(names)
        elif isinstance(node.value, ast.Attribute) and node.value.attr in self.public:
            self.bound[-1].update(dict.fromkeys(names, _chain(node.value)))  # `send = client.send`
        self.generic_visit(node)

    def _record(self, chain: str) -> None:
        self.found.add(f"{self.module}::{'.'.join(self.scope)}::{chain}")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in self.public:
            receiver = func.value
            group = isinstance(receiver, ast.Attribute) and receiver.attr in self.groups
            alias = isinstance(receiver, ast.Name) and receiver.id in self.aliases[-1]
            if func.attr not in AMBIGUOUS or group or alias:
                self._record(_chain(func))
        elif isinstance(func, ast.Name) and func.id in self.bound[-1]:
            self._record(self.bound[-1][func.id])
        elif isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in self.every:
                self._record(f"{_chain(node.args[0])}.{name.value}")
        self.generic_visit(node)


def _azure_calls_in_code() -> set[str]:
    public, every = _sdk_methods()
    groups = _operation_groups()
    found: set[str] = set()
    base = ROOT / "shared" / "azure"
    for path in sorted(base.rglob("*.py")):
        finder = _CallFinder(path.relative_to(base).as_posix(), public, every, groups)
        finder.visit(ast.parse(path.read_text()))
        found |= finder.found
    return found


def test_every_azure_call_in_the_adapters_is_listed_with_the_permission_it_needs() -> None:
    """A new SDK call in shared/azure fails here until it is listed with its permission and role."""
    in_code = _azure_calls_in_code()
    unlisted = sorted(in_code - set(AZURE_CALLS))
    gone = sorted(set(AZURE_CALLS) - in_code)
    assert not unlisted, f"Azure calls with no permission listed in AZURE_CALLS: {unlisted}"
    assert not gone, f"listed in AZURE_CALLS but no longer in shared/azure: {gone}"


def test_the_call_finder_sees_sdk_calls_and_not_dict_reads() -> None:
    module = (
        "def f(self, payload):\n"
        "    payload.get('x')\n"
        "    data.get('metrics')\n"
        "    self.workspace.jobs.get('j')\n"
        "    ops = client.online_endpoints\n"
        "    ops.get('e')\n"
        "    self._container.get_blob_client('p').download_blob().readall()\n"
        "    getattr(self.registry.models, '_get', None)\n"
        "    update = rest_ops.begin_update\n"
        "    update(body={})\n"
    )
    public, every = _sdk_methods()
    finder = _CallFinder("m.py", public, every, _operation_groups())
    finder.visit(ast.parse(module))
    assert finder.found == {
        "m.py::f::workspace.jobs.get",
        "m.py::f::ops.get",
        "m.py::f::_container.get_blob_client().download_blob",
        "m.py::f::registry.models._get",
        "m.py::f::rest_ops.begin_update",
    }


def test_every_permission_the_app_and_the_user_need_is_granted_by_a_role_the_template_assigns() -> None:
    """For each call: some role assigned to that principal, in the Bicep file the table names, grants
    every action it needs (built-in roles by their published actions, custom roles by their Bicep)."""
    assignments = _role_assignments()
    missing = []
    for call, needs in AZURE_CALLS.items():
        if needs.principal in ("public", "caller"):
            assert needs.where and not needs.where.endswith(".bicep"), call
            continue
        files = needs.where.split()
        held = [a for a in assignments if a.principal == needs.principal and a.file in files]
        assert held, f"{call}: no role for the {needs.principal} in {files}"
        for action in needs.actions:
            if not any(a.role in KNOWN_PERMISSIONS and _grants(_permissions(a), action) for a in held):
                missing.append(f"{call}: {action} ({needs.principal}, {files})")
    assert not missing, "\n".join(missing)


def test_the_custom_role_holds_only_what_some_call_needs() -> None:
    needed = {action for needs in AZURE_CALLS.values() if needs.principal == "app" for action in needs.actions}
    assert set(APP_CUSTOM_ROLE_ACTIONS) <= needed


def test_the_rbac_wildcard_reading_is_the_documented_one() -> None:
    ds = BUILT_IN_ROLE_PERMISSIONS["AzureML Data Scientist"]
    assert _grants(ds, WS + "onlineEndpoints/deployments/write")
    assert _grants(ds, WS + "onlineendpoints/listkeys/action")
    assert not _grants(ds, WS + "write") and not _grants(ds, WS + "listKeys/action")
    assert not _grants(ds, ML + "locations/vmsizes/read"), "why the custom role exists"
    assert not _grants(BUILT_IN_ROLE_PERMISSIONS["Storage Blob Data Reader"], BLOBS + "blobs/write")


# ---------------------------------------------------------------------------------------------
# Bicep shape (no compiler here)


def test_every_bicep_file_is_balanced() -> None:
    for path in _bicep_files():
        assert balanced(_mask(path.read_text())), path.name


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


def _gitignore_match(pattern: str, path: str, is_dir: bool) -> bool:
    """One pattern as azd's matcher reads it (denormal/go-gitignore at
    ae8ad1d07817b3d3b49cabb21559a3f493a357a3, pattern.go): a trailing `/` matches folders only; a
    pattern with no other `/` is a *name* pattern, fnmatch'd against the last path element (or, with a
    leading `/`, against the whole relative path); one with a `/` inside is a *path* pattern, fnmatch'd
    with FNM_PATHNAME (`*` stops at `/`) against the whole relative path. `**` and `!` are not used
    in .funcignore (asserted), so their rules are not needed."""
    directory = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    if directory and not is_dir:
        return False
    anchored = pattern.startswith("/")
    pattern = pattern.lstrip("/")
    if "/" not in pattern:
        return fnmatchcase(path if anchored else path.rsplit("/", 1)[-1], pattern)
    parts, pieces = path.split("/"), pattern.split("/")
    return len(parts) == len(pieces) and all(fnmatchcase(a, b) for a, b in zip(parts, pieces, strict=True))


def _ignore_patterns(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _azd_package(root: Path) -> set[str]:
    """The files azd zips for a function app (azure-dev cli/azd/pkg/project/project_utils.go at
    ae35809f496491989273d0edefdeb70f245f399b, createDeployableZip; rzip.CreateFromDirectory walks the
    folder and never enters a folder the filter refused): `.azure/`, the ignore file itself and
    local.settings.json always stay out; with a .funcignore its patterns decide, matched
    (`ignorer.Absolute(src, isDir)`) from the last pattern back, the first match winning."""
    patterns = _ignore_patterns(root / ".funcignore")
    packed: set[str] = set()

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            rel, is_dir = entry.relative_to(root).as_posix(), entry.is_dir()
            if (entry.name == ".azure" and is_dir) or (entry.name in (".funcignore", "local.settings.json")):
                continue
            if any(_gitignore_match(p, rel, is_dir) for p in reversed(patterns)):
                continue
            if is_dir:
                walk(entry)
            else:
                packed.add(rel)

    walk(root)
    return packed


DEV_LEFTOVERS = (
    ".azurite/__blobstorage__/x",
    ".chatft/runs/x/host.log",
    ".venv/bin/python",
    ".venv313/bin/python",
    ".venv-3.13/pyvenv.cfg",
    "node_modules/azurite/package.json",
    "out/report.md",
    "build/lib/x.py",
    "dist/chatft-0.1.tar.gz",
    "chatft.egg-info/PKG-INFO",
    "shared/__pycache__/settings.cpython-313.pyc",
    "functions/__pycache__/ingest.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/CACHEDIR.TAG",
    ".hypothesis/examples/x",
    ".mypy_cache/x",
    ".coverage",
    "htmlcov/index.html",
    "bench/data/ultrachat.jsonl",
    ".azure/dev/.env",
    "local.settings.json",
    ".vscode/settings.json",
    ".idea/workspace.xml",
)
"""What a developer's clone holds besides the tracked files: every folder .gitignore names, and more."""

APP_FILES = ("function_app.py", "host.json", "requirements.txt")
APP_FOLDERS = ("functions/", "shared/")


def _example(pattern: str) -> str:
    """A path a .gitignore pattern matches: `*` filled in, a folder pattern given a file inside."""
    path = pattern.lstrip("/").replace("*", "x")
    return f"{path.rstrip('/')}/x" if pattern.endswith("/") else path


@pytest.fixture(scope="module")
def dev_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's files (tracked, and new ones not ignored) with a developer's leftovers
    added: DEV_LEFTOVERS and an example of every .gitignore pattern."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / rel)
    leftovers = list(DEV_LEFTOVERS) + [_example(p) for p in _ignore_patterns(ROOT / ".gitignore")]
    for rel in leftovers:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("leftover\n")
    return root


def test_the_package_holds_the_app_and_nothing_else(dev_clone: Path) -> None:
    """issue 18 B10: packed as azd packs it, a developer's clone ships only the app's files."""
    patterns = _ignore_patterns(ROOT / ".funcignore")
    assert not any(p.startswith("!") or "**" in p for p in patterns), "the matcher here reads neither"
    packed = _azd_package(dev_clone)
    expected = {
        rel
        for rel in (p.relative_to(dev_clone).as_posix() for p in dev_clone.rglob("*") if p.is_file())
        if (rel in APP_FILES or rel.startswith(APP_FOLDERS))
        and not rel.startswith("shared/local/")
        and "__pycache__" not in rel
        and not rel.endswith(".pyc")
    }
    assert packed == expected, (
        f"deployed but not the app: {sorted(packed - expected)}; the app but left out: {sorted(expected - packed)}"
    )
    assert {"function_app.py", "host.json", "requirements.txt", "functions/ingest.py", "shared/settings.py"} <= packed
    assert not any(rel.startswith("shared/local/") for rel in packed)


def test_every_gitignored_leftover_is_left_out_of_the_package(dev_clone: Path) -> None:
    packed = _azd_package(dev_clone)
    for pattern in _ignore_patterns(ROOT / ".gitignore"):
        example = _example(pattern)
        assert example not in packed, f".gitignore ignores {pattern!r} but azd would deploy {example}"
    for rel in DEV_LEFTOVERS:
        assert rel not in packed, f"{rel} would be deployed"


def test_the_package_matcher_reads_patterns_as_go_gitignore_does() -> None:
    assert _gitignore_match("__pycache__", "shared/azure/__pycache__", True)
    assert _gitignore_match("*.pyc", "shared/x.pyc", False)
    assert _gitignore_match("build/", "build", True) and not _gitignore_match("build/", "build", False)
    assert _gitignore_match("shared/local", "shared/local", True)
    assert not _gitignore_match("shared/local", "x/shared/local", True)
    assert _gitignore_match(".venv*", ".venv313", True)
    assert not _gitignore_match("tests", "shared/testsuite.py", False)


# ---------------------------------------------------------------------------------------------
# Hardening the modules' defaults would have given


def test_the_site_keeps_tls_1_2_and_turns_ftp_and_basic_publishing_credentials_off() -> None:
    """issue 18 B9. The AVM site module (br/public:avm/res/web/site:0.15.1, Azure/bicep-registry-modules
    tag avm/res/web/site/0.15.1, commit 1ace7f5ebc092cf17af4f822d7807cdd4bddd79a, avm/res/web/site/main.bicep)
    defaults `siteConfig` to {alwaysOn: true, minTlsVersion: '1.2', ftpsState: 'FtpsOnly'}, a default our
    object replaces whole; its `basicPublishingCredentialsPolicies` array deploys
    Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01 ({name: 'scm'|'ftp', allow}), whose
    `allow` is a required bool (Azure/bicep-types-az generated/web/microsoft.web/2024-04-01/types.md,
    CsmPublishingCredentialsPoliciesEntityProperties); SiteConfig's ftpsState is 'AllAllowed' | 'Disabled' |
    'FtpsOnly' and minTlsVersion '1.0' .. '1.3' (same file)."""
    text = PROCESSOR.read_text()
    assert "'br/public:avm/res/web/site:0.15.1'" in text
    site_config = _entries(text, "siteConfig:")
    assert site_config == {"alwaysOn": "false", "minTlsVersion": "'1.2'", "ftpsState": "'Disabled'"}
    policies = text[text.index("basicPublishingCredentialsPolicies: [") :]
    policies = policies[: policies.index("\n    ]") + 6]
    found = re.findall(r"name: '(\w+)'\s*allow: (\w+)", policies)
    assert sorted(found) == [("ftp", "false"), ("scm", "false")]


def test_a_new_workspace_reaches_its_storage_with_identities_and_the_storage_refuses_keys() -> None:
    """issue 18 B8: AzureML Data Scientist holds datastores/listSecrets/action and
    workspaces/listStorageAccountKeys/action (built-in-roles/ai-machine-learning.md: `workspaces/*/action`
    with neither in its NotActions), so the workspace's storage keeps no usable key.

    `systemDatastoresAuthMode` is in Microsoft.MachineLearningServices/workspaces@2024-10-01-preview
    ('AccessKey' | 'Identity' | 'UserDelegationSAS', Azure/bicep-types-az generated/machinelearningservices/
    microsoft.machinelearningservices/2024-10-01-preview/types.md), the API version of the pinned AVM module
    (avm/res/machine-learning-services/workspace/0.14.0, commit 4f750c70f333b2df6170e3b56ae90faa852361d2, whose
    `@allowed` spells 'Identity'); the storage module (avm/res/storage/storage-account/0.8.3) takes
    `allowSharedKeyAccess`. MicrosoftDocs azure-ai-docs how-to-disable-local-auth-storage.md: identity-based
    access, then shared keys off; users and job identities need their own blob roles."""
    main = MAIN.read_text()
    assert "module workspaceStorage 'br/public:avm/res/storage/storage-account:0.8.3'" in main
    params = _entries(main[main.index("module workspaceStorage ") :], "params:")
    assert params["allowSharedKeyAccess"] == "false"
    assert params["defaultToOAuthAuthentication"] == "true"
    workspace = _entries(
        main[main.index("module workspace 'br/public:avm/res/machine-learning-services/workspace:0.14.0'") :], "params:"
    )
    assert workspace["systemDatastoresAuthMode"] == "'Identity'"
    assert workspace["associatedStorageAccountResourceId"] == "workspaceStorage.outputs.resourceId"
    # Whoever a job runs as writes workspaceblobstore with its own role: the app (serverless jobs run as
    # their submitter), the GPU cluster; the person running azd reads logs and outputs.
    assert "module workspaceStorageRbac 'app/workspace-storage-rbac.bicep' = if (createWorkspace)" in main
    held = {(a.principal, a.role) for a in _role_assignments() if a.file == "workspace-storage-rbac.bicep"}
    assert held == {
        ("app", "Storage Blob Data Contributor"),
        ("computePrincipalId", "Storage Blob Data Contributor"),
        ("user", "Storage Blob Data Reader"),
    }
