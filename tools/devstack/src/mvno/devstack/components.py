"""What the local platform runs: every service and stand-in, its port and its database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    default_port: int
    database: str | None = None  # a service with a database has migrations
    docs_path: str | None = "/docs"


DEV_ISSUER = Component("dev-issuer", "mvno.common.auth.dev_issuer", 8009, docs_path=None)
SIMULATORS = Component("simulators", "mvno.simulators", 8010)
SERVICES = (
    Component("catalog", "mvno.catalog", 8001, "mvno_catalog"),
    Component("orders", "mvno.orders", 8002, "mvno_orders"),
    Component("billing-sync", "mvno.billing_sync", 8003, "mvno_billing_sync"),
    Component("portal-api", "mvno.portal_api", 8000, "mvno_portal_api"),
)
ALL = (DEV_ISSUER, SIMULATORS, *SERVICES)
BY_NAME = {component.name: component for component in ALL}
