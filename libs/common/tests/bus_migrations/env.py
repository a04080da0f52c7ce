from sqlalchemy import MetaData

from mvno.common.migrations import run_migrations

run_migrations(MetaData())
