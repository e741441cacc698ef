"""One training iteration of STL / ZSL_ME / ZSL_TE vs the ``implicit`` library's ALS.

    python bench/bench_zsl.py [--items 10000 50000 200000] [--dim 64] [--threads 1]

For each size: a synthetic world with ``items`` items (~40 events per item), its
co-consumption matrix (``recflow.cooc.build_cooc``, clicked events) and vocabulary; then,
each in a fresh subprocess so peak memory is its own: one iteration of every model
(setup = building the solver structures, step = one alternating pass) and
``implicit.cpu.als.AlternatingLeastSquares`` (bench-only dependency) fitted for one
iteration on the same item × item matrix with the same factor count (its confidence =
the binary target). implicit solves one square-loss problem with a uniform weight on the
negatives; ours solve the same size problem with per-row/column weights (and ZSL_ME two
tasks at once), so implicit is the speed reference for an optimized ALS, not an equal.
Reported: wall seconds, CPU seconds, peak RSS (MB, whole process).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNNERS = ("stl", "zsl_me", "zsl_te", "implicit_als")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def prepare(n_items: int, folder: Path) -> dict:
    """Write the dataset, cooc matrix and vocabulary for one size into ``folder``."""
    sys.path.insert(0, str(REPO))
    from recflow.cooc import CoocConfig, build_cooc
    from recflow.data.dataset import write_dataset
    from recflow.data.synthetic import SyntheticConfig, generate
    from recflow.text import TextConfig
    from recflow.zsl.pipeline import build_vocabulary_folder

    cfg = SyntheticConfig(
        n_items=n_items, n_users=max(1000, n_items // 2), n_events=40 * n_items,
        n_clusters=max(20, n_items // 100),
    )  # fmt: skip
    ds = write_dataset(generate(cfg), folder / "dataset")
    (folder / "cooc").mkdir()
    res = build_cooc(ds.interactions_path, folder / "cooc", CoocConfig())
    (folder / "vocab").mkdir()
    build_vocabulary_folder(ds, folder / "vocab", TextConfig())
    return {"nnz": res.stats.get("nnz"), "items": res.stats.get("items")}


def run_one(runner: str, folder: Path, dim: int, threads: int) -> dict:
    """Time one iteration of ``runner`` in this process."""
    sys.path.insert(0, str(REPO))
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    from recflow.data.dataset import CanonicalDataset
    from recflow.zsl.models import Trainer, ZslConfig
    from recflow.zsl.pipeline import load_inputs

    ds = CanonicalDataset(folder / "dataset")
    inputs = load_inputs(
        folder / "cooc" / "matrix.parquet", folder / "cooc" / "item_index.parquet",
        folder / "vocab", ds.interactions_path,
    )  # fmt: skip
    base_rss = _peak_rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    if runner == "implicit_als":
        from implicit.cpu.als import AlternatingLeastSquares

        m = AlternatingLeastSquares(
            factors=dim,
            regularization=4.0,
            iterations=1,
            random_state=0,
            calculate_training_loss=False,
        )
        setup = time.perf_counter()
        m.fit(inputs.cooc.to_scipy().tocsr().astype("float32"), show_progress=False)
        step = time.perf_counter() - setup
        setup -= t0
    else:
        trainer = Trainer(
            inputs, ZslConfig(method=runner, dim=dim, iterations=1), torch.device("cpu")
        )
        state = trainer.initial_state()
        setup = time.perf_counter() - t0
        s0 = time.perf_counter()
        trainer.step(state)
        step = time.perf_counter() - s0
    return {
        "runner": runner, "setup_s": round(setup, 2), "step_s": round(step, 2),
        "cpu_s": round(_cpu_s() - c0, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_mb": round(base_rss, 1),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", nargs=2, metavar=("RUNNER", "FOLDER"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], Path(args.one[1]), args.dim, args.threads)))
        return
    print("items | nnz | runner | setup s | one iteration s | cpu s | peak RSS MB")
    for n in args.items:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = prepare(n, Path(tmp))
            print(
                f"# {n} items: data + cooc + vocabulary in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            for runner in RUNNERS:
                cmd = [
                    sys.executable,
                    __file__,
                    "--dim",
                    str(args.dim),
                    "--threads",
                    str(args.threads),
                    "--one",
                    runner,
                    tmp,
                ]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    print(
                        f"{n} | {info['nnz']} | {runner} | failed: {out.stderr.strip().splitlines()[-1:]}"
                    )
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{n} | {info['nnz']} | {runner} | {r['setup_s']} | {r['step_s']} | {r['cpu_s']} | {r['peak_rss_mb']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
