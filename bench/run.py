"""Bare FastAPI + asyncpg beside the project's service shape, under the same load, in one run.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32] [--threads 2] [--only NAME,...]

Starts PostgreSQL (``DATABASE_URL`` when set, else an embedded one), moto, the bare app, the project
app and the catalog service, each as its own process; drives every target with wrk one after the
other; prints the figures with their ratio to the bare baseline and writes them to
``bench/out/<timestamp>.json``. Exits 1 when any target saw errors. Every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import asyncpg

from mvno.common.db import asyncpg_dsn, ensure_database
from mvno.devstack.infrastructure import (
    embedded_postgres,
    free_port,
    moto_endpoint,
    to_asyncpg_url,
    with_database,
)
from mvno.devstack.processes import ProcessGroup, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
POST_SCRIPT = ROOT / "bench" / "post.lua"
BENCH_DATABASE = "mvno_bench"
CATALOG_DATABASE = "mvno_bench_catalog"
CREATE_TABLE = (
    "CREATE TABLE bench_row (id bigserial PRIMARY KEY, payload text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())"
)
PACKAGES = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "asyncpg")
PACKAGES += ("sqlalchemy", "opentelemetry-sdk", "aiobotocore", "moto", "pgserver")


@dataclass(frozen=True)
class Target:
    name: str
    app: str  # bare | project | catalog
    method: str
    path: str
    baseline: str  # the bare target it is compared with
    paced: bool = False  # also measure latency at half the rate wrk reached


TARGETS = (
    Target("bare-json", "bare", "GET", "/json", "bare-json"),
    Target("project-json", "project", "GET", "/bench/json", "bare-json"),
    Target("catalog-live", "catalog", "GET", "/health/live", "bare-json"),
    Target(
        "catalog-sellable",
        "catalog",
        "GET",
        "/tmf-api/productCatalogManagement/v4/productOffering?isSellable=true&channel.id=app",
        "bare-json",
        paced=True,
    ),
    Target("bare-insert", "bare", "POST", "/rows", "bare-insert"),
    Target("project-insert", "project", "POST", "/bench/rows", "bare-insert"),
)
BY_NAME = {target.name: target for target in TARGETS}
READY_PATH = {"bare": "/json", "project": "/health/ready", "catalog": "/health/ready"}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per target")
    parser.add_argument("--warm-up", type=int, default=3, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--only",
        help="comma-separated targets (their bare baseline always runs too): " + ", ".join(BY_NAME),
    )
    return parser.parse_args(argv)


def selected_targets(only: str | None) -> list[Target]:
    if not only:
        return list(TARGETS)
    names = {name.strip() for name in only.split(",") if name.strip()}
    if unknown := names - set(BY_NAME):
        sys.exit(f"unknown targets: {', '.join(sorted(unknown))}; known: {', '.join(BY_NAME)}")
    names |= {BY_NAME[name].baseline for name in names}
    return [target for target in TARGETS if target.name in names]


def ensure_tool(name: str) -> str:
    """A load tool's path (wrk, hey); installed with apt-get when missing and we are root."""
    if found := shutil.which(name):
        return found
    if os.geteuid() != 0:
        sys.exit(
            f"{name} is not installed: install it (Debian/Ubuntu: sudo apt-get install -y {name})"
        )
    print(f"{name} is missing: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", name]):
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"could not install {name} with apt-get ({exc}); install it and run again")
    return shutil.which(name) or sys.exit(f"apt-get installed {name} but it is not on PATH")


