"""The catalogue copy's hand-written SQL, sent on asyncpg."""

from mvno.common.db import Statement

PAYMENT_TYPE_OF_OFFERING = Statement(
    "SELECT payment_type FROM offering_copies WHERE offering_id = :offering_id"
)
"""An offering's payment type (prepaid, postpaid): read once per activated line."""

LAUNCHED_IN_COPY = Statement("SELECT offering_id FROM offering_copies WHERE status = 'launched'")
"""The offerings the copy holds as launched: what the local platform waits to see arrive."""
