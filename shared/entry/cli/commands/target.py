"""Which chatft the upload-life commands talk to, and its settings.

In order: `--settings FILE` (a local.settings.json), `--env NAME` / `--azd` (an azd environment:
exactly the deployed app settings), a live local session (`chatft dev` or `chatft demo --keep`, found by
the session file in the .chatft folder of this folder or its nearest parent that has one, as git finds
.git), else azd's environment (AZURE_ENV_NAME, else `.azure/config.json`'s defaultEnvironment, as azd
picks it), else this shell's environment over local.settings.sample.json and local.settings.json (as
`func start` reads them). Those last settings name Azurite on this machine: when nothing answers there, the
command says at once that no `chatft dev` runs for this folder (not a refused connection after retries).

Against Azure the commands run as you: the settings that select the app's managed identity are dropped
(the same rule as `chatft doctor`), so `DefaultAzureCredential` uses your login.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shared.entry.cli.commands.doctor import DoctorSetupError, as_caller, azd_env, settings_file
from shared.entry.cli.commands.output import err, fail
from shared.local.session_file import LocalSession, find_session, live_sessions
from shared.settings import STORAGE_CONNECTION

SHELL = "this shell's environment and local.settings*.json"
DEV_STORAGE = ("127.0.0.1", 10000)
"""Where `UseDevelopmentStorage=true` points (Azurite's default blob port)."""


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
    settings: Path | None = None,
    env_name: str | None = None,
    use_azd: bool = False,
    roots: tuple[Path, ...] = (),
    cwd: Path | None = None,
) -> Target:
    """The target (see the module's docstring); TargetError says what to pass when none can be used."""
    here = (cwd or Path.cwd()).absolute()
    project = azd_project(here)
    try:
        if settings is not None:
            return Target(as_caller(settings_file(settings)), f"settings {settings}")
        if use_azd or env_name:
            return _azd_target(env_name, project or here)
    except DoctorSetupError as exc:
        raise TargetError(str(exc)) from exc
    if roots:
        session, looked = next(live_sessions(roots), None), list(roots)
    else:
        session, looked = find_session(here)
    if session is not None:
        return _session_target(session)
    default = os.environ.get("AZURE_ENV_NAME") or (_default_env(project) if project else None)
    if project is not None and default:
        try:
            return _azd_target(default, project)
        except DoctorSetupError as exc:
            raise TargetError(str(exc)) from exc
    from shared.local.host import load_local_settings

    values = load_local_settings()
    values.update({k: v for k, v in os.environ.items() if k not in values and k.isupper()})
    target = Target(as_caller(values), SHELL)
    address = local_storage(target.env)
    if address is not None and not _answers(address):
        where = ", ".join(str(p / ".chatft") for p in looked) or f"{here} or its parents"
        raise TargetError(
            f"no chatft dev running for this folder (looked in {where}; nothing answers at "
            f"{address[0]}:{address[1]}): start `chatft dev` in the project folder, or name a target with "
            "--env NAME or --settings FILE"
        )
    return target


def azd_project(start: Path) -> Path | None:
    """The nearest folder (this one or a parent) with azd's `.azure` folder, as azd finds its project."""
    return next((folder for folder in (start, *start.parents) if (folder / ".azure").is_dir()), None)


def _default_env(project: Path) -> str | None:
    try:
        found = json.loads((project / ".azure" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = found.get("defaultEnvironment") if isinstance(found, dict) else None
    return str(name) if name else None


def _azd_target(name: str | None, project: Path) -> Target:
    values = as_caller(azd_env(name, root=project))
    return Target(values, f"azd environment {name or _default_env(project) or '(default)'} in {project / '.azure'}")


def local_storage(env: Mapping[str, str]) -> tuple[str, int] | None:
    """The (host, port) of the Azurite on this machine that the settings' storage names, or None (not local)."""
    value = env.get(STORAGE_CONNECTION, "")
    parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        return DEV_STORAGE
    from urllib.parse import urlsplit

    blob = urlsplit(parts.get("BlobEndpoint", ""))
    if blob.hostname in ("127.0.0.1", "localhost") and parts.get("AccountName") == "devstoreaccount1":
        return blob.hostname, blob.port or 80
    return None


def _answers(address: tuple[str, int]) -> bool:
    """Whether anything accepts a connection there (a refused one is answered by the kernel at once)."""
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def _session_target(session: LocalSession) -> Target:
    where = f"pid {session.pid}" + (f", {session.address}" if session.address else "")
    return Target(dict(session.settings), f"local session in {session.state_dir} ({where})", session)


_APPLIED: list[tuple[Target, dict[str, str | None]]] = []
"""The targets applied now (innermost last), each with the environment values to restore."""


def _apply(target: Target, saved: dict[str, str | None]) -> None:
    import shared.entry.app_wiring

    # a storage connection in the shell must not win over the target's other form of it
    stale = [k for k in os.environ if k.startswith(STORAGE_CONNECTION) and k not in target.env]
    for key in [*target.env, *stale]:
        saved.setdefault(key, os.environ.get(key))
    for key in stale:
        del os.environ[key]
    os.environ.update(target.env)
    shared.entry.app_wiring.reset()


@contextmanager
def applied(target: Target) -> Iterator[None]:
    """Run with the target's settings as the process environment (shared.entry.app_wiring reads it), then restore."""
    import shared.entry.app_wiring

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
        shared.entry.app_wiring.reset()


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
    err.print(f"[dim]using {escape(target.source)}[/]", highlight=False)
    with applied(target):
        yield target.source
