"""recflow: transfer learning for search and recommendation.

The core library. Plain Python on polars, DuckDB, torch and scikit-learn; it never
imports Dagster, so every piece can be used and tested on its own. The Dagster
asset graph in ``assets/`` and ``jobs/`` is a thin layer over it.

Importing recflow sets ``OMP_WAIT_POLICY=PASSIVE`` unless you set it yourself: torch's
OpenMP threads otherwise spin while they wait, and on a machine shared with another
CPU-bound process the spinning threads steal the core that the others need (measured
on 2 cores beside one busy core, bench/bench_default_job.py: the default job took 2.31x
its idle time with spinning threads, 1.59x with passive waiting).
The variable is read when torch loads its OpenMP runtime, so recflow must be imported
before torch; ``assets`` and ``jobs`` import it first.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
