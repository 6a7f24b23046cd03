"""The LoRA trainer in the local backend's loop (issue 22): LOCAL_TRAINER=lora is checked at preflight and by
`chatft doctor` (one line naming the setting, never a traceback in the job), its job trains, is canceled, is
stopped and resumed as any local job, its model is served through the same scoring protocol with the request's
generation parameters, and `chatft demo --trainer lora` runs the whole loop to a retired endpoint.

The served contract is Azure ML's chat-completion scoring server's: `{"input_data": {"input_string": [[messages]],
"parameters": {...}}}` in, `{"output": "<text>"}` out, as tests/test_smoke_shape.py pins it (azureml-assets
mlflow-model-inference/context/mlflow_score_script.py); the generation parameters are the ones
shared/azure/scoring.py sends (max_new_tokens, temperature, top_p, do_sample)."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from shared.domain.finetune.choices import UploadChoices
from shared.domain.finetune.errors import PreflightError
from shared.domain.workspace import FinetuneRequest
from shared.entry.cli import app as cli
from shared.entry.offline import demo
from shared.local.backend import LocalWorkspace
from shared.local.state import read_json
from shared.settings import Settings
from tests.lora_support import needs_train, qa_conversations
from tests.test_local_backend import live_endpoint, post

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"num_train_epochs": 2, "learning_rate": 3e-3, "per_device_train_batch_size": 8}
"""A tiny decoder learns the templated answers' surface in seconds with these (chatft's defaults suit a
pretrained model)."""


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> None:
    """No weights can be downloaded here: the job processes inherit HF_HUB_OFFLINE."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def local_settings(state: Path, **values: str) -> Settings:
    """The local backend's settings; the prepared container (storage_env) and event webhook are the test's."""
    test = {k: os.environ[k] for k in ("PREPARED_CONTAINER", "LOCAL_EVENT_WEBHOOK") if k in os.environ}
    return Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(state), **test, **values})


def lora_settings(state: Path, **values: str) -> Settings:
    return local_settings(
        state,
        **{
            "LOCAL_TRAINER": "lora",
            "LOCAL_BASE_MODEL": "tiny",
            "FINETUNE_OVERRIDES": json.dumps(QUICK),
            **values,
        },
    )


def request(name: str = "chatft-lora-a1", uris: dict[str, str] | None = None) -> FinetuneRequest:
    return FinetuneRequest(name, uris or {}, {"chatft_cid": "c"}, "c")


# --- preflight and doctor ---


def without_the_training_extra(monkeypatch) -> None:
    """The training extra missing, in this process: with `sys.modules["torch"] = None`, find_spec answers None
    and `import torch` raises ImportError (docs.python.org/3/reference/import.html#the-module-cache)."""
    monkeypatch.setitem(sys.modules, "torch", None)


@needs_train  # with the extra missing, that is the problem preflight names first
def test_a_missing_base_model_is_refused_at_preflight_naming_the_setting(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    local = LocalWorkspace(lora_settings(tmp_path / "state", LOCAL_BASE_MODEL=str(missing)))
    with pytest.raises(PreflightError) as caught:
        local.submit_finetune(request())
    assert caught.value.setting == "LOCAL_BASE_MODEL" and str(caught.value).startswith(f"LOCAL_BASE_MODEL {missing}:")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "state" / "jobs").exists(), "nothing is submitted"


def test_a_missing_training_extra_is_refused_at_preflight_naming_the_setting(tmp_path, monkeypatch) -> None:
    without_the_training_extra(monkeypatch)
    local = LocalWorkspace(lora_settings(tmp_path / "state"))
    with pytest.raises(PreflightError) as caught:
        local.submit_finetune(request())
    assert caught.value.setting == "LOCAL_TRAINER" and "torch" in str(caught.value)
    assert "make setup-train" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "state" / "jobs").exists()


