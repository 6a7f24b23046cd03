"""`chatft retire-all`: retire every endpoint chatft created in the workspace, as `chatft retire` does one.

What the `azd down` hook (scripts/predown.sh) runs before it deletes the workspace this environment created.
Exit 0: every chatft endpoint was asked to go (and, with --wait, is gone); 1: one was refused (kept, Azure ML
said no) or is still there after --wait; 2: settings that cannot be read.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from shared.entry.cli.commands.endpoint_actions import on_target
from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, err, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt


def register(app: typer.Typer) -> None:
    """Add retire-all to the `chatft` app."""

    @app.command("retire-all")
    def retire_all(
        force: Annotated[bool, typer.Option("--force", help="Retire kept endpoints (chatft_keep) too.")] = False,
        reason: Annotated[str, typer.Option("--reason", help="Why, for the reports and the log.")] = "",
        wait: Annotated[
            float,
            typer.Option("--wait", min=0, help="Minutes to wait until Azure ML has deleted them (0: do not wait)."),
        ] = 0,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="One JSON object: ok, retired (endpoint, ok, message each), others (left: not chatft's), "
                "left (still there after --wait).",
            ),
        ] = False,
    ) -> None:
        """Delete every endpoint chatft created in the workspace, now, as the janitor would; others are left."""
        ok = on_target(
            settings_file,
            env,
            use_azd,
            lambda _, ctx: _retire_all(ctx, force, reason, wait, as_json),
            without_workspace="ML_BACKEND=none in these settings: there is no workspace, so no endpoint to retire",
        )
        raise typer.Exit(EXIT_ACCEPTED if ok else EXIT_REJECTED)


def _retire_all(ctx: object, force: bool, reason: str, wait: float, as_json: bool = False) -> bool:
    """Print one line per endpoint and the outcome; True if every chatft endpoint was asked to go (and is gone)."""
    from shared.flows.retire_all import retire_all, wait_until_gone

    results, others = retire_all(ctx, force=force, reason=reason)  # type: ignore[arg-type]
    if as_json:
        import sys

        import orjson

        asked = {r.endpoint for r in results if r.ok}
        left = sorted(wait_until_gone(ctx, asked, wait * 60)) if wait and asked else []  # type: ignore[arg-type]
        ok = all(r.ok for r in results) and not left
        retired = [{"endpoint": r.endpoint, "ok": r.ok, "message": r.message} for r in results]
        doc = {"ok": ok, "retired": retired, "others": list(others), "left": left}
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        sys.stdout.flush()
        return ok
    for name in others:
        out.print(f"[dim]endpoint {escape(name)} was not created by chatft: left as it is[/]", highlight=False)
    for result in results:
        style = "green" if result.ok else "red"
        out.print(f"[{style}]{escape(result.message)}[/]", highlight=False)
    if not results:
        out.print("no endpoint created by chatft in this workspace: nothing to retire")
        return True
    asked = {r.endpoint for r in results if r.ok}
    left = set()
    if wait and asked:
        out.print(f"waiting up to {wait:g} minutes for Azure ML to delete {len(asked)} endpoint(s)...")
        left = wait_until_gone(ctx, asked, wait * 60)  # type: ignore[arg-type]
        if left:
            err.print(
                f"[red]error:[/red] still there after {wait:g} minutes: {escape(', '.join(sorted(left)))}; "
                "run the command again to wait longer",
                highlight=False,
            )
    refused = len(results) - len(asked)
    out.print(
        f"{len(asked) - len(left)} of {len(results)} chatft endpoint(s) "
        + ("gone" if wait else "asked to go")
        + (f"; {refused} refused (see above)" if refused else "")
    )
    return not refused and not left
