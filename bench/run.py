"""Benchmarks: what the portal adds to Solar Proof's own time, set beside the plain
version of the same lookup a team would write in an afternoon (bench/plain), and how far
one machine carries it. Every figure is a ratio against an anchor measured in the same run.

    python bench/run.py            # the full run (make bench): writes bench/RESULTS.md
    python bench/run.py --smoke    # seconds, no targets (CI): checks the scripts still run

Needs PostgreSQL (BENCH_DATABASE_SERVER, default the machine's), Redis (BENCH_REDIS_URL)
and wrk. It creates and drops its own database (BENCH_DATABASE_NAME, solarproof_bench).
The cases are in bench/cases/, the report is put together in bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database, report
from bench.cases import CASES
from bench.common import FULL, ROOT, SMOKE, Bench, load_average, server_config, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per case, for CI; no targets")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    plan = SMOKE if args.smoke else FULL
    out = args.out or (ROOT / "bench" / ("smoke-results.md" if args.smoke else "RESULTS.md"))
    with tempfile.TemporaryDirectory() as static_dir:
        step("database and static files")
        bench = Bench(plan, Path(static_dir), database.set_up(Path(static_dir)))
        results: dict = {"machine": report.machine(), "server_config": server_config()}
        for case in CASES:
            step(case.NAME)
            results[case.NAME] = case.run(bench)
    results["load_at_end"] = load_average()
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))  # first: kept if the report fails
    text = report.build(results, plan)
    out.write_text(text)
    if not args.smoke and args.out is None:
        update_readme(text)
    print(text)
    print(report.ratio_line(results) + (" (smoke run: no threshold)" if plan.smoke else ""))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"bench: wrote {out} (peak RSS of this driver {peak} MB)")


def update_readme(results: str) -> None:
    """Copy the summary table into the README, between its bench markers."""
    readme = ROOT / "README.md"
    table = results.split("## Summary\n\n", 1)[1].split("\n\n", 1)[0]
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = readme.read_text()
    if start in text and end in text:
        before, rest = text.split(start, 1)
        readme.write_text(f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
