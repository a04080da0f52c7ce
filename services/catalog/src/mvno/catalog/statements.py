"""The catalog's hand-written SQL, sent on asyncpg (SQLAlchemy Core everywhere else)."""

from mvno.common.db import Statement

LAUNCHED_OFFERINGS = Statement(
    "SELECT id FROM product_offerings WHERE lifecycle_status = 'Launched'"
)
"""The offerings on sale: what every catalogue copy must hold before the local platform is up."""
