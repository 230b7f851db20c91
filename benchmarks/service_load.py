"""Load the feedback service on loopback and print/record the figures for docs/bench/service.md.

Bounded in count and time; loopback only. Each scenario starts ``pluralign serve`` in a subprocess:

  ingest: sustained events/s and p50/p99 acknowledgement latency with 1, 8, 64 concurrent clients
  crash:  kill -9 the server during a burst of writes; acknowledged events missing afterwards (target 0)
  score:  /v1/score requests/s with the micro-batcher on vs off (MiniLM reward model, untrained head)

Examples:
  python benchmarks/service_load.py ingest --db sqlite:///runs/bench/svc.db
  python benchmarks/service_load.py ingest --db postgresql+psycopg://postgres@127.0.0.1:5432/test
  python benchmarks/service_load.py crash --db sqlite:///runs/bench/crash.db
  python benchmarks/service_load.py score
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from pluralign.service.loadgen import crash_test, process_cpu_s, run_load, start_server

ADMIN_KEY = os.environ.get("PLURALIGN_ADMIN_KEY") or "bench-admin-key-0123456789"


def _isolate(db: str) -> str:
    """PostgreSQL: work in a schema of its own (``pluralign_bench``), never in a shared database's public one."""
    if not db.startswith("postgresql") or "search_path" in db:
        return db
    engine = sa.create_engine(db)
    with engine.begin() as c:
        c.execute(sa.text("CREATE SCHEMA IF NOT EXISTS pluralign_bench"))
    engine.dispose()
    return f"{db}{'&' if '?' in db else '?'}options=-csearch_path%3Dpluralign_bench"


def _reset(db: str) -> None:
    """Start from empty tables so runs are comparable (only pluralign's own tables, in the bench's own DB/schema)."""
    engine = sa.create_engine(db)
    with engine.begin() as c:
        for t in ("user_tokens", "summaries", "feedback_events", "users", "alembic_version"):
            c.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
    engine.dispose()


def run_ingest(args) -> list[dict]:
    _reset(args.db)
    proc, base = start_server(args.db, ADMIN_KEY, extra_args=args.server_args)
    rows = []
    try:
        for clients in args.clients:
            for epr in args.events_per_request:
                cpu0 = process_cpu_s(proc.pid)
                res = run_load(base, ADMIN_KEY, "ingest", clients=clients, max_requests=args.max_events // epr,
                               max_seconds=args.max_seconds, per_request=epr)
                row = {"scenario": "ingest", "db": args.db.split(":")[0], "events_per_request": epr,
                       **res.summary(), "server_cpu_s": round(process_cpu_s(proc.pid) - cpu0, 2),
                       "load_avg_1m": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        proc.kill()
        proc.wait()
    return rows


def run_crash(args) -> list[dict]:
    rows = []
    for i in range(args.repeats):
        _reset(args.db)
        out = crash_test(args.db, ADMIN_KEY, clients=args.clients[0], kill_after_s=args.kill_after,
                         events_per_request=args.events_per_request[0])
        row = {"scenario": "crash", "db": args.db.split(":")[0], "run": i, **out}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def run_score(args) -> list[dict]:
    rm_dir = args.rm
    tmp = None
    if rm_dir is None:
        from pluralign.models.reward_model import SummaryConditionedRM

        tmp = tempfile.TemporaryDirectory()
        rm_dir = str(Path(tmp.name) / "rm")
        SummaryConditionedRM.from_backbone("sentence-transformers/all-MiniLM-L6-v2", max_length=128
                                           ).save_pretrained(rm_dir)
    rows = []
    for batching in (True, False):
        db = f"sqlite:///{tempfile.mkdtemp()}/score.db"
        extra = ["--rm", rm_dir, *([] if batching else ["--no-score-batching"]), *args.server_args]
        proc, base = start_server(db, ADMIN_KEY, extra_args=extra)
        try:
            for clients in args.clients:
                cpu0 = process_cpu_s(proc.pid)
                res = run_load(base, ADMIN_KEY, "score", clients=clients, max_requests=args.max_events,
                               max_seconds=args.max_seconds, per_request=args.responses_per_request)
                row = {"scenario": "score", "batching": batching, "responses_per_request":
                       args.responses_per_request, **res.summary(),
                       "server_cpu_s": round(process_cpu_s(proc.pid) - cpu0, 2), "load_avg_1m": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            proc.kill()
            proc.wait()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["ingest", "crash", "score"])
    p.add_argument("--db", default=None, help="database URL (default: a SQLite file in a temp dir)")
    p.add_argument("--clients", default="1,8,64", help="comma-separated concurrent client counts")
    p.add_argument("--events-per-request", default="1", help="comma-separated events per POST (ingest, crash)")
    p.add_argument("--max-events", type=int, default=20000, help="stop a run after this many events/requests")
    p.add_argument("--max-seconds", type=float, default=10.0, help="stop a run after this many seconds")
    p.add_argument("--kill-after", type=float, default=3.0, help="crash: seconds of writes before kill -9")
    p.add_argument("--repeats", type=int, default=3, help="crash: how many kill -9 runs")
    p.add_argument("--responses-per-request", type=int, default=2, help="score: candidates per request")
    p.add_argument("--rm", default=None, help="score: reward-model directory (default: MiniLM, untrained head)")
    p.add_argument("--server-arg", dest="server_args", action="append", default=[],
                   help="extra argument for 'pluralign serve' (repeatable)")
    p.add_argument("--out", default=None, help="append the rows as JSON lines to this file")
    args = p.parse_args()
    args.clients = [int(x) for x in args.clients.split(",")]
    args.events_per_request = [int(x) for x in args.events_per_request.split(",")]
    if args.db is None:
        args.db = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    args.db = _isolate(args.db)
    rows = {"ingest": run_ingest, "crash": run_crash, "score": run_score}[args.scenario](args)
    if args.out:
        meta = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0], "argv": sys.argv}
        with open(args.out, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **meta}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
