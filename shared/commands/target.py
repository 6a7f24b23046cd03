"""Which chatft the upload-life commands talk to, and its settings.

In order: `--settings FILE` (a local.settings.json), `--env NAME` / `--azd` (an azd environment:
exactly the deployed app settings), a live local session (`chatft dev` or `chatft demo --keep`,
found by the session file it writes in its state folder), else this shell's environment over
local.settings.sample.json and local.settings.json (as `func start` reads them).

Against Azure the commands run as you: the settings that select the app's managed identity are dropped
(the same rule as `chatft doctor`), so `DefaultAzureCredential` uses your login.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from shared.commands.output import fail
from shared.doctor_command import DoctorSetupError, as_caller, azd_env, settings_file
from shared.local.session_file import LocalSession, live_sessions
from shared.settings import STORAGE_CONNECTION

STATE_ROOTS = (Path(".chatft"), Path(".chatft/demo"))


SettingsOpt = Annotated[
    Path | None, typer.Option("--settings", help="A local.settings.json to read (the app's settings).")
]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", help="The azd environment to read (.azure/<ENV>/.env): exactly the deployed app settings."),
]
AzdOpt = Annotated[bool, typer.Option("--azd", help="Read azd's default environment.")]


class TargetError(Exception):
    """No settings could be found or read: the message says what to pass."""


@dataclass(frozen=True)
class Target:
    env: dict[str, str]
    """The settings, as the function app would read them."""
    source: str
    """Where they came from, for one line of output."""
    session: LocalSession | None = None
    """The live local session they came from, if any (a restarted dev is found again in its state folder)."""


def resolve(
    settings: Path | None = None, env_name: str | None = None, use_azd: bool = False, roots: tuple[Path, ...] = ()
) -> Target:
    try:
        if settings is not None:
            return Target(as_caller(settings_file(settings)), f"settings {settings}")
        if use_azd or env_name:
            return Target(as_caller(azd_env(env_name)), f"azd environment {env_name or '(default)'}")
    except DoctorSetupError as exc:
        raise TargetError(str(exc)) from exc
    search = roots or (*STATE_ROOTS, *sorted(Path(".chatft/runs").glob("*"), reverse=True))
    for session in live_sessions(search):
        return _session_target(session)
    from shared.local.host import load_local_settings

    values = load_local_settings()
    values.update({k: v for k, v in os.environ.items() if k not in values and k.isupper()})
    return Target(as_caller(values), "this shell's environment and local.settings*.json")


def _session_target(session: LocalSession) -> Target:
    return Target(dict(session.settings), f"local session in {session.state_dir} (pid {session.pid})", session)


_APPLIED: list[tuple[Target, dict[str, str | None]]] = []
"""The targets applied now (innermost last), each with the environment values to restore."""


def _apply(target: Target, saved: dict[str, str | None]) -> None:
    import shared.runtime

    # a storage connection in the shell must not win over the target's other form of it
    stale = [k for k in os.environ if k.startswith(STORAGE_CONNECTION) and k not in target.env]
    for key in [*target.env, *stale]:
        saved.setdefault(key, os.environ.get(key))
    for key in stale:
        del os.environ[key]
    os.environ.update(target.env)
    shared.runtime.reset()


@contextmanager
def applied(target: Target) -> Iterator[None]:
    """Run with the target's settings as the process environment (shared.runtime reads it), then restore."""
    import shared.runtime

    saved: dict[str, str | None] = {}
    _apply(target, saved)
    _APPLIED.append((target, saved))
    try:
        yield
    finally:
        _APPLIED.pop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shared.runtime.reset()


def session_ended() -> bool:
    """Whether the settings in use came from a local session (`chatft dev`) whose process is gone."""
    if not _APPLIED or _APPLIED[-1][0].session is None:
        return False
    session = _APPLIED[-1][0].session
    return not any(s.pid == session.pid for s in live_sessions([session.state_dir]))


def reconnect() -> str | None:
    """After session_ended(): the session now live in the same state folder (dev restarted, on new Azurite
    ports) becomes the environment; returns where its settings came from, or None while none runs."""
    if not _APPLIED or _APPLIED[-1][0].session is None:
        return None
    old, saved = _APPLIED[-1]
    for session in live_sessions([old.session.state_dir]):
        target = _session_target(session)
        _apply(target, saved)
        _APPLIED[-1] = (target, saved)
        return target.source
    return None


def describe(env: Mapping[str, str]) -> str:
    """The settings' storage and backend in one line, never a key."""
    storage = env.get("CHATFT_STORAGE__blobServiceUri") or (
        "Azurite" if "devstoreaccount1" in env.get("CHATFT_STORAGE", "") else "CHATFT_STORAGE"
    )
    return json.dumps({"storage": storage, "backend": env.get("ML_BACKEND", "azure")})


@contextmanager
def target_applied(settings: Path | None, env: str | None, azd: bool) -> Iterator[str]:
    """Run with the chatft the options name (else a live local session, else this shell) as the
    environment; yields where the settings came from. A missing or unreadable target is exit 2."""
    try:
        target = resolve(settings, env, azd)
    except TargetError as exc:
        fail(str(exc))
    with applied(target):
        yield target.source
