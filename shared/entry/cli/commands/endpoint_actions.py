"""`chatft keep | release | retire | redeploy ENDPOINT-or-UPLOAD`: a person's say over one endpoint's life.

The logic is shared.flows.endpoint_actions; this module finds which chatft to talk to (shared.entry.cli.commands.target),
prints one line per outcome and maps it to an exit code: 0 done (or nothing to do), 1 refused or failed
(not ours, kept, never registered, Azure said no), 2 a name that names nothing or settings that cannot
be read. Never a traceback (CHATFT_DEBUG=1 shows one).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, err, fail, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt, Target, TargetError, applied, resolve

T = TypeVar("T")
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON object on stdout: ok, changed, message, note (null when none).")
]
NameArg = Annotated[
    str,
    typer.Argument(
        metavar="ENDPOINT-or-UPLOAD",
        help="An endpoint name, the uploaded blob's name, 6+ hex digits of the file's SHA-256, or the job name.",
        show_default=False,
    ),
]


def _run(
    settings_file: Path | None,
    env: str | None,
    use_azd: bool,
    action: Callable[..., object],
    query: str,
    after: Callable[[Target], str | None] | None = None,
    as_json: bool = False,
    **options: object,
) -> None:
    """Resolve the target, run `action(ctx, query, **options)` against it, print the outcome, exit with its code."""
    from shared.flows.endpoint_actions import Outcome

    def act(target: Target, ctx: object) -> tuple[object, str | None]:
        outcome = action(ctx, query, **options)
        note = after(target) if after and isinstance(outcome, Outcome) and outcome.changed else None
        return outcome, note

    outcome, note = on_target(settings_file, env, use_azd, act)
    assert isinstance(outcome, Outcome)
    if as_json:
        import sys

        import orjson

        doc = {"ok": outcome.ok, "changed": outcome.changed, "message": outcome.message, "note": note}
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        sys.stdout.flush()
        raise typer.Exit(EXIT_ACCEPTED if outcome.ok else EXIT_REJECTED)
    style = "green" if outcome.ok and outcome.changed else ("yellow" if outcome.ok else "red")
    out.print(f"[{style}]{escape(outcome.message)}[/]", highlight=False)
    if note:
        out.print(escape(note), highlight=False)
    raise typer.Exit(EXIT_ACCEPTED if outcome.ok else EXIT_REJECTED)


def on_target(
    settings_file: Path | None,
    env: str | None,
    use_azd: bool,
    work: Callable[[Target, object], T],
    *,
    without_workspace: str = "",
) -> T:
    """Resolve the target (one dim line names it), then `work(target, ctx)` under its settings, with the flows'
    context. A failure is one line, never a traceback (CHATFT_DEBUG=1 shows one): a target, name or setting that
    cannot be used exits 2, a refusal or Azure's no exits 1. ML_BACKEND=none exits 2, or, given
    `without_workspace`, prints that and exits 0 (nothing to act on)."""
    from shared.domain.upload_lookup import UploadNotFound
    from shared.flows.endpoint_actions import Refused
    from shared.settings import SettingsError

    try:
        target = resolve(settings_file, env, use_azd)
    except TargetError as exc:
        fail(str(exc))
    err.print(f"[dim]using {escape(target.source)}[/]", highlight=False)
    try:
        with applied(target):
            return work(target, context())
    except NoBackend as exc:
        if not without_workspace:
            fail(str(exc))
        out.print(without_workspace)
        raise typer.Exit(EXIT_ACCEPTED) from None
    except (UploadNotFound, SettingsError) as exc:
        fail(str(exc))
    except Refused as exc:
        fail(str(exc), EXIT_REJECTED)
    except Exception as exc:  # Azure said no, or could not be reached: one line a person can act on
        if os.environ.get("CHATFT_DEBUG"):
            raise
        fail(azure_error(exc), EXIT_REJECTED)


class NoBackend(Exception):
    """ML_BACKEND=none: there is no workspace to act on."""


def context() -> object:
    """The flow's context from shared.entry.app_wiring, which `applied(target)` pointed at the target's settings."""
    import shared.entry.app_wiring
    from shared.flows.doctor import missing_workspace_settings
    from shared.flows.endpoint_actions import ActionContext
    from shared.settings import SettingsError

    if missing := missing_workspace_settings(shared.entry.app_wiring.settings()):  # before azure-ai-ml's own wording
        raise SettingsError(missing)
    workspace = shared.entry.app_wiring.workspace()
    if workspace is None:
        raise NoBackend("ML_BACKEND=none in these settings: there is no workspace (set ML_BACKEND to azure or local)")
    return ActionContext(
        shared.entry.app_wiring.settings(),
        shared.entry.app_wiring.ledger(create=False),
        workspace,
        shared.entry.app_wiring.prepared_store(),
        events=shared.entry.app_wiring.event_publisher(),
    )


def azure_error(exc: Exception) -> str:
    """A failure as one line: no sign-in says how to sign in, transient ones say to try again, refusals say
    what Azure said."""
    from shared.azure.azureml.errors import is_transient
    from shared.azure.identity import sign_in_failure
    from shared.flows.doctor import WORKSPACE_FIX, is_sdk_validation

    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if (signed_out := sign_in_failure(exc)) is not None:  # transient for the app, not for a person
        return signed_out
    if is_sdk_validation(exc):  # azure-ai-ml refused its arguments before asking Azure: a setting is wrong
        return f"the workspace settings are incomplete or invalid: {WORKSPACE_FIX}"
    if is_transient(exc):
        return f"Azure did not answer ({text}); nothing was changed that a retry would not finish: try again"
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return f"Azure refused ({text}): your login needs write access to the workspace's online endpoints"
    return text


def _who_deploys(target: Target) -> str | None:
    """Who does a redeployment's work: the running session's host, or the function app's timer."""
    backend = target.env.get("ML_BACKEND", "azure")
    schedule = target.env.get("DEPLOY_RECONCILE_SCHEDULE", "0 */2 * * * *")
    if target.source.startswith("local session"):
        return "the running local session's deploy_reconciler timer does it; watch with `chatft status`"
    if backend == "local":
        return "no local session is running: start `chatft dev` and its deploy_reconciler timer does it"
    return f"the function app's deploy_reconciler timer ({schedule}) does it; watch with `chatft status`"


