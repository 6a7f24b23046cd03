"""The local loop's lifecycle: a session stops fast and leaves no process behind, whenever it is
stopped (during Azurite's start-up, mid-run, during `--keep`, by SIGTERM or by the parent being
killed); demo runs share nothing; a stage wait stops at the first failure."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

import shared.entry.offline.dev_session as session_module
import shared.local.azurite as azurite_module
from shared.domain.workspace import FinetuneRequest
from shared.entry.offline.demo import KEEP_RUNS, DemoError, new_run_dir, run_demo, wait_for
from shared.entry.offline.dev_session import DevSession
from shared.local import procs
from shared.local.backend import _CHILDREN, LocalWorkspace
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHATFT = ROOT / ".venv" / "bin" / "chatft"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ports_of(process: subprocess.Popen) -> list[int]:
    args = list(process.args)
    return [int(args[args.index(flag) + 1]) for flag in ("--blobPort", "--queuePort", "--tablePort")]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def local_overrides(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "state"), **extra}


@pytest.fixture
def started(monkeypatch) -> list[subprocess.Popen]:
    """Every process procs.start starts during the test."""
    seen: list[subprocess.Popen] = []
    real = procs.start

    def start(args, **popen):
        seen.append(real(args, **popen))
        return seen[-1]

    monkeypatch.setattr(procs, "start", start)
    return seen


def test_closing_a_busy_session_takes_under_2s_and_leaves_no_process(tmp_path, started) -> None:
    stall = socket.socket()  # accepts the job's event POST and never answers: the job stays Running
    stall.bind(("127.0.0.1", 0))
    stall.listen()
    webhook = f"http://127.0.0.1:{stall.getsockname()[1]}/runtime/webhooks/EventGrid?functionName=job_events"
    session = DevSession(
        overrides=local_overrides(tmp_path, LOCAL_EVENT_WEBHOOK=webhook),
        port=0,
        poll_seconds=0.2,
        say=lambda line: None,
        reuse_azurite=False,
    )
    with stall, session:
        workspace = session.workspace
        workspace.begin_create_endpoint(name="ep-x", description="", tags={})
        request = FinetuneRequest(
            "job-x", {"train": "azureml://datastores/chatft_prepared/paths/p/train.jsonl"}, {}, "c"
        )
        workspace.submit_finetune(request)
        until("server up", lambda: workspace.get_endpoint("ep-x").provisioning_state == "Succeeded")
        until("job running", lambda: workspace.job_record("job-x")["status"] == "Running")
        azurite, threads = session.azurite.process, list(session.host._threads)
        ports, children = ports_of(azurite), list(_CHILDREN)
        assert len(children) == 2 and azurite in started
        began = time.monotonic()
        session.close()
        elapsed = time.monotonic() - began
    assert elapsed < 2.0, f"close took {elapsed:.2f}s"
    assert all(gone(pid) for pid in children) and _CHILDREN == {}
    assert azurite.poll() is not None and not any(listening(p) for p in ports)
    assert not any(t.is_alive() for t in threads)
    job = LocalWorkspace(Settings.from_env(local_overrides(tmp_path))).job_record("job-x")
    assert job["status"] == "Queued" and "runner shut down" in job["interrupted"]  # for the next session to resume


@pytest.mark.parametrize("how", ["signal", "raised"])
def test_ctrl_c_while_azurite_starts_leaves_nothing_listening(tmp_path, started, monkeypatch, how) -> None:
    """`signal`: a real SIGINT under the CLI's deferred interrupts; `raised`: KeyboardInterrupt at any line."""
    real = azurite_module._listening

    def listening_then_ctrl_c(port: int) -> bool:
        up = real(port)
        if started and up:  # Azurite is answering on one port: press Ctrl-C now
            if how == "raised":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        return up

    monkeypatch.setattr(azurite_module, "_listening", listening_then_ctrl_c)
    before = dict(os.environ)
    session = DevSession(overrides=local_overrides(tmp_path), port=0, say=lambda line: None, reuse_azurite=False)
    with procs.deferred_interrupts(), pytest.raises(KeyboardInterrupt), session:
        pytest.fail("the session must not start")
    assert len(started) == 1
    assert started[0].poll() is not None
    assert not any(listening(p) for p in ports_of(started[0]))
    assert dict(os.environ) == before


