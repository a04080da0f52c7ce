"""Event contracts: the pydantic models of every event's payload, one module per producer.

* :mod:`~mvno.common.events.catalog` (producer ``catalog``), :mod:`~mvno.common.events.orders`
  (``orders``), :mod:`~mvno.common.events.billing` (``billing``, published by billing-sync).
* :mod:`~mvno.common.events.registry`: every contract by type name (``CONTRACTS``,
  ``contract_for``, ``producer_of``).
* :mod:`~mvno.common.events.schemas`: the generated JSON Schemas, committed under ``schemas/``,
  and :mod:`~mvno.common.events.compatibility`, which tells a breaking change from an additive one.

Rules every contract follows (see :mod:`~mvno.common.events.base`): type names
``<producer>.<aggregate>.<past-tense-action>.v<N>``; changes are additive, a breaking one makes a
new version; consumers ignore unknown fields; and events NEVER carry personal data (ID or passport
numbers, addresses, dates of birth, names, e-mail): customers are opaque ids, and whoever needs
more asks the owning service's API.
"""

from mvno.common.events.base import EventData
from mvno.common.events.registry import CONTRACTS, contract_for, producer_of

__all__ = ["CONTRACTS", "EventData", "contract_for", "producer_of"]
