from mvno.common.migrations import run_migrations
from mvno.catalog.tables import metadata

run_migrations(metadata)
