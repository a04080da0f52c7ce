"""The queue workers' liveness check, as the manifests run it, against a real worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def probe_command() -> list[str]:
    docs = yaml.safe_load_all((ROOT / "k8s" / "base" / "portal-api-workers.yaml").read_text())
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command: list[str] = container["livenessProbe"]["exec"]["command"]
    return command


def probe(heartbeat: Path) -> int:
    path = "/tmp/mvno-heartbeat"  # noqa: S108 (the path inside the container)
    command = [part.replace(path, str(heartbeat)) for part in probe_command()]
    assert command[0] == "python"
    return subprocess.run([sys.executable, *command[1:]], timeout=30, check=False).returncode


def test_probe_passes_on_a_fresh_heartbeat_and_fails_on_a_stale_or_missing_one(
    tmp_path: Path,
) -> None:
    heartbeat = tmp_path / "heartbeat"
    assert probe(heartbeat) != 0, "no file yet"
    heartbeat.touch()
    assert probe(heartbeat) == 0
    five_minutes_ago = time.time() - 300
    os.utime(heartbeat, (five_minutes_ago, five_minutes_ago))
    assert probe(heartbeat) != 0


# portal-api's queue consumer, and billing-sync's `work` (its own signal handling and task group).
@pytest.mark.parametrize(
    ("module", "command"), [("mvno.portal_api", "consume"), ("mvno.billing_sync", "work")]
)
def test_a_real_worker_keeps_its_heartbeat_fresh_and_stops_on_sigterm(
    tmp_path: Path, module: str, command: str
) -> None:
    heartbeat = tmp_path / "heartbeat"
    environment = {
        **os.environ,
        "MVNO_HEARTBEAT_FILE": str(heartbeat),
        "MVNO_HEARTBEAT_INTERVAL_SECONDS": "0.2",
        # Nothing listens here: the worker keeps waiting for its queue, its loop still turning.
        "MVNO_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "MVNO_AWS_ACCESS_KEY_ID": "test",
        "MVNO_AWS_SECRET_ACCESS_KEY": "test",
        "MVNO_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/unused",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", module, command],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180  # a bound for a loaded machine, not a timing
        while not heartbeat.exists():
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.05)
        assert probe(heartbeat) == 0
        # Made stale by hand; the running worker touches it again.
        os.utime(heartbeat, (0, 0))
        while heartbeat.stat().st_mtime == 0:
            assert time.monotonic() < deadline, "the heartbeat was not renewed"
            time.sleep(0.05)
        assert probe(heartbeat) == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
