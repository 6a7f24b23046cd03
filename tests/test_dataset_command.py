"""`chatft dataset`: real `datasets` loading of small local datasets, through the CLI.

No test reaches the network: every test runs with the Hub in offline mode and sockets refused
(`no_network`). The Hub's happy path is tested by replacing `datasets.get_dataset_split_names`
and `datasets.load_dataset_builder`, the two calls the command makes for a Hub name, with fakes
that serve local datasets: that is the boundary where the network would start, and everything
after it (sampling, mapping, validation, writing, the manifest) runs for real.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import httpx
import huggingface_hub
import pytest
from datasets import Dataset, DatasetDict
from typer.testing import CliRunner, Result

from shared.entry.cli.app import app
from shared.entry.cli.commands.dataset import Sample, choose_rows, take_count

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_network(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline Hub, refused sockets, and a private `datasets` cache (never the user's)."""
    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def chat(i: int, tag: str = "") -> list[dict[str, str]]:
    return [
        {"content": f"question {tag}{i}: what is {i} + {i}?", "role": "user"},
        {"content": f"answer {tag}{i}: it is {2 * i}.", "role": "assistant"},
    ]


def ultrachat(rows: int, tag: str) -> Dataset:
    """Rows shaped like HuggingFaceH4/ultrachat_200k: prompt, prompt_id, messages."""
    return Dataset.from_dict(
        {
            "prompt": [f"question {tag}{i}" for i in range(rows)],
            "prompt_id": [f"{tag}{i:04d}" for i in range(rows)],
            "messages": [chat(i, tag) for i in range(rows)],
        }
    )


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A save_to_disk DatasetDict with two splits, as the Hub's ultrachat_200k has (and more)."""
    path = tmp_path / "ultrachat"
    DatasetDict({"train_sft": ultrachat(60, "t"), "test_sft": ultrachat(40, "e")}).save_to_disk(str(path))
    return path


