"""moto's AWS-compatible endpoint served with HTTP keep-alive, as AWS's endpoints are.

``python -m moto.server`` runs on werkzeug's development server, which closes the connection after
every answer, so each SNS/SQS/KMS call of every service opened a new TCP connection: a cost no
deployment has (AWS and LocalStack keep connections open), counted in the services' own CPU. Here
moto's WSGI application runs under uvicorn through ``a2wsgi``; its threads answer like werkzeug's
(one per request in flight, so long polls do not hold up other calls).

    python -m mvno.devstack.moto_server --port 5000
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from a2wsgi import WSGIMiddleware

WORKERS = 128
"""Threads for requests in flight: each SQS long poll holds one for up to 20 s."""

KEEP_ALIVE_SECONDS = 120
"""Longer than any client's idle pool timeout, so a client never writes to a closed connection."""


def create_app() -> WSGIMiddleware:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return WSGIMiddleware(DomainDispatcherApplication(create_backend_app), workers=WORKERS)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
