from mvno.common.migrations import run_migrations
from mvno.portal_api.tables import metadata

run_migrations(metadata)
