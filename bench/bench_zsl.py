"""One training iteration of STL / ZSL_TE / ZSL_ME vs the ``implicit`` library's ALS.

    python bench/bench_zsl.py [--sizes 50000 200000 1000000] [--neighbours 100] [--dim 64]
        [--threads N] [--repeats 3] [--runners stl zsl_te zsl_me implicit_als]
        [--row-solver cg|exact]

For each size: a synthetic world written once (``synthetic_inputs``: items in clusters of
200, each with ~``neighbours`` co-consumed items, 80% inside its cluster, and 2–15 text
terms, half from its cluster's topic), then, each in a fresh subprocess so that peak
memory is its own, one iteration of every model (setup = building the solver structures,
step = one alternating pass) and ``implicit.cpu.als.AlternatingLeastSquares``
(bench-only dependency) fitted for one iteration on the same item × item matrix with the
same factor count and threads (its confidence = the binary target). implicit solves one
square-loss problem with a uniform weight on the negatives; ours solve the same size
problem with per-row/column weights (ZSL_ME: two tasks and three factor matrices), so
implicit is the speed reference for an optimized ALS, not an equal. Runs are interleaved
(every runner once, ``--repeats`` times) and the median step taken, so a loaded machine
slows all runners alike; the ratio to implicit is the number to compare across machines
(with one thread, CPU seconds are what an idle machine's wall time would be).
``--row-solver exact --word-steps 30`` gives the reference solvers' times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# what importing recflow sets, here before torch loads OpenMP (spinning threads halve
# throughput on a shared machine; see bench_default_job.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
RUNNERS = ("stl", "zsl_te", "zsl_me", "implicit_als")
CLUSTER = 200


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _unique_pairs(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> tuple[np.ndarray, ...]:
    """Distinct (row, col) pairs sorted by row then column (a sort, not a hash table)."""
    key = np.sort(rows * n_cols + cols)
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return key // n_cols, key % n_cols


def synthetic_inputs(n_items: int, neighbours: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The co-consumption and item–term structure of a clustered synthetic world, as arrays.

    Row i has a geometric number of neighbours (mean ``neighbours``, heavy tail like real
    co-consumption), 80% in its own cluster of ``CLUSTER`` items; binary targets.
    """
    rng = np.random.default_rng(seed)
    k = np.clip(rng.geometric(1 / neighbours, n_items), 1, 10 * neighbours)
    rows = np.repeat(np.arange(n_items, dtype=np.int64), k)
    home = rows - rows % CLUSTER
    local = rng.random(len(rows)) < 0.8
    cols = np.where(
        local, home + rng.integers(0, CLUSTER, len(rows)), rng.integers(0, n_items, len(rows))
    )
    cols = np.minimum(cols, n_items - 1)
    del home, local
    rows, cols = _unique_pairs(rows, cols, n_items)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    n_terms = max(2000, n_items // 20)
    tk = rng.integers(2, 16, n_items)
    t_rows = np.repeat(np.arange(n_items, dtype=np.int64), tk)
    topic = (t_rows // CLUSTER) * 7 % n_terms
    on_topic = rng.random(len(t_rows)) < 0.5
    terms = np.where(on_topic, (topic + rng.integers(0, 30, len(t_rows))) % n_terms,
                     rng.integers(0, n_terms, len(t_rows)))  # fmt: skip
    t_rows, terms = _unique_pairs(t_rows, terms, n_terms)
    return {
        "cooc_indptr": np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_items))]),
        "cooc_cols": cols,
        "terms_indptr": np.concatenate([[0], np.cumsum(np.bincount(t_rows, minlength=n_items))]),
        "terms": terms,
        "n_terms": np.array(n_terms),
    }


def load_inputs(path: Path):  # -> ZslInputs
    """``ZslInputs`` from the arrays ``synthetic_inputs`` wrote (1/√nnz weights, mean 1)."""
    sys.path.insert(0, str(REPO))
    from recflow.text import Vocabulary
    from recflow.zsl.inputs import ZslInputs, inverse_sqrt_weights
    from recflow.zsl.sparse import CsrMatrix

    a = np.load(path)
    indptr, cols = a["cooc_indptr"].astype(np.int64), a["cooc_cols"].astype(np.int64)
    n, n_terms = len(indptr) - 1, int(a["n_terms"])
    cooc = CsrMatrix(indptr, cols, np.ones(len(cols)), (n, n))
    t_ptr, terms = a["terms_indptr"].astype(np.int64), a["terms"].astype(np.int64)
    item_terms = CsrMatrix(t_ptr, terms, np.ones(len(terms)), (n, n_terms))
    vocab = Vocabulary([f"t{i}" for i in range(n_terms)], np.bincount(terms, minlength=n_terms))
    return ZslInputs(
        np.arange(n),
        cooc,
        inverse_sqrt_weights(cooc.row_nnz),
        inverse_sqrt_weights(np.bincount(cols, minlength=n)),
        item_terms,
        vocab,
    )


