"""The South African MVNO catalogue the local platform and the tests start from.

It is a partner feed (``south_africa.json``) applied through the same import as any other, so
seeding twice changes nothing and the launches reach the bus like any launch.
"""

from __future__ import annotations

from importlib.resources import files

from mvno.catalog.domain.commands import Actor, FeedOutcome
from mvno.catalog.handlers import import_feed
from mvno.catalog.schemas import FeedDocument
from mvno.catalog.unit_of_work import CatalogUnitOfWork
from mvno.common.bus.envelope import event_source
from mvno.common.db import create_engine, unit_of_work_factory
from mvno.common.settings import ServiceSettings

SEED_ACTOR = Actor(subject="system:seed")


def seed_document() -> FeedDocument:
    text = files(__package__).joinpath("south_africa.json").read_text(encoding="utf-8")
    return FeedDocument.model_validate_json(text)


async def seed(settings: ServiceSettings) -> FeedOutcome:
    """Apply the seed catalogue to the service's database (refused in production)."""
    if settings.is_production:
        raise RuntimeError("the demo catalogue is never seeded into production")
    engine = create_engine(settings)
    try:
        unit_of_work = unit_of_work_factory(
            engine, source=event_source(settings.service_name), kind=CatalogUnitOfWork
        )
        return await import_feed(unit_of_work, SEED_ACTOR, seed_document().to_command())
    finally:
        await engine.dispose()
