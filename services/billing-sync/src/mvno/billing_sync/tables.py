"""The billing-sync service's tables; its Alembic migrations are written against this metadata."""

from sqlalchemy import MetaData

from mvno.common.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)
