"""A missing setting that names the workspace is named, never azure-ai-ml's text. MLClient refuses an empty
workspace name before any request: "Please provide a workspace name or use a MLClient with a workspace name
set." (ValidationException, azure/ai/ml/operations/_workspace_operations_base.py), which names no setting and
reached users as " : Please provide a workspace name…"."""

from __future__ import annotations

import json
import os

import pytest
from azure.ai.ml import MLClient
from azure.identity import DefaultAzureCredential
from typer.testing import CliRunner

from shared.entry.cli import app as cli

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_sign_in(monkeypatch) -> None:
    for name in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")


@pytest.mark.parametrize("args", [["keep", "data.jsonl"], ["retire-all", "--force"]], ids=["keep", "retire-all"])
def test_a_command_names_the_missing_workspace_setting(tmp_path, storage_env, args) -> None:
    values = {**storage_env, "ML_BACKEND": "azure", "AML_SUBSCRIPTION_ID": "0" * 8, "AML_RESOURCE_GROUP": "rg"}
    settings = tmp_path / "azure.settings.json"
    settings.write_text(json.dumps({"Values": values}), encoding="utf-8")
    result = runner.invoke(cli.app, [*args, "--settings", str(settings)])
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("using")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "AML_WORKSPACE not set" in lines[0] and "azd env get-values" in lines[0]
    assert "Please provide" not in result.output


def test_the_sdks_own_validation_is_mapped_to_the_settings() -> None:
    from shared.entry.cli.commands.endpoint_actions import azure_error

    client = MLClient(DefaultAzureCredential(), "00000000-0000-0000-0000-000000000000", "rg", "")
    with pytest.raises(Exception) as raised:
        client.workspaces.get("")
    line = azure_error(raised.value)
    assert "Please provide" not in line and "AML_WORKSPACE" in line, line
