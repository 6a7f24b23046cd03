"""A sign-in failure is one line: what failed, and `az login` (or, for the app's managed identity, the setting
that selects it). Was: azure-identity's aggregate message, printed by its logger and again by the command,
three times over as the storage retry asked the credential again (about 10 s for `chatft status`).

The credential is the real DefaultAzureCredential, narrowed to one source with AZURE_TOKEN_CREDENTIALS
(azure-identity 1.27, azure/identity/_internal/utils.py process_credential_exclusions) so nothing leaves the
machine. Its failure is what users see: ChainedTokenCredential.get_token (identity/_credentials/chained.py)
logs the aggregate as a WARNING and raises a plain ClientAuthenticationError without a response; a source that
cannot try raises CredentialUnavailableError (identity/_exceptions.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential

ROOT = Path(__file__).resolve().parents[1]
BOUND = 6.0
"""Python's start and the CLI's imports take 1-2.5 s; the credential's answer is immediate."""
SIGN_IN = ("AZURE_", "IDENTITY_", "MSI_")
AZURE_SETTINGS = {
    "CHATFT_STORAGE__blobServiceUri": "https://chatftnosuch.blob.core.windows.net",
    "CHATFT_STORAGE__queueServiceUri": "https://chatftnosuch.queue.core.windows.net",
    "CHATFT_STORAGE__tableServiceUri": "https://chatftnosuch.table.core.windows.net",
    "ML_BACKEND": "azure",
    "AML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AML_RESOURCE_GROUP": "rg-chatft",
    "AML_WORKSPACE": "ws-chatft",
}


def signed_out(**extra: str) -> dict[str, str]:
    """This machine with no sign-in: DefaultAzureCredential with only EnvironmentCredential, which has nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SIGN_IN) and k != "CHATFT_DEBUG"}
    return {**env, "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential", "PYTHONPATH": str(ROOT), **extra}


def chatft(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """The CLI as a user runs it (its own process: logging unconfigured, as in a shell)."""
    settings = tmp_path / "azure.settings.json"
    settings.write_text(json.dumps({"Values": AZURE_SETTINGS}), encoding="utf-8")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from shared.entry.cli.app import main; main()", *args, "--settings", str(settings)],
        cwd=tmp_path,
        env=signed_out(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - began


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command said, minus the dim line naming the target."""
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip() and not line.startswith("using")]


@pytest.mark.parametrize(
    "args",
    [["status"], ["budget"], ["keep", "data.jsonl"], ["upload", "data.jsonl"]],
    ids=["status", "budget", "keep", "upload"],
)
def test_a_command_without_a_sign_in_says_so_in_one_line(tmp_path, args) -> None:
    from tests.test_upload_command import valid_file

    (tmp_path / "data.jsonl").write_bytes(valid_file(30))
    done, elapsed = chatft(tmp_path, *args)
    lines = said(done)
    assert done.returncode != 0 and len(lines) == 1, done.stdout + done.stderr
    assert "run `az login`" in lines[0] and "not signed in" in lines[0]
    assert "DefaultAzureCredential" not in done.stderr and "EnvironmentCredential" not in done.stderr
    assert elapsed < BOUND, elapsed


def test_doctor_without_a_sign_in_says_it_once(tmp_path) -> None:
    done, elapsed = chatft(tmp_path, "doctor")
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert text.count("az login") == 1 and text.count("✗") == 1 and "✗ identity" in text, text
    assert "DefaultAzureCredential" not in text and "Traceback" not in text
    assert elapsed < BOUND, elapsed


def test_the_apps_managed_identity_names_the_setting_to_check(monkeypatch) -> None:
    """In Azure (IDENTITY_ENDPOINT set by App Service / Functions) the fix is the identity, not `az login`.
    The identity endpoint here is a refused port: ManagedIdentityCredential fails as it does when the
    AZURE_CLIENT_ID it was given names no identity assigned to the app."""
    from shared.azure.identity import sign_in_failure

    for name in [k for k in os.environ if k.startswith(SIGN_IN)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    with pytest.raises(ClientAuthenticationError) as raised:
        DefaultAzureCredential(retry_total=0).get_token("https://storage.azure.com/.default")
    line = sign_in_failure(raised.value, "storage")
    assert line is not None and "\n" not in line
    assert line.startswith("storage: the managed identity gave no token") and "AZURE_CLIENT_ID" in line
    assert "az login" not in line


def test_a_wrapped_sign_in_failure_is_found_and_a_refusal_is_not() -> None:
    """azure-ai-ml and our adapters chain the credential's error; a 401 that a service sent carries its
    response (azure-core HttpResponseError) and is a refusal, not a missing sign-in."""
    from shared.azure.identity import credential_failure, sign_in_failure

    try:
        try:
            raise CredentialUnavailableError("EnvironmentCredential authentication unavailable.")
        except CredentialUnavailableError as exc:
            raise RuntimeError("listing endpoints failed") from exc
    except RuntimeError as wrapped:
        assert isinstance(credential_failure(wrapped), CredentialUnavailableError)

    class Response:
        status_code, reason, headers = 401, "Unauthorized", {}

        def text(self) -> str:
            return ""

    refusal = ClientAuthenticationError(response=Response())
    assert isinstance(refusal, HttpResponseError) and credential_failure(refusal) is None
    assert sign_in_failure(refusal) is None
