from mvno.common.migrations import run_migrations
from mvno.orders.tables import metadata

run_migrations(metadata)
