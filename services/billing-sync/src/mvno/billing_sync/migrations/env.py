from mvno.common.migrations import run_migrations
from mvno.billing_sync.tables import metadata

run_migrations(metadata)
