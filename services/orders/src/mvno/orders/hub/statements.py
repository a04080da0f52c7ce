"""The hubs' hand-written SQL, sent on asyncpg."""

from mvno.common.db import Statement

HUBS_OF_CLIENT = Statement("SELECT id, query FROM hub_subscriptions WHERE owner_client_id = :owner")
"""The id and event query of every hub a client registered: read at a state change of an order
whose client's hubs are not held in memory."""
