"""`chatft cancel UPLOAD`: stop an upload's training (shared.flows.cancel), one line, never a traceback.

Exit 0: canceled, or already canceled (what was asked is true). Exit 1: nothing was canceled (the job had
already ended, or it is being submitted this instant), as `az ml job cancel` and the OpenAI CLI fail on a
finished job. Exit 2: UPLOAD names nothing, or the settings cannot be read.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shared.entry.cli.commands.endpoint_actions import JsonOpt, NameArg
from shared.entry.cli.commands.endpoint_actions import _run as run_action
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt


def register(app: typer.Typer) -> None:
    """Add `chatft cancel` to the `chatft` app."""

    @app.command()
    def cancel(
        name: NameArg,
        reason: Annotated[str, typer.Option("--reason", help="Why, for the ledger, the report and the event.")] = "",
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Cancel an upload's training: a queued upload leaves the queue, a running job is canceled (Azure ML's
        cancel; offline, its process is stopped). Exit 0 canceled (or already), 1 nothing to cancel (the job ended)."""
        from shared.flows.cancel import cancel as action

        run_action(settings_file, env, use_azd, action, name, as_json=as_json, reason=reason)
