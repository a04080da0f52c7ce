"""The canary on the local platform: run continuously beside the services by ``mvno-local up``,
and once by ``mvno-local canary`` against the platform those same options started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mvno.devstack.components import Component

if TYPE_CHECKING:
    from mvno.devstack.platform import Platform, PlatformConfig

CANARY = Component("canary", "mvno.canary", 0, docs_path=None)
LOCAL_INTERVAL_SECONDS = "5"
"""Locally the canary probes every few seconds (production: every minute), so a fault injected
through the simulators' /admin shows within seconds."""


def canary_environment(platform: Platform) -> dict[str, str]:
    """What the services get (partner URLs, portal-api's, the token issuer, the bus), the local
    interval, and the shell's own ``MVNO_CANARY_*`` settings on top."""
    env = platform.environment_for(CANARY)
    env["MVNO_CANARY_INTERVAL_SECONDS"] = LOCAL_INTERVAL_SECONDS
    env.update({k: v for k, v in os.environ.items() if k.startswith("MVNO_CANARY_")})
    return env


def start_canary(platform: Platform) -> None:
    """The canary as its own process, probing until the platform stops (only with every service
    running: with a subset it would report the missing ones as down)."""
    if platform.config.only is not None:
        return
    platform.launch(
        CANARY.name, [sys.executable, "-m", CANARY.module, "run"], canary_environment(platform)
    )


def run_once(config: PlatformConfig, *, json: bool) -> int:
    """``mvno-canary run --once`` against the local platform ``config`` describes; its exit code."""
    from mvno.devstack.platform import Platform
    from mvno.devstack.processes import ProcessGroup

    platform = Platform(config, ProcessGroup(Path(config.data_dir) / "logs"))
    command = [sys.executable, "-m", CANARY.module, "run", "--once", *(["--json"] if json else [])]
    return subprocess.run(command, env=canary_environment(platform), check=False).returncode
