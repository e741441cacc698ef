"""Wall time of the shipped default job, idle and beside a CPU-bound neighbour.

Runs ``dagster job execute -j materialize_default`` (what ``scripts/materialize.sh``
runs) in a fresh DAGSTER_HOME and artifact store per mode, reads each step's duration
from the run's event log, and prints one table: seconds per asset and its share of the
job, per mode.

Modes:
- ``idle``: nothing else running (the README's expected duration);
- ``busy``: one neighbour process spinning on one core (``while True: pass``), the
  shipped OpenMP wait policy (passive);
- ``busy-spin``: the same neighbour with ``OMP_WAIT_POLICY=ACTIVE``, torch's default
  before recflow set passive waiting: the reference the busy mode is judged against.

    python bench/bench_default_job.py                  # all three modes (~15 min on 2 cores)
    python bench/bench_default_job.py --modes idle busy
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOB = "materialize_default"
MODES = ("idle", "busy", "busy-spin")


def _neighbour() -> subprocess.Popen:
    """One process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_mode(mode: str, workdir: Path) -> tuple[float, dict[str, float]]:
    """(job wall seconds, seconds per step) of one run of the default job."""
    import dagster as dg

    home, store = workdir / mode / "home", workdir / mode / "store"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "RECFLOW_HOME": str(store)}
    env["OMP_WAIT_POLICY"] = "ACTIVE" if mode == "busy-spin" else "PASSIVE"
    neighbour = _neighbour() if mode.startswith("busy") else None
    try:
        t0 = time.perf_counter()
        dagster = Path(sys.executable).parent / "dagster"
        subprocess.run(
            [str(dagster), "job", "execute", "-m", "jobs.definitions", "-j", JOB],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(run.run_id)
        }
    return wall, steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-default-job-"))
    results = {}
    try:
        for mode in args.modes:
            results[mode] = run_mode(mode, workdir)
            print(f"{mode}: {results[mode][0]:.0f} s", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    first = results[args.modes[0]][1]
    steps = sorted(first, key=lambda k: -first[k])
    head = "| step | " + " | ".join(f"{m} s | {m} share" for m in args.modes) + " |"
    if "idle" in results:
        head += " " + " | ".join(f"{m}/idle" for m in args.modes if m != "idle") + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for step in [*steps, "job (wall)"]:
        cells = []
        for mode in args.modes:
            wall, per = results[mode]
            s = wall if step == "job (wall)" else per.get(step, float("nan"))
            cells += [f"{s:.1f}", f"{s / wall:.0%}"]
        if "idle" in results:
            idle_wall, idle = results["idle"]
            base = idle_wall if step == "job (wall)" else idle.get(step, float("nan"))
            for mode in args.modes:
                if mode != "idle":
                    wall, per = results[mode]
                    s = wall if step == "job (wall)" else per.get(step, float("nan"))
                    cells.append(f"{s / base:.2f}x" if base > 0.5 else "-")
        print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
