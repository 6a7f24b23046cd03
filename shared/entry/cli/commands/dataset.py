"""`chatft dataset`: take P percent of every split of a chat dataset and write `{split}.jsonl` files
that pass `chatft validate`, plus a manifest saying exactly what was taken.

This is the notebook's helper (`get_dataset_split_names`, then `load_dataset(name, split=f"{s}[0%:{P}%]")`
for each split) as a command, but every row goes through the project's own validator, so what it
writes is what the ingest function accepts. `datasets` is imported only inside the command: it
takes about a second to import, and no other command needs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shared.domain.chatdata.issues import Code
from shared.domain.chatdata.layouts import Layout, UnknownLayout, detect_layout, layout_row
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.prepare import OutputError, open_output
from shared.domain.chatdata.report import Report
from shared.domain.chatdata.streams import buffered
from shared.domain.chatdata.validator import FILE_LEVEL_ERRORS, validate_stream
from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, err, fail, out
from shared.settings import SettingsError, validation_options

DEFAULT_NAME = "HuggingFaceH4/ultrachat_200k"
MANIFEST = "manifest.json"
FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".arrow": "arrow"}
"""Single data files we read, by suffix, and the `datasets` builder that reads each."""
BATCH = 1000
PARQUET_BATCH = 10_000
"""Rows per batch the parquet builder reads (a batch is sliced from its row group, so this costs no copies)."""
EXAMPLES = 5
"""Dropped rows quoted in the manifest per split (all of them are counted)."""
UNENCODABLE = "unencodable-value"
"""A row holding a value JSON has no form for (bytes, a date, a lone surrogate): dropped before validation."""
_SAFE_SPLIT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class Sample(str, Enum):
    head = "head"
    random = "random"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the rows come from: a Hub name, a `save_to_disk` folder, or data files (a folder or one file)."""

    label: str
    kind: str
    """`hub`, `saved` or `files`."""
    path: Path | None = None
    builder: str | None = None
    """For a single file: the `datasets` builder (`parquet`, `json`, `arrow`) that reads it."""


@dataclasses.dataclass
class Loaded:
    splits: dict[str, Any]
    """Split name -> `datasets.Dataset`, only the selected splits."""
    available: list[str]
    revision: str | None = None
    """The Hub commit the rows came from (None for local data)."""
    fingerprint: str | None = None
    """`datasets`' hash of the local data files (None for the Hub and saved folders)."""


