"""The smoke test's protocol and answer parsing, run-event classification, deployment names."""

from __future__ import annotations

import json

import pytest

from shared.azure.scoring import SmokeError, extract_answer, request_body, score
from shared.domain.deploy.chat_turns import smoke_prompt
from shared.domain.deploy.names import ENDPOINT_NAME, endpoint_name, model_version, registered_model_name
from shared.domain.run_events import Outcome, RunEvent, classify
from tests.events import WORKSPACE, cloud_event, decode, event_grid, run_data
from tests.scoring_server import ScoringServer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I tune it?"}]


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        ({"output": "hi"}, "hi"),
        ([{"0": "from a record"}], "from a record"),
        ("plain text", "plain text"),
        ([{"output": "first"}, {"output": "second"}], "first"),
        ({"predictions": ["wrapped"]}, "wrapped"),
    ],
)
def test_answers_are_parsed_tolerantly(payload: object, answer: str) -> None:
    assert extract_answer(payload) == answer


@pytest.mark.parametrize("payload", [{}, [], 42, {"a": 1, "b": 2}])
def test_unreadable_answers_are_smoke_errors(payload: object) -> None:
    with pytest.raises(SmokeError):
        extract_answer(payload)


def test_the_prompt_stops_before_the_last_assistant_turn() -> None:
    conversation = {"messages": [*MESSAGES, {"role": "assistant", "content": "Lower the rate."}]}
    assert smoke_prompt(conversation) == MESSAGES
    body = request_body(MESSAGES)  # the notebook's sample_score.json: a list holding the conversation
    assert body == {
        "input_data": {
            "input_string": [MESSAGES],
            "parameters": {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200},
        },
        "params": {},
    }


def test_score_sends_key_and_deployment_header() -> None:
    with ScoringServer(key="secret", deployment="blue", answer="  Use a smaller batch.  ") as server:
        result = score(server.url, "secret", "blue", MESSAGES, timeout=5)
        assert result.answer == "Use a smaller batch." and result.latency_ms >= 0
        with pytest.raises(SmokeError, match="HTTP 401") as unauthorised:
            score(server.url, "wrong", "blue", MESSAGES, timeout=5)
        assert unauthorised.value.permanent
        with pytest.raises(SmokeError, match="HTTP 404") as no_traffic:
            score(server.url, "secret", "green", MESSAGES, timeout=5)
        assert not no_traffic.value.permanent  # "no valid deployment with positive weight" (yet)
        assert [r["headers"]["azureml-model-deployment"] for r in server.requests] == ["blue", "blue", "green"]
        assert json.loads(server.requests[0]["body"])["input_data"]["input_string"] == [MESSAGES]


def test_an_unreachable_endpoint_is_a_smoke_error() -> None:
    with ScoringServer() as server:
        url = server.url
    with pytest.raises(SmokeError, match="could not reach"):
        score(url, "k", "demo", MESSAGES, timeout=2)


TAGS = {"chatft_managed": "true", "chatft_upload": "ab" * 32, "chatft_dataset": "chats"}


def event(body: dict) -> RunEvent:
    from shared.domain.run_events import from_function_event

    return from_function_event(decode(body))


@pytest.mark.parametrize("build", [event_grid, cloud_event], ids=["event grid schema", "cloudevents schema"])
@pytest.mark.parametrize(
    ("event_type", "data", "outcome"),
    [
        ("Microsoft.MachineLearningServices.RunCompleted", run_data("job-1", TAGS), Outcome.COMPLETED),
        (
            "Microsoft.MachineLearningServices.RunStatusChanged",
            run_data("job-1", TAGS, status="Completed"),
            Outcome.COMPLETED,
        ),
        (
            "Microsoft.MachineLearningServices.RunStatusChanged",
            run_data("job-1", TAGS, status="failed"),
            Outcome.FAILED,
        ),
        (
            "Microsoft.MachineLearningServices.RunStatusChanged",
            run_data("job-1", TAGS, status="Failed"),
            Outcome.FAILED,
        ),
        (
            "Microsoft.MachineLearningServices.RunStatusChanged",
            run_data("job-1", TAGS, status="Canceled"),
            Outcome.CANCELED,
        ),
        (
            "Microsoft.MachineLearningServices.RunStatusChanged",
            run_data("job-1", TAGS, status="Running"),
            Outcome.IGNORE,
        ),
        ("Microsoft.MachineLearningServices.RunStatusChanged", run_data("job-1", TAGS), Outcome.IGNORE),
        (
            "Microsoft.MachineLearningServices.RunCompleted",
            run_data("s-1", TAGS, run_type="azureml.StepRun"),
            Outcome.IGNORE,
        ),
        ("Microsoft.MachineLearningServices.RunCompleted", run_data("job-1", {"team": "x"}), Outcome.IGNORE),
        ("Microsoft.MachineLearningServices.DatasetDriftDetected", run_data("job-1", TAGS), Outcome.IGNORE),
    ],
)
def test_classification(build, event_type: str, data: dict, outcome: Outcome) -> None:
    assert classify(event(build(event_type, data)), WORKSPACE).outcome is outcome


def test_the_source_is_compared_case_insensitively_and_foreign_ones_ignored() -> None:
    completed = "Microsoft.MachineLearningServices.RunCompleted"
    upper = event(event_grid(completed, run_data("job-1", TAGS), topic=WORKSPACE.upper()))
    assert classify(upper, WORKSPACE).outcome is Outcome.COMPLETED
    foreign = event(cloud_event(completed, run_data("job-1", TAGS), source=WORKSPACE.replace("rg-chatft", "rg-other")))
    decision = classify(foreign, WORKSPACE)
    assert decision.outcome is Outcome.IGNORE and "another source" in decision.reason


def test_names_are_deterministic_and_valid() -> None:
    assert (
        registered_model_name("org/Phi-3-mini-4k-instruct", "support-chats", "v2")
        == "org-Phi-3-mini-4k-instruct-support-chats-v2"
    )
    assert (
        model_version("chatft-chats-ab-a1")
        == model_version("chatft-chats-ab-a1")
        != model_version("chatft-chats-ab-a2")
    )
    assert model_version("chatft-chats-ab-a1").isdigit()
    for dataset in ("chats", "9lives", "a" * 80, "x.y_z", "---"):
        name = endpoint_name(dataset, "chatft-job-a1", WORKSPACE)
        assert ENDPOINT_NAME.match(name) and 3 <= len(name) <= 32, name
    assert endpoint_name("chats", "job-a1", WORKSPACE) != endpoint_name("chats", "job-a2", WORKSPACE)
    assert endpoint_name("chats", "job-a1", WORKSPACE) != endpoint_name("chats", "job-a1", WORKSPACE + "2")
