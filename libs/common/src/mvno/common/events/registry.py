"""Every event contract by type name, built by hand from the producer modules.

The list is explicit (each module's ``EVENTS``), not discovered, so a contract exists on the bus
only when someone added it here on purpose, and the checks below run once, at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from mvno.common.events import billing, catalog, orders, platform
from mvno.common.events.base import EventData, parse_event_type

PRODUCER_MODULES: tuple[ModuleType, ...] = (catalog, orders, billing, platform)
"""One module per producing service; each has ``PRODUCER`` and ``EVENTS``."""


def build_registry(modules: Iterable[ModuleType]) -> dict[str, type[EventData]]:
    """Map event type → contract for the modules' ``EVENTS``, refusing inconsistencies.

    Refused: an abstract base (no ``event_type`` of its own), a type whose producer is not its
    module's ``PRODUCER``, and a type name or class name used twice (one name, one schema file).
    """
    contracts: dict[str, type[EventData]] = {}
    class_names: dict[str, str] = {}
    for module in modules:
        producer: str = module.PRODUCER
        events: tuple[type[EventData], ...] = module.EVENTS
        for contract in events:
            if contract.is_abstract():
                raise TypeError(f"{contract.__name__} sets no event_type of its own")
            event_type = contract.event_type
            if parse_event_type(event_type).producer != producer:
                raise ValueError(
                    f"{contract.__name__}: {event_type!r} is listed in {module.__name__}, "
                    f"whose producer is {producer!r}"
                )
            if event_type in contracts:
                raise ValueError(
                    f"event type {event_type!r} is used by both "
                    f"{contracts[event_type].__name__} and {contract.__name__}"
                )
            if contract.__name__ in class_names:
                raise ValueError(
                    f"class name {contract.__name__} is used by both "
                    f"{class_names[contract.__name__]!r} and {event_type!r}"
                )
            contracts[event_type] = contract
            class_names[contract.__name__] = event_type
    return contracts


CONTRACTS: dict[str, type[EventData]] = build_registry(PRODUCER_MODULES)
"""Event type name → its payload model, for every event on the bus."""


def contract_for(event_type: str) -> type[EventData] | None:
    """The payload model of ``event_type``, or ``None`` for a type no contract describes."""
    return CONTRACTS.get(event_type)


def producer_of(event_type: str) -> str:
    """The producer part of a type name (``orders`` for ``orders.order.state_changed.v1``).

    Works for any well-formed name, known or not; raises ``ValueError`` for a malformed one.
    """
    return parse_event_type(event_type).producer
