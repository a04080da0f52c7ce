"""A worker's heartbeat file: touched while the work runs, left alone once it ends."""

import asyncio
import os
import time
from pathlib import Path

import pytest

from mvno.common.heartbeat import run_with_heartbeat


async def _until(condition, deadline_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


def _beats() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "_beat"]


async def test_the_file_is_touched_again_and_again_while_the_work_runs(tmp_path: Path):
    heartbeat = tmp_path / "heartbeat"
    done = asyncio.Event()
    worker = asyncio.create_task(run_with_heartbeat(done.wait(), heartbeat, interval=0.05))
    await _until(heartbeat.exists)
    for _ in range(3):
        os.utime(heartbeat, (0, 0))  # as if last touched in 1970
        await _until(lambda: heartbeat.stat().st_mtime > 0)
    done.set()
    await worker
    assert _beats() == [], "the heartbeat outlived the work"


async def test_the_heartbeat_stops_when_the_work_fails(tmp_path: Path):
    async def failing() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await run_with_heartbeat(failing(), tmp_path / "heartbeat", interval=0.05)
    assert _beats() == []


async def test_without_a_file_nothing_is_written(tmp_path: Path):
    ran = []

    async def work() -> None:
        ran.append(True)

    await run_with_heartbeat(work(), None)
    assert ran == [True]
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 (a test's look at the folder)