def run(*args: str) -> Result:
    return runner.invoke(app, ["dataset", *args])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def first_question(row: dict[str, Any]) -> str:
    return row["messages"][0]["content"]


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_head_takes_the_first_percent_of_every_split(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(str(saved), "--out", str(out), "--percent", "50")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test_sft.jsonl", "train_sft.jsonl"]
    train = lines(out / "train_sft.jsonl")
    assert [first_question(r) for r in train] == [chat(i, "t")[0]["content"] for i in range(30)]
    assert len(lines(out / "test_sft.jsonl")) == 20
    # only messages are written: ultrachat's prompt and prompt_id columns are left out
    assert all(set(r) == {"messages"} for r in train)


def test_outputs_pass_chatft_validate(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(saved), "--out", str(out), "--percent", "50").exit_code == 0
    for name in ("train_sft.jsonl", "test_sft.jsonl"):
        result = runner.invoke(app, ["validate", "--json", str(out / name)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["valid"] is True


def test_manifest_records_the_run_and_each_file_hash(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(saved), "--out", str(out), "--percent", "25", "--sample", "random", "--seed", "11").exit_code == 0
    m = manifest(out)
    assert m["source"] == str(saved.resolve())
    assert m["source_kind"] == "saved"
    assert (m["percent"], m["sample"], m["seed"]) == (25.0, "random", 11)
    assert m["datasets_version"] == datasets.__version__
    assert list(m["splits"]) == ["train_sft", "test_sft"]
    for split, rows, taken in (("train_sft", 60, 15), ("test_sft", 40, 10)):
        entry = m["splits"][split]
        data = (out / f"{split}.jsonl").read_bytes()
        assert entry["file"] == f"{split}.jsonl"
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        assert (entry["rows_in_split"], entry["rows_read"], entry["rows_written"], entry["rows_dropped"]) == (
            rows,
            taken,
            taken,
            0,
        )
        assert entry["layout"] == "messages"
        assert entry["fingerprint"]


def test_random_is_seeded_reproducible_and_not_the_head(saved: Path, tmp_path: Path) -> None:
    outs = [tmp_path / name for name in ("a", "b", "head")]
    assert run(str(saved), "--out", str(outs[0]), "--percent", "50", "--sample", "random", "--seed", "3").exit_code == 0
    assert run(str(saved), "--out", str(outs[1]), "--percent", "50", "--sample", "random", "--seed", "3").exit_code == 0
    assert run(str(saved), "--out", str(outs[2]), "--percent", "50").exit_code == 0
    a, b, head = (o / "train_sft.jsonl" for o in outs)
    assert a.read_bytes() == b.read_bytes()
    assert len(lines(a)) == len(lines(head)) == 30
    assert a.read_bytes() != head.read_bytes()
    # the sample keeps the split's order
    numbers = [int(first_question(r).split(":")[0].removeprefix("question t")) for r in lines(a)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 30
    other = tmp_path / "c"
    assert run(str(saved), "--out", str(other), "--percent", "50", "--sample", "random", "--seed", "4").exit_code == 0
    assert (other / "train_sft.jsonl").read_bytes() != a.read_bytes()


def test_random_without_a_seed_records_one_that_reproduces_the_sample(saved: Path, tmp_path: Path) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    assert run(str(saved), "--out", str(first), "--percent", "30", "--sample", "random").exit_code == 0
    seed = manifest(first)["seed"]
    assert isinstance(seed, int)
    assert (
        run(str(saved), "--out", str(again), "--percent", "30", "--sample", "random", "--seed", str(seed)).exit_code
        == 0
    )
    assert (first / "train_sft.jsonl").read_bytes() == (again / "train_sft.jsonl").read_bytes()


@pytest.mark.parametrize("percent", ["0", "-5", "100.5", "nan"])
def test_percent_out_of_bounds_is_a_usage_error(saved: Path, tmp_path: Path, percent: str) -> None:
    result = run(str(saved), "--out", str(tmp_path / "out"), "--percent", percent)
    assert result.exit_code == 2
    assert "--percent must be more than 0 and at most 100" in result.output
    assert not (tmp_path / "out").exists()


def test_percent_is_required(saved: Path, tmp_path: Path) -> None:
    result = run(str(saved), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "--percent" in result.output


def test_a_hundred_percent_takes_every_row(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(saved), "--out", str(out), "--percent", "100").exit_code == 0
    assert len(lines(out / "train_sft.jsonl")) == 60


def test_seed_without_random_is_a_usage_error(saved: Path, tmp_path: Path) -> None:
    result = run(str(saved), "--out", str(tmp_path / "out"), "--percent", "10", "--seed", "1")
    assert result.exit_code == 2
    assert "--seed only applies to --sample random" in result.output


def test_splits_restricts_the_output(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(saved), "--out", str(out), "--percent", "50", "--splits", "test_sft").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test_sft.jsonl"]
    assert list(manifest(out)["splits"]) == ["test_sft"]


def test_an_unknown_split_lists_the_real_ones(saved: Path, tmp_path: Path) -> None:
    result = run(str(saved), "--out", str(tmp_path / "out"), "--percent", "5", "--splits", "train_sft,train")
    assert result.exit_code == 2
    assert "unknown split(s) 'train'" in result.output
    assert "train_sft, test_sft" in result.output
    assert not (tmp_path / "out").exists()


def test_sharegpt_parquet_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sharegpt"
    folder.mkdir()
    for split, rows in (("train", 30), ("test", 20)):
        conversations = [
            [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": f"{split} question {i}"},
                {"from": "gpt", "value": f"{split} answer {i}"},
            ]
            for i in range(rows)
        ]
        Dataset.from_dict({"id": [str(i) for i in range(rows)], "conversations": conversations}).to_parquet(
            str(folder / f"{split}.parquet")
        )
    out = tmp_path / "out"
    result = run(str(folder), "--out", str(out), "--percent", "50")
    assert result.exit_code == 0, result.output
    train = lines(out / "train.jsonl")
    assert len(train) == 15 and len(lines(out / "test.jsonl")) == 10
    assert train[0] == {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "train question 0"},
            {"role": "assistant", "content": "train answer 0"},
        ]
    }
    m = manifest(out)
    assert m["source_kind"] == "files" and m["fingerprint"]
    assert m["splits"]["train"]["layout"] == "sharegpt"
    assert runner.invoke(app, ["validate", str(out / "train.jsonl")]).exit_code == 0


def test_openai_jsonl_file_drops_and_counts_what_chat_completion_cannot_take(tmp_path: Path) -> None:
    source = tmp_path / "openai.jsonl"
    rows = []
    for i in range(30):
        messages: list[dict[str, Any]] = [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": f"question {i}"}]},
            {"role": "assistant", "content": f"answer {i}"},
        ]
        if i in (4, 9):
            messages[2] = {"role": "tool", "content": "sunny"}
        rows.append({"messages": messages})
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    result = run(str(source), "--out", str(out), "--percent", "100")
    assert result.exit_code == 0, result.output
    written = lines(out / "train.jsonl")
    assert len(written) == 28
    assert written[0]["messages"][:2] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "question 0"},
    ]
    entry = manifest(out)["splits"]["train"]
    assert (entry["rows_read"], entry["rows_written"], entry["rows_dropped"]) == (30, 28, 2)
    assert entry["errors_by_code"] == {"role-invalid": 2}
    assert [e["row"] for e in entry["dropped_examples"]] == [4, 9]
    assert "dropped 2 (role-invalid 2)" in result.output
    assert runner.invoke(app, ["validate", str(out / "train.jsonl")]).exit_code == 0


def test_unknown_layout_is_rejected_naming_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    DatasetDict({"train": Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})}).save_to_disk(str(path))
    result = run(str(path), "--out", str(tmp_path / "out"), "--percent", "50")
    assert result.exit_code == 1
    assert "'text', 'label'" in result.output
    assert not (tmp_path / "out").exists()