def test_finetune_overrides_reach_the_local_job_checked_as_the_component_declares_them(tmp_path) -> None:
    """Offline, FINETUNE_OVERRIDES are taken as the published chat_completion_pipeline declares its inputs
    (tests/fixtures/chat_completion_pipeline.published.json): what no local trainer reads is reported dropped, a
    value of the wrong type is refused naming the setting, and the upload's choices still win."""
    overrides = {"lora_r": 16, "lora_alpha": "32", "seed": 7, "num_train_epochs": 4, "num_nodes_finetune": 2}
    local = LocalWorkspace(local_settings(tmp_path / "state", FINETUNE_OVERRIDES=json.dumps(overrides)))
    job = local.submit_finetune(
        FinetuneRequest("chatft-x-a1", {}, {}, "c", choices=UploadChoices(epochs="2", learning_rate="1e-4"))
    )
    local.shutdown()
    assert {k: job.parameters[k] for k in ("lora_r", "lora_alpha", "seed", "num_train_epochs", "learning_rate")} == {
        "lora_r": 16,
        "lora_alpha": 32,
        "seed": 7,
        "num_train_epochs": 2,
        "learning_rate": 1e-4,
    }
    assert job.dropped_parameters == [("num_nodes_finetune", "FINETUNE_OVERRIDES", "not read by the local trainers")]
    assert read_json(tmp_path / "state" / "jobs" / "chatft-x-a1" / "job.json")["params"] == job.parameters
    assert job.warnings == ["local backend: a retrieval model is trained instead of fine-tuning the foundation model"]

    local = LocalWorkspace(local_settings(tmp_path / "other", FINETUNE_OVERRIDES='{"lora_dropout": "lots"}'))
    with pytest.raises(PreflightError, match=r"^FINETUNE_OVERRIDES: lora_dropout: [^()]*$"):
        local.submit_finetune(request())
    assert not (tmp_path / "other" / "jobs").exists()


@pytest.fixture
def doctor_lora(tmp_path, storage_env, azurite):
    """`chatft doctor --settings` on a local target with LOCAL_TRAINER=lora and the given LOCAL_BASE_MODEL."""
    (tmp_path / "state").mkdir()
    settings = tmp_path / "local.settings.json"

    def doctor(base_model: str) -> str:
        values = {
            **{k: storage_env[k] for k in ("UPLOAD_CONTAINER", "PREPARED_CONTAINER")},
            "CHATFT_STORAGE": azurite.connection_string,
            "ML_BACKEND": "local",
            "LOCAL_STATE_DIR": str(tmp_path / "state"),
            "LEDGER_TABLE": "ledgerdoctorlora",
            "LOCAL_TRAINER": "lora",
            "LOCAL_BASE_MODEL": base_model,
        }
        settings.write_text(json.dumps({"Values": values}), encoding="utf-8")
        result = CliRunner().invoke(cli.app, ["doctor", "--settings", str(settings)], env={"COLUMNS": "300"})
        assert "Traceback" not in result.output
        return result.output

    return doctor


def test_doctor_on_the_local_target_names_the_missing_training_extra(doctor_lora, monkeypatch) -> None:
    without_the_training_extra(monkeypatch)
    output = doctor_lora("tiny")
    assert re.search(
        r"✗ local trainer +LOCAL_TRAINER=lora needs the training extra \(torch[^)]*not installed\)", output
    )
    assert "fix: `make setup-train` (pip install .[train]), or LOCAL_TRAINER=retrieval" in output, output


