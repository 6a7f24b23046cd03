"""`chatft`: chat fine-tuning data in, a live Azure ML endpoint out.

Check a JSONL file of conversations as the ingest function will, upload it, follow it through training,
evaluation and deployment, read its report, ask the endpoint, and keep, retire or redeploy it; `chatft dev`
runs the whole loop on this machine. Exit codes: 0 success or accepted, 1 rejected or failed, 2 usage error.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.prepare import OutputConflict, OutputError, SplitFiles, check_outputs
from shared.domain.chatdata.report import Report
from shared.domain.chatdata.split import SplitFractions
from shared.domain.chatdata.streams import buffered, file_chunks
from shared.domain.chatdata.validator import RowSink, validate_stream
from shared.entry.cli.commands import budget, cancel, dataset, endpoint_actions, retire_all, status, upload
from shared.entry.cli.commands import logs as logs_command
from shared.entry.cli.commands import report as report_command
from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE, err, fail, open_input, out
from shared.entry.cli.commands.validation_report import print_report
from shared.settings import SettingsError, validation_options

PROGRESS_MIN_BYTES = 4 << 20
app = typer.Typer(no_args_is_help=True, help=__doc__)

PANELS = {
    "Check and prepare data": ("validate", "prepare", "dataset"),
    "Uploads": ("upload", "status", "report", "logs", "cancel", "budget"),
    "Endpoints": ("score", "keep", "release", "retire", "redeploy", "retire-all"),
    "Offline": ("dev", "demo"),
    "Setup": ("doctor", "target"),
}
"""`chatft --help` lists each command under the task it serves; a command missing here lands in "Commands"."""


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.print(f"chatft {version('chatft')}", markup=False, highlight=False)
        except PackageNotFoundError:
            out.print("chatft (not installed: run `pip install -e .`)", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _top(
    _: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print chatft's version and exit.")
    ] = False,
) -> None:
    """Top-level options only; each command does its own work."""


StrictOpt = Annotated[bool, typer.Option("--strict", help="Non-alternating user/assistant turns are errors.")]
SplitOpt = Annotated[
    Optional[str], typer.Option("--split", help="train,validation,test fractions, e.g. 0.9,0.05,0.05.")
]
TokensOpt = Annotated[Optional[int], typer.Option("--max-seq-tokens", min=1, help="Warn above this estimated length.")]
MinTrainOpt = Annotated[Optional[int], typer.Option("--min-train-rows", min=1, help="Reject if train gets fewer rows.")]


def _options(
    strict: bool, split: str | None, max_seq_tokens: int | None, min_train_rows: int | None, drop_invalid: bool = False
) -> ValidationOptions:
    try:
        base = validation_options()
        changes: dict[str, object] = {
            "strict": strict or base.strict,
            "drop_invalid": drop_invalid or base.drop_invalid,
        }
        if split is not None:
            changes["fractions"] = SplitFractions.parse(split)
    except (SettingsError, ValueError) as exc:
        fail(str(exc))
    if max_seq_tokens is not None:
        changes["max_seq_tokens"] = max_seq_tokens
    if min_train_rows is not None:
        changes["min_train_rows"] = min_train_rows
    return dataclasses.replace(base, **changes)


def _run(path: Path, options: ValidationOptions, sink: RowSink | None, show_progress: bool) -> Report:
    with open_input(path) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            if not show_progress or size < PROGRESS_MIN_BYTES:
                return validate_stream(f, options, source=str(path), sink=sink)
            columns = (
                TextColumn("validating"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("validate", total=size)
                stream = buffered(file_chunks(f), tap=lambda chunk: progress.advance(task, len(chunk)))
                return validate_stream(stream, options, source=str(path), sink=sink)
        except OSError as exc:  # e.g. the disk failed or the file vanished while being read
            fail(f"cannot read {path}: {exc.strerror or exc}")


@app.command()
def validate(
    path: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    strict: StrictOpt = False,
    split: SplitOpt = None,
    max_seq_tokens: TokensOpt = None,
    min_train_rows: MinTrainOpt = None,
) -> None:
    """Validate a JSONL file of chat conversations."""
    report = _run(path, _options(strict, split, max_seq_tokens, min_train_rows), None, show_progress=True)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
        sys.stdout.flush()
    else:
        print_report(report)
    raise typer.Exit(EXIT_ACCEPTED if report.valid else EXIT_REJECTED)


@app.command()
def prepare(
    path: Path,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train/validation/test.jsonl and the report.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print report.json's object on stdout (with `prepared`: the files written).")
    ] = False,
    strict: StrictOpt = False,
    drop_invalid: Annotated[
        bool, typer.Option("--drop-invalid", help="Write only valid rows; list every dropped line.")
    ] = False,
    split: SplitOpt = None,
    max_seq_tokens: TokensOpt = None,
    min_train_rows: MinTrainOpt = None,
) -> None:
    """Validate, normalise and split a JSONL file; write the split files only if it is accepted.

    Never writes over its input: an output that would land on it is refused before anything is read.
    """
    options = _options(strict, split, max_seq_tokens, min_train_rows, drop_invalid)
    try:
        check_outputs(out_dir, path)
        with SplitFiles(out_dir) as sink:
            report = _run(path, options, sink, show_progress=True)
            written = sink.targets() if report.valid else {}
            report.extra["prepared"] = {name: str(p) for name, p in written.items()}
            reports = {
                "report.json": orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2),
                "report.md": report.to_markdown().encode(),
            }
            sink.commit(reports, splits=report.valid)  # all at once: a full disk leaves nothing half there
    except (OutputConflict, OutputError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
        sys.stdout.flush()
        raise typer.Exit(EXIT_ACCEPTED if report.valid else EXIT_REJECTED)
    print_report(report)
    out.print(
        f"wrote {', '.join(str(p) for p in written.values()) or 'no split files'}; report in {out_dir / 'report.md'}"
    )
    raise typer.Exit(EXIT_ACCEPTED if report.valid else EXIT_REJECTED)


def main() -> None:
    """Run the command line; an unexpected failure is one line (the traceback only with CHATFT_DEBUG=1).

    Usage errors (exit 2) and Ctrl-C are handled by typer's standalone mode.
    """
    try:
        app()
    except Exception as exc:
        if os.environ.get("CHATFT_DEBUG"):
            raise
        from shared.azure.identity import sign_in_failure

        if (signed_out := sign_in_failure(exc)) is not None:
            err.print(f"[red]error:[/red] {escape(signed_out)}")
            sys.exit(EXIT_USAGE)
        err.print(f"[red]error:[/red] {escape(f'{type(exc).__name__}: {exc}')} (set CHATFT_DEBUG=1 for details)")
        sys.exit(EXIT_USAGE)


class DemoTrainer(str, Enum):
    """LOCAL_TRAINERS (shared.settings), as `chatft demo --trainer` and `chatft dev --trainer` take them."""

    retrieval = "retrieval"
    lora = "lora"


TrainerOpt = Annotated[
    Optional[DemoTrainer],
    typer.Option(
        "--trainer",
        help="LOCAL_TRAINER for this run: retrieval (the fast stand-in) or lora (needs make setup-train).",
    ),
]


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the endpoint alive (janitor dry run) until Ctrl-C.")
    ] = False,
    sample: Annotated[Path, typer.Option("--sample", help="The JSONL file to upload.")] = Path(
        "samples/chat_sample.jsonl"
    ),
    port: Annotated[int, typer.Option("--port", help="Event Grid webhook port (0: any free port).")] = 0,
    trainer: TrainerOpt = None,
) -> None:
    """The whole loop offline: upload -> validate -> train -> event -> model -> live endpoint -> janitor.

    Each run has its own Azurite and its own state folder (.chatft/runs/<id>): runs never share state."""
    from rich.markup import escape

    from shared.local.procs import check_interrupt, deferred_interrupts

    try:
        with deferred_interrupts():
            from shared.entry.offline.demo import run_demo

            check_interrupt()
            code = run_demo(sample, console=out, keep=keep, port=port, trainer=trainer.value if trainer else None)
    except KeyboardInterrupt:
        err.print("\ninterrupted: the host, scoring servers, training jobs and Azurite are stopped")
        raise typer.Exit(130) from None
    except Exception as exc:  # DemoError, a bad setting, an unreadable file: one line, never a traceback
        detail = str(exc) if isinstance(exc, (RuntimeError, OSError)) else f"{type(exc).__name__}: {exc}"
        err.print(f"[red]demo failed:[/red] {escape(detail)}")
        raise typer.Exit(EXIT_REJECTED) from None
    raise typer.Exit(code)


def lora_refusal(overrides: dict[str, str]) -> str | None:
    """Why the session's LOCAL_TRAINER=lora cannot train here (the extra, LOCAL_BASE_MODEL), said before anything
    starts, as the demo and preflight say it; None for the retrieval stand-in or a LoRA setup that can run."""
    from shared.local.host import load_local_settings
    from shared.local.trainers import LORA, lora_problem

    chosen = load_local_settings(overrides=overrides)
    if chosen.get("LOCAL_TRAINER", "").strip() != LORA:
        return None
    problem = lora_problem(chosen.get("LOCAL_BASE_MODEL", "tiny").strip() or "tiny")
    return str(problem) if problem else None


@app.command()
def dev(
    port: Annotated[int, typer.Option("--port", help="Port of the Event Grid webhook, as `func start` uses.")] = 7071,
    trainer: TrainerOpt = None,
) -> None:
    """Host function_app like `func start` (blob trigger, Event Grid webhook, timers) with Azurite.

    Prints the storage connection string, the upload container and the webhook addresses."""
    import errno
    import time

    from rich.markup import escape

    from shared.local.procs import check_interrupt, deferred_interrupts

    problem = None
    try:
        with deferred_interrupts():
            from shared.entry.offline.dev_session import DevSession

            check_interrupt()
            overrides = {"LOCAL_TRAINER": trainer.value} if trainer else {}
            if refused := lora_refusal(overrides):
                raise RuntimeError(refused)
            state = Path(".chatft")
            with DevSession(
                overrides=overrides,
                port=port,
                azurite_location=state / "azurite",
                say=lambda line: out.print(line, markup=False, highlight=False),
                log_file=state / "host.log",
            ) as session:
                for line in session.describe():
                    out.print(line, soft_wrap=True, markup=False, highlight=False)
                while not problem:
                    check_interrupt()
                    time.sleep(0.2)
                    problem = session.problem()
    except KeyboardInterrupt:
        out.print("stopped: the host, scoring servers, training jobs and the Azurite started here are stopped")
        return
    except Exception as exc:  # a busy port, a bad setting: one line, never a traceback
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            problem = f"port {port} is in use (another chatft dev or func start?): choose one with --port"
        else:
            problem = str(exc) if isinstance(exc, (RuntimeError, OSError)) else f"{type(exc).__name__}: {exc}"
    err.print(f"[red]dev failed:[/red] {escape(str(problem))}")
    raise typer.Exit(EXIT_REJECTED)


@app.command("score")
def score_prompt(
    prompt: str,
    state: Annotated[Optional[Path], typer.Option("--state", help="LOCAL_STATE_DIR of the running session.")] = None,
    endpoint: Annotated[
        Optional[str], typer.Option("--endpoint", help="Endpoint name (default: the newest live one).")
    ] = None,
    settings_file: Annotated[Optional[Path], typer.Option("--settings", help="A local.settings.json to read.")] = None,
    env: Annotated[
        Optional[str], typer.Option("--env", help="The azd environment (.azure/<ENV>/.env) to read.")
    ] = None,
    use_azd: Annotated[bool, typer.Option("--azd", help="Read azd's default environment.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object on stdout: endpoint, deployment, scoring_uri, input_shape, request (the body "
            "sent), answer, latency_ms.",
        ),
    ] = False,
) -> None:
    """Ask a live endpoint one question: a local one (from `chatft dev` or `chatft demo --keep`), or with
    --env/--settings/--azd one of that chatft's (Azure: its key or Entra token, as the endpoint's auth mode says).

    Without --state it looks in every local state folder (.chatft, .chatft/runs/*) for an endpoint
    whose scoring server is alive and answers /health, newest first."""
    from shared.entry.cli.commands.score import score_local, score_target

    if settings_file is not None or env is not None or use_azd:
        score_target(prompt, endpoint, settings_file, env, use_azd, as_json)
        return
    score_local(prompt, state, endpoint, as_json)


@app.command()
def doctor(
    env: Annotated[
        Optional[str],
        typer.Option("--env", help="The azd environment to read (.azure/<ENV>/.env); without a name, azd's default."),
    ] = None,
    use_azd: Annotated[bool, typer.Option("--azd", help="Read azd's default environment.")] = False,
    settings_file: Annotated[
        Optional[Path], typer.Option("--settings", help="A local.settings.json to read instead.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON object: checks (name, ok, detail, fix), passed, failed."),
    ] = False,
) -> None:
    """Check that a deployment is wired right: one line per check, with the exact fix for each failure.

    Read-only. Runs as you (DefaultAzureCredential). Exit 0 only if every check passes."""
    from shared.entry.cli.commands.doctor import DoctorSetupError, doctor_env, run

    try:
        if settings_file is None and env is None and not use_azd:  # the target every other command uses
            from shared.entry.cli.commands.target import TargetError, resolve

            try:
                target = resolve()
            except TargetError as exc:
                raise DoctorSetupError(str(exc)) from exc
            err.print(f"[dim]using {escape(target.source)}[/]", highlight=False)
            checks = run(target.env)
        else:
            checks = run(doctor_env(env, settings_file, use_azd or env is not None))
    except DoctorSetupError as exc:
        err.print(f"[red]doctor:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    failed = sum(not c.ok for c in checks)
    if as_json:
        doc = {
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks],
            "passed": len(checks) - failed,
            "failed": failed,
        }
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        sys.stdout.flush()
        raise typer.Exit(0 if not failed else EXIT_REJECTED)
    for check in checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        out.print(f"{mark} {check.name:<28} {escape(check.detail)}", soft_wrap=True)
        if check.fix:
            out.print(f"    [yellow]fix:[/] {escape(check.fix)}", soft_wrap=True)
    out.print(f"\n{len(checks) - failed} of {len(checks)} checks passed" + ("" if not failed else f"; {failed} to fix"))
    raise typer.Exit(0 if not failed else EXIT_REJECTED)


# The commands that act on an upload's life (shared/entry/cli/commands/): each module registers its own.
for _commands in (dataset, upload, status, endpoint_actions, cancel, budget, retire_all):
    _commands.register(app)
report_command.register(app)
logs_command.register(app)


def _place_commands() -> None:
    """Put every registered command in its PANELS panel, panels in PANELS order (typer shows them in the order of
    their first command; it names a command after its function, _ as -)."""
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    order = list(PANELS)
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        info.rich_help_panel = panel_of.get(name, info.rich_help_panel)
    app.registered_commands.sort(key=lambda i: order.index(i.rich_help_panel) if i.rich_help_panel in order else 99)


_place_commands()
