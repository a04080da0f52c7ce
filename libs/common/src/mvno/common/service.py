"""What every service's ``create_app()`` and command line share: one shape for all of them.

A service supplies its settings, its routers and its migrations folder; this module adds the
plumbing (logs, tracing, problem answers, request ids, health, database, bus client) around them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.auth.tokens import TokenValidator
from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Handler
from mvno.common.bus.envelope import event_source
from mvno.common.bus.runtime import consume, run_relay
from mvno.common.db import (
    UnitOfWork,
    UnitOfWorkT,
    create_engine,
    ensure_database,
    ping,
    unit_of_work_factory,
    upgrade,
)
from mvno.common.health import Check, health_router
from mvno.common.heartbeat import run_with_heartbeat
from mvno.common.http import create_http_client
from mvno.common.http_telemetry import ServerTelemetryMiddleware
from mvno.common.limits import BodySizeLimitMiddleware
from mvno.common.logs import configure_logging
from mvno.common.problems import install_problem_handlers
from mvno.common.request_ids import RequestIdMiddleware
from mvno.common.settings import ServiceSettings
from mvno.common.tracing import (
    FASTAPI_OWN_TELEMETRY_OFF,
    configure_metrics,
    configure_tracing,
    is_health_probe,
)

_log = logging.getLogger(__name__)

YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations (less deallocations) of container objects between two young collections while a
service serves (Python's default is 700)."""


@dataclass
class Infrastructure:
    """The connections a service holds for its whole life, opened in the app's lifespan."""

    settings: ServiceSettings
    engine: AsyncEngine
    unit_of_work: Callable[[], UnitOfWork]
    unit_of_work_kind: type[UnitOfWork] = UnitOfWork
    sqs: Any = None
    readiness: dict[str, Check] = field(default_factory=dict)
    """What ``/health/ready`` runs, by name: the database and the bus, and what the service adds
    (a copy that must have received its events before the service can answer from it)."""

    def units_of_work(self, kind: type[UnitOfWorkT]) -> Callable[[], UnitOfWorkT]:
        """The service's unit-of-work factory as the ``kind`` the app was built with: how a
        service's routes and context reach their repositories (``uow.orders``) typed."""
        if not issubclass(self.unit_of_work_kind, kind):
            raise TypeError(
                f"this app's units of work are {self.unit_of_work_kind.__name__}, "
                f"not {kind.__name__}"
            )
        return cast("Callable[[], UnitOfWorkT]", self.unit_of_work)

    async def check_database(self) -> None:
        await ping(self.engine)

    async def check_bus(self) -> None:
        if self.sqs is None:
            raise RuntimeError("the bus client is not open")
        await self.sqs.list_queues(MaxResults=1)