def test_ctrl_c_after_azurite_started_but_before_the_host_stops_azurite(tmp_path, started, monkeypatch) -> None:
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.LocalHost, "start", interrupted)
    with pytest.raises(KeyboardInterrupt), DevSession(overrides=local_overrides(tmp_path), port=0, reuse_azurite=False):
        pass
    assert started and started[0].poll() is not None


def test_the_demo_never_reuses_a_shared_azurite(tmp_path, azurite, monkeypatch, started) -> None:
    monkeypatch.setenv("AZURITE_CONNECTION_STRING", azurite.connection_string)
    with DevSession(overrides=local_overrides(tmp_path), port=0, say=lambda line: None, reuse_azurite=False) as s:
        assert s.azurite.started_here and s.azurite.connection_string != azurite.connection_string
        assert os.environ["CHATFT_STORAGE"] == s.azurite.connection_string
        s.azurite.process.kill()  # Azurite dies: every stage wait stops at once, with the reason
        s.azurite.process.wait()
        began = time.monotonic()
        with pytest.raises(DemoError, match="Azurite exited"):
            wait_for("training", lambda: None, Console(file=io.StringIO()), failed=s.problem)
        assert time.monotonic() - began < 1


def test_run_dirs_are_per_run_and_a_live_run_is_never_pruned(tmp_path) -> None:
    runs = tmp_path / "runs"
    live = runs / "00000000-000000-live"
    live.mkdir(parents=True)
    (live / "run.json").write_text(f'{{"pid": {os.getpid()}}}')
    dead = []
    for i in range(8):
        folder = runs / f"00000000-00000{i}-dead"
        folder.mkdir()
        (folder / "run.json").write_text('{"pid": 999999999}')
        dead.append(folder)
    first, second = new_run_dir(runs), new_run_dir(runs)
    assert first != second and first.exists() and second.exists() and live.exists()
    kept = [folder for folder in dead if folder.exists()]
    assert kept == dead[-(KEEP_RUNS - 1) :]  # the newest finished ones; live runs are never counted or removed


