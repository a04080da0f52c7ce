"""The local platform's trace store: an OTLP/HTTP receiver writing spans to SQLite, and the
waterfall of one order's trace (``mvno-local trace ORDER_ID``).

No trace store or viewer that installs from PyPI or npm fits (the local viewers are Go or Rust
binaries, or LLM-tracing suites whose OpenTelemetry pins clash with the workspace's), so the
receiver is this module: ``python -m mvno.devstack.traces serve`` accepts OTLP/HTTP in protobuf
and JSON on ``/v1/traces`` (and drops ``/v1/metrics`` and ``/v1/logs``, which the services may
send to the same endpoint), and keeps the spans under the data folder, where ``trace`` reads them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format  # type: ignore[import-untyped]  # no stubs installed
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_log = logging.getLogger(__name__)

RECEIVER_PORT = 4318
"""The receiver's port under ``mvno-local up`` (plus ``--port-offset``): OTLP/HTTP's own."""
STORE_NAME = "traces.sqlite3"
ORDER_ID = "mvno.order_id"  # as mvno.common.tracing.ORDER_ID; read here without importing it
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_KIND = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    attributes TEXT NOT NULL,
    resource TEXT NOT NULL,
    order_id TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS ix_spans_order_id ON spans (order_id) WHERE order_id IS NOT NULL;
"""


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_NAME


def receiver_url(port_offset: int) -> str:
    return f"http://127.0.0.1:{RECEIVER_PORT + port_offset}"


@dataclass(frozen=True)
class StoredSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)
    """The process's: service name, and ``process.pid`` where the detector is on."""

    @property
    def process(self) -> str:
        """The service, and the process id when known (which of a service's workers)."""
        pid = self.resource.get("process.pid")
        return f"{self.service}[{pid}]" if pid else self.service

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "service": self.service,
            "name": self.name,
            "kind": self.kind,
            "start_unix_nano": self.start_ns,
            "end_unix_nano": self.end_ns,
            "duration_ms": round((self.end_ns - self.start_ns) / 1e6, 3),
            "status": self.status,
            "status_message": self.status_message,
            "attributes": self.attributes,
            "resource": self.resource,
        }


# --- the platform's settings ----------------------------------------------------------------------

_TRACING_SETTINGS = ("OTEL_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SAMPLE_RATIO")


def tracing_environment(caller: Mapping[str, str], port_offset: int) -> dict[str, str]:
    """What ``mvno-local up`` adds to every process's environment: export spans to the local
    receiver, flushed every second, unless the caller's own ``MVNO_OTEL_*`` say otherwise."""
    defaults = {
        "MVNO_OTEL_EXPORTER": "otlp",
        "MVNO_OTEL_EXPORTER_OTLP_ENDPOINT": receiver_url(port_offset),
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        # Locally a trace shows every SQL statement too; cost matters less than detail here.
        "MVNO_OTEL_DATABASE_SPANS": "true",
        # process.pid on every span: which of a service's processes (API, workers) made it.
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel,process",
    }
    return {key: value for key, value in defaults.items() if key not in caller}


def simulator_tracing(env: Mapping[str, str]) -> dict[str, str]:
    """The simulators read ``MVNO_SIM_*``: they trace as the services do unless the caller set
    their own."""
    return {
        f"MVNO_SIM_{name}": env[f"MVNO_{name}"]
        for name in _TRACING_SETTINGS
        if f"MVNO_{name}" in env and f"MVNO_SIM_{name}" not in env
    }


def receiver_wanted(caller: Mapping[str, str], port_offset: int) -> bool:
    """Whether the services export to the local receiver (so ``up`` must run it)."""
    env = {**caller, **tracing_environment(caller, port_offset)}
    return env["MVNO_OTEL_EXPORTER"] == "otlp" and env["MVNO_OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip(
        "/"
    ) == receiver_url(port_offset)


