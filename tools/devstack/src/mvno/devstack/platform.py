"""The MVNO Platform as local processes: migrations, then the dev issuer, simulators and services."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mvno.devstack import traces
from mvno.devstack.components import ALL, DEV_ISSUER, SERVICES, SIMULATORS, Component
from mvno.devstack.infrastructure import port_in_use, with_database
from mvno.devstack.processes import Child, ProcessGroup, wait_until_ready

if TYPE_CHECKING:
    from mvno.common.db import Statement

_log = logging.getLogger(__name__)


@dataclass
class PlatformConfig:
    data_dir: Path
    database_server_url: str
    aws_endpoint_url: str
    environment: str = "development"
    ports: Mapping[str, int] = field(default_factory=dict)
    port_offset: int = 0  # added to every default port, to run beside another copy
    only: Iterable[str] | None = None  # service names to run; None runs every service

    def port(self, component: Component) -> int:
        return self.ports.get(component.name, component.default_port + self.port_offset)

    def url(self, component: Component) -> str:
        return f"http://127.0.0.1:{self.port(component)}"

    def services(self) -> tuple[Component, ...]:
        if self.only is None:
            return SERVICES
        wanted = set(self.only)
        unknown = wanted - {service.name for service in SERVICES}
        if unknown:
            raise ValueError(f"unknown services: {', '.join(sorted(unknown))}")
        return tuple(service for service in SERVICES if service.name in wanted)


class Platform:
    """Starts the platform's processes and stops every one of them again."""

    def __init__(self, config: PlatformConfig, processes: ProcessGroup) -> None:
        self.config = config
        self.processes = processes
        self.started: dict[str, Child] = {}
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def environment_for(self, component: Component) -> dict[str, str]:
        config = self.config
        # The caller's environment, its MVNO_* settings included, reaches every process; the
        # platform's own values (database, endpoints, issuer, ports) are set over it.
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "AWS_ENDPOINT_URL", "MVNO_DATABASE_URL"}
        }
        env.update(traces.tracing_environment(os.environ, config.port_offset))
        env.update(
            {
                "MVNO_ENVIRONMENT": config.environment,
                "MVNO_AWS_ENDPOINT_URL": config.aws_endpoint_url,
                "MVNO_JWT_ISSUER": config.url(DEV_ISSUER),
                "MVNO_JWKS_URL": config.url(DEV_ISSUER) + "/.well-known/jwks.json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for other in ALL:
            env[f"MVNO_{other.name.upper().replace('-', '_')}_URL"] = config.url(other)
        # The partners' APIs, all served by the simulators locally.
        env["MVNO_NETWORK_OPERATOR_URL"] = config.url(SIMULATORS) + "/mno/v1"
        env["MVNO_PAYMENTS_URL"] = config.url(SIMULATORS) + "/payments/v1"
        env["MVNO_BILLING_PLATFORM_URL"] = config.url(SIMULATORS) + "/billing/v1"
        if component.database:
            env["MVNO_DATABASE_URL"] = with_database(config.database_server_url, component.database)
        if component is SIMULATORS:
            env.update(self._simulator_environment())
            env.update(traces.simulator_tracing(env))
        return env

    def _simulator_environment(self) -> dict[str, str]:
        """The simulators keep their state in the data folder, so that after a restart they still
        know the numbers, SIMs and accounts the services' databases refer to; the shell's own
        ``MVNO_SIM_*`` settings (seed, faults, activation delay, ...) reach them unchanged."""
        env = {
            "MVNO_SIM_ENVIRONMENT": self.config.environment,
            "MVNO_SIM_STATE_FILE": str(self.config.data_dir / "simulators-state.pickle"),
        }
        env.update({k: v for k, v in os.environ.items() if k.startswith("MVNO_SIM_")})
        return env

    def _command(self, component: Component, *arguments: str) -> list[str]:
        return [sys.executable, "-m", component.module, *arguments]

    def components(self) -> list[Component]:
        return [DEV_ISSUER, SIMULATORS, *self.config.services()]

    def migrate(self) -> None:
        """Create each service's database if missing, run its migrations and load its seed data.

        In this process, one service after the other: the heavy imports are paid once. A service
        with demo data names a ``SEED`` coroutine function in its ``__main__``; seeds are
        idempotent, so a restart changes nothing. A service that needs local stand-ins of cloud
        resources (a KMS key) names a ``LOCAL_SETUP`` coroutine function, run first.
        """
        from mvno.common.service import migrate

        for service in self.config.services():
            if service.database is None:
                continue
            entry = importlib.import_module(f"{service.module}.__main__")
            settings = entry.SETTINGS(
                environment=self.config.environment,
                database_url=with_database(self.config.database_server_url, service.database),
                aws_endpoint_url=self.config.aws_endpoint_url,
            )
            if local_setup := getattr(entry, "LOCAL_SETUP", None):
                asyncio.run(local_setup(settings))
            migrate(settings, entry.MIGRATIONS)
            if seed := getattr(entry, "SEED", None):
                asyncio.run(seed(settings))

    def provision_bus(self) -> None:
        """Create the platform's topics, queues, DLQs and subscriptions on the local endpoint."""
        from mvno.common.bus.provision import provision
        from mvno.common.bus.topology import platform_topology
        from mvno.common.settings import ServiceSettings

        settings = ServiceSettings(
            environment=self.config.environment, aws_endpoint_url=self.config.aws_endpoint_url
        )
        asyncio.run(provision(settings, platform_topology(settings.bus_prefix)))

    def consumers(self) -> list[Component]:
        """Services with at least one event handler; each gets a consumer worker process."""
        running = []
        for service in self.config.services():
            try:
                handlers = importlib.import_module(f"{service.module}.consumer").HANDLERS
            except ModuleNotFoundError:
                continue
            if handlers:
                running.append(service)
        return running

    def start(self, timeout: float = 90.0) -> None:
        """Start every component and queue worker, wait until each component answers its
        readiness probe and the catalogue has reached every copy of it: then a customer can buy."""
        components = self.components()
        busy = [
            f"{c.name} ({self.config.port(c)})"
            for c in components
            if port_in_use(self.config.port(c))
        ]
        if busy:
            raise RuntimeError("ports already in use: " + ", ".join(busy))
        without_catalog = "catalog" not in {s.name for s in self.config.services()}
        for component in components:
            arguments = ["serve", "--host", "127.0.0.1", "--port", str(self.config.port(component))]
            if component is DEV_ISSUER:
                key_file = str(self.config.data_dir / "dev-issuer-keys.json")
                arguments = [*arguments[1:], "--key-file", key_file]
            env = self.environment_for(component)
            if without_catalog:
                # No catalog runs to fill a catalogue copy: an empty one is an empty catalogue.
                env["MVNO_CATALOGUE_COPY_GRACE_SECONDS"] = "0"
            self.launch(component.name, self._command(component, *arguments), env)
        # The workers start with the services: a service keeping a copy of the catalogue is
        # ready only once its consumer has received the catalogue's events.
        for service, command in self.workers():
            self.launch(
                f"{service.name}-{command}",
                self._command(service, command),
                self.environment_for(service),
            )
        for component in components:
            ready = "/health/live" if component is DEV_ISSUER else "/health/ready"
            wait_until_ready(
                self.started[component.name], self.config.url(component) + ready, timeout
            )
        self.wait_for_catalogue(timeout)
        from mvno.devstack.canary import start_canary

        start_canary(self)

    def launch(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        self._commands[name] = (argv, env)
        self.started[name] = self.processes.start(name, argv, env)
        return self.started[name]

    def restart(self, name: str) -> Child:
        """Start ``name`` again, as it was first started, in place of its dead process."""
        self.processes.stop(self.started[name])
        argv, env = self._commands[name]
        return self.launch(name, argv, env)

    def wait_for_catalogue(self, timeout: float) -> None:
        """Wait until every service that keeps a catalogue copy (its ``__main__`` names the
        statement listing what the copy holds as launched, ``CATALOGUE_COPY``) holds each
        offering catalog has launched (``LAUNCHED`` in catalog's ``__main__``)."""
        services = self.config.services()
        entries = {s.name: importlib.import_module(f"{s.module}.__main__") for s in services}
        source = [
            (s, entries[s.name].LAUNCHED) for s in services if hasattr(entries[s.name], "LAUNCHED")
        ]
        copies = [
            (service, entries[service.name].CATALOGUE_COPY)
            for service in services
            if hasattr(entries[service.name], "CATALOGUE_COPY")
        ]
        if source and copies:
            asyncio.run(self._wait_for_copies(source[0], copies, time.monotonic() + timeout))

    async def _wait_for_copies(
        self,
        source: tuple[Component, Statement],
        copies: Sequence[tuple[Component, Statement]],
        deadline: float,
    ) -> None:
        import asyncpg

        from mvno.common.db import asyncpg_dsn

        async def offering_ids(service: Component, statement: Statement) -> set[str]:
            url = with_database(self.config.database_server_url, service.database or "")
            connection = await asyncpg.connect(asyncpg_dsn(url))
            try:
                return {row[0] for row in await statement.fetch(connection)}
            finally:
                await connection.close()

        while True:
            on_sale = await offering_ids(*source)
            missing = {
                service.name: on_sale - await offering_ids(service, statement)
                for service, statement in copies
            }
            if not any(missing.values()):
                return
            for name, child in self.started.items():
                if not child.alive():
                    raise RuntimeError(
                        f"{name} exited with {child.process.returncode}:\n{child.log_tail()}"
                    )
            if time.monotonic() > deadline:
                lacking = ", ".join(f"{n}: {len(m)}" for n, m in missing.items() if m)
                raise TimeoutError(
                    "the catalogue did not reach every copy in time "
                    f"(offerings missing from {lacking})"
                )
            await asyncio.sleep(0.2)

    def workers(self) -> list[tuple[Component, str]]:
        """Queue workers as deployed: ``consume`` for a service with event handlers, plus the
        commands its ``__main__`` lists in ``WORKERS`` (orders' provisioning workers)."""
        found = [(service, "consume") for service in self.consumers()]
        for service in self.config.services():
            entry = importlib.import_module(f"{service.module}.__main__")
            found += [(service, command) for command in getattr(entry, "WORKERS", ())]
        return found

    def links(self) -> list[tuple[str, str]]:
        """(name, URL) pairs worth printing: the customer portal, API docs of each service and
        the stand-ins."""
        links = []
        for component in self.components():
            path = component.docs_path or "/.well-known/openid-configuration"
            links.append((component.name, self.config.url(component) + path))
            if component.name == "portal-api":
                links.insert(0, ("portal (web)", self.config.url(component) + "/web/"))
        return links

    def stop(self) -> None:
        self.processes.stop_all()
        self.started.clear()