async def get_infrastructure(request: Request) -> Infrastructure:
    """FastAPI dependency giving a route its service's :class:`Infrastructure`."""
    infrastructure: Infrastructure = request.app.state.infrastructure
    return infrastructure


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter],
    producer: str | None = None,
    background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
    resources: Sequence[Callable[[AsyncExitStack], Coroutine[Any, Any, None]]] = (),
    unit_of_work_kind: type[UnitOfWork] = UnitOfWork,
) -> FastAPI:
    """Build a service's FastAPI app around its routers, with every piece of shared plumbing.

    A service that publishes events names its ``producer``; its outbox relay then runs beside
    the API (every replica may relay: rows are claimed with SKIP LOCKED). Each of ``background``
    runs for the app's whole life and must return soon after the event it is given is set.
    Each of ``resources`` opens what the service holds for its life (a KMS client, say) into the
    stack it is given, before the app serves; the stack closes them at shutdown. Units of work
    are ``unit_of_work_kind``: the service's own, offering its repositories.
    """
    configure_logging(settings.service_name, settings.log_level, access_log=settings.access_log)
    provider = configure_tracing(settings)
    meter_provider = configure_metrics(settings)
    engine = create_engine(settings)
    infrastructure = Infrastructure(
        settings=settings,
        engine=engine,
        unit_of_work=unit_of_work_factory(
            engine, source=event_source(settings.service_name), kind=unit_of_work_kind
        ),
        unit_of_work_kind=unit_of_work_kind,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            infrastructure.sqs = await stack.enter_async_context(aws_client(settings, "sqs"))
            identity_provider = await stack.enter_async_context(create_http_client(settings))
            app.state.token_validator = TokenValidator.from_settings(settings, identity_provider)
            stack.push_async_callback(engine.dispose)
            for open_resource in resources:
                await open_resource(stack)
            stop = asyncio.Event()
            if producer and settings.relay_enabled:
                sns = await stack.enter_async_context(aws_client(settings, "sns"))
                relay = asyncio.create_task(
                    run_relay(settings, producer=producer, engine=engine, sns=sns, stop=stop)
                )
                stack.push_async_callback(_stop_task, relay, stop)
            for run in background:
                task = asyncio.create_task(run(stop))
                stack.push_async_callback(_stop_task, task, stop)
            # What start-up built lives as long as the process: out of the collector's way, so a
            # full collection scans only what requests made (scanning everything showed as the
            # tail of the APIs' latency).
            gc.collect()
            gc.freeze()
            # A young collection walks the container objects still alive since the last one: under
            # load, the requests in flight, so at Python's default threshold it costs every request
            # CPU; a higher one makes it rarer, and cyclic garbage waits that many allocations longer.
            thresholds = gc.get_threshold()
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
            _log.info("%s started in %s", settings.service_name, settings.environment)
            try:
                yield
            finally:
                gc.set_threshold(*thresholds)
                gc.unfreeze()  # collectable again once this app is gone (tests build many)
            _log.info("%s stopping", settings.service_name)
        provider.force_flush(timeout_millis=2000)

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        telemetry=FASTAPI_OWN_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.infrastructure = infrastructure
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(
        ServerTelemetryMiddleware,
        tracer_provider=provider,
        meter_provider=meter_provider,
        exclude=is_health_probe,
    )
    infrastructure.readiness.update(
        {"database": infrastructure.check_database, "bus": infrastructure.check_bus}
    )
    app.include_router(health_router(infrastructure.readiness))
    for router in routers:
        app.include_router(router)
    return app


async def _stop_task(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 10)
    except Exception:
        _log.exception("a background task did not stop cleanly")


def migrate(settings: ServiceSettings, migrations: Path) -> None:
    """Bring the service's database to the newest migration, creating the database if allowed."""
    if settings.database_create_if_missing and not settings.is_production:
        asyncio.run(ensure_database(settings.database_url))
    upgrade(migrations, settings.database_url)
    _log.info("%s database is at the newest migration", settings.service_name)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived command (a consumer, a provisioning worker) on uvloop, as uvicorn runs
    the HTTP APIs: its transports and scheduling are native code, where asyncio's own loop runs
    in Python on every event of a busy worker. Young
    collections are as rare as in a serving API (see the lifespan of :func:`create_service_app`)."""
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    try:
        import uvloop
    except ImportError:  # not built for this platform: asyncio's loop does the same, slower
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def run_cli(
    argv: Sequence[str] | None,
    *,
    service: str,
    app_factory: str,
    settings_factory: Callable[[], ServiceSettings],
    migrations: Path,
    default_port: int,
    consumer: str | None = None,
    handlers: Mapping[str, Handler[Any]] | None = None,
    unit_of_work_kind: type[UnitOfWork] = UnitOfWork,
    commands: Mapping[str, tuple[str, Callable[[ServiceSettings], Coroutine[Any, Any, None]]]]
    | None = None,
) -> None:
    """The command line every service has: ``serve``, ``migrate`` and, for consumers, ``consume``.

    ``commands`` adds the service's own, by name: ``(help text, coroutine function of settings)``.
    """
    parser = argparse.ArgumentParser(prog=f"mvno-{service}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    serve = subcommands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--timeout-graceful-shutdown", type=int, default=20)
    subcommands.add_parser("migrate", help="create the database if missing and run migrations")
    if consumer:
        subcommands.add_parser("consume", help="consume the service's queue until SIGTERM")
    for name, (help_text, _) in (commands or {}).items():
        subcommands.add_parser(name, help=help_text)
    arguments = parser.parse_args(argv)
    if commands and arguments.command in commands:
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level)
        # A service's own workers (orders' provision, billing-sync's work) export their traces
        # and metrics as its consumers do.
        configure_tracing(settings)
        configure_metrics(settings)
        run_event_loop(
            run_with_heartbeat(
                commands[arguments.command][1](settings),
                settings.heartbeat_file,
                settings.heartbeat_interval_seconds,
            )
        )
        return

    if arguments.command == "consume" and consumer:
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level)
        configure_tracing(settings)
        configure_metrics(settings)
        run_event_loop(
            run_with_heartbeat(
                consume(
                    settings,
                    consumer=consumer,
                    handlers=handlers or {},
                    unit_of_work_kind=unit_of_work_kind,
                ),
                settings.heartbeat_file,
                settings.heartbeat_interval_seconds,
            )
        )
        return

    if arguments.command == "migrate":
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level)
        migrate(settings, migrations)
        return
    # Fail fast on bad settings before uvicorn starts its workers.
    settings = settings_factory()
    uvicorn.run(
        app_factory,
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        timeout_graceful_shutdown=arguments.timeout_graceful_shutdown,
        log_config=None,
        access_log=settings.access_log,
        proxy_headers=True,
        server_header=False,
    )