class _OneFile:
    """A RowSink writing every accepted row to one file, hashing as it goes.

    The validator splits rows into train/validation/test by content hash; here each source split
    is one output file, so the split index is ignored and so are its moves between splits.
    A failed write (or the flush when closing: a full disk fails both) is OutputError naming `shown`,
    the output as the user knows it."""

    def __init__(self, path: Path, shown: Path) -> None:
        self.path, self.shown = path, shown
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self._failed = False
        try:
            self._file = open_output(path)
        except OSError as exc:
            raise OutputError(shown, exc) from exc

    def write(self, split: int, row: bytes) -> None:
        try:
            self._file.write(row)
        except OSError as exc:
            self._failed = True
            raise OutputError(self.shown, exc) from exc
        self.sha256.update(row)
        self.bytes += len(row)

    def move_train_rows(self, moves: dict[int, int]) -> None:
        """Nothing moves: all rows are in the one file whatever split the validator gave them."""

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            if not self._failed:  # after a failed write, that failure is the one to tell
                raise OutputError(self.shown, exc) from exc


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `chatft` app."""
    app.command("dataset")(dataset)


def dataset(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for {split}.jsonl and manifest.json (new files only).")
    ],
    percent: Annotated[
        float, typer.Option("--percent", help="Percent of each split to take: 0 < P <= 100.", show_default=False)
    ],
    name: Annotated[
        str,
        typer.Argument(
            help="A Hugging Face Hub dataset, or a local path: a save_to_disk folder, a folder of data files, "
            "or one .parquet/.json/.jsonl file."
        ),
    ] = DEFAULT_NAME,
    splits: Annotated[
        str | None, typer.Option("--splits", help="Only these splits, comma-separated (default: every split).")
    ] = None,
    sample: Annotated[
        Sample, typer.Option("--sample", help="head: the first rows (as the notebook); random: a seeded sample.")
    ] = Sample.head,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed for --sample random (default: a new one, kept in the manifest).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print manifest.json's object on stdout.")] = False,
) -> None:
    """Take PERCENT of each split of a chat dataset and write {split}.jsonl files that pass `chatft validate`.

    A split of N rows gives round(N * P / 100) rows, as `datasets` reads `split[0%:P%]` (the notebook's
    helper). Rows the validator rejects are dropped and counted in manifest.json; a split left
    with no rows gets no file. Exit 0: files written; 1: nothing usable; 2: usage or I/O error."""
    if not 0 < percent <= 100:  # also refuses nan
        fail(f"--percent must be more than 0 and at most 100, got {percent:g}")
    if seed is not None and sample is not Sample.random:
        fail("--seed only applies to --sample random")
    if sample is Sample.random and seed is None:
        seed = secrets.randbelow(1 << 32)
    wanted = _parse_splits(splits)
    source = _source(name)
    _check_out_dir(out_dir, source)
    try:
        options = dataclasses.replace(validation_options(), drop_invalid=True)
    except SettingsError as exc:
        fail(str(exc))

    import datasets  # slow to import: only this command needs it

    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # failures are reported as one line below
    if source.kind == "hub":
        datasets.enable_progress_bars()  # a download can take minutes: let `datasets` show it
    else:
        datasets.disable_progress_bars()
    available = _split_names(datasets, source)
    selected = _select(available, wanted, source)
    _refuse_existing(out_dir, [f"{s}.jsonl" for s in selected])
    loaded = _load(datasets, source, selected, available)
    layouts = _layouts(loaded)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    except OSError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    try:
        entries = _write_splits(loaded, layouts, work, out_dir, percent, sample, seed, options, source)
        written = [s for s, e in entries.items() if e["file"]]
        if not written:
            _reject(entries)
        manifest = {
            "source": source.label,
            "source_kind": source.kind,
            "revision": loaded.revision,
            "fingerprint": loaded.fingerprint,
            "percent": percent,
            "sample": sample.value,
            "seed": seed,
            "rounding": "round(rows * percent / 100), as datasets reads split[0%:P%]",
            "datasets_version": datasets.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "splits": entries,
        }
        _commit(work, out_dir, written, manifest)
    except OutputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # nothing was written: leave no empty folder behind
    if as_json:
        import sys

        sys.stdout.buffer.write(orjson.dumps(manifest) + b"\n")
        sys.stdout.flush()
        raise typer.Exit(EXIT_ACCEPTED)
    _print_summary(entries, out_dir)
    raise typer.Exit(EXIT_ACCEPTED)


def take_count(rows: int, percent: float) -> int:
    """How many rows P percent of a split is: `datasets`' 'closest' rounding of `split[0%:P%]`, so
    `--sample head` takes exactly the rows the notebook's helper took."""
    return min(rows, round(percent * rows / 100.0))


def choose_rows(rows: int, percent: float, sample: Sample, seed: int | None) -> Sequence[int]:
    """The row indices to take, in the split's order. Random: `random.Random(seed).sample`, which is
    the same for the same seed and split size on every machine (it does not use numpy)."""
    count = take_count(rows, percent)
    if sample is Sample.head:
        return range(count)
    return sorted(random.Random(seed).sample(range(rows), count))


