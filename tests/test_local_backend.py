"""The local backend's pieces: the retrieval model, the scoring server protocol, request
counting, and process cleanup (no child process may survive)."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from shared.local.backend import _CHILDREN, LocalUsageMetrics, LocalWorkspace, _alive
from shared.local.retrieval import RetrievalModel, token_f1
from shared.settings import Settings
from tests.chats import conversation

ROOT = Path(__file__).resolve().parent.parent


def sample_rows(n: int = 400) -> list[dict]:
    lines = (ROOT / "samples" / "chat_sample.jsonl").read_text().splitlines()[:n]
    return [json.loads(line) for line in lines]


def test_the_model_learns_and_beats_the_baseline(tmp_path: Path) -> None:
    rows = sample_rows(2000)
    model = RetrievalModel.train(rows[:1800])
    metrics = model.evaluate(rows[1800:])
    assert metrics["examples"] > 150
    assert metrics["token_f1"] > 0.8 > 0.4 > metrics["baseline_token_f1"]
    model.save(tmp_path / "m", {"job": "j"})
    assert (
        (tmp_path / "m" / "MLmodel")
        .read_text()
        .startswith("artifact_path: trained_model\nflavors:\n  python_function:")
    )
    loaded = RetrievalModel.load(tmp_path / "m")
    question = [{"role": "user", "content": "Which city is the capital of Peru?"}]
    assert loaded.answer(question) == model.answer(question) == "The capital of Peru is Lima."


def test_token_f1() -> None:
    assert token_f1("The capital is Lima.", "the capital is lima") == 1.0
    # SQuAD's normalisation drops the article: 5 reference tokens (shared.domain.evaluation, one definition)
    assert token_f1("Lima", "The capital of Peru is Lima.") == pytest.approx(2 * (1 * (1 / 5)) / (1 + 1 / 5))
    assert token_f1("", "x") == 0.0


@pytest.fixture
def local(tmp_path: Path):
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "state")}))
    model_dir = tmp_path / "state" / "models" / "m" / "1" / "model"
    RetrievalModel.train([conversation(i) for i in range(20)]).save(model_dir, {})
    yield workspace
    workspace.shutdown()


def live_endpoint(workspace: LocalWorkspace, name: str = "ep-test", traffic: bool = True) -> tuple[str, str]:
    workspace.begin_create_endpoint(name=name, description="d", tags={"chatft_managed": "true"})
    workspace.begin_create_deployment(
        endpoint=name, name="demo", model_id="x/models/m/versions/1", instance_type="Standard_NC24ads_A100_v4"
    )
    if traffic:
        workspace.set_endpoint_traffic(name, {"demo": 100})
    deadline = time.monotonic() + 20
    while (info := workspace.get_endpoint(name)).provisioning_state != "Succeeded":
        assert time.monotonic() < deadline, "the scoring server did not start"
        time.sleep(0.05)
    while (state := workspace.get_deployment(name, "demo").provisioning_state) != "Succeeded":
        assert state == "Creating" and time.monotonic() < deadline, f"the deployment is {state}"
        time.sleep(0.05)
    return info.scoring_uri, workspace.endpoint_key(name)


def post(url: str, body: object, headers: dict[str, str]) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


MESSAGES = [{"role": "user", "content": "Question 3.0: how do I tune model 3?"}]


def test_scoring_protocol(local: LocalWorkspace) -> None:
    uri, key = live_endpoint(local)
    auth = {"Authorization": f"Bearer {key}"}
    notebook = {"input_data": {"input_string": [MESSAGES], "parameters": {"max_new_tokens": 20}}}
    status, body = post(uri, notebook, {**auth, "azureml-model-deployment": "demo"})
    assert status == 200 and body == {"output": "Answer 3.0: lower the learning rate for 3."}
    # the local model is hftransformersv2, as the default fine-tuned model (tests/test_smoke_shape.py): its server
    # reads a list holding the conversation, not the list of messages a transformers model reads
    status, body = post(uri, {"input_data": {"input_string": MESSAGES}}, {**auth, "azureml-model-deployment": "demo"})
    assert status == 400 and "hftransformersv2" in body["error"]
    assert post(uri, {"input_data": {"input_string": MESSAGES}}, {"Authorization": "Bearer wrong"})[0] == 401
    assert post(uri, {"input_data": {"input_string": MESSAGES}}, {})[0] == 401
    status, body = post(uri, {"input_data": {"input_string": MESSAGES}}, {**auth, "azureml-model-deployment": "blue"})
    assert status == 404 and "blue" in body["error"]
    assert post(uri, notebook, auth)[0] == 200  # routed by traffic
    for bad in (
        b"{not json",
        {"input_data": {}},
        {"input_data": {"input_string": [{"role": 1}]}},
        [1, 2],
        {"input_data": {"input_string": MESSAGES, "parameters": 3}},
    ):
        status, body = post(uri, bad, auth)
        assert status == 400 and "error" in body


def test_without_traffic_and_header_there_is_nowhere_to_route(local: LocalWorkspace) -> None:
    uri, key = live_endpoint(local, "ep-notraffic", traffic=False)
    status, body = post(uri, {"input_data": {"input_string": MESSAGES}}, {"Authorization": f"Bearer {key}"})
    assert status == 424 and "no valid deployments" in body["error"]


def test_requests_are_counted_for_the_usage_metrics(local: LocalWorkspace) -> None:
    uri, key = live_endpoint(local)
    usage = LocalUsageMetrics(local)
    rid = f"{local.settings.workspace_resource_id}/onlineEndpoints/ep-test"
    assert usage.requests_in_window([rid], timedelta(minutes=5)) == {rid: 0}
    for _ in range(3):
        post(uri, {"input_data": {"input_string": MESSAGES}}, {"Authorization": f"Bearer {key}"})
    post(uri, {"input_data": {"input_string": MESSAGES}}, {"Authorization": "Bearer wrong"})
    assert usage.requests_in_window([rid], timedelta(minutes=5)) == {rid: 4}
    counts = json.loads((local.requests_file("ep-test")).read_text())
    old = {str(int(time.time()) - 3600): 9, **counts}
    local.requests_file("ep-test").write_text(json.dumps(old))
    assert usage.requests_in_window([rid], timedelta(minutes=5))[rid] == 4  # an hour ago is outside the window
    assert usage.requests_in_window([rid], timedelta(hours=2))[rid] == 13
    assert usage.requests_in_window([f"{rid}-gone"], timedelta(minutes=5)) == {}


def test_delete_stops_the_server_and_is_idempotent(local: LocalWorkspace) -> None:
    live_endpoint(local)
    pid = json.loads((local.root / "endpoints" / "ep-test" / "server.json").read_text())["pid"]
    assert _alive(pid)
    local.begin_delete_endpoint("ep-test")
    assert not _alive(pid) and local.get_endpoint("ep-test") is None
    local.begin_delete_endpoint("ep-test")
    assert local.list_endpoints() == []


def test_shutdown_leaves_no_child_process(local: LocalWorkspace) -> None:
    live_endpoint(local, "ep-a")
    live_endpoint(local, "ep-b")
    pids = list(_CHILDREN)
    assert len(pids) >= 2 and all(_alive(p) for p in pids)
    local.shutdown()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: not even a zombie
    assert _CHILDREN == {}
    assert {e.name: e.provisioning_state for e in local.list_endpoints()} == {"ep-a": "Failed", "ep-b": "Failed"}
    assert set(local.restart_stopped_endpoints()) == {"ep-a", "ep-b"}


def raw(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    status, _, rest = data.partition(b"\r\n")
    return int(status.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_the_scoring_server_answers_json_to_any_content_length(local: LocalWorkspace) -> None:
    uri, key = live_endpoint(local)
    port = int(uri.split(":")[2].split("/")[0])
    head = f"POST /score HTTP/1.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
    for length, status in (("abc", 400), ("-5", 400), ("9" * 30, 413), (str(2 << 20), 413)):
        got, body = raw(port, f"{head}Content-Length: {length}\r\n", b"{}")
        assert got == status and body["error"]
    config = json.loads((local.root / "endpoints" / "ep-test" / "endpoint.json").read_text())
    config["deployments"]["demo"]["model_path"] = str(local.root / "no-such-model")
    config["deployments"]["blue"] = config["deployments"].pop("demo")
    (local.root / "endpoints" / "ep-test" / "endpoint.json").write_text(json.dumps(config))
    body = json.dumps({"input_data": {"input_string": MESSAGES}}).encode()
    got, reply = raw(port, f"{head}azureml-model-deployment: blue\r\nContent-Length: {len(body)}\r\n", body)
    assert got == 500 and "internal error" in reply["error"]  # the catch-all: a JSON 500, not a dropped connection


def score_cli(*args: str):
    from typer.testing import CliRunner

    from shared.entry.cli.app import app

    return CliRunner().invoke(app, ["score", *args])


def test_score_finds_the_live_endpoint_across_state_folders_and_skips_dead_ones(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / ".chatft" / "runs" / "20260101-000000-1"
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(run)}))
    RetrievalModel.train([conversation(i) for i in range(20)]).save(run / "models" / "m" / "1" / "model", {})
    try:
        live_endpoint(workspace, "ep-live")
        dead = tmp_path / ".chatft" / "endpoints" / "ep-dead"  # newer, but its server is gone
        dead.mkdir(parents=True)
        (dead / "endpoint.json").write_text(json.dumps({"name": "ep-dead", "key": "k", "traffic": {"demo": 100}}))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        (dead / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": port}))  # a live pid, no server
        result = score_cli("Question 3.0: how do I tune model 3?")
        assert result.exit_code == 0, result.output
        assert "ep-live" in result.output and "Answer 3.0: lower the learning rate for 3." in result.output
        assert score_cli("hello", "--endpoint", "ep-dead").exit_code == 2
    finally:
        workspace.shutdown()
    result = score_cli("hello")
    assert result.exit_code == 2 and "no live local endpoint" in result.output and "Traceback" not in result.output


def test_a_deployments_model_is_loaded_before_its_first_request(local: LocalWorkspace) -> None:
    """Azure ML's scoring container runs the model's init() before the deployment counts as provisioned
    (MicrosoftDocs, "Troubleshoot online endpoint deployment": a deployment whose init() fails ends Failed), so the
    first request (the smoke test) never pays for loading (a LoRA model takes seconds): the local server loads each
    deployment's model as soon as the deployment is on the endpoint, and the deployment is Succeeded only then."""
    url, _ = live_endpoint(local)  # waits for the deployment to be Succeeded
    with urllib.request.urlopen(url.removesuffix("/score") + "/health", timeout=5) as response:
        loaded = json.loads(response.read())["loaded"]
    assert loaded == ["demo"], "no request was sent, yet the model is loaded"
    assert not (Path(local.root) / "endpoints" / "ep-test" / "requests.json").exists(), "no request was counted"


def test_a_model_that_cannot_load_fails_its_deployment(local: LocalWorkspace, tmp_path: Path) -> None:
    """A deployment whose model cannot be loaded is Failed, as on Azure ML when the scoring script's init() raises,
    not Succeeded until a request finds out; the reconciler then fails the deployment (shared/flows/reconciler.py
    _wait_deployment)."""
    broken = tmp_path / "state" / "models" / "m" / "2" / "model"
    broken.mkdir(parents=True)
    (broken / "MLmodel").write_text("flavors:\n  python_function: {}\n")  # no artifacts: the loader raises
    local.begin_create_endpoint(name="ep-broken", description="d", tags={"chatft_managed": "true"})
    local.begin_create_deployment(
        endpoint="ep-broken", name="demo", model_id="x/models/m/versions/2", instance_type="Standard_NC24ads_A100_v4"
    )
    deadline = time.monotonic() + 20
    while (state := local.get_deployment("ep-broken", "demo").provisioning_state) == "Creating":
        assert time.monotonic() < deadline, "still Creating"
        time.sleep(0.05)
    assert state == "Failed"
