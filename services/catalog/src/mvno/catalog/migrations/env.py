from mvno.catalog.tables import metadata
from mvno.common.migrations import run_migrations

run_migrations(metadata)
