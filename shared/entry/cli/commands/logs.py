"""`chatft logs UPLOAD [--follow]`: the upload's fine-tuning job's log, as `az ml job stream` prints it.

UPLOAD names the upload as `chatft status` and `chatft cancel` take it; the log is the job's own (Azure ML: the
pipeline's log and each step's, read from the run history; offline: the training process's output), read through
the backend (shared.flows.job_logs). The log goes to stdout, the lines about it (the target, the job and its studio
link, how it ended) to stderr, so `chatft logs NAME > train.log` keeps the log alone. Exit 0; 1 when the job failed,
the upload has no job yet, or the log cannot be read; 2 when UPLOAD names nothing, the settings, storage or sign-in
fail (as `chatft status`); 130 on Ctrl-C.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.markup import escape

from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE, err, fail
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt
from shared.entry.cli.commands.target_uploads import UploadArg, find_one, read_uploads

EXIT_INTERRUPTED = 130
INTERVALS = {"local": 1.0, "azure": 10.0}
"""Seconds between reads with --follow: the local file is cheap to read, Azure ML's run history is a dozen requests."""


def register(app: typer.Typer) -> None:
    """Add `chatft logs` to the `chatft` app."""

    @app.command("logs")
    def logs(
        upload: UploadArg,
        follow: Annotated[
            bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
        ] = False,
        interval: Annotated[
            float | None,
            typer.Option(
                "--interval", min=0.1, help="--follow: seconds between reads (default 1 offline, 10 on Azure)."
            ),
        ] = None,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """Print the fine-tuning job's log (Azure ML: the pipeline's and each step's, as `az ml job stream`;
        offline: the training process's output). Exit 0; 1 if the job failed or the upload has no job yet; 2 if
        UPLOAD names nothing."""

        outcome = read_uploads(
            settings_file, env, use_azd, lambda uploads: _show(find_one(uploads, upload), upload, follow, interval)
        )
        if isinstance(outcome, Failed):  # said here, not inside read_uploads (which reads any error as storage's)
            fail(outcome.message, outcome.code)
        raise typer.Exit(outcome)


@dataclass(frozen=True)
class Failed:
    """Why the log was not shown, and the exit code."""

    message: str
    code: int = EXIT_REJECTED


def _show(view, query: str, follow: bool, interval: float | None) -> int | Failed:
    """Print the job's log (the target is applied); the exit code, or why not. Nothing past the lookup raises:
    read_uploads would read any error (even typer.Exit, by its context) as a storage failure."""
    import shared.entry.app_wiring
    from shared.domain.shell import chatft
    from shared.flows.job_logs import JobGone, LogPrinter, stream

    if not view.job:
        return Failed(f"no job yet for {query}: it is {view.stage.value} ({view.detail})")
    workspace = _workspace()
    if isinstance(workspace, Failed):
        return workspace
    backend = shared.entry.app_wiring.settings().ml_backend
    job = view.job
    shown: list[bool] = []

    def read():
        log = workspace.job_log(job)
        if log is not None and not shown:
            shown.append(True)
            where = f": {log.studio_url}" if log.studio_url else ""
            err.print(f"[dim]job {escape(job)} ({escape(log.status)}){escape(where)}[/]", highlight=False)
        return log

    def waiting(log) -> None:
        err.print(f"[dim]no log yet ({escape(log.status)}): waiting for the first line…[/]", highlight=False)

    printer = LogPrinter(_write)
    try:
        log = stream(read, printer, follow=follow, interval=interval or INTERVALS.get(backend, 10.0), waiting=waiting)
    except KeyboardInterrupt:
        err.print(f"stopped following; the job goes on: {escape(chatft('status', query))}", highlight=False)
        return EXIT_INTERRUPTED
    except JobGone:
        return Failed(f"job {job} of {query} is not in the {backend} backend any more (its record is gone)", EXIT_USAGE)
    except Exception as exc:
        return Failed(_read_failure(exc, job), EXIT_USAGE if _signed_out(exc) else EXIT_REJECTED)
    return _summary(log, job, query, follow, printer.printed)


def _summary(log, job: str, query: str, follow: bool, printed: int) -> int:
    """One line on stderr after the log: how the job ended, or where it is; the exit code."""
    from shared.domain.shell import chatft
    from shared.flows.job_logs import ended

    status = escape(log.status)
    if not ended(log.status):
        if not printed:
            err.print(f"job {escape(job)} has no log yet ({status})", highlight=False)
        more = f": {escape(chatft('logs', query, '--follow'))} prints the rest as it comes" if not follow else ""
        err.print(f"[dim]job {escape(job)} is {status}{more}[/]", highlight=False)
        return EXIT_ACCEPTED
    failed = log.status.strip().lower() == "failed"
    colour = "red" if failed else "green" if log.status.strip().lower() == "completed" else "yellow"
    none = "; it wrote no log" if not printed else ""
    err.print(f"[{colour}]job {escape(job)} {status}[/]{none}", highlight=False)
    return EXIT_REJECTED if failed else EXIT_ACCEPTED


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _workspace():  # -> Workspace | Failed
    """The backend the target's settings name, or why there is none."""
    import shared.entry.app_wiring
    from shared.flows.doctor import missing_workspace_settings

    settings = shared.entry.app_wiring.settings()
    if missing := missing_workspace_settings(settings):  # before azure-ai-ml's own wording
        return Failed(missing, EXIT_USAGE)
    workspace = shared.entry.app_wiring.workspace()
    if workspace is None:
        return Failed(
            "ML_BACKEND=none in these settings: no backend holds the job's log (set ML_BACKEND to azure or local)",
            EXIT_USAGE,
        )
    return workspace


def _signed_out(exc: Exception) -> bool:
    from shared.azure.identity import sign_in_failure

    return sign_in_failure(exc) is not None


def _read_failure(exc: Exception, job: str) -> str:
    """A failure to read the log as one line: sign-in says how to sign in, a file says which, Azure says what."""
    from shared.azure.identity import sign_in_failure
    from shared.flows.doctor import WORKSPACE_FIX, is_sdk_validation

    if (signed_out := sign_in_failure(exc, "Azure ML")) is not None:
        return signed_out
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"cannot read the log of job {job}: {exc.filename}: {exc.strerror or exc}"
    if is_sdk_validation(exc):
        return f"the workspace settings are incomplete or invalid: {WORKSPACE_FIX}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"cannot read the log of job {job}: {type(exc).__name__}: {first}"
