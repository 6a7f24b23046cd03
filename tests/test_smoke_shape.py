"""The smoke test's body: the notebook's shape first, the other once on a refusal, and the one that worked kept.

Sources:
- Azure/azureml-examples sdk/python/foundation-models/system/finetune/chat-completion/chat-completion.ipynb
  (commit 04e1ccde372cd181cf05764e303d66b216237cbb), "8. Test the endpoint with sample data": sample_score.json is
  `{"input_data": {"input_string": [test_df["messages"][0]], "parameters": {...}}, "params": {}}`, a list holding
  one conversation.
- Azure/azureml-assets assets/training/model_management/environments/mlflow-model-inference/context/
  mlflow_score_script.py (commit 0d62f22b0c1a47f931bbbd1a310503ca53c706c5), `run`: for a `transformers`-flavour
  model it moves `parameters` to params and unwraps `input_string`, then
  `parse_model_input_from_input_data_transformers` passes a list of string-valued dicts (the messages) through and
  turns any other list (a list of conversations) into `np.asarray`; for an `hftransformersv2` model
  `parse_model_input_from_input_data_traditional` hands `input_data` to the model as it came (its `input_string`
  is a list of conversations, the notebook's shape).
- Azure/azureml-assets assets/training/finetune_acft_hf_nlp/src/finetune/finetune.py (commit
  008bf68c3976c7170336965482110a22d26efe38), `finetune`: the fine-tuned model takes the base model's MLmodel flavour
  (`_get_model_flavor` over transformers, hftransformers, hftransformersv2); assets/models/system/Phi-4/MLmodel
  (commit f4eea56c3a74da640080c38b519321f65e4b29e8), the default FINETUNE_MODEL: `hftransformersv2`,
  `task_type: chat-completion`. So the local model's default flavour is hftransformersv2.
- A refusal is a 400, or a 424 whose `ms-azureml-model-error-statuscode` is a 4xx ("Troubleshoot online
  endpoints", MicrosoftDocs azureml-docs articles/machine-learning/how-to-troubleshoot-online-endpoints.md).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.azure.scoring import InputShape, SmokeError, score
from shared.domain.ledger import Status, UploadKey
from shared.local.http import HttpError, JsonServer
from shared.local.retrieval import DEFAULT_FLAVOR, RetrievalModel, flavor_of
from shared.local.scoring import Endpoint, conversation, make_handler
from shared.local.session_file import write_session
from shared.local.state import write_json
from tests.deploy_flow import completed, row, run_until, scoring, send, submit

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I tune the rate?"}]
TRAIN = [
    {
        "messages": [
            {"role": "user", "content": "How do I tune the rate?"},
            {"role": "assistant", "content": "Lower it."},
        ]
    }
]
SHAPE_OF = {"hftransformersv2": InputShape.CONVERSATIONS, "transformers": InputShape.MESSAGES}


def body(shape: InputShape) -> bytes:
    strings = [MESSAGES] if shape is InputShape.CONVERSATIONS else MESSAGES
    return json.dumps({"input_data": {"input_string": strings, "parameters": {}}, "params": {}}).encode()


def test_the_local_model_is_saved_with_the_fine_tuned_default_flavour(tmp_path) -> None:
    RetrievalModel.train(TRAIN).save(tmp_path, {})
    assert DEFAULT_FLAVOR == "hftransformersv2" and flavor_of(tmp_path) == "hftransformersv2"
    RetrievalModel.train(TRAIN).save(tmp_path, {}, flavor="transformers")
    assert flavor_of(tmp_path) == "transformers"


@pytest.mark.parametrize("flavor", ["hftransformersv2", "transformers"])
def test_the_local_server_reads_exactly_one_shape_by_the_flavour(flavor) -> None:
    accepted = SHAPE_OF[flavor]
    assert conversation(body(accepted), flavor) == MESSAGES
    [other] = [s for s in InputShape if s is not accepted]
    with pytest.raises(HttpError) as refused:
        conversation(body(other), flavor)
    assert refused.value.status == 400 and flavor in str(refused.value)


@contextmanager
def local_endpoint(root: Path, flavor: str, tags: dict[str, str] | None = None) -> Iterator[Endpoint]:
    """A local endpoint as `chatft dev` leaves it (endpoint.json, the model folder, server.json), served by the
    real shared.local.scoring handler on a thread of this process (so its pid is this test's)."""
    folder, model = root / "endpoints" / "cft-chats", root / "models" / "m1"
    RetrievalModel.train(TRAIN).save(model, {}, flavor=flavor)
    write_json(
        folder / "endpoint.json",
        {
            "name": "cft-chats",
            "key": "k-1",
            "deployments": {"demo": {"model_path": str(model)}},
            "traffic": {"demo": 100},
            "tags": tags or {},
        },
    )
    endpoint = Endpoint(folder)
    server = JsonServer(("127.0.0.1", 0), make_handler(endpoint))
    write_json(folder / "server.json", {"port": server.server_address[1], "pid": os.getpid()})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


def requests(endpoint: Endpoint) -> int:
    return sum(endpoint.counts.values())


@pytest.mark.parametrize("flavor", ["hftransformersv2", "transformers"])
def test_the_smoke_test_finds_the_shape_once_and_then_uses_it(tmp_path, flavor) -> None:
    with local_endpoint(tmp_path, flavor) as endpoint:
        url = f"http://127.0.0.1:{json.loads((endpoint.folder / 'server.json').read_text())['port']}/score"
        first = score(url, "k-1", "demo", MESSAGES, 5)
        assert first.shape is SHAPE_OF[flavor] and first.answer == "Lower it."
        tries = requests(endpoint)
        assert tries == (1 if flavor == "hftransformersv2" else 2)  # the notebook's shape first
        again = score(url, "k-1", "demo", MESSAGES, 5, shape=first.shape.value)
        assert again.shape is first.shape and requests(endpoint) == tries + 1  # no retry


def test_a_400_for_another_reason_on_both_shapes_is_a_clear_failure(tmp_path) -> None:
    with local_endpoint(tmp_path, "transformers") as endpoint:
        url = f"http://127.0.0.1:{json.loads((endpoint.folder / 'server.json').read_text())['port']}/score"
        not_servable = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
        with pytest.raises(SmokeError) as refused:
            score(url, "k-1", "demo", not_servable, 5)
    message = str(refused.value)
    assert refused.value.permanent and refused.value.status == 400 and requests(endpoint) == 2
    assert "refused both request bodies" in message and "alternate" in message
    assert "list holding the conversation" in message and "list of messages" in message


@pytest.mark.parametrize(("flavor", "sent"), [("hftransformersv2", 1), ("transformers", 2)])
def test_the_deployment_remembers_the_shape_that_worked(aml, blob_service, storage_env, flavor, sent) -> None:
    """The stand-in managed endpoint answers a wrong shape as the real one does: 424 carrying the model's 400."""
    workspace, _ = aml
    with scoring(workspace) as server:
        server.flavor = flavor
        job, tags = submit(blob_service, storage_env, workspace)
        send(completed(job, tags))
        run_until(lambda: row().status is Status.LIVE)
    evaluated = row().deploy["evaluation"]["samples"]  # then the evaluation's requests (shared.flows.evaluation)
    assert evaluated >= 1 and len(server.requests) == sent + evaluated
    first = json.loads(server.requests[0]["body"])["input_data"]["input_string"]
    assert isinstance(first[0], list)  # the notebook's shape went first
    assert row().deploy["input_shape"] == SHAPE_OF[flavor].value
    for request in server.requests[sent:]:  # the evaluation sends the remembered shape alone, never a refused one
        strings = json.loads(request["body"])["input_data"]["input_string"]
        assert isinstance(strings[0], list) is (SHAPE_OF[flavor].value == "conversations")
    assert row().deploy["evaluation"]["empty_or_failed"] == 0


def test_chatft_score_uses_the_shape_on_the_ledger_row(storage_env, tmp_path, monkeypatch) -> None:
    """`chatft score` against a local session: the endpoint's tags name its upload, whose ledger row holds the
    shape the smoke test found; the question goes once, in that shape."""
    from shared.entry.cli.app import app

    monkeypatch.setenv("LEDGER_TABLE", f"shape{os.urandom(5).hex()}")
    shared.entry.app_wiring.reset()
    key, now = UploadKey("chats", "ab" * 32), datetime.now(timezone.utc)
    ledger = shared.entry.app_wiring.ledger()
    ledger.claim(key, upload_etag="", source="up/chats.jsonl", cid="c1", now=now, stale_after=timedelta(1))
    entry = ledger.get(key)
    entry.status, entry.deploy = Status.LIVE, {"endpoint": "cft-chats", "input_shape": "messages", "step": "live"}
    assert ledger.save(entry)
    write_session(tmp_path, {k: v for k, v in os.environ.items() if k in {*storage_env, "LEDGER_TABLE"}})
    tags = {"chatft_dataset": key.dataset, "chatft_upload": key.sha256}
    with local_endpoint(tmp_path, "transformers", tags) as endpoint:
        result = CliRunner().invoke(app, ["score", "How do I tune the rate?", "--state", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "Lower it." in result.stdout and requests(endpoint) == 1