def banner(data_dir: Path, port_offset: int) -> str:
    """How to read an order's trace, for ``up``'s list of what runs where."""
    options = f" --data-dir {data_dir}" + (f" --port-offset {port_offset}" if port_offset else "")
    return f"{receiver_url(port_offset)} (OTLP): mvno-local trace ORDER_ID{options}"


@contextlib.contextmanager
def receiver_process(processes: Any, data_dir: Path, port_offset: int) -> Iterator[None]:
    """Run the receiver as its own process of ``processes`` (a ProcessGroup) while the block
    runs, storing the spans in the data folder."""
    from mvno.devstack.infrastructure import port_in_use
    from mvno.devstack.processes import wait_until_ready

    port = RECEIVER_PORT + port_offset
    if port_in_use(port):
        raise SystemExit(
            f"port {port} (the local trace receiver) is busy: stop what listens there, or set "
            "MVNO_OTEL_EXPORTER_OTLP_ENDPOINT to it (or MVNO_OTEL_EXPORTER=none)"
        )
    child = processes.start(
        "traces",
        [sys.executable, "-m", "mvno.devstack.traces", "serve", "--store",
         str(store_path(data_dir)), "--port", str(port)],
        dict(os.environ),
    )  # fmt: skip
    wait_until_ready(child, receiver_url(port_offset) + "/health/live", 30)
    try:
        yield
    finally:
        processes.stop(child)


# --- storage ------------------------------------------------------------------------------------


