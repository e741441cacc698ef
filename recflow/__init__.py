"""recflow: transfer learning for search and recommendation.

The core library. Plain Python on polars, DuckDB, torch and scikit-learn; it never
imports Dagster, so every piece can be used and tested on its own. The Dagster
asset graph in ``assets/`` and ``jobs/`` is a thin layer over it.
"""

__version__ = "0.1.0"
