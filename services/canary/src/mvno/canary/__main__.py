"""``mvno-canary run`` probes every partner and the customer's journey every interval, and
publishes each probe's turns on the bus; ``run --once`` probes once, prints a table (``--json``:
JSON) and exits 1 when any probe failed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from mvno.canary.report import as_json, as_table
from mvno.canary.settings import CanarySettings

SETTINGS = CanarySettings


def once(settings: CanarySettings, *, json: bool) -> int:
    """Every probe once; what to print and the exit status (0 when every probe passed)."""
    from mvno.canary.runner import run_once

    results = asyncio.run(run_once(settings))
    print(as_json(results) if json else as_table(results), flush=True)
    return 0 if all(r.ok for r in results) else 1


async def _continuously(settings: CanarySettings) -> None:
    from mvno.canary.runner import run_continuously
    from mvno.common.bus.runtime import stop_on_signals

    await run_continuously(settings, stop_on_signals())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mvno-canary", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="probe every interval until SIGTERM (or once)")
    run.add_argument("--once", action="store_true", help="probe once, print, exit 1 on a failure")
    run.add_argument("--json", action="store_true", help="with --once: print JSON, not a table")
    arguments = parser.parse_args(argv)
    if arguments.json and not arguments.once:
        parser.error("--json goes with --once")

    from mvno.canary.probes import PaymentProbe, probes
    from mvno.common.heartbeat import run_with_heartbeat
    from mvno.common.logs import configure_logging
    from mvno.common.service import run_event_loop
    from mvno.common.tracing import configure_metrics, configure_tracing

    try:
        settings = SETTINGS()
        probes(settings, PaymentProbe(settings))  # unknown probe names refused before any call
    except ValueError as error:  # pydantic's ValidationError included
        parser.exit(2, f"mvno-canary: {error}\n")
    # Logs to stderr, so that what --once prints on stdout stays a table or JSON.
    level = "WARNING" if arguments.once else settings.log_level
    configure_logging(settings.service_name, level, stream=sys.stderr)
    meters = configure_metrics(settings)
    try:
        if arguments.once:
            status = once(settings, json=arguments.json)
        else:
            configure_tracing(settings)
            run_event_loop(
                run_with_heartbeat(
                    _continuously(settings),
                    settings.heartbeat_file,
                    settings.heartbeat_interval_seconds,
                )
            )
            status = 0
    finally:
        meters.shutdown()  # exports what was measured before the process ends
    sys.exit(status)


if __name__ == "__main__":
    main()
