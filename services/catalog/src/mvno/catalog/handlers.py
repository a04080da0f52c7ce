"""One function per command: load, ask the domain, save, audit, publish, commit once.

Every write goes through a :class:`CatalogWriter`, which records the audit trail and stages the
integration events in the same unit of work as the change itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic_core import to_jsonable_python

from mvno.catalog.domain.commands import (
    Actor,
    CategoryTerms,
    FeedOutcome,
    ImportFeed,
    OfferingTerms,
    PriceTerms,
    SpecificationTerms,
)
from mvno.catalog.domain.model import (
    CatalogError,
    Category,
    LifecycleStatus,
    NotEditable,
    NotFound,
    Offering,
    Price,
    Specification,
    UnknownReference,
    ValidFor,
    path_to,
)
from mvno.catalog.integration import integration_event
from mvno.catalog.repository import AuditEntry
from mvno.catalog.unit_of_work import CatalogUnitOfWork

VAT_RATE_PERCENT = Decimal("15")
"""South African VAT, included in every retail price the catalogue quotes."""

Outcome = Literal["created", "updated", "unchanged"]


class FeedRejected(Exception):
    """A feed with problems: every one is listed, and nothing was changed."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the feed")
        self.problems = problems


def new_id() -> str:
    return str(uuid.uuid4())


