from mvno.common.migrations import run_migrations
from mvno.orders.hub import tables as hub_tables  # noqa: F401  (puts the hub's tables on metadata)
from mvno.orders.tables import metadata

run_migrations(metadata)
