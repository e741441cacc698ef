"""Dagster assets and asset checks: thin wrappers that call into ``recflow``.

One file per asset group; resources, the IO manager and metadata rendering each have
their own file. Method files expose ``build_<method>_assets(dataset)`` factories that
``jobs/definitions.py`` calls for every dataset the pipeline runs on.
"""

import recflow  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