async def prepare_database(url: str) -> str:
    """Create the bench database and a fresh ``bench_row`` table; return the server's version."""
    await ensure_database(url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("DROP TABLE IF EXISTS bench_row")
        await connection.execute(CREATE_TABLE)
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def truncate_rows(url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("TRUNCATE bench_row")
    finally:
        await connection.close()


def service_environment(**settings: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MVNO_") and key != "DATABASE_URL"
    }
    return {**env, "MVNO_ENVIRONMENT": "test", "PYTHONUNBUFFERED": "1", **settings}


def uvicorn_command(factory: str, port: int) -> list[str]:
    """One worker, uvloop, httptools, no access log: the same server settings for both apps."""
    return [
        sys.executable, "-m", "uvicorn", factory, "--factory", "--app-dir", str(ROOT),
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    ]  # fmt: skip


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms), request count and error counts from ``wrk --latency`` output."""

    def number(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no match for {pattern!r}:\n{output}")
        return match[1]

    def percentile(percent: int) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no {percent}% latency:\n{output}")
        return round(float(match[1]) * UNIT_MS[match[2]], 3)

    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(number(r"^Requests/sec:\s+([\d.]+)")),
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "requests": int(number(r"^\s+(\d+) requests in")),
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": sum(int(count) for count in socket.groups()) if socket else 0,
    }


def run_paced(hey: str, url: str, rate: float, seconds: int, connections: int) -> dict[str, Any]:
    """Latency at a fixed request rate (hey: ``connections`` workers, each at rate/connections)."""
    per_worker = max(1, round(rate / connections))
    argv = [hey, "-z", f"{seconds}s", "-c", str(connections), "-q", str(per_worker)]
    argv += ["-H", "Accept-Encoding: gzip", url]
    completed = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if completed.returncode != 0:
        raise RuntimeError(f"hey failed ({completed.returncode}): {completed.stderr}")
    output = completed.stdout

    def seconds_at(percent: int) -> float:
        match = re.search(rf"^\s+{percent}%+ in ([\d.]+) secs", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"hey output has no {percent}% latency:\n{output}")
        return round(float(match[1]) * 1000, 3)

    achieved = re.search(r"Requests/sec:\s+([\d.]+)", output)
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", output))
    return {
        "target_rate": per_worker * connections,
        "achieved_rate": float(achieved[1]) if achieved else 0.0,
        "p50_ms": seconds_at(50),
        "p99_ms": seconds_at(99),
        "non_2xx": sum(int(n) for status, n in statuses.items() if not status.startswith("2")),
        "hey_output": output,
    }


def run_wrk(wrk: str, url: str, method: str, seconds: int, args: argparse.Namespace) -> str:
    # Every target is asked as browsers and HTTP clients ask: gzip accepted.
    argv = [
        wrk,
        "--latency",
        "--timeout",
        "5s",
        "-t",
        str(args.threads),
        "-H",
        "Accept-Encoding: gzip",
    ]
    argv += ["-c", str(args.connections), "-d", f"{seconds}s"]
    if method == "POST":
        argv += ["-s", str(POST_SCRIPT)]
    completed = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}"
        )
    return completed.stdout


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory_kib = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": model[1].strip() if model else platform.processor(),
        "memory_gib": round(int(memory_kib[1]) / 1024**2, 1) if memory_kib else None,
        "platform": platform.platform(),
    }


def versions(wrk: str, postgres: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "postgresql": postgres}
    probe = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    found["wrk"] = (probe.stdout or probe.stderr).splitlines()[0].split(" [")[0]
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def add_ratios(results: list[dict[str, Any]]) -> None:
    by_name = {result["name"]: result for result in results}
    for result in results:
        base = by_name.get(result["baseline"])
        result["rps_vs_bare"] = round(result["requests_per_s"] / base["requests_per_s"], 2)
        result["p99_vs_bare"] = round(result["p99_ms"] / base["p99_ms"], 2)
        result["errors"] = result["non_2xx"] + result["socket_errors"]


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| target | request | req/s | req/s vs bare | p50 ms | p99 ms | p99 vs bare | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        errors = f"**{r['non_2xx']} non-2xx, {r['socket_errors']} socket**" if r["errors"] else "0"
        lines.append(
            f"| {r['name']} | {r['method']} {r['path']} | {r['requests_per_s']:,.0f} "
            f"| {r['rps_vs_bare']:.2f}x | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['p99_vs_bare']:.2f}x | {errors} |"
        )
    paced = [r for r in results if "at_half_rate" in r]
    if paced:
        lines += [
            "",
            "| target at half its rate | asked req/s | served req/s | p50 ms | p99 ms | non-2xx |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for r in paced:
            h = r["at_half_rate"]
            lines.append(
                f"| {r['name']} | {h['target_rate']:,} | {h['achieved_rate']:,.0f} "
                f"| {h['p50_ms']:.2f} | {h['p99_ms']:.2f} | {h['non_2xx']} |"
            )
    return "\n".join(lines)


def _terminate(signum: int, frame: object) -> NoReturn:
    sys.exit(128 + signum)  # unwinds through every cleanup, like Ctrl-C


def benchmark(
    args: argparse.Namespace, targets: list[Target], wrk: str, hey: str, stamp: str
) -> dict[str, Any]:
    apps = {target.app for target in targets}
    load_before = os.getloadavg()  # others' work on the machine skews every figure: record it
    with contextlib.ExitStack() as stack:  # closed in reverse: apps, moto, PostgreSQL, temp dir
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvno-bench-")))
        if url := os.environ.get("DATABASE_URL"):
            server, database_source = to_asyncpg_url(url), "DATABASE_URL"
        else:
            server = stack.enter_context(embedded_postgres(temp / "pg"))
            database_source = "embedded (pgserver)"
        bench_url = with_database(server, BENCH_DATABASE)
        postgres_version = asyncio.run(prepare_database(bench_url))

        processes = ProcessGroup(OUT / f"{stamp}-logs")
        aws = stack.enter_context(moto_endpoint(processes, free_port())) if apps - {"bare"} else ""
        stack.callback(processes.stop_all)  # the apps first, then moto
        env = service_environment(
            BENCH_DSN=asyncpg_dsn(bench_url),
            MVNO_DATABASE_URL=bench_url,
            MVNO_AWS_ENDPOINT_URL=aws,
            MVNO_OTEL_EXPORTER="none",
            MVNO_OTEL_SAMPLE_RATIO=os.environ.get("BENCH_OTEL_SAMPLE_RATIO", "1.0"),
        )
        ports = {app: free_port() for app in apps}
        children = {}
        if "bare" in apps:
            children["bare"] = processes.start(
                "bare", uvicorn_command("bench.apps:bare_app", ports["bare"]), env
            )
        if "project" in apps:
            children["project"] = processes.start(
                "project", uvicorn_command("bench.apps:project_app", ports["project"]), env
            )
        if "catalog" in apps:
            catalog_env = {**env, "MVNO_DATABASE_URL": with_database(server, CATALOG_DATABASE)}
            migrate = subprocess.run(
                [sys.executable, "-m", "mvno.catalog", "migrate"],
                env=catalog_env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            if migrate.returncode != 0:
                raise RuntimeError(f"catalog migrate failed:\n{migrate.stdout}{migrate.stderr}")
            provision = subprocess.run(
                [sys.executable, "-m", "mvno.common.bus.provision"],
                env=catalog_env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            if provision.returncode != 0:
                raise RuntimeError(f"bus provisioning failed:\n{provision.stderr}")
            seed = subprocess.run(
                [sys.executable, "-m", "mvno.catalog", "seed"],
                env=catalog_env, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            if seed.returncode != 0:
                raise RuntimeError(f"catalog seed failed:\n{seed.stdout}{seed.stderr}")
            serve = ["serve", "--host", "127.0.0.1", "--port", str(ports["catalog"])]
            children["catalog"] = processes.start(
                "catalog", [sys.executable, "-m", "mvno.catalog", *serve], catalog_env
            )
        for app, child in children.items():
            wait_until_ready(child, f"http://127.0.0.1:{ports[app]}{READY_PATH[app]}", timeout=90)

        results = []
        for target in targets:
            url = f"http://127.0.0.1:{ports[target.app]}{target.path}"
            print(f"{target.name}: {target.method} {url}", flush=True)
            if target.method == "POST":
                asyncio.run(truncate_rows(bench_url))
            run_wrk(wrk, url, target.method, args.warm_up, args)
            output = run_wrk(wrk, url, target.method, args.duration, args)
            result = {**target.__dict__, **parse_wrk(output), "wrk_output": output}
            if target.paced:
                half = result["requests_per_s"] / 2
                print(f"{target.name}: at half that rate, {half:.0f} req/s", flush=True)
                result["at_half_rate"] = run_paced(hey, url, half, args.duration, args.connections)
            results.append(result)
        add_ratios(results)
        return {
            "started": stamp,
            "machine": machine(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "versions": versions(wrk, postgres_version),
            "settings": {
                "duration_s": args.duration,
                "warm_up_s": args.warm_up,
                "connections": args.connections,
                "wrk_threads": args.threads,
                "database": database_source,
                "server": "uvicorn, 1 worker, uvloop, httptools; access log off for bare and "
                "project; catalog runs its own command line (access log off by default, as in production)",
                "pool": "16 connections for bare (asyncpg) and project (SQLAlchemy, no overflow)",
            },
            "results": results,
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    targets = selected_targets(args.only)
    wrk = ensure_tool("wrk")
    hey = ensure_tool("hey") if any(target.paced for target in targets) else ""
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        report = benchmark(args, targets, wrk, hey, stamp)
    except KeyboardInterrupt:
        print("interrupted: every process was stopped", file=sys.stderr)
        return 130
    path = OUT / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    cores = report["machine"]["cores"]
    settings = report["settings"]
    print(
        f"\n{cores} cores, {settings['connections']} connections, {settings['wrk_threads']} wrk "
        f"threads, {settings['duration_s']} s per target, PostgreSQL {settings['database']}, "
        f"load average before {report['load_average']['before'][0]:.2f}\n"
    )
    print(table(report["results"]))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    failed = [
        r["name"]
        for r in report["results"]
        if r["errors"] or r.get("at_half_rate", {}).get("non_2xx")
    ]
    if failed:
        print(f"ERRORS in: {', '.join(failed)} (see the errors column)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
