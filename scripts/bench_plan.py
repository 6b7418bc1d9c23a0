"""Benchmark: whole-process wall time of `haymaker plan --json` for 1, 5, 15, 30 and 50 scenarios.

Run by hand: `.venv/bin/python scripts/bench_plan.py [--repeat 5]`. Prints the median wall time per
size, the median CPU time of the process (steadier than wall time on a shared machine), the
least-squares slope per scenario, and the estimated deploy critical path per size (which must not
grow with the number of scenarios: agents deploy in parallel).
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (1, 5, 15, 30, 50)
RUN_ID = "20261121t0600z-be7c"


def selection_for(count: int, directory: Path) -> Path:
    doc = yaml.safe_load((ROOT / "scenarios" / "selection.yaml").read_text())
    doc.update(sizes={"small": count, "medium": count, "large": count}, include=[], exclude=[], pins=[],
               budget_usd=100_000)
    path = directory / f"selection-{count}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def time_plan(selection: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the process, the plan)."""
    cmd = [str(ROOT / ".venv" / "bin" / "haymaker"), "plan", "--json", "--size", "large", "--run-id", RUN_ID,
           "--selection", str(selection)]
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    # 50 scenarios exceed the run-size policy (30): the plan is complete, then refused with exit 2.
    if done.returncode not in (0, 2) or not done.stdout:
        sys.exit(f"plan failed ({done.returncode}): {done.stderr}")
    return elapsed, cpu, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in COUNTS:
            selection = selection_for(count, Path(tmp))
            time_plan(selection)  # warm the file cache
            times, cpus, doc = [], [], {}
            for _ in range(args.repeat):
                elapsed, cpu, doc = time_plan(selection)
                times.append(elapsed)
                cpus.append(cpu)
            assert len(doc["scenarios"]) == count
            rows.append((count, statistics.median(times), min(times), statistics.median(cpus),
                         doc["resources_total"], doc["critical_path_seconds"]))
    print(f"{'scenarios':>9} {'median s':>9} {'min s':>7} {'cpu s':>7} {'resources':>9} {'critical path s':>16}")
    for count, median, best, cpu, resources, critical in rows:
        print(f"{count:>9} {median:>9.3f} {best:>7.3f} {cpu:>7.3f} {resources:>9} {critical:>16}")
    xs = [r[0] for r in rows]
    ys = [r[1] for r in rows]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    print(f"slope: {slope * 1000:.1f} ms per scenario; intercept {mean_y - slope * mean_x:.3f} s")
    print(f"critical path constant across sizes: {len({r[5] for r in rows}) == 1}")


if __name__ == "__main__":
    main()