class CatalogWriter:
    """The write side within one unit of work: every change is audited and announced."""

    def __init__(self, uow: CatalogUnitOfWork, actor: Actor, at: datetime) -> None:
        self.uow = uow
        self.catalogue = uow.catalogue
        self.actor = actor
        self.at = at
        self._audit: list[AuditEntry] = []

    async def commit(self) -> None:
        await self.catalogue.record(entries=self._audit, at=self.at)
        await self.uow.commit()

    def audit(
        self, action: str, entity_type: str, entity_id: str, changes: Mapping[str, Any]
    ) -> None:
        self._audit.append(
            AuditEntry(
                actor=self.actor.subject,
                client_id=self.actor.client_id,
                request_id=self.actor.request_id,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                changes=to_jsonable_python(changes),
            )
        )

    # --- categories ---------------------------------------------------------------------

    async def put_category(
        self, category_id: str, terms: CategoryTerms
    ) -> tuple[Outcome, Category]:
        existing = await self.catalogue.get_category(category_id=category_id)
        await self._check_parent(category_id, terms.parent_id)
        if existing is None:
            category = Category(id=category_id, version=1, last_update=self.at, **vars(terms))
            await self.catalogue.save_category(category=category, new=True)
            self.audit("category.created", "category", category_id, vars(terms))
            return "created", category
        return await self.update_category(category_id, vars(terms), existing)

    async def update_category(
        self, category_id: str, changes: Mapping[str, Any], existing: Category | None = None
    ) -> tuple[Outcome, Category]:
        category = existing or await self.catalogue.get_category(category_id=category_id)
        if category is None:
            raise NotFound(f"there is no category {category_id}")
        if "parent_id" in changes:
            await self._check_parent(category_id, changes["parent_id"])
        diff = _diff(category, changes)
        if not diff:
            return "unchanged", category
        category = replace(category, **changes, version=category.version + 1, last_update=self.at)
        await self.catalogue.save_category(category=category, new=False)
        self.audit("category.updated", "category", category_id, diff)
        return "updated", category

    async def _check_parent(self, category_id: str, parent_id: str | None) -> None:
        seen = {category_id}
        while parent_id is not None:
            if parent_id in seen:
                raise CatalogError("a category cannot be its own ancestor", pointer="/parentId")
            parent = await self.catalogue.get_category(category_id=parent_id)
            if parent is None:
                raise UnknownReference(f"there is no category {parent_id}", pointer="/parentId")
            seen.add(parent_id)
            parent_id = parent.parent_id

    # --- specifications -----------------------------------------------------------------

    async def put_specification(
        self, specification_id: str, terms: SpecificationTerms
    ) -> tuple[Outcome, Specification]:
        existing = await self.catalogue.get_specification(specification_id=specification_id)
        if existing is None:
            specification = Specification(
                id=specification_id, version=1, last_update=self.at, **vars(terms)
            )
            await self.catalogue.save_specification(specification=specification, new=True)
            self.audit(
                "specification.created", "productSpecification", specification_id, vars(terms)
            )
            return "created", specification
        return await self.update_specification(specification_id, vars(terms), existing)

    async def update_specification(
        self,
        specification_id: str,
        changes: Mapping[str, Any],
        existing: Specification | None = None,
    ) -> tuple[Outcome, Specification]:
        specification = existing or await self.catalogue.get_specification(
            specification_id=specification_id
        )
        if specification is None:
            raise NotFound(f"there is no product specification {specification_id}")
        diff = _diff(specification, changes)
        if not diff:
            return "unchanged", specification
        if await self.catalogue.specification_in_use(specification_id=specification_id):
            raise NotEditable(
                f"product specification {specification_id} describes a launched offering; "
                "create a new specification instead"
            )
        specification = replace(
            specification, **changes, version=specification.version + 1, last_update=self.at
        )
        await self.catalogue.save_specification(specification=specification, new=False)
        self.audit("specification.updated", "productSpecification", specification_id, diff)
        return "updated", specification

    # --- offerings ----------------------------------------------------------------------

    async def create_offering(self, offering_id: str, terms: OfferingTerms) -> Offering:
        await self._check_offering_references(offering_id, terms)
        offering = Offering(
            id=offering_id,
            lifecycle_status=LifecycleStatus.IN_DESIGN,
            version=1,
            last_update=self.at,
            **vars(terms),
        )
        await self.catalogue.save_offering(offering=offering, new=True)
        self.audit("offering.created", "productOffering", offering_id, vars(terms))
        return offering

    async def load_offering(self, offering_id: str) -> Offering:
        offering = await self.catalogue.get_offering(offering_id=offering_id, for_update=True)
        if offering is None:
            raise NotFound(f"there is no product offering {offering_id}")
        return offering

    async def revise_offering(self, offering: Offering, changes: Mapping[str, Any]) -> bool:
        if (
            "specification_id" in changes
            or "category_id" in changes
            or "bundled_offering_ids" in changes
        ):
            terms = OfferingTerms(
                name=offering.name,
                specification_id=changes.get("specification_id", offering.specification_id),
                channels=offering.channels,
                valid_for=offering.valid_for,
                category_id=changes.get("category_id", offering.category_id),
                bundled_offering_ids=changes.get(
                    "bundled_offering_ids", offering.bundled_offering_ids
                ),
            )
            await self._check_offering_references(offering.id, terms)
        diff = offering.revise(self.at, **changes)
        if diff:
            self.audit(
                "offering.updated",
                "productOffering",
                offering.id,
                {name: {"from": old, "to": new} for name, (old, new) in diff.items()},
            )
        return bool(diff)

    async def move_offering(self, offering: Offering, target: LifecycleStatus) -> list[str]:
        """Walk the lifecycle to ``target`` one allowed step at a time (feeds name the goal)."""
        steps = path_to(offering.lifecycle_status, target)
        for status in steps:
            await self.transition_offering(offering, status)
        return [str(status) for status in steps]

    async def transition_offering(self, offering: Offering, target: LifecycleStatus) -> None:
        before = offering.lifecycle_status
        offering.transition(target, self.at)
        self.audit(
            "offering.lifecycle_changed",
            "productOffering",
            offering.id,
            {"lifecycleStatus": {"from": before, "to": target}},
        )

    def add_price(self, offering: Offering, terms: PriceTerms) -> Price:
        price = Price(
            id=new_id(),
            offering_id=offering.id,
            name=terms.name,
            price_type=terms.price_type,
            amount=terms.amount,
            tax_rate=VAT_RATE_PERCENT,
            valid_for=ValidFor(terms.starts or self.at),
            recurring_period=terms.recurring_period,
            unit_of_measure=terms.unit_of_measure,
        )
        closed = offering.add_price(price, self.at)
        self.audit(
            "price.opened",
            "productOffering",
            offering.id,
            {"opened": vars(price), "closed": closed.id if closed else None},
        )
        return price

    async def save_offering(self, offering: Offering, *, new: bool = False) -> None:
        """Persist the offering and stage the bus events its changes raised."""
        await self.catalogue.save_offering(offering=offering, new=new)
        if offering.events:
            specification = await self.catalogue.get_specification(
                specification_id=offering.specification_id
            )
            assert specification is not None  # a foreign key keeps it
            for event in offering.events:
                self.uow.publish(integration_event(event, specification))
            offering.events.clear()

    async def _check_offering_references(self, offering_id: str, terms: OfferingTerms) -> None:
        if await self.catalogue.get_specification(specification_id=terms.specification_id) is None:
            raise UnknownReference(
                f"there is no product specification {terms.specification_id}",
                pointer="/productSpecification/id",
            )
        if (
            terms.category_id is not None
            and await self.catalogue.get_category(category_id=terms.category_id) is None
        ):
            raise UnknownReference(
                f"there is no category {terms.category_id}", pointer="/category/0/id"
            )
        known = await self.catalogue.existing_offering_ids(offering_ids=terms.bundled_offering_ids)
        if missing := sorted(set(terms.bundled_offering_ids) - known - {offering_id}):
            raise UnknownReference(
                f"there is no product offering {', '.join(missing)} to bundle",
                pointer="/bundledProductOffering",
            )


