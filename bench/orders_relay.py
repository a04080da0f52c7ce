"""The orders outbox relay alone, as a process of its own, until SIGTERM.

    python -m bench.orders_relay          (settings from the MVNO_* environment, as the services)

The orders API does not relay its outbox as deployed (``OrdersSettings.relay_enabled``): its
provisioning workers do. ``bench/orders.py`` stops the workers for the intake part, so that
nothing shares the two cores with the API under wrk; after it, this process publishes what the
intake wrote, as the workers would, and its CPU per event is reported apart from the API's.
"""

from mvno.common.aws import aws_client
from mvno.common.bus.runtime import run_relay, stop_on_signals
from mvno.common.db import create_engine
from mvno.common.service import run_event_loop
from mvno.orders.settings import OrdersSettings


async def main() -> None:
    settings = OrdersSettings()
    stop = stop_on_signals()
    engine = create_engine(settings)
    try:
        async with aws_client(settings, "sns") as sns:
            await run_relay(settings, producer="orders", engine=engine, sns=sns, stop=stop)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    run_event_loop(main())