class TraceStore:
    """Spans in one SQLite file; one writer (the receiver), any number of readers."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, check_same_thread=False, timeout=10)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._connection.close()

    def add(self, spans: Iterable[StoredSpan]) -> int:
        rows = [
            (
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.service,
                s.name,
                s.kind,
                s.start_ns,
                s.end_ns,
                s.status,
                s.status_message,
                json.dumps(s.attributes, default=str),
                json.dumps(s.resource, default=str),
                _order_id_of(s.attributes),
            )
            for s in spans
        ]
        with self._lock, self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def trace_ids_of_order(self, order_id: str) -> list[str]:
        """The traces holding a span of the order, oldest first."""
        with self._lock:
            found = self._connection.execute(
                "SELECT trace_id FROM spans WHERE order_id = ? GROUP BY trace_id "
                "ORDER BY min(start_ns)",
                (order_id,),
            ).fetchall()
        return [row[0] for row in found]

    def spans_of_traces(self, trace_ids: Sequence[str]) -> list[StoredSpan]:
        if not trace_ids:
            return []
        marks = ",".join("?" * len(trace_ids))
        with self._lock:
            found = self._connection.execute(
                f"SELECT trace_id, span_id, parent_span_id, service, name, kind, start_ns, end_ns, "  # noqa: S608 - only placeholders
                f"status, status_message, attributes, resource FROM spans WHERE trace_id IN ({marks}) "
                "ORDER BY start_ns, span_id",
                tuple(trace_ids),
            ).fetchall()
        return [_stored(row) for row in found]

    def all_spans(self) -> list[StoredSpan]:
        with self._lock:
            found = self._connection.execute("SELECT DISTINCT trace_id FROM spans").fetchall()
        return self.spans_of_traces([row[0] for row in found])

    def spans_of_order(self, order_id: str) -> list[StoredSpan]:
        """Every span of every trace that holds a span of the order."""
        return self.spans_of_traces(self.trace_ids_of_order(order_id))


def _stored(row: Sequence[Any]) -> StoredSpan:
    trace_id, span_id, parent, service, name, kind, start, end, status, message = row[:10]
    return StoredSpan(
        trace_id, span_id, parent, service, name, kind, start, end, status, message,
        json.loads(row[10]), json.loads(row[11]),
    )  # fmt: skip


def _order_id_of(attributes: Mapping[str, Any]) -> str | None:
    value = attributes.get(ORDER_ID)
    return str(value) if value else None


# --- OTLP decoding --------------------------------------------------------------------------------


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """An OTLP/HTTP trace export in protobuf, or in JSON (whose ids are hex, not base64)."""
    request = ExportTraceServiceRequest()
    if content_type.split(";")[0].strip().lower() == "application/json":
        document = json.loads(body)
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(body)
    return request


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in {"traceId", "spanId", "parentSpanId"} and isinstance(value, str):
                document[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)
    elif isinstance(document, list):
        for value in document:
            _hex_ids_to_base64(value)


def spans_of(request: ExportTraceServiceRequest) -> list[StoredSpan]:
    found = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    StoredSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        service=service,
                        name=span.name,
                        kind=_KIND.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status=_STATUS.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message or None,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                    )
                )
    return found


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which) if which else None


# --- the receiver ---------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    store: TraceStore
    protocol_version = "HTTP/1.1"  # the exporters keep their connection open

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        content_type = self.headers.get("content-type", "application/x-protobuf")
        if self.path.rstrip("/") == "/v1/traces":
            try:
                stored = self.store.add(spans_of(decode_request(body, content_type)))
            except Exception as exc:  # a malformed export is the sender's problem, not ours
                self._answer(HTTPStatus.BAD_REQUEST, content_type, error=str(exc))
                return
            _log.debug("stored %d spans", stored)
            self._answer(HTTPStatus.OK, content_type)
        elif self.path.rstrip("/") in {"/v1/metrics", "/v1/logs"}:
            self._answer(HTTPStatus.OK, content_type)  # not kept: only traces are
        else:
            self._answer(HTTPStatus.NOT_FOUND, content_type, error="unknown path")

    def do_GET(self) -> None:
        if self.path.startswith("/health/"):
            self._answer(HTTPStatus.OK, "application/json")
            return
        prefix = "/api/orders/"
        if self.path.startswith(prefix) and self.path.endswith("/spans"):
            order_id = self.path[len(prefix) : -len("/spans")]
            spans = [span.as_json() for span in self.store.spans_of_order(order_id)]
            self._send(HTTPStatus.OK, "application/json", json.dumps(spans).encode())
            return
        self._answer(HTTPStatus.NOT_FOUND, "application/json", error="unknown path")

    def _answer(self, status: HTTPStatus, content_type: str, *, error: str | None = None) -> None:
        if content_type.startswith("application/json"):
            payload = json.dumps({"error": error} if error else {}).encode()
            self._send(status, "application/json", payload)
        else:
            self._send(
                status,
                "application/x-protobuf",
                ExportTraceServiceResponse().SerializeToString(),
            )

    def _send(self, status: HTTPStatus, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug(format, *args)


@contextlib.contextmanager
def receiving(store: TraceStore, host: str, port: int) -> Iterator[ThreadingHTTPServer]:
    """The receiver serving in a thread until the block ends."""
    handler = type("Receiver", (_Receiver,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    # Exporters keep their connections open: stopping must not wait for them to hang up.
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def serve(store_file: Path, host: str, port: int) -> None:
    """Receive until SIGTERM or SIGINT."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    store = TraceStore(store_file)
    try:
        with receiving(store, host, port):
            _log.info("OTLP/HTTP receiver on http://%s:%s, spans in %s", host, port, store_file)
            stop.wait()
    finally:
        store.close()


# --- reading an order's trace -------------------------------------------------------------------


def order_spans(order_id: str, *, data_dir: Path, port_offset: int) -> list[StoredSpan]:
    """The order's spans from the receiver of the platform started with these options, or from
    its store when that platform is not running."""
    import httpx

    url = f"{receiver_url(port_offset)}/api/orders/{order_id}/spans"
    try:
        answer = httpx.get(url, timeout=5.0)
        if answer.status_code == 200:
            return [_from_json(item) for item in answer.json()]
    except httpx.HTTPError:
        pass
    path = store_path(data_dir)
    if not path.exists():
        return []
    store = TraceStore(path)
    try:
        return store.spans_of_order(order_id)
    finally:
        store.close()