def _diff(current: object, changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"from": getattr(current, name), "to": value}
        for name, value in changes.items()
        if getattr(current, name) != value
    }


def now() -> datetime:
    return datetime.now(UTC)


# --- the commands, each in its own unit of work ------------------------------------------


@contextmanager
def _feed_item(problems: list[tuple[str, str]], pointer: str) -> Iterator[None]:
    try:
        yield
    except CatalogError as error:
        problems.append((pointer + (error.pointer or ""), error.message))


async def import_feed(
    unit_of_work: Callable[[], CatalogUnitOfWork], actor: Actor, feed: ImportFeed
) -> FeedOutcome:
    """Apply a whole feed in one transaction, or nothing when any item is refused.

    Re-importing the same feed changes nothing: entities are put by id, and a price already
    charging the same amount is kept rather than versioned.
    """
    outcome = FeedOutcome()
    problems: list[tuple[str, str]] = []
    async with unit_of_work() as uow:
        writer = CatalogWriter(uow, actor, now())
        for index, (category_id, category_terms) in enumerate(feed.categories):
            with _feed_item(problems, f"/categories/{index}"):
                result, _ = await writer.put_category(category_id, category_terms)
                outcome.count(result, "category", category_id)
        for index, (specification_id, spec_terms) in enumerate(feed.specifications):
            with _feed_item(problems, f"/productSpecifications/{index}"):
                result, _ = await writer.put_specification(specification_id, spec_terms)
                outcome.count(result, "productSpecification", specification_id)
        # Offerings may bundle offerings later in the feed: create them all before linking.
        created: set[str] = set()
        for index, item in enumerate(feed.offerings):
            with _feed_item(problems, f"/productOfferings/{index}"):
                if await writer.catalogue.get_offering(offering_id=item.offering_id) is None:
                    plain = replace(item.terms, bundled_offering_ids=())
                    await writer.create_offering(item.offering_id, plain)
                    created.add(item.offering_id)
        for index, item in enumerate(feed.offerings):
            with _feed_item(problems, f"/productOfferings/{index}"):
                offering = await writer.load_offering(item.offering_id)
                changed = await writer.revise_offering(offering, _terms_changes(item.terms))
                for price_terms in item.prices:
                    candidate = Price(
                        id="candidate",
                        offering_id=offering.id,
                        name=price_terms.name,
                        price_type=price_terms.price_type,
                        amount=price_terms.amount,
                        tax_rate=VAT_RATE_PERCENT,
                        valid_for=ValidFor(writer.at),
                        recurring_period=price_terms.recurring_period,
                        unit_of_measure=price_terms.unit_of_measure,
                    )
                    if not offering.same_price(candidate, writer.at):
                        price = writer.add_price(offering, replace(price_terms, starts=None))
                        outcome.prices_opened.append(price.id)
                        changed = True
                steps = await writer.move_offering(offering, item.lifecycle_status)
                outcome.transitions.extend(f"{offering.id}: {step}" for step in steps)
                await writer.save_offering(offering)
                if item.offering_id in created:
                    outcome.count("created", "productOffering", offering.id)
                elif changed or steps:
                    outcome.count("updated", "productOffering", offering.id)
                else:
                    outcome.count("unchanged", "productOffering", offering.id)
        if problems:
            raise FeedRejected(problems)  # leaving the unit of work uncommitted rolls back
        writer.audit(
            "feed.imported",
            "feed",
            feed.partner,
            {
                "created": outcome.created,
                "updated": outcome.updated,
                "pricesOpened": outcome.prices_opened,
            },
        )
        await writer.commit()
    return outcome


