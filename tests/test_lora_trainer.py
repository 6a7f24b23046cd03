"""The LoRA trainer (shared/local/lora): `tiny` fine-tuned on 200 conversations for 2 epochs on the CPU learns
(the validation loss falls), logs its curves per epoch, saves an MLflow folder holding peft's adapter, and the
saved model answers with the request's parameters; the cheap preflight checks name LOCAL_BASE_MODEL.

Sources: peft's adapter files (adapter_config.json, adapter_model.safetensors) are what
`PeftModel.save_pretrained` writes (huggingface/peft src/peft/utils/constants.py CONFIG_NAME,
SAFETENSORS_WEIGHTS_NAME); the hyperparameter defaults are the chat_completion_pipeline component's
(tests/fixtures/chat_completion_pipeline.yaml, held to Azure/azureml-assets ... chat_completion/spec.yaml by
tests/test_component_fixture.py); HF_HUB_OFFLINE's true values are huggingface_hub's (constants.py `_is_true`).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.local.lora import base, data
from tests.lora_support import job_record, needs_train, qa_conversation, qa_conversations

FIXTURE = Path(__file__).parent / "fixtures" / "chat_completion_pipeline.yaml"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One training run shared by the module's tests: tiny, 200 conversations, 2 epochs, the CPU."""
    from shared.local.lora.train import train_lora

    folder = tmp_path_factory.mktemp("lora-job")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        metrics = train_lora(
            job_record(), qa_conversations(200), qa_conversations(40, 1000), qa_conversations(20, 2000), folder
        )
    return folder, metrics


@needs_train
@pytest.mark.slow
def test_training_tiny_lowers_the_validation_loss_every_epoch(trained: tuple[Path, dict[str, Any]]) -> None:
    folder, metrics = trained
    logged = json.loads((folder / "metrics.json").read_text())
    assert logged["step"] == "epoch"
    by_key: dict[str, list[tuple[int, float]]] = {}
    for row in logged["metrics"]:
        assert set(row) == {"key", "value", "timestamp", "step"}
        by_key.setdefault(row["key"], []).append((row["step"], row["value"]))
    assert [step for step, _ in by_key["train_loss"]] == [1, 2]
    assert [step for step, _ in by_key["eval_loss"]] == [1, 2]
    (_, first), (_, second) = by_key["eval_loss"]
    assert second < first < metrics["untrained_eval_loss"]
    assert metrics["device"] == "cpu"
    assert metrics["train_conversations"] == 200
    assert metrics["train_tokens"] > 0 and metrics["tokens_per_second"] > 0 and metrics["train_seconds"] > 0
    assert metrics["examples"] == 20
    assert 0.0 <= metrics["token_f1"] <= 1.0 and 0.0 <= metrics["baseline_token_f1"] <= 1.0


