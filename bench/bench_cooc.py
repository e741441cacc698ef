"""The co-consumption matrix against pandas and against the bare cost of sorting the events.

    python bench/bench_cooc.py [--sizes 1000000 5000000 20000000] [--impls cooc pandas ...]

For each size, synthetic events (``generate_interactions(n)``; sizes above ``--chunk`` are
written as several chunk files with different seeds and disjoint users, read as one input)
are written to Parquet, then each implementation runs in a fresh subprocess, so that the
peak RSS of one does not hide in another's:

    cooc         recflow.cooc.build_cooc (DuckDB, memory_limit 1GB, spilling beyond it)
    pandas       a straightforward pandas version of the same semantics: sort, shift,
                 groupby size, sort + cumcount for the top K, weights, write Parquet
    floor_all    DuckDB: read every column of the events, sort by (user_id, timestamp),
                 write Parquet (reading + sorting the events; the issue's "sort alone")
    floor_keys   DuckDB: read only user_id, item_id, timestamp of the clicked events, sort
                 by (user_id, timestamp), write Parquet (the least any exact method must do)

Reported per run: wall seconds of the call (imports excluded), CPU seconds of the process
(user + system; on a shared machine wall time grows with the load, CPU time much less),
input events per wall second, peak RSS of the whole process (MB, imports included; "import
MB" is the RSS after the imports, before the call: recflow.store imports torch) and, for
pandas, whether its matrix equals build_cooc's (row, col, count exactly; weights within
1e-9). Targets from the issue, checked at the largest size: cooc throughput >= 4x pandas,
cooc wall <= 2x the floor, cooc peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPLS = ("cooc", "pandas", "floor_all", "floor_keys")
IMPORTS = {
    "cooc": ["recflow.cooc"],
    "pandas": ["numpy", "pandas", "pyarrow.parquet"],
    "floor_all": ["duckdb"],
    "floor_keys": ["duckdb"],
}
TOP_K = 250
MEMORY_LIMIT = "1GB"
USER_ID_STRIDE = 1_000_000_000  # chunk c's users are c * stride + its own ids


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the workers (each runs in its own subprocess) ------------------------------------------


def write_events(n_events: int, chunk: int, folder: Path) -> list[Path]:
    """Synthetic events in files of at most ``chunk`` events; chunk c uses seed c."""
    sys.path.insert(0, str(REPO))
    import polars as pl

    from recflow.data.synthetic import generate_interactions

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c, start in enumerate(range(0, n_events, chunk)):
        n = min(chunk, n_events - start)
        df = generate_interactions(n, seed=c)
        df = df.with_columns(pl.col("user_id") + c * USER_ID_STRIDE)
        path = folder / f"events-{c:03d}.parquet"
        df.write_parquet(path)
        paths.append(path)
        del df
    return paths


def run_cooc(inputs: list[Path], out: Path) -> None:
    sys.path.insert(0, str(REPO))
    from recflow.cooc import CoocConfig, build_cooc

    build_cooc(inputs, out, CoocConfig(top_k=TOP_K, memory_limit=MEMORY_LIMIT))


def run_pandas(inputs: list[Path], out: Path) -> None:
    """The same matrix, the obvious pandas way (in memory)."""
    import numpy as np
    import pandas as pd

    cols = ["user_id", "item_id", "timestamp", "label"]
    df = pd.concat([pd.read_parquet(p, columns=cols) for p in inputs], ignore_index=True)
    df = df[df["label"].isna() | (df["label"] > 0)]
    df = df.sort_values(["user_id", "timestamp", "item_id"], ignore_index=True)
    nxt_user = df["user_id"].shift(-1)
    nxt_item = df["item_id"].shift(-1)
    step = (nxt_user == df["user_id"]) & (nxt_item != df["item_id"])
    pairs = pd.DataFrame({"p": df["item_id"][step], "q": nxt_item[step].astype("int64")})
    counts = pairs.groupby(["p", "q"]).size().rename("count").reset_index()
    counts = counts.sort_values(["p", "count", "q"], ascending=[True, False, True])
    kept = counts[counts.groupby("p").cumcount() < TOP_K]

    items = np.sort(df["item_id"].unique())
    row_nnz = kept.groupby("p").size()
    col_nnz = kept.groupby("q").size()
    row_w = row_nnz**-0.5 / (row_nnz**-0.5).mean()  # r_p ∝ 1/√nnz(row p), mean 1
    col_w = col_nnz**-0.5 / (col_nnz**-0.5).mean()  # c_q ∝ 1/√nnz(col q), mean 1
    matrix = pd.DataFrame(
        {
            "row": np.searchsorted(items, kept["p"].to_numpy()).astype("int32"),
            "col": np.searchsorted(items, kept["q"].to_numpy()).astype("int32"),
            "count": kept["count"].to_numpy().astype("int64"),
            "row_weight": kept["p"].map(row_w).to_numpy(),
            "col_weight": kept["q"].map(col_w).to_numpy(),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    matrix.to_parquet(out / "matrix.parquet", index=False)


def run_floor(inputs: list[Path], out: Path, columns: str) -> None:
    import duckdb

    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False})
    con.execute("SET enable_progress_bar = false")
    where = "WHERE label IS NULL OR label > 0" if columns != "*" else ""
    out.mkdir(parents=True, exist_ok=True)
    # columns and where are this script's constants; the paths go in as parameters
    con.execute(
        f"COPY (SELECT {columns} FROM read_parquet($files) {where} "
        "ORDER BY user_id, timestamp) TO $out (FORMAT parquet)",
        {"files": [str(p) for p in inputs], "out": str(out / "sorted.parquet")},
    )


def run_worker(impl: str, inputs: list[Path], out: Path) -> dict[str, float | str]:
    """Run one implementation in this process and return its measurements.

    Its modules are imported first, outside the timed call.
    """
    sys.path.insert(0, str(REPO))
    for module in IMPORTS[impl]:
        __import__(module)
    import_rss_mb = _peak_rss_mb()
    t0 = time.perf_counter()
    cpu0 = _cpu_s()
    if impl == "cooc":
        run_cooc(inputs, out)
    elif impl == "pandas":
        run_pandas(inputs, out)
    elif impl == "floor_all":
        run_floor(inputs, out, "*")
    elif impl == "floor_keys":
        run_floor(inputs, out, "user_id, item_id, timestamp")
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    return {
        "impl": impl,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": _cpu_s() - cpu0,
        "peak_rss_mb": _peak_rss_mb(),
        "import_rss_mb": import_rss_mb,
    }


# --- the driver -----------------------------------------------------------------------------


def _subprocess(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_matrix(a: Path, b: Path) -> tuple[bool, float]:
    """(row, col, count) identical and the largest weight difference."""
    import numpy as np
    import polars as pl

    x, y = pl.read_parquet(a), pl.read_parquet(b)
    keys = ["row", "col", "count"]
    if x.height != y.height or not x.select(keys).equals(y.select(keys)):
        return False, float("nan")
    diff = max(
        float(np.max(np.abs(x[c].to_numpy() - y[c].to_numpy()), initial=0.0))
        for c in ("row_weight", "col_weight")
    )
    return diff <= 1e-9, diff


def bench_size(n: int, impls: list[str], chunk: int, work: Path) -> list[dict]:
    folder = work / f"events-{n}"
    t0 = time.perf_counter()
    gen = _subprocess(["--generate", str(n), str(chunk), str(folder)])
    inputs = gen["paths"]
    print(
        f"# {n:,} events in {len(inputs)} file(s), generated and written in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    rows = []
    for impl in impls:
        out = work / f"out-{n}-{impl}"
        shutil.rmtree(out, ignore_errors=True)
        row = _subprocess(["--worker", impl, str(out), *inputs])
        row["events"] = n
        row["out"] = str(out)
        rows.append(row)
        print(_format_row(row), flush=True)
    by_impl = {r["impl"]: r for r in rows}
    if "cooc" in by_impl and "pandas" in by_impl:
        same, diff = same_matrix(
            Path(by_impl["cooc"]["out"]) / "matrix.parquet",
            Path(by_impl["pandas"]["out"]) / "matrix.parquet",
        )
        by_impl["pandas"]["identical"] = same
        print(f"  pandas matrix identical to cooc: {same} (max weight difference {diff:.1e})")
    for impl in impls:
        shutil.rmtree(work / f"out-{n}-{impl}", ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    return rows


HEADER = (
    f"{'events':>12} {'impl':<11}{'wall s':>9}{'cpu s':>8}{'events/s':>13}"
    f"{'peak RSS MB':>13}{'import MB':>11}  identical"
)


def _format_row(r: dict) -> str:
    same = {True: "yes", False: "NO"}.get(r.get("identical"), "")
    return (
        f"{r['events']:>12,} {r['impl']:<11}{r['wall_s']:>9.2f}{r['cpu_s']:>8.2f}"
        f"{r['events'] / r['wall_s']:>13,.0f}{r['peak_rss_mb']:>13,.0f}"
        f"{r['import_rss_mb']:>11,.0f}  {same}"
    )


def _targets(rows: list[dict]) -> None:
    n = max(r["events"] for r in rows)
    at = {r["impl"]: r for r in rows if r["events"] == n}
    if "cooc" not in at:
        return
    cooc = at["cooc"]
    print(f"\ntargets at {n:,} events:")
    if "pandas" in at:
        speedup = at["pandas"]["wall_s"] / cooc["wall_s"]
        print(f"  throughput vs pandas: {speedup:.1f}x (target >= 4x)")
    for floor in ("floor_all", "floor_keys"):
        if floor in at:
            ratio = cooc["wall_s"] / at[floor]["wall_s"]
            cpu = cooc["cpu_s"] / at[floor]["cpu_s"]
            print(f"  cooc / {floor}: {ratio:.2f}x wall, {cpu:.2f}x cpu (target <= 2x)")
    print(f"  cooc peak RSS: {cooc['peak_rss_mb']:,.0f} MB (target <= 1536 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--chunk", type=int, default=20_000_000, help="events per input file")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        n, chunk, folder = args.generate
        paths = write_events(int(n), int(chunk), Path(folder))
        print(json.dumps({"paths": [str(p) for p in paths]}))
        return
    if args.worker:
        impl, out, *inputs = args.worker
        print(json.dumps(run_worker(impl, [Path(p) for p in inputs], Path(out))))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cooc-"))
    work.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load}")
    print(f"cpu cores: {os.cpu_count()}, top K {TOP_K}, DuckDB memory_limit {MEMORY_LIMIT}")
    print(HEADER, flush=True)
    rows: list[dict] = []
    try:
        for n in args.sizes:
            rows += bench_size(n, args.impls, args.chunk, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + HEADER)
    for r in rows:
        print(_format_row(r))
    _targets(rows)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
