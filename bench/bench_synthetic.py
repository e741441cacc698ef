"""Speed and memory of the synthetic generator.

    python bench/bench_synthetic.py [--sizes 1000000 5000000 20000000] [--seed 0]

For each size, ``generate(benchmark_config(n))`` (everything: events, items with text,
users, queries, truth tables) and ``generate_interactions(n)`` (the benchmarks' fast path)
each run in a fresh subprocess, so the peak RSS of one does not hide in another's.
Reported: events, wall seconds, CPU seconds of the process (user + system; on a shared
machine wall time grows with the load, CPU time much less), events per second (wall), peak
RSS (MB, whole process including the interpreter and imports; "import MB" is the RSS before
the call), the in-memory size of the interactions frame (MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("generate", "generate_interactions")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(mode: str, n_events: int, seed: int) -> dict[str, float | int | str]:
    """Time one call in this process and return its measurements."""
    sys.path.insert(0, str(REPO))
    from recflow.data.synthetic import benchmark_config, generate, generate_interactions

    start_rss = _peak_rss_mb()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    if mode == "generate":
        interactions = generate(benchmark_config(n_events, seed=seed)).interactions
    else:
        interactions = generate_interactions(n_events, seed=seed)
    elapsed_s = time.perf_counter() - t0
    cpu_s = _cpu_s() - cpu0
    assert interactions.height == n_events
    return {
        "mode": mode,
        "events": n_events,
        "elapsed_s": elapsed_s,
        "cpu_s": cpu_s,
        "events_per_s": n_events / elapsed_s,
        "peak_rss_mb": _peak_rss_mb(),
        "import_rss_mb": start_rss,
        "frame_mb": interactions.estimated_size("mb"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.seed)))
        return

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load}")
    header = (
        f"{'mode':<22}{'events':>12}{'seconds':>10}{'cpu s':>8}{'events/s':>14}"
        f"{'peak RSS MB':>13}{'import MB':>11}{'frame MB':>10}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        for mode in MODES:
            cmd = [sys.executable, __file__, "--one", mode, str(n), "--seed", str(args.seed)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{r['mode']:<22}{r['events']:>12,}{r['elapsed_s']:>10.2f}{r['cpu_s']:>8.2f}"
                f"{r['events_per_s']:>14,.0f}{r['peak_rss_mb']:>13,.0f}"
                f"{r['import_rss_mb']:>11,.0f}{r['frame_mb']:>10,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
