"""A two-asset job for the re-execution test: ``t/used`` fails while a flag file exists.

Loaded by ``dg.reconstructable`` (re-execution needs a job it can rebuild), so the store
root and the flag come from the environment (``RECFLOW_HOME``, ``RECFLOW_FAULT_FLAG``).
"""

import os
from pathlib import Path

import dagster as dg

from assets.io_manager import store_handle_io_manager
from assets.resources import StoreResource
from tests.faults.runs_assets import made


@dg.asset(key=["t", "used"], ins={"made": dg.AssetIn(key=["t", "made"])})
def used(made: dict[str, str]) -> dict[str, str]:
    if Path(os.environ["RECFLOW_FAULT_FLAG"]).exists():
        raise RuntimeError("t/used fails while the flag file exists")
    return {"read": made["path"]}


def reexecution_job() -> dg.JobDefinition:
    """The job, on the store root in ``RECFLOW_HOME``, in-process."""
    defs = dg.Definitions(
        assets=[made, used],
        jobs=[dg.define_asset_job("made_then_used", selection=[made.key, used.key])],
        resources={
            "store": StoreResource(root=os.environ["RECFLOW_HOME"]),
            "io_manager": store_handle_io_manager,
        },
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("made_then_used")
