"""Run every loadable catalog step through the wire harness and print the time and the verdicts.

    .venv/bin/python scripts/bench_wire.py [--show-ok] [--scenario NAME ...]

The same run tests/test_wire.py makes; this prints figures instead of asserting.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.catalog import load_catalog  # noqa: E402
from tests.wire.harness import loadable_extensions, run_steps, select, verdicts, wire_steps  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    parser.add_argument("--show-ok", action="store_true", help="print the steps that match too")
    parser.add_argument("--requests", action="store_true", help="print each request a failing step sent")
    args = parser.parse_args(argv)
    steps = wire_steps(load_catalog())
    if args.scenario:
        steps = [s for s in steps if s.scenario in args.scenario]
    extensions = loadable_extensions()
    chosen, after_skipped = select(steps, extensions)
    started = time.perf_counter()
    results = run_steps(chosen, after_skipped)
    seconds = time.perf_counter() - started
    found = verdicts(chosen, results)
    bad = [v for v in found if not v.ok]
    for v in found:
        if args.show_ok or not v.ok:
            print(f"{'ok ' if v.ok else 'BAD'} {v.step.key}: {v.step.command}")
            for p in v.problems:
                print(f"      {p}")
            if args.requests and not v.ok:
                for r in v.result["requests"]:
                    print(f"        {r['status']} {r['method']} {r['path']}")
    reached = [v for v in found if v.data_plane]
    if reached:
        print(f"stopped at a data plane the stand-ins do not serve (their ARM and Graph requests compared): "
              + ", ".join(f"{v.step.key} ({', '.join(v.data_plane)})" for v in reached))
    excluded = Counter(op for v in found for op in v.excluded)
    if excluded:
        print("POST actions that are not published operations (rule 2, not declared): "
              + ", ".join(f"{op} x{n}" for op, n in sorted(excluded.items())))
    graph = [v for v in found if v.step.plane == "graph"]
    audited = [v for v in graph if v.step.audit]
    print(f"Graph-plane steps: {len(graph)} run, {len(audited)} declaring audit activities, "
          f"{sum(v.ok for v in audited)} of them matching what Graph records")
    skipped = Counter(s.extension for s in steps if s.extension and s not in chosen)
    print(f"steps: {len(steps)} in the catalog, {len(chosen)} run ({sum(1 for s in chosen if s.extension)} of "
          f"extensions), {len(found) - len(bad)} match, {len(bad)} do not; "
          f"extension steps not loadable here: {sum(skipped.values())} ({dict(sorted(skipped.items()))})")
    print(f"wire harness: {seconds:.1f} s for {len(chosen)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
