"""Load the feedback service on loopback and print/record the figures for docs/bench/service.md.

Bounded in count and time; loopback only. Each scenario starts ``pluralign serve`` in a subprocess:

  ingest: sustained events/s and p50/p99 acknowledgement latency with 1, 8, 64 concurrent clients; several
          databases (comma-separated --db) run one after the other and are printed side by side
  crash:  kill -9 the server during a burst of writes; acknowledged events missing afterwards (target 0)
  score:  /v1/score requests/s with the micro-batcher on vs off (MiniLM reward model, untrained head)
  fair:   a victim user's /v1/score latency alone, then while another user floods the endpoint with concurrent
          maximum-size requests (target: victim p99 within 2x of its unloaded p99)
  erase:  erase a user while 8 clients keep writing with the user's token; rows (and, on SQLite, bytes of the
          erased text in the database and WAL files) left afterwards (target 0)

Examples:
  python benchmarks/service_load.py ingest --db sqlite:///runs/bench/svc.db,postgresql+psycopg://postgres@127.0.0.1:5432/test --events-per-request 1,10
  python benchmarks/service_load.py fair
  python benchmarks/service_load.py erase --db sqlite:///runs/bench/erase.db --repeats 5
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
        for t in ("user_erasures", "user_tokens", "summaries", "feedback_events", "users", "alembic_version"):
            c.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
    engine.dispose()


def _ingest_one(db: str, args) -> list[dict]:
    _reset(db)
    proc, base = start_server(db, ADMIN_KEY, extra_args=args.server_args)
    rows = []
    try:
        for clients in args.clients:
            for epr in args.events_per_request:
                cpu0 = process_cpu_s(proc.pid)
                res = run_load(base, ADMIN_KEY, "ingest", clients=clients, max_requests=args.max_events // epr,
                               max_seconds=args.max_seconds, per_request=epr)
                row = {"scenario": "ingest", "db": db.split(":")[0], "events_per_request": epr,
                       **res.summary(), "server_cpu_s": round(process_cpu_s(proc.pid) - cpu0, 2),
                       "load_avg_1m": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        proc.kill()
        proc.wait()
    return rows


def run_ingest(args) -> list[dict]:
    rows = [r for db in args.dbs for r in _ingest_one(db, args)]
    if len(args.dbs) > 1:  # side by side: one line per (clients, events/request), one column group per database
        names = [r["db"] for r in rows[:: len(rows) // len(args.dbs)]]
        print("| clients | events/request | " + " | ".join(f"{n} events/s | {n} p50 ms | {n} p99 ms" for n in names)
              + " | load avg |")
        print("|---:|---:|" + "---:|---:|---:|" * len(names) + "---:|")
        by = {(r["db"], r["clients"], r["events_per_request"]): r for r in rows}
        for clients in args.clients:
            for epr in args.events_per_request:
                cells = [by[(n, clients, epr)] for n in names]
                print(f"| {clients} | {epr} | " + " | ".join(
                    f"{c['events_per_s']:,.0f} | {c['p50_ms']} | {c['p99_ms']}" for c in cells)
                    + f" | {max(c['load_avg_1m'] for c in cells):.1f} |")
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


def _rm_dir(args) -> tuple[str, tempfile.TemporaryDirectory | None]:
    if args.rm is not None:
        return args.rm, None
    from pluralign.models.reward_model import SummaryConditionedRM

    tmp = tempfile.TemporaryDirectory()
    rm_dir = str(Path(tmp.name) / "rm")
    SummaryConditionedRM.from_backbone("sentence-transformers/all-MiniLM-L6-v2", max_length=128).save_pretrained(rm_dir)
    return rm_dir, tmp


def _victim_latencies(base: str, n: int, stop_at: float) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120) as c:
        for i in range(n):
            if time.time() > stop_at:
                break
            t0 = time.perf_counter()
            r = c.post("/v1/score", json={"user_id": "victim", "prompt": f"how was your day {i}?",
                                          "responses": [f"It was fine, thanks ({i})."]})
            r.raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _flood(base: str, stop, counts: dict, k: int) -> None:
    """One flooding client of user ``flooder``: 64-candidate /v1/score requests back to back until ``stop``."""
    import httpx

    body = {"user_id": "flooder", "prompt": "rate these",
            "responses": [f"candidate {k}.{j} " + "word " * 20 for j in range(64)]}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=300) as c:
        while not stop.is_set():
            r = c.post("/v1/score", json=body)
            if r.status_code == 200:
                counts["ok"] += 1
                counts["candidates"] += 64
            elif r.status_code == 429:
                counts["429"] += 1
                time.sleep(0.05)


def _erase_writer(sh: dict, k: int) -> None:
    """One client writing pairs and summaries with the user's token until it is refused (401) or told to stop."""
    import httpx

    user, marker = sh["user"], sh["marker"]
    with httpx.Client(base_url=sh["base"], headers={"Authorization": f"Bearer {sh['token']}"}, timeout=60) as u:
        i = 0
        while not sh["stop"].is_set():
            if i % 5 == 4:
                r = u.put(f"/v1/users/{user}/summary", json={"summary": f"{marker} {k}.{i}"})
            else:
                r = u.post(f"/v1/users/{user}/pairs", json={"pair_id": f"{k}-{i}", "prompt": "q",
                                                           "chosen": f"{marker} {k}.{i}", "rejected": "b"})
            with sh["lock"]:
                sh["codes"][r.status_code] = sh["codes"].get(r.status_code, 0) + 1
            if i == 0:
                sh["ready"].wait(60)
            if r.status_code == 401:
                return
            i += 1