def test_a_rejected_upload_stops_the_demo_at_once_with_the_report(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "bad.jsonl"
    sample.write_bytes(b'{"messages": "not a list"}\nnot json at all\n')
    console = Console(file=io.StringIO(), width=200)
    began = time.monotonic()
    with pytest.raises(DemoError, match=r"rejected .*report in .*report\.md"):
        run_demo(sample, console=console)
    assert time.monotonic() - began < 20
    assert list((tmp_path / ".chatft" / "runs").iterdir())  # this run's own state folder


# --- the real command, stopped at different moments --------------------------------------------


class Cli:
    """`chatft ...` in its own folder; every process it starts inherits a marker we can find in /proc."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.mark = f"chatft-test-{os.getpid()}-{time.monotonic_ns()}"
        env = {**os.environ, "CHATFT_TEST_MARK": self.mark, "COLUMNS": "250"}
        env.pop("AZURITE_CONNECTION_STRING", None)
        self.process = subprocess.Popen(
            [str(CHATFT), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    def marked(self, word: str = "") -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if f"CHATFT_TEST_MARK={self.mark}".encode() in environ and word.encode() in cmdline:
                found.append(int(pid))
        return found

    def line(self, text: str, timeout: float = 60) -> str:
        try:
            return until(f"a line with {text!r}", lambda: next((x for x in self.lines if text in x), None), timeout)
        except AssertionError as exc:  # say what the command did instead
            code = self.process.poll()
            stderr = self.process.stderr.read() if code is not None else "(still running)"
            raise AssertionError(f"{exc}; exit {code}; stdout: {self.lines[-15:]}; stderr: {stderr[-2000:]}") from None

    def stop(self, sig: int) -> tuple[float, str]:
        """Send `sig`; returns how long until every marked process was gone, and stderr."""
        began = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=10)
        stderr = self.process.stderr.read()
        until("all processes gone", lambda: not self.marked(), timeout=5)
        return time.monotonic() - began, stderr


@pytest.fixture
def small_sample(tmp_path) -> Path:
    sample = tmp_path / "small.jsonl"
    sample.write_bytes(b"".join((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(True)[:300]))
    return sample


@linux_only
def test_cli_ctrl_c_while_azurite_starts(tmp_path, small_sample) -> None:
    run = Cli(tmp_path, "demo", "--sample", str(small_sample))
    until("Azurite starting", lambda: run.marked("--blobPort"))
    elapsed, stderr = run.stop(signal.SIGINT)
    assert elapsed < 2.0 and run.process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr


@linux_only
def test_two_demos_at_once_share_nothing_and_stop_on_ctrl_c_or_their_parent_dying(tmp_path, small_sample) -> None:
    first = Cli(tmp_path, "demo", "--keep", "--sample", str(small_sample))
    first.line("chatft local loop: uploaded", timeout=90)  # its Azurite holds its ports: the second cannot pick them
    second = Cli(tmp_path, "demo", "--keep", "--sample", str(small_sample))
    for run in (first, second):
        run.line("Press Ctrl-C", timeout=90)
        assert run.marked("shared.local.scoring") and run.marked("--blobPort")
    states = [run.line("--state").split("--state")[1].strip() for run in (first, second)]
    assert states[0] != states[1] and all(s.startswith(".chatft/runs/") for s in states)
    elapsed, stderr = first.stop(signal.SIGINT)  # during --keep
    assert elapsed < 2.0 and "Traceback" not in stderr and first.process.returncode == 0
    assert second.marked("shared.local.scoring")  # the other run is untouched
    elapsed, _ = second.stop(signal.SIGKILL)  # the parent dies: its children follow
    assert elapsed < 2.0
    assert all((tmp_path / s).is_dir() for s in states)


@linux_only
def test_cli_sigterm_during_a_stage_wait(tmp_path, small_sample) -> None:
    run = Cli(tmp_path, "demo", "--sample", str(small_sample))
    run.line("validated")
    elapsed, stderr = run.stop(signal.SIGTERM)
    assert elapsed < 2.0 and run.process.returncode == 130 and "Traceback" not in stderr


@linux_only
def test_dev_prints_how_to_upload_and_stops_on_ctrl_c(tmp_path) -> None:
    run = Cli(tmp_path, "dev", "--port", "0")
    webhook = run.line("webhook", timeout=60)
    output = "".join(run.lines)
    assert "AccountName=devstoreaccount1;AccountKey=" in output and "BlobEndpoint=http://127.0.0.1:" in output
    assert "container chat-uploads" in output and "az storage blob upload --connection-string" in output
    assert "/runtime/webhooks/EventGrid?functionName=job_events" in webhook
    port = webhook.split("127.0.0.1:")[1].split("/")[0]
    (tmp_path / "other").mkdir()
    busy = Cli(tmp_path / "other", "dev", "--port", port)  # another folder, the same port: one clear line
    assert busy.process.wait(timeout=30) == 1
    stderr = busy.process.stderr.read()
    assert f"port {port} is in use" in stderr and "Traceback" not in stderr
    until("the second dev's Azurite gone", lambda: not busy.marked(), timeout=5)
    elapsed, stderr = run.stop(signal.SIGINT)
    assert elapsed < 2.0 and run.process.returncode == 0 and "Traceback" not in stderr