def run_one(runner: str, path: Path, args: argparse.Namespace) -> dict:
    """Set up and time one iteration of ``runner`` in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    inputs = load_inputs(path)
    t0 = time.perf_counter()
    if runner == "implicit_als":
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares

        m = AlternatingLeastSquares(
            factors=args.dim, regularization=1.0, iterations=1, random_state=0,
            num_threads=args.threads, calculate_training_loss=False,
        )  # fmt: skip
        matrix = sp.csr_matrix(inputs.cooc.to_scipy().astype(np.float32))
        setup = time.perf_counter() - t0
        s0, c0 = time.perf_counter(), _cpu_s()
        m.fit(matrix, show_progress=False)
        step, cpu = time.perf_counter() - s0, _cpu_s() - c0
    else:
        from recflow.zsl.models import Trainer, ZslConfig

        config = ZslConfig(
            method=runner, dim=args.dim, iterations=1, row_solver=args.row_solver,
            cg_iterations=args.word_steps or ZslConfig.cg_iterations,
        )  # fmt: skip
        trainer = Trainer(inputs, config, torch.device("cpu"))
        state = trainer.initial_state()
        setup = time.perf_counter() - t0
        s0, c0 = time.perf_counter(), _cpu_s()
        trainer.step(state)
        step, cpu = time.perf_counter() - s0, _cpu_s() - c0
    return {"setup_s": setup, "step_s": step, "cpu_s": cpu, "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    p.add_argument("--neighbours", type=int, default=100)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    p.add_argument("--row-solver", choices=("cg", "exact"), default="cg")
    p.add_argument("--word-steps", type=int, default=0, help="ZSL_TE's word CG steps (0: default)")
    p.add_argument("--one", nargs=2, metavar=("RUNNER", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], Path(args.one[1]), args)))
        return
    print(f"d={args.dim}, threads={args.threads}, row solver {args.row_solver}, "
          f"median of {args.repeats} interleaved runs")  # fmt: skip
    print(
        "items | nnz | runner | setup s | one iteration s | × implicit | CPU s | × implicit | peak RSS MB"
    )
    print("---|---|---|---|---|---|---|---|---")
    medians: dict[tuple[int, str], float] = {}
    forward = ["--dim", str(args.dim), "--threads", str(args.threads), "--row-solver",
               args.row_solver, "--word-steps", str(args.word_steps)]  # fmt: skip
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            arrays = synthetic_inputs(n, args.neighbours)
            nnz = len(arrays["cooc_cols"])
            path = Path(tmp) / "inputs.npz"
            np.savez(path, **arrays)
            del arrays
            print(f"# {n} items, {nnz} pairs: made in {time.perf_counter() - t0:.1f} s", flush=True)
            runs: dict[str, list[dict]] = {r: [] for r in args.runners}
            for _ in range(args.repeats):
                for runner in args.runners:
                    cmd = [sys.executable, __file__, *forward, "--one", runner, str(path)]
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    if out.returncode != 0:
                        print(f"# {n} {runner} failed: {out.stderr.strip().splitlines()[-1:]}")
                        continue
                    runs[runner].append(json.loads(out.stdout.strip().splitlines()[-1]))
            imp = runs.get("implicit_als")
            ref = imp and statistics.median(r["step_s"] for r in imp)
            ref_cpu = imp and statistics.median(r["cpu_s"] for r in imp)
            for runner, rs in runs.items():
                if not rs:
                    continue
                step = statistics.median(r["step_s"] for r in rs)
                medians[(n, runner)] = step
                cpu = statistics.median(r["cpu_s"] for r in rs)
                ratio = f"{step / ref:.2f}" if ref else "-"
                cpu_ratio = f"{cpu / ref_cpu:.2f}" if ref_cpu else "-"
                setup = statistics.median(r["setup_s"] for r in rs)
                rss = max(r["peak_rss_mb"] for r in rs)
                print(f"{n} | {nnz} | {runner} | {setup:.1f} | {step:.2f} | {ratio} | {cpu:.2f} | "
                      f"{cpu_ratio} | {rss:.0f}", flush=True)  # fmt: skip
    growth(medians, args.sizes, args.runners)


def growth(medians: dict[tuple[int, str], float], sizes: list[int], runners: list[str]) -> None:
    """Time growth between consecutive sizes, as a factor per 4× items (linear: 4)."""
    pairs = list(zip(sizes, sizes[1:], strict=False))
    if not pairs:
        return
    print("\nrunner | " + " | ".join(f"{a}→{b}: × per 4× items" for a, b in pairs))
    print("---|" + "---|" * len(pairs))
    for runner in runners:
        cells = []
        for a, b in pairs:
            if (a, runner) in medians and (b, runner) in medians:
                f = medians[(b, runner)] / medians[(a, runner)]
                cells.append(f"{f ** (np.log(4) / np.log(b / a)):.2f}")
            else:
                cells.append("-")
        print(f"{runner} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
