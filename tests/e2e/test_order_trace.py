"""One order, one trace, on the local platform (``mvno-local up``) and read back with
``mvno-local trace``: the channel's POST (continuing its X-Ray header), the saga's steps in the
provisioning workers (a payment authorisation that fails once and is retried from its timer, and
a worker killed mid-saga whose order another worker takes over from its lease), the simulators'
side of each partner call, billing-sync's handling and billing-platform calls, and portal-api's
read-model updates, every span carrying the order id. While idle, the pollers make no trace.

The platform stops when one of its processes dies, so the saga runs in two provisioning workers
this test starts (copies of the platform's own, which is paused meanwhile): one of them is killed.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mvno.devstack import traces
from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use
from mvno.devstack.testing import wait_for_banner

pytestmark = pytest.mark.e2e

CUSTOMER = {
    "idType": "sa_id",
    "idNumber": "8001015009087",
    "fullName": "Thabo Mokoena",
    "address": {"line1": "3 Long Street", "city": "Cape Town", "postalCode": "8001"},
}
CALLER_SPAN = "53995c3f42cd8ad8"
LAUNCHER = Path(sys.executable).with_name("mvno-local")


def _offset() -> int:
    ports = (4566, traces.RECEIVER_PORT, *(c.default_port for c in ALL))
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if not any(port_in_use(p + offset) for p in ports):
            return offset
    raise RuntimeError("no free port range")


def _start(data_dir: Path, offset: int) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"} and not k.startswith("MVNO_OTEL_")
    }
    # Reaches every process through the platform (the caller's MVNO_* pass through): a killed
    # worker's order is taken over sooner than by default, yet later than the slowed activation
    # and the steps before it, so only the kill hands the order over, not a lease running out
    # under a live worker.
    env["MVNO_PROVISIONING_VISIBILITY_SECONDS"] = "15"
    return subprocess.Popen(
        [str(LAUNCHER), "up", "--data-dir", str(data_dir), "--port-offset", str(offset)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def _trace(order_id: str, data_dir: Path, offset: int) -> list[dict[str, Any]]:
    """What ``mvno-local trace ORDER_ID --json`` prints for the platform these options started."""
    printed = subprocess.run(
        [str(LAUNCHER), "trace", order_id, "--json", "--data-dir", str(data_dir),
         "--port-offset", str(offset)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    spans: list[dict[str, Any]] = json.loads(printed.stdout)
    return spans


def _provision_worker(launcher_pid: int) -> psutil.Process:
    (worker,) = [
        child
        for child in psutil.Process(launcher_pid).children(recursive=True)
        if "mvno.orders" in child.cmdline() and "provision" in child.cmdline()
    ]
    return worker


def _pid(span: dict[str, Any]) -> int | None:
    pid = span["resource"].get("process.pid")
    return int(pid) if pid is not None else None


@pytest.mark.xfail(
    strict=False,
    reason="flaky in the full suite: twice there, none of the order's spans reached the store "
    "(they pass when this test runs alone); not yet understood",
)
def test_an_order_is_one_trace_across_the_platform(tmp_path):
    offset = _offset()
    data_dir = tmp_path / "data"
    process = _start(data_dir, offset)
    workers: list[subprocess.Popen[bytes]] = []
    paused: psutil.Process | None = None
    try:
        wait_for_banner(process)
        url = {c.name: f"http://127.0.0.1:{c.default_port + offset}" for c in ALL}

        # The saga runs in two workers of this test's own, the platform's paused meanwhile.
        platform_worker = _provision_worker(process.pid)
        command, environment = platform_worker.cmdline(), platform_worker.environ()
        platform_worker.suspend()
        paused = platform_worker
        logs = data_dir / "logs"
        for n in (1, 2):
            log = (logs / f"test-provision-{n}.log").open("ab")
            workers.append(
                subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            )  # fmt: skip
        worker_pids = {worker.pid for worker in workers}

        with httpx.Client(timeout=30) as client:
            token = (client.post(
                    url["dev-issuer"] + "/token",
                    data={"grant_type": "client_credentials", "client_id": "bank-app",
                          "scope": "orders:write", "subject": "bank-app"},
                )
            ).json()["access_token"]  # fmt: skip
            auth = {"Authorization": f"Bearer {token}"}
            orders = url["orders"] + "/tmf-api/productOrderingManagement/v4/productOrder"
            # orders fetches the issuer's keys now, not inside the order's POST.
            assert (client.get(orders, headers=auth)).status_code == 200

            faults = url["simulators"] + "/admin/faults"
            refused = client.put(
                f"{faults}/payments/authorise_payment", json={"errorRate": 1, "errorStatus": 503}
            )
            assert refused.status_code == 200, refused.text
            slow = client.put(f"{faults}/mno/activate_subscription", json={"latencyMs": 4000})
            assert slow.status_code == 200, slow.text

            body = {
                "channel": [{"id": "app"}], "relatedParty": [{"id": "cust-trace"}],
                "payment": [{"id": "1002003004"}], "customer": CUSTOMER,
                "productOrderItem": [{"id": "1", "action": "add", "simKind": "eSIM",
                                      "productOffering": {"id": "esim-5gb-bundle"}}],
            }  # fmt: skip
            deadline = time.monotonic() + 60
            while True:  # the catalogue copy may still be on its way right after start-up
                root = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"  # the caller's trace
                placed = client.post(
                    orders,
                    json=body,
                    headers={**auth, "Idempotency-Key": str(uuid.uuid4()),
                             "X-Amzn-Trace-Id": f"Root={root};Parent={CALLER_SPAN};Sampled=1"},
                )  # fmt: skip
                if placed.status_code not in {422, 503} or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["id"]

            def spans_until(found: Any, what: str, timeout: float = 90) -> list[dict]:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    spans = _trace(order_id, data_dir, offset)
                    if found(spans):
                        return spans
                    time.sleep(0.2)
                raise AssertionError(f"no {what} in the order's trace:\n{json.dumps(spans)[:4000]}")

            def named(spans: list[dict], name: str) -> list[dict]:
                return [span for span in spans if span["name"] == name]

            # The bank refuses the authorisation once; then it is back.
            spans_until(
                lambda s: any(x["status"] == "error" for x in named(s, "step authorise_payment")),
                "failed authorisation",
            )
            assert (client.delete(f"{faults}/payments/authorise_payment")).status_code in {
                200,
                204,
            }
            # Kill the worker running the order while its activation call is in flight.
            spans = spans_until(lambda s: bool(named(s, "step allocate_sim")), "SIM allocation")
            (running,) = {_pid(span) for span in named(spans, "step allocate_sim")}
            assert running in worker_pids
            victim = next(worker for worker in workers if worker.pid == running)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            survivor = next(worker for worker in workers if worker.pid != running)

            deadline = time.monotonic() + 120
            state = "unknown"
            while time.monotonic() < deadline:
                state = (client.get(f"{orders}/{order_id}", headers=auth)).json()["state"]
                if state in {"completed", "failed", "cancelled"}:
                    break
                time.sleep(0.5)
            assert state == "completed"

            def complete(s: list[dict]) -> bool:
                """Every service's spans, up to portal-api's update after the capture."""
                captures = named(s, "step capture_payment")
                return bool(captures) and any(
                    span["service"] == "portal-api"
                    and span["name"] == "orders.order.state_changed.v1 process"
                    and span["start_unix_nano"] > captures[-1]["start_unix_nano"]
                    for span in s
                )

            spans = spans_until(complete, "spans of every service", timeout=60)

        # Exactly one trace, the caller's, every span naming the order.
        assert {span["trace_id"] for span in spans} == {root[2:].replace("-", "")}
        assert [span for span in spans if span["attributes"].get("mvno.order_id") != order_id] == []
        (request,) = [s for s in spans if s["name"].startswith("POST /tmf-api/productOrdering")]
        assert request["parent_span_id"] == CALLER_SPAN

        by_pid: dict[int | None, set[str]] = {}
        for span in spans:
            by_pid.setdefault(_pid(span), set()).add(span["name"])
        # Both provisioning workers ran the order: the one killed, and the one taking over.
        assert running in by_pid
        assert survivor.pid in by_pid
        assert {_pid(span) for span in named(spans, "step capture_payment")} == {survivor.pid}
        # The payment: refused, tried again from its timer, captured at the end.
        authorisations = named(spans, "step authorise_payment")
        assert authorisations[0]["status"] == "error"
        assert authorisations[0]["status_message"] == "bank answered 503"
        assert authorisations[-1]["status"] != "error"
        assert authorisations[-1]["attributes"]["mvno.step.try"] > 1
        assert named(spans, "orders.provisioning resume")
        services = {span["service"] for span in spans}
        assert services == {"orders", "simulators", "billing-sync", "portal-api"}
        simulated = {span["name"] for span in spans if span["service"] == "simulators"}
        assert {"POST /payments/v1/payments", "POST /payments/v1/payments/{payment_id}/capture",
                "POST /billing/v1/accounts"} <= simulated  # fmt: skip
        billing = {span["name"] for span in spans if span["service"] == "billing-sync"}
        assert {"orders.subscription.activated.v1 process", "billing-sync create"} <= billing

        # All along, the pollers (timers, relays, consumers, readiness checks) made no trace:
        # every trace the platform exported starts with work found (a request, an event).
        store = traces.TraceStore(traces.store_path(data_dir))
        everything = store.all_spans()
        store.close()
        roots = [span for span in everything if span.parent_span_id is None]
        assert [(s.service, s.name) for s in roots if s.kind in {"client", "producer"}] == []
        assert {span.kind for span in roots} <= {"server", "consumer", "internal"}

        waterfall = subprocess.run(
            [str(LAUNCHER), "trace", order_id, "--data-dir", str(data_dir),
             "--port-offset", str(offset)],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert waterfall.startswith(f"trace {root[2:].replace('-', '')}: ")
        assert "! bank answered 503" in waterfall
        assert "step authorise_payment (try " in waterfall
    finally:
        if paused is not None:
            with contextlib.suppress(psutil.Error):
                paused.resume()
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