def _parse_splits(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not names:
        fail("--splits needs at least one split name, e.g. --splits train_sft,test_sft")
    return names


def _source(name: str) -> Source:
    """A local path if one exists by that name; else a Hub name, unless it can only be a path."""
    if not name.strip():
        fail("NAME is empty: give a Hub dataset name or a local path")
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # `~user` with no such user
        path = Path(name)
    if path.exists():
        if path.is_dir():
            saved = (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
            return Source(str(path.resolve()), "saved" if saved else "files", path)
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if not path.is_file() or builder is None:
            fail(
                f"{name} is not a dataset: give a Hub name, a folder (save_to_disk or data files), "
                f"or a {'/'.join(FILE_BUILDERS)} file"
            )
        return Source(str(path.resolve()), "files", path, builder)
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or path.suffix.lower() in FILE_BUILDERS:
        fail(f"no such file or folder: {name}")
    return Source(name, "hub")


def _check_out_dir(out_dir: Path, source: Source) -> None:
    """--out must be a folder, and not the input folder or inside it (the files would join the input data)."""
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir} is a file, not a folder")
    if source.path is not None and source.path.is_dir():
        target, data = out_dir.expanduser().resolve(), source.path.resolve()
        if target == data or data in target.parents:
            fail(f"--out {out_dir} is inside the input dataset {source.path}: choose another folder")


def _refuse_existing(out_dir: Path, names: list[str]) -> None:
    """Never overwrite: an existing output (or manifest) is refused before anything is downloaded."""
    taken = [n for n in (*names, MANIFEST) if os.path.lexists(out_dir / n)]
    if taken:
        fail(
            f"{out_dir} already has {', '.join(taken)}: remove them or choose another --out folder "
            "(chatft dataset never overwrites files)"
        )


def _split_names(datasets: Any, source: Source) -> list[str]:
    try:
        if source.kind == "saved":
            assert source.path is not None
            return list(_saved(datasets, source.path))
        path, data_files = _builder_args(source)
        return list(datasets.get_dataset_split_names(path, data_files=data_files))
    except Exception as exc:  # `datasets` raises many kinds; every one is one line, never a traceback
        _load_error(exc, source)


def _saved(datasets: Any, path: Path) -> dict[str, Any]:
    """A `save_to_disk` folder as {split: Dataset, or None for a split with no rows}; a single saved
    Dataset is its own split (or `train`)."""
    try:
        data = datasets.load_from_disk(str(path))
    except Exception:
        if not (path / "dataset_dict.json").is_file():
            raise
        # `datasets` 4 saves a split with no rows but cannot load it back (IndexError): load split by split
        names = orjson.loads((path / "dataset_dict.json").read_bytes())["splits"]
        return {str(n): None if _no_rows(path / n) else datasets.load_from_disk(str(path / n)) for n in names}
    if isinstance(data, datasets.DatasetDict):
        return dict(data)
    return {str(data.split or "train"): data}


def _no_rows(split_dir: Path) -> bool:
    """A saved split with no data files: it has no rows."""
    try:
        return orjson.loads((split_dir / "state.json").read_bytes()).get("_data_files") == []
    except (OSError, ValueError, AttributeError):
        return False


def _builder_args(source: Source) -> tuple[str, str | None]:
    if source.builder is not None:
        return source.builder, source.label
    return (source.label if source.kind == "hub" else str(source.path)), None


def _select(available: list[str], wanted: list[str] | None, source: Source) -> list[str]:
    if not available:
        err.print(f"[red]rejected:[/red] {escape(source.label)} has no splits", highlight=False)
        raise typer.Exit(EXIT_REJECTED)
    if wanted is not None:
        unknown = [s for s in wanted if s not in available]
        if unknown:
            fail(f"unknown split(s) {', '.join(map(repr, unknown))}: {source.label} has {', '.join(available)}")
    selected = wanted or available
    for name in selected:
        if not _SAFE_SPLIT.fullmatch(name):
            fail(f"split {name!r} cannot be a file name; choose other splits with --splits")
    return selected


def _load(datasets: Any, source: Source, selected: list[str], available: list[str]) -> Loaded:
    try:
        if source.kind == "saved":
            assert source.path is not None
            saved = _saved(datasets, source.path)
            return Loaded({s: saved[s] for s in selected}, available)
        path, data_files = _builder_args(source)
        builder = datasets.load_dataset_builder(path, data_files=data_files)
        if getattr(builder.config, "batch_size", 0) is None and type(builder.config).__name__ == "ParquetConfig":
            # unset, the parquet builder reads in batches of the first row group's row count: 0 for an
            # empty file, which Arrow refuses ("BatchSize must be greater than 0")
            builder.config.batch_size = PARQUET_BATCH
        builder.download_and_prepare()
        splits = {s: None if _no_examples(builder, s) else builder.as_dataset(split=s) for s in selected}
        if source.kind == "hub":
            return Loaded(splits, available, revision=builder.hash)
        return Loaded(splits, available, fingerprint=builder.hash)
    except Exception as exc:
        _load_error(exc, source)


def _no_examples(builder: Any, split: str) -> bool:
    """A split generated with no rows: `datasets` refuses to read it back ("corresponds to no data")."""
    info = (builder.info.splits or {}).get(split)
    return info is not None and not info.num_examples


def _load_error(exc: BaseException, source: Source) -> NoReturn:
    """One line for any failure to read the dataset; for a Hub name, a hint that it may be a local path."""
    detail = _detail(exc)
    if source.kind != "hub":
        fail(f"cannot read {source.label}: {detail}")
    hint = f"if {source.label} is a local dataset, give its path: no file or folder by that name exists here"
    names = {type(e).__name__ for e in _chain(exc)}
    if any(isinstance(e, (ConnectionError, TimeoutError)) for e in _chain(exc)) or names & _NETWORK_ERRORS:
        fail(f"cannot reach the Hugging Face Hub for {source.label} ({detail}); {hint}")
    fail(f"cannot load {source.label} from the Hugging Face Hub: {detail}; {hint}")


_NETWORK_ERRORS = {"HTTPError", "HfHubHTTPError", "ConnectError", "TimeoutException", "OfflineModeIsEnabled"}
"""httpx/requests/huggingface_hub errors, matched by name so that no HTTP library is imported to catch them."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _detail(exc: BaseException) -> str:
    """The most specific message in the exception chain (`datasets` wraps the real cause), on one line."""
    parts = []
    for e in _chain(exc):
        text = " ".join(str(e).split())
        parts.append(f"{type(e).__name__}: {text}" if text else type(e).__name__)
    detail = parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[-1]})"
    return detail if len(detail) <= 500 else detail[:499] + "…"


def _layouts(loaded: Loaded) -> dict[str, Layout]:
    """Every selected split's layout, before anything is written: an unknown one rejects the run."""
    found = {}
    for split, data in loaded.splits.items():
        if data is None:
            continue  # no rows: nothing to map
        try:
            found[split] = detect_layout(data.column_names)
        except UnknownLayout as exc:
            others = "" if len(loaded.splits) == 1 else "; leave this split out with --splits"
            err.print(f"[red]rejected:[/red] split {escape(split)}: {escape(str(exc))}{others}", highlight=False)
            raise typer.Exit(EXIT_REJECTED) from None
    return found


def _write_splits(
    loaded: Loaded,
    layouts: dict[str, Layout],
    work: Path,
    out_dir: Path,
    percent: float,
    sample: Sample,
    seed: int | None,
    options: ValidationOptions,
    source: Source,
) -> dict[str, dict[str, Any]]:
    """Validate and write each split into `work`; return its manifest entries."""
    chosen = {s: choose_rows(len(d) if d is not None else 0, percent, sample, seed) for s, d in loaded.splits.items()}
    entries: dict[str, dict[str, Any]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        for split, data in loaded.splits.items():
            rows = chosen[split]
            if data is None:
                entries[split] = {**_entry(None, 0, 0), "fingerprint": None}
                continue
            task = progress.add_task(f"writing {split}.jsonl", total=len(rows))
            try:
                entries[split] = _write_split(
                    data,
                    layouts[split],
                    rows,
                    (work, out_dir),
                    split,
                    options,
                    lambda n, t=task: progress.advance(t, n),
                )
            except OutputError:
                raise  # reported by the caller
            except Exception as exc:  # the input side: a corrupt file read lazily, a type Arrow cannot convert
                fail(f"cannot read split {split} of {source.label}: {_detail(exc)}")
            entries[split]["fingerprint"] = getattr(data, "_fingerprint", None)
    return entries


def _write_split(
    data: Any,
    layout: Layout,
    rows: Sequence[int],
    folders: tuple[Path, Path],
    split: str,
    options: ValidationOptions,
    advance: Callable[[int], object],
) -> dict[str, Any]:
    """Validate and write one split into the work folder (`folders`: work, out_dir)."""
    entry = _entry(layout, len(data), len(rows))
    if not rows:
        return entry
    unencodable = [0]
    work, out_dir = folders
    sink = _OneFile(work / f"{split}.jsonl", out_dir / f"{split}.jsonl")
    try:
        lines = _encoded(data.select_columns(list(layout.columns)).select(rows), layout, unencodable, advance)
        report = validate_stream(buffered(lines), options, source=split, sink=sink)
    finally:
        sink.close()
    written = sum(report.split_counts)
    errors = {code.value: n for code, n in sorted(report.errors.totals.items()) if code not in FILE_LEVEL_ERRORS}
    if unencodable[0]:
        errors[UNENCODABLE] = unencodable[0]
    entry.update(
        rows_written=written,
        rows_dropped=report.dropped.count + unencodable[0],
        errors_by_code=errors,
        warnings_by_code={code.value: n for code, n in sorted(report.warnings.totals.items())},
        dropped_examples=_examples(report, rows),
        too_few_for_validate=Code.TOO_FEW_CONVERSATIONS in report.errors.totals and written > 0,
    )
    if written:
        entry.update(file=f"{split}.jsonl", bytes=sink.bytes, sha256=sink.sha256.hexdigest())
    return entry


def _entry(layout: Layout | None, rows: int, read: int) -> dict[str, Any]:
    """A split's manifest entry before anything is written."""
    return {
        "layout": layout.name if layout else None,
        "column": layout.column if layout else None,
        "rows_in_split": rows,
        "rows_read": read,
        "rows_written": 0,
        "rows_dropped": 0,
        "file": None,
        "bytes": 0,
        "sha256": None,
    }


def _encoded(data: Any, layout: Layout, unencodable: list[int], advance: Callable[[int], object]) -> Iterator[bytes]:
    """JSONL chunks of chat rows, a batch at a time. A row JSON cannot hold becomes a blank line
    (the validator skips blank lines), so validator line N is still the N-th row read."""
    for batch in data.iter(batch_size=BATCH):
        values = batch[layout.column]
        chunk = []
        for i in range(len(values)):
            row = {c: batch[c][i] for c in layout.columns}
            try:
                chunk.append(orjson.dumps(layout_row(layout, row), option=orjson.OPT_PASSTHROUGH_DATETIME) + b"\n")
            except TypeError:  # bytes, a date, a lone surrogate, an int past 64 bits
                unencodable[0] += 1
                chunk.append(b"\n")
        advance(len(values))
        yield b"".join(chunk)


def _examples(report: Report, rows: Sequence[int]) -> list[dict[str, Any]]:
    """The first dropped rows, by their row index in the source split."""
    found = []
    for f in report.errors.sorted_examples():
        if f.code in FILE_LEVEL_ERRORS or not 1 <= f.line <= len(rows):
            continue
        found.append({"row": rows[f.line - 1], "code": f.code.value, "path": f.path, "message": f.message})
    found.sort(key=lambda e: e["row"])
    return found[:EXAMPLES]


def _reject(entries: dict[str, dict[str, Any]]) -> NoReturn:
    """Nothing usable in any split: say why per split, write nothing."""
    err.print("[red]rejected:[/red] no usable rows in any split; nothing written", highlight=False)
    for split, e in entries.items():
        if not e["rows_read"]:
            why = f"{e['rows_in_split']} rows in the split, so this percent takes none"
        else:
            codes = ", ".join(f"{c} {n}" for c, n in e.get("errors_by_code", {}).items())
            why = f"all {e['rows_read']} rows read were dropped ({codes})"
        err.print(f"  {escape(split)}: {escape(why)}", highlight=False)
    raise typer.Exit(EXIT_REJECTED)


def _commit(work: Path, out_dir: Path, written: list[str], manifest: dict[str, Any]) -> None:
    """Move the finished files in, the manifest written beside them first (a full disk then leaves no output
    half there); outputs that appeared meanwhile are refused, never overwritten."""
    try:
        with open_output(work / MANIFEST) as f:
            f.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        raise OutputError(out_dir / MANIFEST, exc) from exc
    _refuse_existing(out_dir, [f"{s}.jsonl" for s in written])
    for name in (*(f"{split}.jsonl" for split in written), MANIFEST):
        (work / name).replace(out_dir / name)


def _print_summary(entries: dict[str, dict[str, Any]], out_dir: Path) -> None:
    for split, e in entries.items():
        line = f"{escape(split)}: took {e['rows_read']} of {e['rows_in_split']} rows"
        if e["file"]:
            line += f", wrote {e['rows_written']} to {escape(str(out_dir / e['file']))}"
        else:
            line += ", no file (no usable rows)"
        if e["rows_dropped"]:
            codes = ", ".join(f"{c} {n}" for c, n in e["errors_by_code"].items())
            line += f", dropped {e['rows_dropped']} ({escape(codes)})"
        out.print(line, highlight=False)
        if e.get("too_few_for_validate"):
            err.print(
                f"[yellow]warning:[/yellow] {escape(split)}.jsonl has {e['rows_written']} rows, too few for "
                "`chatft validate` (see MIN_TRAIN_ROWS); a larger --percent gives more",
                highlight=False,
            )
    out.print(f"manifest: {escape(str(out_dir / MANIFEST))}", highlight=False)
