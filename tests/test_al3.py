"""The Assemblyline 3 layer's semantics beyond the tutorial: scores as manifest heuristics,
section argument order, update callbacks on the service's clock (blocking ones never beside
execute), and the timers and reaper against real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

from services.sdk.al3 import SCORE, ResultSection, SubprocessTimer, TimeoutException, set_death_signal, timeout
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from sluice.onebox import onebox

SCORED = '''
from services.sdk.al3 import ServiceBase, Result, ResultSection, SCORE

class Scored(ServiceBase):
    SERVICE_ACCEPTS = "text/.*"
    SERVICE_VERSION = "2"
    SERVICE_DEFAULT_CONFIG = {"LEVEL": "high"}

    def __init__(self, cfg=None):
        super(Scored, self).__init__(cfg)
        self.updates = 0

    def start(self):
        self._register_update_callback(self.update_callback, freq=0)

    def update_callback(self, **kwargs):
        self.updates += 1

    def execute(self, request):
        result = Result()
        top = ResultSection(SCORE.HIGH if self.cfg.get("LEVEL") == "high" else SCORE.LOW, "Top")
        top.add_section(ResultSection(SCORE.INFO, "Child"))
        result.add_section(top)
        request.result = result
'''


def folder(tmp_path: Path, code: str = SCORED) -> Path:
    path = tmp_path / "scored"
    path.mkdir()
    (path / "scored.py").write_text(code)
    return path


def test_scores_become_manifest_heuristics(tmp_path):
    service = load_service(folder(tmp_path))
    assert service.manifest.accepts == "text/.*" and service.manifest.version == "2.0"
    run = run_service_once(service, b"x", file_type="text/plain")
    top, child = run.result.sections
    assert (top.heuristic.score, child.heuristic.score, child.depth) == (SCORE.HIGH, SCORE.INFO, 1)
    assert top.heuristic.name == "AL3 score HIGH" and run.result.score == SCORE.HIGH + SCORE.INFO
    low = load_service(tmp_path / "scored", {"LEVEL": "low"})  # a deployment override of SERVICE_DEFAULT_CONFIG
    assert run_service_once(low, b"x").result.score == SCORE.LOW + SCORE.INFO


def test_section_arguments_in_al3_order_and_refused_scores():
    section = ResultSection(SCORE.NULL, "Informational")
    assert section.title_text == "Informational" and section.heuristic is None and section.score == 0
    assert ResultSection("Title first").title_text == "Title first"  # AL4's order: the title is kept, never 0
    with pytest.raises(ValueError, match="score 5 is not a SCORE constant"):
        ResultSection(5, "arbitrary")


def test_update_callbacks_run_now_then_on_the_clock_and_block_execute(tmp_path):
    service = load_service(folder(tmp_path))
    service.start()
    assert service.updates == 1  # execute_now
    service.periodic()
    assert service.updates == 2  # freq=0: due on every tick of the runner's clock

    started, release = threading.Event(), threading.Event()
    order = []

    def slow_update(**kwargs):
        started.set()
        release.wait(10)
        order.append("update")

    service._register_update_callback(slow_update, execute_now=False, freq=0, blocking=True)
    service._callbacks = service._callbacks[1:]
    updater = threading.Thread(target=service.periodic)
    updater.start()
    assert started.wait(10)
    executing = threading.Thread(target=lambda: (run_service_once(service, b"x"), order.append("execute")))
    executing.start()
    executing.join(0.5)
    assert order == []  # execute waits for the blocking update
    release.set()
    updater.join(10)
    executing.join(30)
    assert order == ["update", "execute"]


async def test_the_running_service_ticks_its_update_callbacks(nats_url, prefix, tmp_path):
    service = load_service(folder(tmp_path))
    async with onebox(nats_url, prefix, [service]):
        with anyio.fail_after(30):
            while service.updates < 3:  # start() ran it once; the runner's clock runs it again
                await anyio.sleep(0.1)


def test_timeout_returns_or_raises():
    assert timeout(lambda x: x * 2, (21,), timeout_duration=5) == 42
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        timeout(time.sleep, (5,), timeout_duration=0.2)
    assert time.monotonic() - started < 3
    with pytest.raises(ZeroDivisionError):
        timeout(lambda: 1 / 0, timeout_duration=5)


def test_subprocess_timer_kills_and_raises():
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        with SubprocessTimer(0.5) as timer:
            proc = timer.run(subprocess.Popen(["sleep", "30"]))
            proc.wait()
    assert proc.returncode is not None and time.monotonic() - started < 10
    with SubprocessTimer(10) as timer:  # finished in time: no exception
        assert timer.run(subprocess.Popen(["true"])).wait() == 0


def test_set_death_signal_kills_the_child_with_its_parent(tmp_path):
    """The reaper: a child started with preexec_fn=set_death_signal() dies when its parent is killed."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, time
        from services.sdk.al3 import set_death_signal
        child = subprocess.Popen(["sleep", "60"], preexec_fn=set_death_signal())
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)], cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its parent"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
