"""Per-upload choices: `chatft upload --model --epochs --learning-rate --suffix`, or the same blob metadata set by
any other tool, override the app's settings for that upload only, are checked in preflight like the settings,
and name the registered model with the dataset.

Storage, the ledger and the ingest function are real (Azurite, the function app's own trigger binding); Azure ML
is the `aml` fixture (the registry and pipeline submission faked with the SDK's own entities, tests/fake_aml.py).
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from typer.testing import CliRunner

import function_app
import shared.entry.app_wiring
from shared.azure.upload import SHA_METADATA
from shared.domain.deploy.names import registered_model_name
from shared.domain.finetune.choices import UploadChoices
from shared.domain.ledger import Status, UploadKey
from shared.entry.cli.app import app
from shared.flows.stale_claims import prepared_upload
from tests.chats import valid_file
from tests.fake_aml import DEFAULT_MODEL_NAME, PHI3_TAGS, model
from tests.hosting import invoke_blob_trigger
from tests.test_upload_command import chats, settings_for

DATA = valid_file(60)
SHA = hashlib.sha256(DATA).hexdigest()


def drop(blob_service, storage_env, metadata: dict[str, str], name: str = "chats.jsonl") -> None:
    """What another tool does (Storage Explorer, `az storage blob upload --metadata`): azure-storage-blob directly."""
    client = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name)
    client.upload_blob(DATA, overwrite=True, metadata=metadata)


def ingest(name: str = "chats.jsonl") -> None:
    invoke_blob_trigger(function_app.app, "ingest_upload", name)


def step_inputs(workspace) -> dict:
    [call] = workspace.jobs.created
    [step] = call["job"].jobs.values()
    return {name: value._data for name, value in step.inputs.items()}


def submission(blob_service, storage_env, dataset: str = "chats") -> dict:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{dataset}/{SHA[:16]}/report.json")
    return json.loads(blob.download_blob().readall())["submission"]


def test_metadata_set_by_another_tool_reaches_the_pipeline_job(aml, blob_service, storage_env) -> None:
    """Blob metadata names are case-insensitive when set or read ("Setting and retrieving properties and metadata
    for Blob service resources", learn.microsoft.com/rest/api/storageservices/setting-and-retrieving-properties-and-
    metadata-for-blob-resources), so a tool that writes `CHATFT_Epochs` is honoured too."""
    workspace, _ = aml
    drop(blob_service, storage_env, {"CHATFT_Epochs": "2", "chatft_learning_rate": "0.0001", "chatft_suffix": "v2"})
    ingest()
    inputs = step_inputs(workspace)
    assert inputs["num_train_epochs"] == 2 and inputs["learning_rate"] == 0.0001  # over the model tag's 1 and 5e-6
    done = submission(blob_service, storage_env)
    assert done["status"] == "submitted" and done["parameters"]["num_train_epochs"] == 2
    assert done["upload_choices"]["epochs"].startswith("2 (chatft_epochs")
    assert done["upload_choices"]["suffix"].startswith("v2 (chatft_suffix")
    row = shared.entry.app_wiring.ledger().get(UploadKey("chats", SHA))
    assert UploadChoices.from_ledger(row.extra) == UploadChoices(epochs="2", learning_rate="0.0001", suffix="v2")


def test_the_next_upload_without_metadata_uses_the_settings_again(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    drop(blob_service, storage_env, {})
    ingest()
    inputs = step_inputs(workspace)
    assert inputs["num_train_epochs"] == 1 and inputs["learning_rate"] == 5e-6  # the model's own defaults
    assert "upload_choices" not in submission(blob_service, storage_env)


def test_a_chosen_model_is_fine_tuned_instead_of_finetune_model(aml, blob_service, storage_env) -> None:
    workspace, registry = aml
    registry.models._models["Phi-4-mini-instruct"] = model("Phi-4-mini-instruct", "3")
    drop(blob_service, storage_env, {"chatft_model": "Phi-4-mini-instruct"})
    ingest()
    inputs = step_inputs(workspace)
    assert inputs["mlflow_model_path"].path == "azureml://registries/azureml/models/Phi-4-mini-instruct/versions/3"
    assert ("Phi-4-mini-instruct", "latest") in registry.models.calls
    assert submission(blob_service, storage_env)["foundation_model"].endswith("/Phi-4-mini-instruct/versions/3")


@pytest.mark.parametrize(
    ("metadata", "key", "says"),
    [
        # the published component's `min: 1` (tests/fixtures/chat_completion_pipeline.yaml), as for FINETUNE_OVERRIDES
        ({"chatft_epochs": "0"}, "chatft_epochs", "must be at least 1"),
        ({"chatft_epochs": "1.5"}, "chatft_epochs", "expected an integer"),
        ({"chatft_epochs": "two"}, "chatft_epochs", "is not a number of epochs"),
        ({"chatft_learning_rate": "-1"}, "chatft_learning_rate", "not a number above 0"),
        ({"chatft_suffix": "v 2!"}, "chatft_suffix", "not a name suffix"),
        ({"chatft_model": "no-such-model"}, "chatft_model", "has no active version in registry azureml"),
        ({"chatft_model": "Phi-3-old"}, "chatft_model", "was retired on 2025-08-30"),  # the model's own dates
        ({"chatft_model": "Phi-3-small"}, "chatft_model", "not in the model's finetune_compute_allow_list"),
    ],
)
def test_a_bad_choice_is_rejected_in_preflight_naming_its_key(
    aml, blob_service, storage_env, metadata, key, says
) -> None:
    workspace, registry = aml
    registry.models._models["Phi-3-old"] = model("Phi-3-old", "1", tags=PHI3_TAGS)
    small = {**PHI3_TAGS, "finetune_compute_allow_list": "['Standard_NC96ads_A100_v4']"}
    registry.models._models["Phi-3-small"] = model("Phi-3-small", "1", tags={**small, "FinetuneRetirementDate": ""})
    drop(blob_service, storage_env, metadata)
    ingest()  # a permanent failure: recorded and reported, not raised
    assert workspace.jobs.created == []
    failed = submission(blob_service, storage_env)
    assert failed["status"] == "failed" and failed["setting"] == key, failed
    assert f"blob metadata {key} (chatft upload --" in failed["error"] and says in failed["error"]
    row = shared.entry.app_wiring.ledger().get(UploadKey("chats", SHA))
    assert row.status is Status.FAILED and key in row.error


def test_a_resubmitted_upload_keeps_its_choices(aml, blob_service, storage_env) -> None:
    """A queued or stale upload is rebuilt from its ledger row (shared.flows.stale_claims), not from the blob."""
    drop(blob_service, storage_env, {"chatft_epochs": "2", "chatft_model": DEFAULT_MODEL_NAME})
    ingest()
    row = shared.entry.app_wiring.ledger().get(UploadKey("chats", SHA))
    rebuilt = prepared_upload(row, shared.entry.app_wiring.prepared_store())
    assert rebuilt.choices == UploadChoices(model=DEFAULT_MODEL_NAME, epochs="2")


def test_upload_options_land_as_metadata_and_reach_the_job(aml, tmp_path, blob_service, storage_env, monkeypatch):
    workspace, _ = aml
    target = settings_for(storage_env, tmp_path, monkeypatch)
    path = chats(tmp_path, DATA)
    args = ["--epochs", "3", "--learning-rate", "2e-5", "--suffix", "v2", "--model", DEFAULT_MODEL_NAME]
    result = CliRunner().invoke(app, ["upload", str(path), *args, "--settings", str(target)])
    assert result.exit_code == 0, result.output
    blob = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl")
    metadata = blob.get_blob_properties().metadata
    assert {k: v for k, v in metadata.items() if k != SHA_METADATA} == {
        "chatft_model": DEFAULT_MODEL_NAME,
        "chatft_epochs": "3",
        "chatft_learning_rate": "2e-05",
        "chatft_suffix": "v2",
    }
    ingest()
    inputs = step_inputs(workspace)
    assert inputs["num_train_epochs"] == 3 and inputs["learning_rate"] == 2e-5


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--suffix", "v 2"], "--suffix: 'v 2' is not a name suffix"),
        (["--learning-rate", "0"], "--learning-rate: '0.0' is not a number above 0"),
    ],
)
def test_a_malformed_option_is_refused_before_uploading(tmp_path, blob_service, storage_env, monkeypatch, args, says):
    target = settings_for(storage_env, tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["upload", str(chats(tmp_path)), *args, "--settings", str(target)])
    assert result.exit_code == 2 and says in result.output, result.output
    container = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    assert not container.exists() or not list(container.list_blobs())


def test_the_registered_model_is_named_by_dataset_and_suffix() -> None:
    """Azure ML asset names: letters, digits, '-' and '_' (shared.domain.naming.aml_name), at most 255."""
    assert registered_model_name("Phi-4", "support-chats") == "Phi-4-support-chats"
    assert registered_model_name("Phi-4", "support-chats", "v2") == "Phi-4-support-chats-v2"
    assert registered_model_name("Phi-4", "faq") != registered_model_name("Phi-4", "support-chats")
    assert len(registered_model_name("m" * 250, "d" * 64, "s" * 64)) == 255


def test_status_shows_what_the_upload_chose(aml, tmp_path, blob_service, storage_env) -> None:
    drop(blob_service, storage_env, {"chatft_epochs": "2", "chatft_suffix": "v2"})
    ingest()
    target = tmp_path / "local.settings.json"  # the ledger table the ingest just wrote
    target.write_text(json.dumps({"Values": {**storage_env, "LEDGER_TABLE": os.environ["LEDGER_TABLE"]}}))
    shown = CliRunner().invoke(app, ["status", "chats.jsonl", "--settings", str(target)])
    assert shown.exit_code == 0, shown.output
    [line] = [line for line in shown.stdout.splitlines() if line.startswith("choices")]
    assert "epochs 2, suffix v2" in line
    doc = json.loads(CliRunner().invoke(app, ["status", "chats.jsonl", "--json", "--settings", str(target)]).stdout)
    assert doc["choices"].startswith("epochs 2, suffix v2")


def test_offline_the_stand_in_takes_the_choices_and_their_bounds(tmp_path) -> None:
    """The local backend has no component to read: it holds the published one's declarations (num_train_epochs
    `min: 1`, tests/fixtures/chat_completion_pipeline.yaml), so `chatft dev` rejects what Azure would."""
    from shared.domain.finetune.errors import PreflightError
    from shared.domain.workspace import FinetuneRequest
    from shared.local.backend import LocalWorkspace
    from shared.settings import Settings

    local = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "state")}))

    def request(**choices: str) -> FinetuneRequest:
        return FinetuneRequest("chatft-x-a1", {}, {}, "cid", choices=UploadChoices(**choices))

    try:
        with pytest.raises(PreflightError, match=r"blob metadata chatft_epochs .*must be at least 1") as caught:
            local.submit_finetune(request(epochs="0"))
        assert caught.value.setting == "chatft_epochs" and not (tmp_path / "state" / "jobs").exists()
        job = local.submit_finetune(request(epochs="2", learning_rate="1e-4", model="Phi-4-mini-instruct"))
        assert job.parameters["num_train_epochs"] == 2 and job.parameters["learning_rate"] == 1e-4
        assert "/models/Phi-4-mini-instruct/" in job.model_id
        record = json.loads((tmp_path / "state" / "jobs" / "chatft-x-a1" / "job.json").read_text())
        assert record["base_model"] == "Phi-4-mini-instruct"
    finally:
        local.shutdown()


def test_a_rejected_choice_is_fixed_by_uploading_again_with_a_good_one(aml, blob_service, storage_env) -> None:
    """The rejection's retry advice (upload the same file again) works with corrected metadata: the new upload's
    choices replace the old ones on the row, and only they reach the job."""
    workspace, _ = aml
    drop(blob_service, storage_env, {"chatft_epochs": "0", "chatft_suffix": "v1"})
    ingest()
    assert submission(blob_service, storage_env)["status"] == "failed"
    drop(blob_service, storage_env, {"chatft_epochs": "2"})
    ingest()
    assert step_inputs(workspace)["num_train_epochs"] == 2
    row = shared.entry.app_wiring.ledger().get(UploadKey("chats", SHA))
    assert row.status is Status.SUBMITTED and UploadChoices.from_ledger(row.extra) == UploadChoices(epochs="2")