@needs_train
@pytest.mark.slow
def test_the_trained_model_is_an_mlflow_folder_with_the_peft_adapter(trained: tuple[Path, dict[str, Any]]) -> None:
    folder, metrics = trained
    saved = folder / "outputs" / "trained_model"
    assert (saved / "artifacts" / "adapter" / "adapter_config.json").is_file()
    assert (saved / "artifacts" / "adapter" / "adapter_model.safetensors").is_file()
    assert (saved / "artifacts" / "tokenizer" / "tokenizer.json").is_file()
    assert (saved / "artifacts" / "base" / "config.json").is_file()  # tiny is built per upload: its weights travel
    mlmodel = yaml.safe_load((saved / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "shared.local.lora.model"
    assert mlmodel["flavors"]["chatft_lora"] == {"version": 1}
    assert mlmodel["flavors"]["hftransformersv2"] == {"task_type": "chat-completion"}
    assert mlmodel["metadata"]["metrics"] == metrics
    assert mlmodel["metadata"]["local_base_model"] == "tiny"
    required = (saved / "requirements.txt").read_text().split()
    assert {line.split("==")[0] for line in required} >= {"torch", "transformers", "peft"}


@needs_train
@pytest.mark.slow
def test_the_saved_model_answers_with_the_request_parameters(trained: tuple[Path, dict[str, Any]]) -> None:
    import torch

    from shared.local.lora.model import LoraChatModel

    model = LoraChatModel.load(trained[0] / "outputs" / "trained_model")
    prompt = qa_conversation(3000)["messages"][:-1]
    greedy = model.answer(prompt, {"max_new_tokens": 40})
    assert isinstance(greedy, str) and greedy.strip() == greedy and greedy
    one = model.answer(prompt, {"max_new_tokens": 1, "do_sample": False})
    assert len(one.split()) <= 1 and greedy.startswith(one)  # one token: at most one word, the greedy reply's first
    cold = model.answer(prompt, {"max_new_tokens": 40, "do_sample": True, "temperature": 1e-4, "top_p": 0.9})
    assert cold == greedy  # sampling that cold is the greedy choice
    torch.manual_seed(0)
    hot = [model.answer(prompt, {"max_new_tokens": 20, "do_sample": True, "temperature": 50.0}) for _ in range(3)]
    assert any(answer != greedy for answer in hot)  # sampling that hot is near uniform
    with pytest.raises(ValueError, match="temperature"):
        model.answer(prompt, {"temperature": "hot"})


@needs_train
@pytest.mark.slow
def test_sigterm_stops_training_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job process's SIGTERM handler raises Stopped; the loop lets it through (the job goes back to Queued)."""
    import shared.local.train_job as train_job
    from shared.local.lora import train

    real = data.batches

    def batches(*args: Any, **kwargs: Any):
        for index, batch in enumerate(real(*args, **kwargs)):
            if index == 3 and "shuffle_seed" in kwargs:  # the fourth training batch
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    monkeypatch.setattr(data, "batches", batches)
    previous = signal.signal(signal.SIGTERM, train_job._stop)
    try:
        with pytest.raises(train_job.Stopped):
            train.train_lora(job_record(), qa_conversations(60), qa_conversations(10, 1000), [], tmp_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not (tmp_path / "metrics.json").exists()  # stopped in the first epoch
    assert not (tmp_path / "outputs" / "trained_model" / "MLmodel").exists()


@needs_train
@pytest.mark.slow
def test_a_local_model_folder_is_fine_tuned_and_served_from_where_it_is(tmp_path: Path) -> None:
    from shared.local.lora import tiny
    from shared.local.lora.model import LoraChatModel
    from shared.local.lora.train import train_lora

    folder = tmp_path / "my-model"
    tokenizer = tiny.tokenizer(qa_conversations(40))
    tiny.model(tokenizer, 1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert base.base_model_problem(str(folder)) is None
    record = {**job_record(num_train_epochs=1), "local_base_model": str(folder)}
    metrics = train_lora(record, qa_conversations(40), qa_conversations(8, 1000), qa_conversations(2, 2000), tmp_path)
    assert metrics["examples"] == 2
    saved = tmp_path / "outputs" / "trained_model"
    assert json.loads((saved / "artifacts" / "base.json").read_text()) == {"base_model": str(folder.resolve())}
    assert not (saved / "artifacts" / "base").exists()  # the base stays where it is
    answer = LoraChatModel.load(saved).answer(qa_conversation(5)["messages"][:1], {"max_new_tokens": 4})
    assert isinstance(answer, str)


@needs_train
def test_an_unreadable_model_folder_fails_the_job_in_one_line_naming_the_setting(tmp_path: Path) -> None:
    from shared.local.lora.train import train_lora

    folder = model_folder(tmp_path / "broken", "config.json", "tokenizer.json", "model.safetensors")
    record = {**job_record(), "local_base_model": str(folder)}
    with pytest.raises(ValueError, match=r"^LOCAL_BASE_MODEL .*broken: cannot load it") as caught:
        train_lora(record, qa_conversations(8), [], [], tmp_path / "job")
    assert "\n" not in str(caught.value)


@needs_train
def test_loss_is_on_the_assistant_turns_only_and_examples_are_capped() -> None:
    from shared.local.lora import tiny

    conversations = qa_conversations(40)
    tokenizer = tiny.tokenizer(conversations)
    messages = qa_conversation(1)["messages"]  # two turns
    ids, labels = data.encode(tokenizer, messages, cap=10_000)
    assert len(ids) == len(labels)
    learned = tokenizer.decode([label for label in labels if label != data.IGNORE])
    turns = [m["content"] for m in messages if m["role"] == "assistant"]
    assert learned == "".join(f"{turn}<|im_end|>\n" for turn in turns)
    capped, capped_labels = data.encode(tokenizer, messages, cap=12)
    assert len(ids) > 12 and capped == ids[:12] and capped_labels == labels[:12]
    long = {"messages": [{"role": "user", "content": "why?"}, {"role": "assistant", "content": "ok " * 300}]}
    widths = [batch["input_ids"].shape[1] for batch in data.batches(tokenizer, [long, *conversations], 4, cap=64)]
    assert widths[0] == 64 and max(widths) <= 64
    late = {"messages": [{"role": "user", "content": "why? " * 300}, {"role": "assistant", "content": "ok"}]}
    assert list(data.batches(tokenizer, [late], 4, cap=64)) == []  # nothing of the answer is left to learn


@needs_train
def test_a_cap_that_leaves_no_answer_to_learn_fails_naming_max_seq_tokens(tmp_path: Path) -> None:
    from shared.local.lora.train import train_lora

    record = {**job_record(), "max_seq_tokens": 3}  # the template's first tokens, never an assistant's
    with pytest.raises(ValueError, match=r"within the first 3 tokens .*\(MAX_SEQ_TOKENS\)"):
        train_lora(record, qa_conversations(8), qa_conversations(2, 100), [], tmp_path)
    assert not (tmp_path / "metrics.json").exists()


@needs_train
def test_batches_are_tokenised_as_they_are_needed() -> None:
    from shared.local.lora import tiny

    conversations = qa_conversations(8)
    tokenizer = tiny.tokenizer(conversations)
    rows: list[Any] = [*conversations, {"messages": None}]  # the last would fail, were it tokenised up front
    first = next(data.batches(tokenizer, rows, 4, cap=128))
    assert first["input_ids"].shape[0] == 4


@needs_train
def test_tiny_is_the_same_model_for_the_same_upload_and_seed() -> None:
    import torch

    from shared.local.lora import tiny

    conversations = qa_conversations(30)
    a, b = tiny.tokenizer(conversations), tiny.tokenizer(conversations)
    assert a.get_vocab() == b.get_vocab()
    assert a.apply_chat_template(qa_conversation(0)["messages"], tokenize=False).startswith("<|im_start|>system\n")
    first, second, other = tiny.model(a, 7), tiny.model(a, 7), tiny.model(a, 8)
    weights = (first.state_dict().values(), second.state_dict().values(), other.state_dict().values())
    pairs = list(zip(*weights, strict=True))
    assert all(torch.equal(x, y) for x, y, _ in pairs)
    assert not all(torch.equal(x, z) for x, _, z in pairs)


def test_hyperparameters_default_to_the_azure_components() -> None:
    inputs = yaml.safe_load(FIXTURE.read_text())["inputs"]
    defaults = data.Hyperparameters()
    for name in data.Hyperparameters.__dataclass_fields__:
        assert getattr(defaults, name) == type(getattr(defaults, name))(inputs[name]["default"]), name
    chosen = data.Hyperparameters.of({"params": {"learning_rate": "0.001", "num_train_epochs": 2, "lora_r": None}})
    assert (chosen.learning_rate, chosen.num_train_epochs, chosen.lora_r) == (0.001, 2, 8)
    with pytest.raises(ValueError, match="lora_alpha 'many' is not an integer"):
        data.Hyperparameters.of({"params": {"lora_alpha": "many"}})


def model_folder(root: Path, *names: str, chat_template: bool = True) -> Path:
    root.mkdir()
    for name in names:
        (root / name).write_text("{}")
    if chat_template:
        (root / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    return root


def test_base_model_problems_name_the_setting(tmp_path: Path) -> None:
    assert base.base_model_problem("tiny") is None
    missing = base.base_model_problem(str(tmp_path / "nowhere" / "phi-4-mini"))
    assert missing is not None and missing.startswith("LOCAL_BASE_MODEL ") and "no model folder" in missing
    bare = base.base_model_problem(str(model_folder(tmp_path / "bare", "config.json", "tokenizer.json")))
    assert bare is not None and "*.safetensors weights" in bare and "\n" not in bare
    whole = model_folder(tmp_path / "whole", "config.json", "tokenizer.json", "model.safetensors")
    assert base.base_model_problem(str(whole)) is None
    plain = model_folder(tmp_path / "plain", "config.json", "tokenizer.json", "model.safetensors", chat_template=False)
    assert "no chat template" in (base.base_model_problem(str(plain)) or "")


@needs_train
def test_a_hub_id_missing_from_the_cache_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = base.base_model_problem("chatft-tests/no-such-model")
    assert problem is not None and problem.startswith("LOCAL_BASE_MODEL chatft-tests/no-such-model: not in the")
    assert "HF_HUB_OFFLINE" in problem and "\n" not in problem
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert base.base_model_problem("chatft-tests/no-such-model") is None  # online: the job downloads it


def test_the_training_extra_check_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRAIN_PACKAGES", (*base.TRAIN_PACKAGES, "chatft_no_such_package"))
    problem = base.training_extra_problem()
    assert problem is not None and "chatft_no_such_package" in problem and "make setup-train" in problem