def _terms_changes(terms: OfferingTerms) -> dict[str, Any]:
    return vars(terms)


T = TypeVar("T")


async def _write(
    unit_of_work: Callable[[], CatalogUnitOfWork],
    actor: Actor,
    change: Callable[[CatalogWriter], Awaitable[T]],
) -> T:
    async with unit_of_work() as uow:
        writer = CatalogWriter(uow, actor, now())
        result = await change(writer)
        await writer.commit()
        return result


async def create_category(
    unit_of_work: Callable[[], CatalogUnitOfWork], actor: Actor, terms: CategoryTerms
) -> Category:
    async def change(writer: CatalogWriter) -> Category:
        return (await writer.put_category(new_id(), terms))[1]

    return await _write(unit_of_work, actor, change)


async def update_category(
    unit_of_work: Callable[[], CatalogUnitOfWork],
    actor: Actor,
    category_id: str,
    changes: Mapping[str, Any],
) -> Category:
    async def change(writer: CatalogWriter) -> Category:
        return (await writer.update_category(category_id, changes))[1]

    return await _write(unit_of_work, actor, change)


async def create_specification(
    unit_of_work: Callable[[], CatalogUnitOfWork], actor: Actor, terms: SpecificationTerms
) -> Specification:
    async def change(writer: CatalogWriter) -> Specification:
        return (await writer.put_specification(new_id(), terms))[1]

    return await _write(unit_of_work, actor, change)


async def update_specification(
    unit_of_work: Callable[[], CatalogUnitOfWork],
    actor: Actor,
    specification_id: str,
    changes: Mapping[str, Any],
) -> Specification:
    async def change(writer: CatalogWriter) -> Specification:
        return (await writer.update_specification(specification_id, changes))[1]

    return await _write(unit_of_work, actor, change)


async def create_offering(
    unit_of_work: Callable[[], CatalogUnitOfWork], actor: Actor, terms: OfferingTerms
) -> Offering:
    async def change(writer: CatalogWriter) -> Offering:
        return await writer.create_offering(new_id(), terms)

    return await _write(unit_of_work, actor, change)


async def update_offering(
    unit_of_work: Callable[[], CatalogUnitOfWork],
    actor: Actor,
    offering_id: str,
    changes: Mapping[str, Any],
    lifecycle_status: LifecycleStatus | None,
) -> Offering:
    """Revise terms, then (when asked) take the one next step in the lifecycle."""

    async def change(writer: CatalogWriter) -> Offering:
        offering = await writer.load_offering(offering_id)
        await writer.revise_offering(offering, changes)
        if lifecycle_status is not None and lifecycle_status != offering.lifecycle_status:
            await writer.transition_offering(offering, lifecycle_status)
        await writer.save_offering(offering)
        return offering

    return await _write(unit_of_work, actor, change)


async def add_price(
    unit_of_work: Callable[[], CatalogUnitOfWork], actor: Actor, offering_id: str, terms: PriceTerms
) -> Price:
    """Open a new price version; the current one in its slot closes when the new one starts."""

    async def change(writer: CatalogWriter) -> Price:
        try:
            offering = await writer.load_offering(offering_id)
        except NotFound as error:
            raise UnknownReference(error.message, pointer="/productOffering/id") from None
        price = writer.add_price(offering, terms)
        await writer.save_offering(offering)
        return price

    return await _write(unit_of_work, actor, change)