def register(app: typer.Typer) -> None:
    """Add keep, release, retire and redeploy to the `chatft` app."""

    @app.command()
    def keep(
        name: NameArg,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Keep an endpoint: tag it chatft_keep=true, so the idle-endpoint janitor never removes it (it bills until released)."""
        from shared.flows.endpoint_actions import keep as action

        _run(settings_file, env, use_azd, action, name, as_json=as_json)

    @app.command()
    def release(
        name: NameArg,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Release a kept endpoint: remove its chatft_keep tag (any casing); the janitor deletes it once idle."""
        from shared.flows.endpoint_actions import release as action

        _run(settings_file, env, use_azd, action, name, as_json=as_json)

    @app.command()
    def retire(
        name: NameArg,
        force: Annotated[bool, typer.Option("--force", help="Retire it even if it is kept (chatft_keep).")] = False,
        reason: Annotated[str, typer.Option("--reason", help="Why, for the report and the log.")] = "",
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Delete an endpoint chatft created, now, as the janitor would; the model stays registered (`chatft redeploy` brings it back)."""
        from shared.flows.endpoint_actions import retire as action

        _run(settings_file, env, use_azd, action, name, as_json=as_json, force=force, reason=reason)

    @app.command()
    def redeploy(
        name: NameArg,
        skip_gate: Annotated[
            bool,
            typer.Option(
                "--skip-gate",
                help="Deploy it even if a gate stopped it (EVAL_MIN_TOKEN_F1, DEPLOY_MAX_EVAL_LOSS): the evaluation "
                "still runs and is reported, but nothing retires or holds it.",
            ),
        ] = False,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Deploy a retired, held (or deploy_failed) upload's registered model again, without retraining."""
        from shared.flows.endpoint_actions import redeploy as action

        _run(settings_file, env, use_azd, action, name, after=_who_deploys, as_json=as_json, skip_gate=skip_gate)
