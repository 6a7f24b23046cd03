"""Settings are read in one place; every problem is named in one error; the sample lists them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import IDENTITY_SETTINGS, Settings, SettingsError, setting_names, storage_connection

SAMPLE = Path(__file__).resolve().parent.parent / "local.settings.sample.json"


def test_defaults_are_complete_and_typed() -> None:
    settings = Settings.from_env({"ML_BACKEND": "none"})
    assert settings.upload_container == "chat-uploads" and settings.prepared_container == "chat-prepared"
    options = settings.validation_options()
    assert (options.min_train_rows, options.max_seq_tokens, options.strict) == (10, 4096, False)
    assert (options.fractions.train, options.fractions.validation, options.fractions.test) == (0.9, 0.05, 0.05)


def test_every_bad_setting_is_named_in_one_error() -> None:
    env = {
        "MAX_SEQ_TOKENS": "lots",
        "VALIDATION_STRICT": "maybe",
        "SPLIT_FRACTIONS": "1,1",
        "UPLOAD_CONTAINER": "Bad_Name",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for name in env:
        assert name in message


def test_upload_and_prepared_containers_must_differ() -> None:
    with pytest.raises(SettingsError, match="PREPARED_CONTAINER"):
        Settings.from_env({"ML_BACKEND": "none", "UPLOAD_CONTAINER": "same", "PREPARED_CONTAINER": "same"})


def test_sample_settings_list_every_setting_and_are_valid() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    assert set(setting_names()) | {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"} == set(values)
    Settings.from_env(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (SAMPLE.parent / "README.md").read_text()
    for name in setting_names():
        assert f"`{name}`" in readme, name


def test_storage_connection_prefers_identity_settings_without_a_connection_string() -> None:
    assert storage_connection({"CHATFT_STORAGE": "UseDevelopmentStorage=true"}) == (
        "connection_string",
        "UseDevelopmentStorage=true",
    )
    url = "https://acct.blob.core.windows.net"
    assert storage_connection({"CHATFT_STORAGE__blobServiceUri": url}) == ("account_url", url)
    assert storage_connection({}) is None


def test_bad_submission_settings_do_not_stop_ingest_but_are_all_named() -> None:
    settings = Settings.from_env({"FINETUNE_OVERRIDES": "[1]", "AML_WORKSPACE": "x"})
    problems = " ".join(settings.submission_problems)
    for name in ("FINETUNE_OVERRIDES", "AML_WORKSPACE", "AML_SUBSCRIPTION_ID", "AML_RESOURCE_GROUP"):
        assert name in problems
    assert settings.validation_options().min_train_rows == 10
    assert Settings.from_env({"ML_BACKEND": "none"}).submission_problems == ()


def test_storage_and_validation_problems_still_fail_at_once() -> None:
    with pytest.raises(SettingsError, match="ML_BACKEND"):
        Settings.from_env({"ML_BACKEND": "gpu-cloud"})


def test_the_azure_only_identity_settings_are_documented() -> None:
    readme = (SAMPLE.parent / "README.md").read_text()
    for name in IDENTITY_SETTINGS:
        assert f"`{name}`" in readme, f"{name} is missing from the README settings table"
