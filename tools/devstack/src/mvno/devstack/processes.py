"""Child processes that die with their parent and stop as a group."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: if the launcher is killed outright, the kernel sends SIGTERM to this child.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ProcessGroup:
    """Starts named processes with their output in log files and stops them all, in reverse."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        log_path = self._log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher only; it stops us in order
                preexec_fn=_die_with_parent,
            )
        child = Child(name, process, log_path)
        self._children.append(child)
        _log.debug("started %s (pid %s)", name, process.pid)
        return child

    def stop(self, child: Child, grace: float = 15.0) -> None:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
            try:
                child.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(5)
        if child in self._children:
            self._children.remove(child)

    def stop_all(self, grace: float = 15.0) -> None:
        for child in reversed(self._children):
            self.stop(child, grace)


@dataclass(frozen=True)
class RestartPolicy:
    """How a process that died is restarted, as Kubernetes restarts a pod's container: after a
    delay that doubles with each crash in a row, up to a cap, and starts again from the first
    delay once the process has run ``reset_after_seconds`` without dying."""

    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    reset_after_seconds: float = 60.0

    def delay(self, crashes_in_a_row: int) -> float:
        """The wait before restarting after the ``crashes_in_a_row``-th crash (from 1)."""
        exponent = min(max(crashes_in_a_row - 1, 0), 32)
        return float(min(self.first_delay_seconds * 2**exponent, self.max_delay_seconds))


@dataclass
class Restarts:
    """Which dead processes are owed a restart, and when: the bookkeeping of a
    :class:`RestartPolicy`, on an injectable clock."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    _started_at: dict[str, float] = field(default_factory=dict, init=False)
    _crashes: dict[str, int] = field(default_factory=dict, init=False)
    _due: dict[str, float] = field(default_factory=dict, init=False)

    def started(self, name: str) -> None:
        self._started_at[name] = self.clock()
        self._due.pop(name, None)

    def died(self, name: str) -> float:
        """Record that ``name`` died; the delay before its restart is due."""
        now = self.clock()
        if now - self._started_at.get(name, now) >= self.policy.reset_after_seconds:
            self._crashes[name] = 0
        self._crashes[name] = self._crashes.get(name, 0) + 1
        delay = self.policy.delay(self._crashes[name])
        self._due[name] = now + delay
        return delay

    def crashes(self, name: str) -> int:
        """Crashes of ``name`` in a row (since it last ran long enough to count as healthy)."""
        return self._crashes.get(name, 0)

    def pending(self, name: str) -> bool:
        return name in self._due

    def due(self) -> list[str]:
        """The processes whose restart is due now."""
        now = self.clock()
        return [name for name, at in self._due.items() if at <= now]


def wait_until_ready(child: Child, url: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail early when the process has died."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode}:\n{child.log_tail()}"
                )
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
    raise TimeoutError(
        f"{child.name} not ready at {url} after {timeout:g} s ({last}):\n{child.log_tail()}"
    )
