"""One function per hub request: check, load or save through the repository, commit once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from mvno.common.auth.tokens import Principal
from mvno.orders.hub.callbacks import check_callback
from mvno.orders.hub.domain import Delivery, EventQuery, Hub, HubNotFound, new_secret
from mvno.orders.unit_of_work import OrdersUnitOfWork

UnitOfWorkFactory = Callable[[], OrdersUnitOfWork]


def owner_of(principal: Principal) -> str:
    """The client a hub belongs to: the token's ``client_id``, else its subject.

    For the client-credential tokens channels use, RFC 9068 §2.2 makes ``sub`` the client's
    own identifier when no ``client_id`` claim is present.
    """
    return principal.client_id or principal.subject


async def register_hub(
    unit_of_work: UnitOfWorkFactory,
    *,
    owner: str,
    callback: str,
    query: str | None,
    production: bool,
) -> Hub:
    EventQuery.parse(query)
    await check_callback(callback, production=production)
    hub = Hub(
        id=str(uuid.uuid4()), owner=owner, callback=callback, query=query, secret=new_secret()
    )
    async with unit_of_work() as uow:
        await uow.hubs.add(hub=hub)
        await uow.commit()
    return hub


async def get_hub(unit_of_work: UnitOfWorkFactory, *, hub_id: str, owner: str) -> Hub:
    hub_id = _known_form(hub_id)
    async with unit_of_work() as uow:
        hub = await uow.hubs.get(hub_id=hub_id, owner=owner)
    if hub is None:
        raise HubNotFound(f"There is no hub {hub_id}.")
    return hub


async def unregister_hub(unit_of_work: UnitOfWorkFactory, *, hub_id: str, owner: str) -> None:
    hub_id = _known_form(hub_id)
    async with unit_of_work() as uow:
        if not await uow.hubs.remove(hub_id=hub_id, owner=owner):
            raise HubNotFound(f"There is no hub {hub_id}.")
        await uow.commit()


async def delivery_log(
    unit_of_work: UnitOfWorkFactory, *, hub_id: str, owner: str, offset: int, limit: int
) -> tuple[int, list[Delivery]]:
    hub_id = _known_form(hub_id)
    async with unit_of_work() as uow:
        if await uow.hubs.get(hub_id=hub_id, owner=owner) is None:
            raise HubNotFound(f"There is no hub {hub_id}.")
        return await uow.hubs.deliveries(hub_id=hub_id, offset=offset, limit=limit)


def _known_form(hub_id: str) -> str:
    # Hub ids are UUIDs minted here: anything else names no hub (and never reaches SQL, where
    # a NUL character, say, would be an error rather than a miss).
    try:
        return str(uuid.UUID(hub_id))
    except ValueError:
        raise HubNotFound("There is no such hub.") from None