def test_every_row_unusable_is_rejected_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "weird"
    DatasetDict({"train": Dataset.from_dict({"messages": list(range(20))})}).save_to_disk(str(path))
    out = tmp_path / "out"
    result = run(str(path), "--out", str(out), "--percent", "100")
    assert result.exit_code == 1
    assert "messages-not-list 20" in result.output
    assert not out.exists()


def test_a_binary_content_column_is_rejected_as_unencodable(tmp_path: Path) -> None:
    """Arrow gives bytes for a binary column; JSON has no bytes, so those rows cannot be written."""
    path = tmp_path / "binary"
    rows = [{"messages": [{"role": "user", "content": b"hi"}, {"role": "assistant", "content": b"yo"}]}] * 20
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(path))
    out = tmp_path / "out"
    result = run(str(path), "--out", str(out), "--percent", "100")
    assert result.exit_code == 1
    assert "unencodable-value 20" in result.output
    assert not out.exists()


def test_a_split_with_no_rows_gets_no_file(tmp_path: Path) -> None:
    path = tmp_path / "some-empty"
    DatasetDict({"train": ultrachat(30, "t"), "test": ultrachat(3, "z").select([])}).save_to_disk(str(path))
    out = tmp_path / "out"
    result = run(str(path), "--out", str(out), "--percent", "10")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.jsonl"]
    entry = manifest(out)["splits"]["test"]
    assert (entry["rows_in_split"], entry["rows_read"], entry["file"], entry["sha256"]) == (0, 0, None, None)


def test_an_empty_dataset_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    DatasetDict({"train": ultrachat(3, "z").select([])}).save_to_disk(str(path))
    result = run(str(path), "--out", str(tmp_path / "out"), "--percent", "50")
    assert result.exit_code == 1
    assert "no usable rows" in result.output
    assert "0 rows in the split" in result.output


def test_an_untyped_empty_split_is_read_as_empty(tmp_path: Path) -> None:
    """`datasets` 4 saves a split with no rows but cannot load it back (IndexError): it still counts as empty."""
    path = tmp_path / "untyped"
    DatasetDict({"train": Dataset.from_dict({"messages": []})}).save_to_disk(str(path))
    result = run(str(path), "--out", str(tmp_path / "out"), "--percent", "50")
    assert result.exit_code == 1
    assert "train: 0 rows in the split" in result.output


def test_an_empty_parquet_split_is_an_empty_split(tmp_path: Path) -> None:
    """Was: exit 2, "ArrowInvalid: BatchSize must be greater than 0". The parquet builder reads a file in
    batches of its first row group's row count when no batch_size is set, and Arrow refuses a batch size of 0
    (datasets/packaged_modules/parquet/parquet.py `_generate_tables`, datasets 4.x); a split generated with no
    rows then has num_examples 0 and `as_dataset` refuses it ("corresponds to no data",
    datasets/arrow_reader.py)."""
    folder = tmp_path / "files"
    folder.mkdir()
    Dataset.from_dict({"messages": [chat(i) for i in range(20)]}).to_parquet(str(folder / "train.parquet"))
    import pyarrow.parquet as pq

    typed = Dataset.from_dict({"messages": [chat(0)]}).data.table
    pq.write_table(typed.slice(0, 0), folder / "test.parquet")  # one row group of 0 rows, as pyarrow writes it
    out = tmp_path / "out"
    result = run(str(folder), "--out", str(out), "--percent", "50")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.jsonl"]
    assert manifest(out)["splits"]["test"]["rows_in_split"] == 0
    alone = run(str(folder / "test.parquet"), "--out", str(tmp_path / "out2"), "--percent", "50")
    assert alone.exit_code == 1, alone.output
    assert "train: 0 rows in the split" in alone.output and "ArrowInvalid" not in alone.output


def test_existing_outputs_are_never_overwritten(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "test_sft.jsonl").write_text("mine\n", encoding="utf-8")
    result = run(str(saved), "--out", str(out), "--percent", "50")
    assert result.exit_code == 2
    assert "already has test_sft.jsonl" in result.output
    assert (out / "test_sft.jsonl").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["test_sft.jsonl"]


def test_a_second_run_into_the_same_folder_is_refused(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(saved), "--out", str(out), "--percent", "50").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run(str(saved), "--out", str(out), "--percent", "10", "--splits", "train_sft")
    assert result.exit_code == 2
    assert "train_sft.jsonl, manifest.json" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_out_inside_the_input_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    ultrachat(20, "t").to_json(str(folder / "chats.jsonl"))
    result = run(str(folder), "--out", str(folder / "sub"), "--percent", "50")
    assert result.exit_code == 2
    assert "inside the input dataset" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["chats.jsonl"]


