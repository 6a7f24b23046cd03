"""The smoke test sends only what a chat-completion server accepts, and a refusal ends it at once
(issue 10 item 10).

The rule (an optional system message, then user/assistant alternating, ending with a user turn)
is the one Hugging Face chat templates enforce; the fine-tuned catalog models' MLflow scoring
server renders them. Status codes: "Common error codes for managed online endpoints"
(MicrosoftDocs azureml-docs, how-to-troubleshoot-online-endpoints.md): 424 when the model's
container answers non-200, with `ms-azureml-model-error-statuscode`; 404 while no deployment has
traffic; 408/429/5xx transient.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.azure.scoring import SmokeError, is_rejection, score
from shared.domain.deploy.chat_turns import servable_problem, smoke_prompt
from shared.domain.ledger import Status
from tests.deploy_flow import completed, report, row, run_until, scoring, send, submit, tick
from tests.scoring_server import ScoringServer

S, U, A = "system", "user", "assistant"


def chat(*roles: str) -> dict:
    return {"messages": [{"role": r, "content": f"{r} {i}"} for i, r in enumerate(roles)]}


@pytest.mark.parametrize(
    ("roles", "sent"),
    [
        ((S, U, A), (S, U)),
        ((U, A, U, A), (U, A, U)),
        ((U, U, A), (U,)),  # two user turns in a row: only the first
        ((S, U, A, A, U, A), (S, U)),  # two assistant turns: cut before the break
        ((A, U, A), (U,)),  # starts with the assistant: the first user message alone
        ((S, A, U, A), (S, U)),
        ((U, S, A), (U,)),  # a system message later on is not the optional first one
        ((S, S, U, A), (S, U)),
    ],
)
def test_only_a_servable_prefix_is_sent(roles, sent) -> None:
    messages = smoke_prompt(chat(*roles))
    assert tuple(m["role"] for m in messages) == sent
    assert servable_problem(messages) is None


@pytest.mark.parametrize("conversation", [chat(S, A), chat(A), chat(), {"messages": "x"}, {}, [], None])
def test_no_user_turn_means_nothing_to_send(conversation) -> None:
    assert smoke_prompt(conversation) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([S, U, A, "tool"]), max_size=12))
def test_whatever_the_roles_what_is_sent_is_servable(roles) -> None:
    messages = smoke_prompt(chat(*roles))
    assert (messages is None) == (U not in roles)
    if messages is not None:
        assert servable_problem(messages) is None


@pytest.mark.parametrize(
    ("status", "model_status", "permanent"),
    [
        (400, None, True),
        (401, None, True),
        (403, None, True),
        (424, "400", True),
        (424, "422", True),
        (424, "500", False),
        (424, None, False),
        (404, None, False),
        (408, None, False),
        (429, None, False),
        (503, None, False),
    ],
)
def test_which_answers_are_refusals(status, model_status, permanent) -> None:
    assert is_rejection(status, model_status) is permanent


def test_a_non_alternating_request_is_refused_by_the_stand_in_endpoint() -> None:
    """The test endpoint answers as a real one would, so the flow tests below mean something."""
    with ScoringServer(key="k", deployment="demo") as server, pytest.raises(SmokeError) as refused:
        score(server.url, "k", "demo", chat(U, U)["messages"], timeout=5)
    assert refused.value.status == 424 and refused.value.permanent
    assert "model answered 400" in str(refused.value) and "alternate" in str(refused.value)


@pytest.fixture
def flow(aml, blob_service, storage_env):
    workspace, _ = aml
    with scoring(workspace) as server:
        job, tags = submit(blob_service, storage_env, workspace)
        yield workspace, job, tags, server


def first_test_conversation(blob_service, storage_env, conversation: dict) -> None:
    """Make the prepared test split start with this conversation (what the validator only warns about)."""
    from tests.deploy_flow import SHA

    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"chats/{SHA[:16]}/test.jsonl")
    rest = blob.download_blob().readall()
    blob.upload_blob(json.dumps(conversation).encode() + b"\n" + rest, overwrite=True)


def test_a_non_alternating_test_conversation_still_goes_live(flow, blob_service, storage_env) -> None:
    _, job, tags, server = flow
    first_test_conversation(blob_service, storage_env, chat(S, U, U, A))
    send(completed(job, tags))
    run_until(lambda: row().status is Status.LIVE)
    request = server.requests[0]  # the smoke test's; the evaluation's follow (tests/test_evaluation_flow.py)
    [sent] = json.loads(request["body"])["input_data"]["input_string"]
    assert [m["role"] for m in sent] == [S, U]


def test_a_refused_smoke_test_fails_at_once_with_the_server_message(flow, blob_service, storage_env) -> None:
    workspace, job, tags, server = flow
    server.fail_next.append(400)
    send(completed(job, tags))
    run_until(lambda: row().status is Status.DEPLOY_FAILED)
    entry = row()
    assert "rejected the smoke test" in entry.error and "HTTP 400" in entry.error and "injected" in entry.error
    assert "refused both request bodies" in entry.error  # the other shape was tried once (tests/test_smoke_shape.py)
    assert len(server.requests) == 2  # then not retried until the deadline
    assert entry.deploy["endpoint"] not in workspace.online_endpoints.endpoints  # nothing left billing
    assert "rejected the smoke test" in report(blob_service, storage_env)["deployment"]["error"]


def test_a_transient_answer_is_retried(flow) -> None:
    _, job, tags, server = flow
    server.fail_next.extend([404, 503, 429])
    send(completed(job, tags))
    run_until(lambda: row().status is Status.LIVE)
    assert len(server.requests) == 4 + row().deploy["evaluation"]["samples"]  # then the evaluation's
    tick()
    assert row().status is Status.LIVE
