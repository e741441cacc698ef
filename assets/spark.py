"""The Spark resource: where the co-consumption matrix runs when its ``engine`` is spark."""

import os
import warnings

import dagster as dg

from recflow.cooc_spark import SparkSettings


class SparkResource(dg.ConfigurableResource):
    """Spark's master URL and shuffle partitions for ``engine: spark`` (see
    ``recflow.cooc_spark`` and docs/production.md). ``local[2]`` runs Spark on this
    machine; a cluster URL (``spark://host:7077``, ``yarn``, ``k8s://...``) runs it there,
    with ``spark_temp_dir`` on storage every executor and this process can reach."""

    master: str = os.environ.get("RECFLOW_SPARK_MASTER", "local[2]")
    shuffle_partitions: int = int(os.environ.get("RECFLOW_SPARK_SHUFFLE_PARTITIONS", "8"))
    spark_temp_dir: str = os.environ.get("RECFLOW_SPARK_TEMP_DIR", "")

    def settings(self) -> SparkSettings:
        return SparkSettings(
            master=self.master,
            shuffle_partitions=self.shuffle_partitions,
            spark_temp_dir=self.spark_temp_dir or None,
        )


SPARK = SparkResource()
"""The one instance every matrix asset binds (configure it under ``resources: spark`` in
the Launchpad, or with the RECFLOW_SPARK_* variables)."""

# The matrix assets bind SPARK themselves (``resource_defs``), so every place that
# materializes them, tests included, gets the default without listing it. Dagster marks
# asset-bound resources beta; the warning says nothing a user can act on.
warnings.filterwarnings(
    "ignore", message="Parameter `resource_defs` of function `asset`", category=dg.BetaWarning
)
