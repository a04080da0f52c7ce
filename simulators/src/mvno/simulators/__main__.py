"""``mvno-simulators serve`` runs the third-party simulators."""

import argparse
from collections.abc import Sequence

import uvicorn

from mvno.simulators.settings import SimulatorSettings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mvno-simulators")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulators' HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8010)
    serve.add_argument("--timeout-graceful-shutdown", type=int, default=20)
    arguments = parser.parse_args(argv)
    settings = SimulatorSettings()  # fails fast on bad settings, before uvicorn starts
    uvicorn.run(
        "mvno.simulators.app:create_app",
        factory=True,
        host=arguments.host,
        port=arguments.port,
        timeout_graceful_shutdown=arguments.timeout_graceful_shutdown,
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
    )


if __name__ == "__main__":
    main()
