"""`chatft doctor`'s checks of the offline target (ML_BACKEND=local): the local backend's state folder and trainer,
and the `chatft dev` session that serves it. Azurite is checked as storage, by the same checks as Azure's."""

from __future__ import annotations

import os
from pathlib import Path

from shared.flows.doctor import Check, DoctorContext, check_guards, storage_checks
from shared.settings import Settings


def check_state_folder(settings: Settings) -> Check:
    """LOCAL_STATE_DIR holds the local backend's jobs, models and endpoints: it must be a writable folder."""
    root = Path(settings.local_state_dir).resolve()
    name = "local backend"
    if root.exists() and not root.is_dir():
        return Check(name, False, f"LOCAL_STATE_DIR {root} is not a folder", "set LOCAL_STATE_DIR to a folder")
    if not root.exists():
        return Check(name, False, f"no state folder {root} yet", "start `chatft dev` here: it creates it")
    if not os.access(root, os.W_OK | os.X_OK):
        return Check(name, False, f"{root} is not writable", f"make {root} writable, or set LOCAL_STATE_DIR")
    jobs = root / "jobs"
    count = sum(1 for p in jobs.iterdir() if p.is_dir()) if jobs.is_dir() else 0
    return Check(name, True, f"state in {root} ({count} job{'s' if count != 1 else ''})")


def check_session(settings: Settings) -> Check:
    """The running `chatft dev` for this state folder: its timers and functions do the work offline."""
    from shared.local.session_file import live_sessions

    root = Path(settings.local_state_dir).resolve()
    session = next(live_sessions([root]), None)
    if session is None:
        return Check("chatft dev", False, f"no chatft dev running for {root}", "start `chatft dev` in this folder")
    return Check("chatft dev", True, f"running (pid {session.pid}) for {root}")


def check_trainer(settings: Settings) -> Check:
    """LOCAL_TRAINER: the retrieval stand-in always trains; LoRA needs the training extra and a readable
    LOCAL_BASE_MODEL, the same one-line problem preflight refuses a job with (shared.local.trainers)."""
    from shared.local.trainers import LORA, trainer_problem

    name = "local trainer"
    if settings.local_trainer != LORA:
        return Check(name, True, "LOCAL_TRAINER=retrieval: the retrieval stand-in (no model is fine-tuned)")
    problem = trainer_problem(settings)
    if problem is not None:
        fix = (
            "`make setup-train` (pip install .[train]), or LOCAL_TRAINER=retrieval"
            if problem.setting == "LOCAL_TRAINER"
            else "set LOCAL_BASE_MODEL to a Hugging Face model folder, a Hub id or tiny"
        )
        return Check(name, False, str(problem), fix)
    return Check(name, True, f"LOCAL_TRAINER=lora: LoRA fine-tuning of {settings.local_base_model}")


def run_local_doctor(ctx: DoctorContext) -> list[Check]:
    """ML_BACKEND=local: Azurite (as storage), the local backend's state folder and trainer, the running
    `chatft dev`."""
    return [
        *storage_checks(ctx),
        check_state_folder(ctx.settings),
        check_trainer(ctx.settings),
        check_session(ctx.settings),
        check_guards(ctx),
    ]