def _from_json(item: Mapping[str, Any]) -> StoredSpan:
    return StoredSpan(
        trace_id=item["trace_id"],
        span_id=item["span_id"],
        parent_span_id=item["parent_span_id"],
        service=item["service"],
        name=item["name"],
        kind=item["kind"],
        start_ns=item["start_unix_nano"],
        end_ns=item["end_unix_nano"],
        status=item["status"],
        status_message=item["status_message"],
        attributes=dict(item["attributes"]),
        resource=dict(item.get("resource", {})),
    )


def waterfall(spans: Sequence[StoredSpan], *, width: int = 32) -> str:
    """Each trace as a waterfall: start offset, duration, a bar on the trace's timeline, status,
    service (and process) and the span indented under its parent. A failed span says why, a step
    tried again shows its try number, and a span whose parent never arrived says so."""
    lines: list[str] = []
    by_trace: dict[str, list[StoredSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for trace_id, members in by_trace.items():
        start = min(s.start_ns for s in members)
        end = max(s.end_ns for s in members)
        total = max(end - start, 1)
        lines.append(f"trace {trace_id}: {len(members)} spans, {(end - start) / 1e6:.1f} ms")
        lines.append(
            f"{'offset ms':>10} {'duration ms':>11}  {'':{width}}  {'status':<6} "
            f"{'service[pid]':<20} span"
        )
        ids = {span.span_id for span in members}
        entry = min(members, key=lambda s: (s.start_ns, s.span_id)).span_id
        for depth, span in _tree(members):
            offset = span.start_ns - start
            duration = span.end_ns - span.start_ns
            left = int(offset * width / total)
            length = max(1, int(duration * width / total))
            bar = (" " * left + "#" * length)[:width].ljust(width)
            label = span.name
            tries = span.attributes.get("mvno.step.try")
            if isinstance(tries, int) and tries > 1:
                label += f" (try {tries})"
            if span.status == "error":
                label += f"  ! {span.status_message or 'failed'}"
            if span.parent_span_id and span.parent_span_id not in ids and span.span_id != entry:
                # Its parent never arrived: the process making it died first (a killed worker).
                label += "  (parent span not received)"
            lines.append(
                f"{offset / 1e6:10.1f} {duration / 1e6:11.1f}  {bar}  {span.status:<6} "
                f"{span.process:<20} {'  ' * depth}{label}"
            )
        lines.append("")
    return "\n".join(lines)


def _tree(spans: Sequence[StoredSpan]) -> Iterator[tuple[int, StoredSpan]]:
    """Depth-first, children in start order; a span whose parent is missing starts a branch."""
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[StoredSpan]] = {}
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)

    def walk(parent: str | None, depth: int) -> Iterator[tuple[int, StoredSpan]]:
        for child in children.get(parent, []):
            yield depth, child
            yield from walk(child.span_id, depth + 1)

    yield from walk(None, 0)


def print_trace(
    order_id: str, *, data_dir: Path, port_offset: int, as_json: bool, out: TextIO = sys.stdout
) -> int:
    """``mvno-local trace``: 0 when the order has spans, 1 when none were found."""
    spans = order_spans(order_id, data_dir=data_dir, port_offset=port_offset)
    if as_json:
        out.write(json.dumps([span.as_json() for span in spans], indent=2) + "\n")
    elif spans:
        out.write(waterfall(spans))
    else:
        out.write(
            f"no spans of order {order_id} in {store_path(data_dir)} (is the platform running "
            "with MVNO_OTEL_EXPORTER=otlp, and were the spans exported yet?)\n"
        )
    return 0 if spans else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mvno.devstack.traces")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="receive OTLP/HTTP and store the spans")
    serve_parser.add_argument("--store", type=Path, required=True)
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=RECEIVER_PORT)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve(arguments.store, arguments.host, arguments.port)


if __name__ == "__main__":
    main()
