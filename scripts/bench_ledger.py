"""Ledger read benchmark.

Seeds a fresh Azurite with 10,000 runs spread over the last 12 months and 50,000 agent rows
(batched transactions), then times as whole processes (median of --repeat):

    haymaker metrics --days 90 --json      target <= 1.0 s
    haymaker runs --limit 20 --json        target <= 0.5 s
    haymaker agents --run-id X --json      target <= 0.5 s

next to a full-table scan that computes the same answer (the whole table read without a partition
filter, filtered and sorted in Python), as a whole process and inside one process; the partitioned
reads must be at least 5x faster. Starts its own Azurite (scripts/azurite.sh, in memory, on a free
loopback port) and stops it at the end; with --port, uses the Azurite already listening there
(`bash scripts/azurite.sh --port N`) and seeds it only if it has no runs, so it can be timed again.

    .venv/bin/python scripts/bench_ledger.py [--runs 10000] [--agents-per-run 5] [--repeat 5] [--port N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haymaker.ledger import (AGENTS, RUNS, AgentRecord, Ledger, RunRecord, _from_entity, run_summary,  # noqa: E402
                             summarize)

PYTHON = REPO / ".venv" / "bin" / "python"
HAYMAKER = REPO / ".venv" / "bin" / "haymaker"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STATUSES = ["verified"] * 85 + ["forced"] * 5 + ["failed"] * 5 + ["teardown_failed"] * 5
TARGETS = {"metrics": 1.0, "runs": 0.5, "agents": 0.5}


def connection_string(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1")


def start_azurite() -> tuple[subprocess.Popen, int]:
    ports = []
    for _ in range(2):  # the Table service's port, and one for the Blob service the script also starts
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    port = ports[0]
    process = subprocess.Popen(["bash", str(REPO / "scripts" / "azurite.sh"), "--port", str(port), "--blob-port",
                                str(ports[1])], cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    stop(process)
    sys.exit("Azurite did not start: run `npm ci`, then `bash scripts/azurite.sh` to see why")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the script and the node process it started
        process.wait(timeout=10)


# --- seeding -------------------------------------------------------------------------------------------

def make_runs(count: int, per_run: int, now: datetime, rng: random.Random) -> list[RunRecord]:
    from scenarios.catalog import load_catalog

    names = sorted(s.name for s in load_catalog().by_area(None))
    minutes = rng.sample(range(1, 365 * 24 * 60), count)
    runs = []
    for n, minute in enumerate(sorted(minutes)):
        started = (now - timedelta(minutes=minute)).replace(second=0, microsecond=0)
        status = "running" if minute < 8 * 60 else rng.choice(STATUSES)
        created = per_run * rng.randint(4, 9)
        orphaned = rng.randint(1, 3) if status in ("forced", "teardown_failed") else 0
        runs.append(RunRecord(
            run_id=f"{started:%Y%m%dt%H%Mz}-{n % 65536:04x}", environment="dev", trigger="schedule", status=status,
            started_at=started, expires_at=started + timedelta(hours=8), scenarios=rng.sample(names, per_run),
            duration_hours=8, git_sha="0123abc", actor="github-actions", size="small",
            ended_at=None if status == "running" else started + timedelta(hours=8, minutes=rng.randint(5, 40)),
            cost_estimate_usd=round(rng.uniform(1, 12), 2), resources_created=created,
            resources_cleaned=0 if status == "running" else created - orphaned, resources_orphaned=orphaned,
            deploy_seconds=round(rng.uniform(90, 400), 1), detail=""))
    return runs


def seed(ledger: Ledger, runs: list[RunRecord]) -> float:
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    ledger.upsert_runs(runs)
    agents = [[AgentRecord(run_id=r.run_id, scenario=s, status="started", resource_group=f"rg-{r.run_id}-{i}",
                           client_id=f"00000000-0000-0000-0000-{i:012d}", job_name=f"job-{i}")
               for i, s in enumerate(r.scenarios)] for r in runs]
    with ThreadPoolExecutor(max_workers=8) as pool:  # one transaction per run (a partition); Azurite is the bottleneck
        list(pool.map(ledger.upsert_agents, agents))
    return time.perf_counter() - started


# --- the full-table scans: the same answers without partition filters ---------------------------------------

def scan(ledger: Ledger, kind: str, run_id: str, now: datetime):
    if kind == "metrics":
        since = now - timedelta(days=90)
        since = since.replace(second=0, microsecond=0)  # a run id has minutes: the window opens on a minute
        runs = [_from_entity(RunRecord, e) for e in ledger._table(RUNS).list_entities()]
        runs = sorted((r for r in runs if since <= r.started_at <= now), key=lambda r: r.started_at, reverse=True)
        return summarize([run_summary(r) for r in runs], days=90, now=now)
    if kind == "runs":
        rows = sorted(ledger._table(RUNS).list_entities(), key=lambda e: e["started_at"], reverse=True)[:20]
        return [e["run_id"] for e in rows]
    rows = [e for e in ledger._table(AGENTS).list_entities() if e["PartitionKey"] == run_id]
    return sorted(e["scenario"] for e in rows)


def partitioned(ledger: Ledger, kind: str, run_id: str, now: datetime):
    if kind == "metrics":
        return ledger.metrics(90, now=now)
    if kind == "runs":
        return [r.run_id for r in ledger.list_runs(limit=20, now=now)]
    return [a.scenario for a in ledger.list_agents(run_id)]


def scan_process(kind: str, run_id: str) -> None:
    """`bench_ledger.py --scan KIND RUN_ID`: the scan as a process importing what `haymaker` imports."""
    import haymaker.cli  # noqa: F401 - the same start-up cost as the command
    from haymaker.config import load_config

    result = scan(Ledger.from_config(load_config()), kind, run_id, datetime.now(timezone.utc))
    sys.stdout.write(json.dumps(result, default=str) + "\n")


# --- timing ------------------------------------------------------------------------------------------------

def median_seconds(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_process(argv: list[str], env: dict) -> str:
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[-6:])} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--agents-per-run", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, help="Use the Azurite already listening on this port.")
    parser.add_argument("--scan", nargs=2, metavar=("KIND", "RUN_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan:
        return scan_process(*args.scan)

    process, port = (None, args.port) if args.port else start_azurite()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "HAYMAKER_LEDGER_CONNECTION_STRING": connection_string(port),
                   "HAYMAKER_LEDGER_SPOOL": str(Path(tmp) / "spool.jsonl")}
            bench(args, env, port, Path(tmp))
    finally:
        if process:
            stop(process)


def bench(args, env: dict, port: int, tmp: Path) -> None:
    from azure.data.tables import TableServiceClient

    from haymaker.ledger import CLIENT_OPTIONS

    ledger = Ledger(TableServiceClient.from_connection_string(connection_string(port), **CLIENT_OPTIONS),
                    tmp / "spool.jsonl")
    if ledger.list_runs(limit=1):
        run_id = ledger.list_runs(days=183)[-1].run_id  # about half a year old, like a seeded one
        print(f"Azurite on port {port} has runs already: not seeding")
    else:
        runs = make_runs(args.runs, args.agents_per_run, datetime.now(timezone.utc), random.Random(7))
        seconds = seed(ledger, runs)
        print(f"seeded {len(runs)} runs over 12 months and {len(runs) * args.agents_per_run} agents "
              f"in {seconds:.0f} s")
        run_id = runs[len(runs) // 2].run_id
    cli_s = median_seconds(lambda: run_process([str(PYTHON), "-c", "import haymaker.cli"], env), args.repeat)[0]
    bare_s = median_seconds(lambda: run_process([str(PYTHON), "-c", "pass"], env), args.repeat)[0]
    print(f"python start + `import haymaker.cli`: {cli_s:.3f} s (bare python: {bare_s:.3f} s)")
    cases = {"metrics": ["metrics", "--days", "90", "--json"], "runs": ["runs", "--limit", "20", "--json"],
             "agents": ["agents", "--run-id", run_id, "--json"]}
    print(f"{'command':36} {'process':>8} {'scan proc':>9} {'speed-up':>8}   {'in-process':>10} {'scan':>8} "
          f"{'speed-up':>8}  target  same answer")
    failed = []
    for kind, argv in cases.items():
        cmd_s, out = median_seconds(lambda: run_process([str(HAYMAKER)] + argv, env), args.repeat)
        scan_s, scan_out = median_seconds(lambda: run_process(
            [str(PYTHON), __file__, "--scan", kind, run_id], env), args.repeat)
        now = datetime.now(timezone.utc)
        in_s, in_result = median_seconds(lambda: partitioned(ledger, kind, run_id, now), args.repeat)
        full_s, full_result = median_seconds(lambda: scan(ledger, kind, run_id, now), max(3, args.repeat // 2))
        same = same_answer(kind, json.loads(out), json.loads(scan_out)) and in_result == full_result
        ok = cmd_s <= TARGETS[kind] and full_s / in_s >= 5 and same
        failed += [] if ok else [kind]
        print(f"haymaker {' '.join(argv).replace(run_id, 'X'):27} {cmd_s:7.3f}s {scan_s:8.3f}s {scan_s / cmd_s:7.1f}x"
              f"   {in_s:9.3f}s {full_s:7.3f}s {full_s / in_s:7.1f}x  <={TARGETS[kind]:.1f}s  "
              f"{'yes' if same else 'NO'}{'' if ok else '  MISSED'}")
    print("speed-up: scan time / partitioned time; 'process' is the whole command (python start, imports, "
          "config, spool check, read, JSON)")
    if failed:
        sys.exit(f"missed a target: {', '.join(failed)}")


def same_answer(kind: str, command_doc, scan_doc) -> bool:
    if kind == "metrics":
        clock = ("since", "until")  # each process reads its own clock
        return {k: v for k, v in command_doc.items() if k not in clock} == \
            {k: v for k, v in scan_doc.items() if k not in clock}
    if kind == "runs":
        return [r["run_id"] for r in command_doc["runs"]] == scan_doc
    return [a["scenario"] for a in command_doc["agents"]] == scan_doc


if __name__ == "__main__":
    main()