def test_a_corrupt_parquet_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1" + b"\x00not parquet at all" * 50)
    result = run(str(bad), "--out", str(tmp_path / "out"), "--percent", "50")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert "cannot read" in result.output and "broken.parquet" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["./missing", "missing.parquet", "a/b/c"])
def test_a_missing_path_is_a_usage_error(tmp_path: Path, name: str) -> None:
    result = run(name, "--out", str(tmp_path / "out"), "--percent", "5")
    assert result.exit_code == 2
    assert f"no such file or folder: {name}" in result.output


def test_an_unreachable_hub_says_name_may_be_a_local_path(tmp_path: Path) -> None:
    """The default NAME with the Hub offline (as when it cannot be reached): one line, a hint, exit 2."""
    result = run("--out", str(tmp_path / "out"), "--percent", "5")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "cannot reach the Hugging Face Hub for HuggingFaceH4/ultrachat_200k" in result.output
    assert "give its path" in result.output


def test_a_hub_http_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list[str]:
        request = httpx.Request("GET", "https://huggingface.co/api/datasets/someone/chats")
        response = httpx.Response(503, request=request)
        raise huggingface_hub.errors.HfHubHTTPError("503 Service Unavailable", response=response)

    monkeypatch.setattr(datasets, "get_dataset_split_names", fail)
    result = run("someone/chats", "--out", str(tmp_path / "out"), "--percent", "5")
    assert result.exit_code == 2
    assert "cannot reach the Hugging Face Hub for someone/chats" in result.output
    assert "503" in result.output


class FakeBuilder:
    """Stands in for the `datasets` builder of a Hub dataset: serves local splits, records the calls."""

    hash = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, splits: dict[str, Dataset]) -> None:
        self.splits = splits
        self.prepared = False
        self.config = datasets.BuilderConfig(name="default")
        self.info = datasets.DatasetInfo(
            splits=datasets.SplitDict({n: datasets.SplitInfo(n, num_examples=len(d)) for n, d in splits.items()})
        )

    def download_and_prepare(self) -> None:
        self.prepared = True

    def as_dataset(self, split: str) -> Dataset:
        assert self.prepared
        return self.splits[split]


def test_hub_name_uses_the_split_names_and_records_the_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = {"train_sft": ultrachat(40, "t"), "test_sft": ultrachat(20, "e"), "train_gen": ultrachat(20, "g")}
    calls: list[tuple[str, str]] = []

    def split_names(path: str, **kwargs: object) -> list[str]:
        calls.append(("split_names", path))
        return list(splits)

    def builder(path: str, **kwargs: object) -> FakeBuilder:
        calls.append(("builder", path))
        return FakeBuilder(splits)

    monkeypatch.setattr(datasets, "get_dataset_split_names", split_names)
    monkeypatch.setattr(datasets, "load_dataset_builder", builder)
    out = tmp_path / "out"
    result = run("--out", str(out), "--percent", "50", "--splits", "train_sft,test_sft")
    assert result.exit_code == 0, result.output
    assert calls == [("split_names", "HuggingFaceH4/ultrachat_200k"), ("builder", "HuggingFaceH4/ultrachat_200k")]
    m = manifest(out)
    assert (m["source"], m["source_kind"], m["revision"]) == ("HuggingFaceH4/ultrachat_200k", "hub", FakeBuilder.hash)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test_sft.jsonl", "train_sft.jsonl"]


@pytest.mark.parametrize("percent", [1, 5, 10, 25, 33, 50, 99, 100])
def test_take_count_matches_datasets_percent_slicing(tmp_path: Path, percent: int) -> None:
    """`--sample head` takes what the notebook's `split[0%:P%]` took (250 rows: 0.5s round to even)."""
    source = tmp_path / "rows.parquet"
    Dataset.from_dict({"x": list(range(250))}).to_parquet(str(source))
    sliced = datasets.load_dataset("parquet", data_files=str(source), split=f"train[0%:{percent}%]")
    assert take_count(250, percent) == len(sliced)


def test_choose_rows() -> None:
    assert choose_rows(10, 30, Sample.head, None) == range(3)
    picked = choose_rows(1000, 5, Sample.random, 9)
    assert len(picked) == 50 and list(picked) == sorted(set(picked))
    assert picked == choose_rows(1000, 5, Sample.random, 9)
    assert picked != choose_rows(1000, 5, Sample.random, 10)
    assert choose_rows(0, 50, Sample.random, 1) == []


def test_the_cli_does_not_import_datasets() -> None:
    """`datasets` takes a second to import: only `chatft dataset` may pay for it."""
    code = "import sys, shared.entry.cli.app; assert 'datasets' not in sys.modules, 'datasets imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
