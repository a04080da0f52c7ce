"""A queue worker's sign of life for its liveness probe: a file touched while its event loop turns.

A worker serves no HTTP, so Kubernetes (and Compose) cannot ask it an endpoint; instead, with
``MVNO_HEARTBEAT_FILE`` set, the worker touches that file every few seconds from its own event
loop, and the probe checks the file was touched within the last minute. A loop that stopped
turning (a blocking call that never returns, a wedged process) stops touching it, and the worker
is restarted; SQS redelivers what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

INTERVAL_SECONDS = 10.0


async def _beat(path: Path, interval: float) -> None:
    while True:
        # From the event loop's own schedule: a loop that stops turning stops touching the file.
        await asyncio.to_thread(path.touch)
        await asyncio.sleep(interval)


async def run_with_heartbeat(
    work: Coroutine[Any, Any, None], path: Path | None, interval: float = INTERVAL_SECONDS
) -> None:
    """Run ``work``, touching ``path`` every ``interval`` seconds until it ends (no file: just run)."""
    if path is None:
        await work
        return
    beat = asyncio.create_task(_beat(path, interval))
    try:
        await work
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