@needs_train
def test_doctor_on_the_local_target_says_what_preflight_says_of_the_base_model(doctor_lora, tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    output = doctor_lora(str(missing))
    assert "✗ local trainer" in output and f"LOCAL_BASE_MODEL {missing}: no model folder there" in output
    assert "fix: set LOCAL_BASE_MODEL to a Hugging Face model folder, a Hub id or tiny" in output, output
    output = doctor_lora("tiny")
    assert re.search(r"✓ local trainer +LOCAL_TRAINER=lora: LoRA fine-tuning of tiny", output), output


@needs_train
def test_demo_with_the_lora_trainer_and_a_missing_base_model_is_one_line_before_anything_starts(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a run's state folder (.chatft/runs/<id>) would be made
    missing = tmp_path / "no-such-model"
    sample = tmp_path / "small.jsonl"
    sample.write_bytes((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(True)[0])
    began = time.monotonic()
    result = CliRunner().invoke(
        cli.app,
        ["demo", "--trainer", "lora", "--sample", str(sample)],
        env={"LOCAL_BASE_MODEL": str(missing), "COLUMNS": "300"},
    )
    assert result.exit_code == 1 and time.monotonic() - began < 5
    assert re.fullmatch(
        rf"demo failed: LOCAL_BASE_MODEL {re.escape(str(missing))}: no model folder there \(a Hugging Face model folder, a Hub id, or tiny\)\n",
        result.stderr,
    ), result.stderr
    assert not (tmp_path / ".chatft").exists(), "no run was started"


# --- the job ---


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[dict]]:
    """The runner's Event Grid webhook, answering 200 as the host does: the events the job delivered, in order.
    (With no webhook, a job spends its SIGTERM grace retrying delivery and is killed before it says Canceled.)"""
    received: list[dict] = []

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.extend(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LOCAL_EVENT_WEBHOOK", f"http://127.0.0.1:{server.server_address[1]}/runtime/webhooks/EventGrid")
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture
def splits(storage_env, blob_service) -> dict[str, str]:
    """train/validation/test of templated Q&A in Azurite, as the ingest prepares them; the job's data_uris."""
    container = storage_env["PREPARED_CONTAINER"]
    blob_service.create_container(container)
    rows = {"train": qa_conversations(160), "validation": qa_conversations(20, 160), "test": qa_conversations(20, 180)}
    for split, conversations in rows.items():
        data = "".join(json.dumps(c) + "\n" for c in conversations).encode()
        blob_service.get_blob_client(container, f"p/{split}.jsonl").upload_blob(data)
    return {split: f"azureml://datastores/chatft_prepared/paths/p/{split}.jsonl" for split in rows}


def ended(local: LocalWorkspace, name: str) -> dict:
    return until(
        "the job ended", lambda: (r := local.job_record(name)) and r["status"] in ("Completed", "Failed") and r
    )


def until(what: str, check, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@needs_train
@pytest.mark.slow
def test_the_job_records_its_trainer_and_parameters_and_trains_lora(tmp_path, storage_env, splits, webhook) -> None:
    settings = lora_settings(tmp_path / "state", FINETUNE_OVERRIDES=json.dumps({**QUICK, "lora_r": 4, "seed": 7}))
    local = LocalWorkspace(settings)
    try:
        job = local.submit_finetune(request(uris=splits))
        assert job.warnings == ["local backend: LoRA fine-tuning of tiny on the CPU"]
        assert job.parameters["lora_r"] == 4 and job.parameters["seed"] == 7 and job.parameters["learning_rate"] == 3e-3
        record = ended(local, job.name)
    finally:
        local.shutdown()
    assert record["status"] == "Completed", record.get("error")
    assert record["trainer"] == "lora" and record["local_base_model"] == "tiny"
    assert record["max_seq_tokens"] == settings.max_seq_tokens
    assert record["metrics"]["device"] == "cpu" and record["metrics"]["tokens_per_second"] > 0
    model = tmp_path / "state" / "jobs" / job.name / "outputs" / "trained_model"
    assert "  chatft_lora:\n" in (model / "MLmodel").read_text()
    adapter = json.loads((model / "artifacts" / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4, "the override reached the trainer"
    curves = read_json(tmp_path / "state" / "jobs" / job.name / "metrics.json")
    assert {m["key"] for m in curves["metrics"]} >= {"train_loss", "eval_loss"}


def test_an_unknown_trainer_in_job_json_fails_the_job_with_one_line(tmp_path, storage_env, splits, webhook) -> None:
    from shared.local import train_job

    local = LocalWorkspace(local_settings(tmp_path / "state"))
    job = local.submit_finetune(request(uris=splits))
    ended(local, job.name)
    folder = tmp_path / "state" / "jobs" / job.name
    record = read_json(folder / "job.json")
    assert record["trainer"] == "retrieval" and record["status"] == "Completed"
    record.update(trainer="gpt", status="NotStarted", webhook="")
    (folder / "job.json").write_text(json.dumps(record))
    assert train_job.run(folder) == 1
    assert read_json(folder / "job.json")["error"] == "ValueError: job.json trainer 'gpt' is not one of retrieval, lora"
    local.shutdown()


def training(local: LocalWorkspace, name: str, folder: Path) -> None:
    """Until the LoRA job logged its first epoch: it is in the training loop."""
    until("the first epoch", lambda: (folder / "metrics.json").exists(), timeout=60)
    assert local.job_record(name)["status"] == "Running"


@needs_train
@pytest.mark.slow
def test_canceling_a_lora_job_mid_training_ends_it_canceled(tmp_path, storage_env, splits, webhook) -> None:
    local = LocalWorkspace(
        lora_settings(tmp_path / "state", FINETUNE_OVERRIDES=json.dumps({**QUICK, "num_train_epochs": 200}))
    )
    folder = tmp_path / "state" / "jobs" / "chatft-lora-a1"
    try:
        job = local.submit_finetune(request(uris=splits))
        training(local, job.name, folder)
        began = time.monotonic()
        assert local.begin_cancel_job(job.name) == ""
        assert time.monotonic() - began < 2.0, "SIGTERM stopped the training loop within the grace"
    finally:
        local.shutdown()
    record = read_json(folder / "job.json")
    assert record["status"] == "Canceled" and "error" not in record and "events_undelivered" not in record
    logged = {m["key"] for m in read_json(folder / "metrics.json")["metrics"]}
    assert record["trainer"] == "lora" and "eval_loss" in logged and "eval_token_f1" not in logged, "LoRA's loop"
    said = [e["data"].get("runStatus") for e in webhook]
    assert said == ["Running", "Running", "Canceled", "Canceled"], "the job itself said Canceled, as Azure ML would"
    assert not (folder / "outputs" / "trained_model" / "MLmodel").exists()


@needs_train
@pytest.mark.slow
def test_a_lora_job_stopped_with_its_runner_is_queued_and_resumes_as_lora(
    tmp_path, storage_env, splits, webhook
) -> None:
    settings = lora_settings(tmp_path / "state", FINETUNE_OVERRIDES=json.dumps({**QUICK, "num_train_epochs": 200}))
    local = LocalWorkspace(settings)
    folder = tmp_path / "state" / "jobs" / "chatft-lora-a1"
    job = local.submit_finetune(request(uris=splits))
    training(local, job.name, folder)
    local.shutdown(grace=2.0)  # the runner stops: SIGTERM to the job
    record = read_json(folder / "job.json")
    assert record["status"] == "Queued" and record["interrupted"] and "error" not in record
    record["params"]["num_train_epochs"] = 1  # the test shortens what is left; the trainer stays as recorded
    (folder / "job.json").write_text(json.dumps(record))

    # the next runner has the retrieval default: the job keeps the trainer it was submitted with
    resumed = LocalWorkspace(local_settings(tmp_path / "state"))
    try:
        assert resumed.resume_interrupted_jobs() == [job.name]
        record = ended(resumed, job.name)
    finally:
        resumed.shutdown()
    assert record["status"] == "Completed" and record["resumed"] == 1 and record["trainer"] == "lora"
    assert "  chatft_lora:\n" in (folder / "outputs" / "trained_model" / "MLmodel").read_text()


# --- serving ---


@needs_train
@pytest.mark.slow
def test_the_served_lora_model_answers_with_the_request_parameters(tmp_path) -> None:
    from shared.local.lora.train import train_lora
    from tests.lora_support import job_record

    rows = qa_conversations(200)
    model_dir = tmp_path / "state" / "models" / "m" / "1" / "model"
    job = tmp_path / "job"
    train_lora(job_record(), rows[:160], rows[160:180], rows[180:], job)
    model_dir.parent.mkdir(parents=True)
    (job / "outputs" / "trained_model").rename(model_dir)
    local = LocalWorkspace(local_settings(tmp_path / "state"))
    try:
        uri, key = live_endpoint(local)
        auth = {"Authorization": f"Bearer {key}", "azureml-model-deployment": "demo"}
        messages = [{"role": "user", "content": "What colour is a lemon?"}]

        def ask(parameters: dict) -> tuple[int, dict]:
            return post(uri, {"input_data": {"input_string": [messages], "parameters": parameters}}, auth)

        status, body = ask({"max_new_tokens": 24, "do_sample": False})
        assert status == 200 and list(body) == ["output"] and isinstance(body["output"], str) and body["output"]
        status, short = ask({"max_new_tokens": 1, "do_sample": False})
        assert status == 200 and len(short["output"].split()) <= 1 < len(body["output"].split())
        assert body["output"].startswith(short["output"]), "greedy: the same first token"
        status, sampled = ask({"max_new_tokens": 24, "do_sample": True, "temperature": 0.6, "top_p": 0.9})
        assert status == 200 and isinstance(sampled["output"], str)
        # the transformers shape is still a 400, as for any hftransformersv2 model
        status, refused = post(uri, {"input_data": {"input_string": messages}}, auth)
        assert status == 400 and "hftransformersv2" in refused["error"]
    finally:
        local.shutdown()


# --- the whole loop ---


@needs_train
@pytest.mark.slow
def test_the_demo_with_the_lora_trainer_goes_live_evaluates_and_retires(tmp_path, monkeypatch) -> None:
    """`chatft demo --trainer lora` on `tiny`, in-process: upload -> job -> registered -> endpoint live ->
    evaluated -> retired, and it says which trainer trained the model on which device."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINETUNE_OVERRIDES", raising=False)
    monkeypatch.setitem(demo.DEMO_SETTINGS, "JANITOR_IDLE_MINUTES", "0.05")  # the janitor's idle window: 3 s
    monkeypatch.setitem(demo.DEMO_SETTINGS, "EVAL_SAMPLES", "8")
    sample = tmp_path / "small.jsonl"
    sample.write_bytes(b"".join((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(True)[:200]))
    out = io.StringIO()
    state = tmp_path / "run"
    assert demo.run_demo(sample, console=Console(file=out, width=300), state_dir=state, trainer="lora") in (0, None)
    printed = out.getvalue()

    assert "trains LoRA adapters on tiny (LOCAL_BASE_MODEL)" in printed
    assert re.search(
        r"trained \(LoRA\) +tiny on the CPU: \d+ conversations, [\d,]+ tokens in [\d.]+s \([\d,]+ tokens/s\)", printed
    ), printed
    for stage in ("model registered", "evaluated", "endpoint live", "idle endpoint removed", "report saved"):
        assert re.search(rf"✓ {stage} ", printed), (stage, printed)
    [job] = [read_json(p) for p in (state / "jobs").glob("*/job.json")]
    assert job["trainer"] == "lora" and job["params"]["learning_rate"] == demo.LORA_TINY_OVERRIDES["learning_rate"]
    [model] = (state / "models").glob("*/*/model/MLmodel")
    assert "  chatft_lora:\n" in model.read_text()


@needs_train
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_kill_9_of_dev_during_lora_training_queues_the_job_and_the_next_dev_resumes_it_as_lora(tmp_path) -> None:
    """As tests/test_local_resume.py for the stand-in: the job process outlives a killed `chatft dev` only to say
    Queued, and the next dev (here with the retrieval default) resumes it with the trainer it was submitted with."""
    from tests.dev_process import Dev, chatft, folder_env, jobs, stage

    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(c) + "\n" for c in qa_conversations(240)))
    quick = {"JOB_POLL_QUIET_MINUTES": "0.02", "DEPLOY_RECONCILE_SCHEDULE": "*/1 * * * * *", "HF_HUB_OFFLINE": "1"}
    lora = {"LOCAL_TRAINER": "lora", "FINETUNE_OVERRIDES": json.dumps({**QUICK, "num_train_epochs": 200})}
    dev = Dev(tmp_path, folder_env(**quick, **lora))
    try:
        assert chatft(tmp_path, dev.env, "upload", "qa.jsonl").returncode == 0
        folder = until("the job", lambda: next((tmp_path / ".chatft" / "jobs").glob("*/job.json"), None)).parent
        until("the first epoch", lambda: (folder / "metrics.json").exists(), timeout=60)
        dev.kill9()
        [job] = until("the job stopped", lambda: [j for j in jobs(tmp_path) if j["status"] != "Running"])
        assert job["status"] == "Queued" and job["trainer"] == "lora"
        job["params"]["num_train_epochs"] = 1  # the test shortens what is left; the trainer stays as recorded
        (folder / "job.json").write_text(json.dumps(job))
        env = folder_env(**quick)
        dev = Dev(tmp_path, env)
        view = until(
            "the upload past training",
            lambda: (s := stage(tmp_path, env, "qa.jsonl")) and s["stage"] not in ("submitted", "training") and s,
            timeout=60,
        )
        assert view["stage"] in ("registered", "deploying", "live") and view["error"] is None, view
        [resumed] = jobs(tmp_path)
        assert resumed["status"] == "Completed" and resumed["resumed"] == 1 and resumed["trainer"] == "lora"
        assert "  chatft_lora:\n" in (folder / "outputs" / "trained_model" / "MLmodel").read_text()
    finally:
        dev.stop()


def test_the_lora_job_trains_from_its_splits_on_disk_a_row_at_a_time(tmp_path, storage_env, splits, monkeypatch):
    """Memory stays bounded whatever the upload: the LoRA job streams each prepared split to its folder (as Azure ML
    mounts a job's data) and its trainer reads rows by offset (shared/local/split_rows.py), never the whole split;
    the copy is removed when training ends."""
    import shared.local.lora.train as lora_train
    from shared.local import train_job
    from shared.local.split_rows import SplitRows

    seen: dict = {}

    def train_lora(record, train, validation, test, folder):
        seen.update(
            kinds={type(rows) for rows in (train, validation, test)},
            sizes=(len(train), len(validation), len(test)),
            rows=(train[0], train[-1], train[2:4], list(train), test[:50]),
            files=sorted(path.name for path in (folder / "data").iterdir()),
        )
        return {"token_f1": 0.5}

    monkeypatch.setattr(lora_train, "train_lora", train_lora)
    job = train_job.Job(tmp_path / "job")
    job.record = {
        "name": "chatft-x-a1",
        "trainer": "lora",
        "data_uris": splits,
        "datastores": {"chatft_prepared": storage_env["PREPARED_CONTAINER"]},
    }
    assert train_job.train(job) == {"token_f1": 0.5}
    train = qa_conversations(160)
    assert seen["kinds"] == {SplitRows} and seen["sizes"] == (160, 20, 20)
    assert seen["rows"] == (train[0], train[-1], train[2:4], train, qa_conversations(20, 180))
    assert seen["files"] == ["test.jsonl", "train.jsonl", "validation.jsonl"]
    assert not (tmp_path / "job" / "data").exists(), "the copy of the prepared blobs is removed"


def test_split_rows_reads_a_file_as_a_sequence_of_its_rows(tmp_path) -> None:
    from shared.local.split_rows import SplitRows

    rows = [{"messages": [{"role": "user", "content": f"é {i}"}]} for i in range(5)]
    path = tmp_path / "train.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:3])
        + "\n\n"
        + "\n".join(json.dumps(r) for r in rows[3:])
    )
    split = SplitRows(path)
    try:
        assert len(split) == 5 and split[4] == rows[4] and split[-5] == rows[0] and split[1:4] == rows[1:4]
        assert [row for row in split] == rows and split[::2] == rows[::2]
        for index, row in enumerate(split):  # an index read inside the loop does not move the loop
            assert split[(index + 2) % 5] == rows[(index + 2) % 5] and row == rows[index]
        with pytest.raises(IndexError):
            split[5]
    finally:
        split.close()
