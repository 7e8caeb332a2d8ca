"""The disk archive's figures (docs/benchmarks.md, "Archive"), on this machine, in one run.

    python -m benchmarks.archive            # ~5 minutes
    python -m benchmarks.archive --tiny     # seconds: that it still works

On an embedded Valkey (AOF on) with real Celery workers, 3,000 events (half `voucher.updated`, half
`publication.succeeded`, the issue's mix) are stored and processed; then measured:

1. Redis bytes per event (INFO used_memory, before the events and after, queues drained): settled and hot;
   after compacting their bodies (no archive); after archiving them (what is left: the dedup claims, the
   counters).
2. Archive bytes per event on disk: the SQLite file (after a WAL checkpoint) and PostgreSQL's
   pg_total_relation_size of archived_events (table, TOAST and indexes), and the events/s one archiver
   pass moves (read from Redis, written in batches of 200, deleted from Redis).
3. The pipeline's throughput (voucher.updated, 2 worker processes) while the archiver has the events it
   settles to move (ARCHIVE_AFTER_SECONDS=1, a pass every second) against the same workers with nothing to
   archive, runs alternating; the ratio of medians. Twice: with the archiver deferring to the workers'
   backlog (the default) and with it competing for the CPU (ARCHIVE_YIELD_BACKLOG=0); see `throughput`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks.run import spawn_logged, stop_group
from cli import embedded
from core import db, examples
from core.archive import Archive
from core.queue import TaskQueue
from core.settings import Settings
from core.store import EventStore
from ingest.dedup import dedup_key
from workers.archiver import archive_pass

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


# What the intake keeps of a delivery's headers (a request from Voucherify, behind one proxy).
HEADERS = {
    "Host": "hooks.shop.example",
    "User-Agent": "Voucherify-Webhooks/1.0",
    "Content-Length": "2000",
    "Accept": "application/json, text/plain, */*",
    "Content-Type": "application/json",
    "X-Voucherify-Signature": "9f" * 32,
    "X-Forwarded-For": "34.241.84.14",
    "X-Forwarded-Proto": "https",
    "Accept-Encoding": "gzip, compress, deflate, br",
}


def maker(event_type: str) -> Callable[[int], bytes]:
    doc = examples.example_envelope(event_type)
    doc["event"]["id"] = "@@ID@@"
    if event_type == "publication.succeeded":
        doc["data"]["publication"]["id"] = "@@PUB@@"
    text = json.dumps(doc, separators=(",", ":"))
    run = os.urandom(4).hex()
    return lambda i: text.replace("@@ID@@", f"ev_{run}_{i}").replace("@@PUB@@", f"pub_{run}_{i}").encode()


class Run:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server = embedded.start(workdir / "valkey")
        self.url = f"{self.server.connection_url}/0"
        self.redis = redis.Redis.from_url(self.url)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "FORWARD_", "SMTP_"))},
            "REDIS_URL": self.url,
            "VOUCHERIFY_WEBHOOK_SECRETS": SECRET,
            "DATA_DIR": str(workdir),
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",
        }

    def settings(self, **changes: Any) -> Settings:
        base = Settings(
            redis_url=self.url, broker_url=self.url, webhook_secrets=(SECRET,), data_dir=self.workdir
        )
        return base.with_(**changes)

    def close(self) -> None:
        for p in self.procs:
            self.stop(p)
        self.server.stop()

    def worker(self, env: dict[str, str], *, beat: bool = False) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--concurrency", "1"]
        args += ["--pool", "prefork", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
        args += ["--hostname", f"arch{time.monotonic_ns()}@%h"]
        if beat:
            args += ["--beat", "--schedule", str(self.workdir / f"beat-{time.monotonic_ns()}")]
        p = spawn_logged(args, {**self.env, **env}, self.workdir / f"proc-{len(self.procs)}.log")
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        stop_group(p)

    def prefill(self, n: int, makers: list[Callable[[int], bytes]]) -> None:
        store = EventStore(self.redis, self.settings())
        queue = TaskQueue(self.settings())
        for i in range(n):
            raw = makers[i % len(makers)](i)
            event_id, _ = store.accept(raw, dedup_key=dedup_key(raw), headers=HEADERS, secret="secret:0")
            queue.process_event(event_id)

    def settled(self) -> int:
        pipe = self.redis.pipeline()
        for s in ("processed", "ignored", "invalid", "dead"):
            pipe.zcard(f"vw:st:{s}")
        return sum(pipe.execute())

    def drain(
        self, n: int, envs: list[tuple[dict[str, str], bool]], *, archived: bool = False
    ) -> tuple[float, float, float | None, float | None]:
        """Start workers on the pre-filled queue; events/s from the first settled to the last, and the CPU
        seconds per event the workers (every process of theirs) and the Redis server spent meanwhile. With
        `archived`, the workers then run until every event has left Redis: also the seconds that took after
        the last one settled (the archiver's catch-up) and the CPU per event from the first settled to the
        last archived (everything the events cost, archiving included).

        The CPU per event does not depend on what else the machine runs: the comparison to trust on a
        shared machine, where the events/s move with the neighbours' load.
        """
        procs = [self.worker(env, beat=beat) for env, beat in envs]
        first = last = None
        cpu0 = 0.0
        catch_up = total_cpu = None

        def cpu_now() -> float:
            return sum(session_cpu(p.pid) for p in procs) + self.server_cpu()

        def moved() -> int:
            return int(self.redis.hget("vw:metrics", "archive|moved") or 0)

        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline:
                k = self.settled() + moved()
                now = time.perf_counter()
                if k and first is None:
                    first = (now, k)
                    # From the first settled event on: the workers' start (imports, checks) is not counted.
                    cpu0 = cpu_now()
                if k >= n:
                    last = (now, k)
                    break
                time.sleep(0.01)
            if archived:
                settled_cpu = cpu_now() - cpu0
                while time.monotonic() < deadline and moved() < n:
                    time.sleep(0.05)
                if moved() < n:
                    raise RuntimeError(f"the archiver moved {moved()} of {n} events")
                if last is not None:
                    catch_up = time.perf_counter() - last[0]
                total_cpu = cpu_now() - cpu0
                cpu = settled_cpu
            else:
                time.sleep(1.5)  # the archiver's last pass over what just settled
                cpu = cpu_now() - cpu0
        finally:
            for p in procs:
                self.stop(p)
                self.procs.remove(p)
        if first is None or last is None or last[1] == first[1]:
            raise RuntimeError("the pipeline did not drain")
        counted = n - first[1]
        return (
            (last[1] - first[1]) / (last[0] - first[0]),
            cpu / counted,
            catch_up,
            None if total_cpu is None else total_cpu / counted,
        )

    def server_cpu(self) -> float:
        info = self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def used(self) -> int:
        return int(self.redis.info("memory")["used_memory"])


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of every live process in session `sid` (a worker and its pool)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, session (index 3), ..., utime (11), stime (12).
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def memory_and_disk(run: Run, n: int, pg_url: str | None) -> dict[str, Any]:
    """Redis bytes per event hot, compacted, archived; archive bytes per event; events/s moved."""
    out: dict[str, Any] = {}
    makers = [maker("voucher.updated"), maker("publication.succeeded")]
    targets: dict[str, str] = {"sqlite": f"sqlite:///{run.workdir}/archive.sqlite3"}
    if pg_url:
        targets["postgresql"] = pg_url
    # Warm-up: the first events on a fresh server also pay for its own structures (script cache, queues).
    run.prefill(200, makers)
    run.drain(200, [({}, False)])
    for name, url in targets.items():
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        run.redis.flushdb()
        base = run.used()
        run.prefill(n, makers)
        run.drain(n, [({}, False), ({}, False)])
        time.sleep(0.5)
        hot = run.used()
        out.setdefault("hot", []).append((hot - base) / n)
        body = sum(len(run.redis.get(k) or b"") for k in run.redis.scan_iter("vw:raw:*", count=1000)) / n
        out.setdefault("raw_bytes", []).append(body)
        store = EventStore(run.redis, run.settings(archive_after_s=1))
        if name == "sqlite":
            # Without an archive: the same events with their bodies compressed in place.
            while store.compact(now=time.time() + 3600, after_s=1, limit=1000):
                pass
            out["compacted"] = (run.used() - base) / n
        archive = Archive.from_url(url)
        t0, c0, r0 = time.perf_counter(), time.process_time(), run.server_cpu()
        moved = 0
        while True:
            got = archive_pass(store, archive, now=time.time() + 3600, budget_s=600)
            moved += got
            if not got:
                break
        out[f"moved_per_s_{name}"] = moved / (time.perf_counter() - t0)
        # CPU of the archiving process and of Redis per event moved (the database server's not counted).
        out[f"archive_cpu_ms_{name}"] = (time.process_time() - c0 + run.server_cpu() - r0) / moved * 1000
        if moved != n:
            raise RuntimeError(f"archived {moved} of {n}")
        out.setdefault("after", []).append((run.used() - base) / n)
        # What is left, by kind of key: MEMORY USAGE of each (key, value and Redis's overhead for it).
        left: dict[str, list[int]] = {}
        for key in run.redis.scan_iter("vw:*", count=1000):
            kind = key.decode().split(":")[1]
            left.setdefault(kind, []).append(int(run.redis.memory_usage(key) or 0))
        out.setdefault("left", []).append({k: (len(v), round(statistics.mean(v))) for k, v in left.items()})
        with archive.engine.begin() as conn:
            from sqlalchemy import text

            if name == "sqlite":
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        if name == "sqlite":
            out["disk_sqlite"] = (run.workdir / "archive.sqlite3").stat().st_size / n
        else:
            with archive.engine.connect() as conn:
                from sqlalchemy import text

                size = conn.execute(text("SELECT pg_total_relation_size('archived_events')")).scalar()
            out["disk_postgresql"] = int(size or 0) / n
        archive.engine.dispose()
    return out


def throughput(run: Run, n: int, runs: int) -> dict[str, dict[str, list[float]]]:
    """voucher.updated events/s through 2 worker processes (one of them runs beat, the archiver's schedule),
    runs alternating:

    - without: nothing to archive (ARCHIVE_AFTER_SECONDS=3600);
    - archiving: the archiver as configured by default, moving what settled a second ago; it defers to the
      workers' backlog (ARCHIVE_YIELD_BACKLOG), so it archives after the burst: the catch-up seconds and the
      CPU per event until the last one left Redis are measured too;
    - competing: the same with ARCHIVE_YIELD_BACKLOG=0, the archiver taking its share of the CPU during the
      burst (what the events cost when the machine has no quiet moment to archive in).
    """
    url = f"sqlite:///{run.workdir}/throughput.sqlite3"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    updated = [maker("voucher.updated")]
    off = {
        "ARCHIVE_AFTER_SECONDS": "3600",
        "ARCHIVE_INTERVAL_SECONDS": "1",
        "RECONCILE_INTERVAL_SECONDS": "5",
    }
    on = {**off, "ARCHIVE_AFTER_SECONDS": "1", "ARCHIVE_DATABASE_URL": url}
    competing = {**on, "ARCHIVE_YIELD_BACKLOG": "0"}
    out: dict[str, dict[str, list[float]]] = {"rate": {}, "cpu_ms": {}, "catch_up_s": {}, "total_cpu_ms": {}}
    for _ in range(runs):
        for name, env in (("without", off), ("archiving", on), ("competing", competing)):
            run.redis.flushdb()
            run.prefill(n, updated)
            rate, cpu, catch_up, total = run.drain(n, [(env, True), (env, False)], archived=name != "without")
            out["rate"].setdefault(name, []).append(rate)
            out["cpu_ms"].setdefault(name, []).append(cpu * 1000)
            if catch_up is not None and total is not None:
                out["catch_up_s"].setdefault(name, []).append(catch_up)
                out["total_cpu_ms"].setdefault(name, []).append(total * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="seconds: that it still works")
    parser.add_argument("--runs", type=int, default=3, help="alternating throughput runs (default 3)")
    parser.add_argument("--throughput-only", action="store_true", help="only the pipeline's throughput")
    parser.add_argument(
        "--events",
        type=int,
        default=3000,
        help="events per run (default 3000; with micro-batches a run of 3000 drains in ~1.5 s, before most "
        "archiver passes: take ~20000 for the throughput to overlap archiving)",
    )
    args = parser.parse_args(argv)
    n, runs = (200, 1) if args.tiny else (args.events, args.runs)
    load = os.getloadavg()
    pg_url = None
    admin = None
    name = f"vw_archive_bench_{os.getpid()}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    try:
        admin = create_engine(
            POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        pg_url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    except OperationalError:
        admin = None
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        run = Run(Path(tmp))
        try:
            figures = {} if args.throughput_only else memory_and_disk(run, n, pg_url)
            figures["throughput"] = throughput(run, n, runs)
        finally:
            run.close()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    figures["load_before"] = [round(x, 2) for x in load]
    figures["load_after"] = [round(x, 2) for x in os.getloadavg()]
    tp = figures["throughput"]
    without = statistics.median(tp["rate"]["without"])
    cpu_without = statistics.median(tp["cpu_ms"]["without"])
    for name in ("archiving", "competing"):
        figures[f"throughput_ratio_{name}"] = statistics.median(tp["rate"][name]) / without
        figures[f"throughput_ratio_per_run_{name}"] = [
            round(a / w, 3) for a, w in zip(tp["rate"][name], tp["rate"]["without"], strict=True)
        ]
        figures[f"cpu_ratio_{name}"] = statistics.median(tp["cpu_ms"][name]) / cpu_without
        # Everything an event cost until it left Redis, against what it costs without an archive.
        figures[f"total_cpu_ratio_{name}"] = statistics.median(tp["total_cpu_ms"][name]) / cpu_without
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