def run_fair(args) -> list[dict]:
    """Victim p50/p99 alone, then while ``flooders`` threads of one user send 64-candidate requests non-stop."""
    import threading

    import numpy as np

    rm_dir, tmp = _rm_dir(args)
    rows = []
    configs = {"defaults": ("defaults (fair queue, per-user limits)", []),
               "fair": ("fair queue only (limits off)", ["--set", "score_rate_per_s=0",
                                                         "--set", "score_user_concurrency=0"]),
               "coarse": ("coarse: share 64, limits off", ["--set", "score_user_share=64", "--set",
                                                           "score_rate_per_s=0", "--set", "score_user_concurrency=0"])}
    for n in (1, 2, 4, 8, 16):
        configs[f"share{n}"] = (f"share {n}, per-user limits", ["--set", f"score_user_share={n}"])
    configs = [configs[c] for c in args.fair_configs.split(",")]
    try:
        for name, extra in configs:
            db = f"sqlite:///{tempfile.mkdtemp()}/fair.db"
            proc, base = start_server(db, ADMIN_KEY, extra_args=["--rm", rm_dir, *extra, *args.server_args])
            try:
                _victim_latencies(base, 5, time.time() + 60)  # warm-up
                alone = _victim_latencies(base, args.victim_requests, time.time() + args.max_seconds)
                stop = threading.Event()
                counts = {"ok": 0, "429": 0, "candidates": 0}

                threads = [threading.Thread(target=_flood, args=(base, stop, counts, k)) for k in range(args.flooders)]
                t0 = time.time()
                for t in threads:
                    t.start()
                time.sleep(1.0)  # the flood is under way
                loaded = _victim_latencies(base, args.victim_requests, time.time() + args.max_seconds)
                stop.set()
                for t in threads:
                    t.join()
                seconds = time.time() - t0
                row = {"scenario": "fair", "config": name, "flooders": args.flooders,
                       "victim_requests_alone": len(alone), "victim_requests_loaded": len(loaded),
                       "alone_p50_ms": round(float(np.percentile(alone, 50)), 1),
                       "alone_p99_ms": round(float(np.percentile(alone, 99)), 1),
                       "flood_p50_ms": round(float(np.percentile(loaded, 50)), 1),
                       "flood_p99_ms": round(float(np.percentile(loaded, 99)), 1),
                       "flooder_ok": counts["ok"], "flooder_429": counts["429"],
                       "flooder_candidates_per_s": round(counts["candidates"] / seconds, 1),
                       "load_avg_1m": os.getloadavg()[0]}
                row["p99_ratio"] = round(row["flood_p99_ms"] / row["alone_p99_ms"], 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
            finally:
                proc.kill()
                proc.wait()
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def run_erase(args) -> list[dict]:
    """Erase a user while 8 token clients keep writing; count what of the user is left (rows; SQLite: bytes)."""
    import threading
    import uuid

    import httpx

    rows = []
    for run in range(args.repeats):
        _reset(args.db)
        proc, base = start_server(args.db, ADMIN_KEY, extra_args=args.server_args)
        marker = f"ERASE-{uuid.uuid4().hex}"
        user = f"erased-{run}"
        codes: dict[int, int] = {}
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as c:
                token = c.post(f"/v1/users/{user}/tokens").json()["token"]
                ready = threading.Barrier(args.clients[0] + 1)
                stop = threading.Event()
                lock = threading.Lock()

                shared = {"base": base, "token": token, "user": user, "marker": marker, "stop": stop, "ready": ready,
                          "codes": codes, "lock": lock}
                threads = [threading.Thread(target=_erase_writer, args=(shared, k)) for k in range(args.clients[0])]
                for t in threads:
                    t.start()
                ready.wait(60)
                time.sleep(args.kill_after)
                deleted = c.delete(f"/v1/users/{user}").json()["deleted"]
                time.sleep(0.5)
                stop.set()
                for t in threads:
                    t.join()
        finally:
            proc.terminate()
            proc.wait()
        engine = sa.create_engine(args.db)
        with engine.connect() as conn:
            left = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE user_id = :u"), {"u": user}).scalar()
                    for t in ("feedback_events", "summaries", "user_tokens", "users")}
        engine.dispose()
        files_with_text = None
        if args.db.startswith("sqlite"):
            path = Path(sa.engine.make_url(args.db).database)
            files_with_text = [p.name for p in path.parent.iterdir()
                               if p.name.startswith(path.name) and marker.encode() in p.read_bytes()]
        row = {"scenario": "erase", "db": args.db.split(":")[0], "run": run, "clients": args.clients[0],
               "deleted": deleted, "responses": dict(sorted(codes.items())), "rows_left": left,
               "files_with_erased_text": files_with_text, "load_avg_1m": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["ingest", "crash", "score", "fair", "erase"])
    p.add_argument("--db", default=None, help="database URL (default: a SQLite file in a temp dir); ingest: "
                   "several, comma-separated, run one after the other and printed side by side")
    p.add_argument("--clients", default="1,8,64", help="comma-separated concurrent client counts")
    p.add_argument("--events-per-request", default="1", help="comma-separated events per POST (ingest, crash)")
    p.add_argument("--max-events", type=int, default=20000, help="stop a run after this many events/requests")
    p.add_argument("--max-seconds", type=float, default=10.0, help="stop a run after this many seconds")
    p.add_argument("--kill-after", type=float, default=3.0, help="crash: seconds of writes before kill -9")
    p.add_argument("--repeats", type=int, default=3, help="crash: how many kill -9 runs")
    p.add_argument("--responses-per-request", type=int, default=2, help="score: candidates per request")
    p.add_argument("--rm", default=None, help="score, fair: reward-model directory (default: MiniLM, untrained head)")
    p.add_argument("--flooders", type=int, default=4, help="fair: concurrent 64-candidate requests of the flooder")
    p.add_argument("--fair-configs", default="defaults,fair,coarse",
                   help="fair: server settings to compare: defaults, fair (limits off), shareN (N = 1, 2, 4, 8, 16) or coarse "
                   "(share 64, limits off)")
    p.add_argument("--victim-requests", type=int, default=100, help="fair: victim requests per measurement")
    p.add_argument("--server-arg", dest="server_args", action="append", default=[],
                   help="extra argument for 'pluralign serve' (repeatable)")
    p.add_argument("--out", default=None, help="append the rows as JSON lines to this file")
    args = p.parse_args()
    args.clients = [int(x) for x in args.clients.split(",")]
    args.events_per_request = [int(x) for x in args.events_per_request.split(",")]
    if args.db is None:
        args.db = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    args.dbs = [_isolate(db) for db in args.db.split(",")]
    args.db = args.dbs[0]
    rows = {"ingest": run_ingest, "crash": run_crash, "score": run_score, "fair": run_fair,
            "erase": run_erase}[args.scenario](args)
    if args.out:
        meta = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0], "argv": sys.argv}
        with open(args.out, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({**r, **meta}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
