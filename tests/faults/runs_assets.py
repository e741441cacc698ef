"""A minimal store-writing asset for the run and store tests: ``t/made`` writes one file
into a new store version of ``t/made`` and returns its path as the handle."""

import dagster as dg

from assets.resources import StoreResource


@dg.asset(key=["t", "made"])
def made(store: StoreResource) -> dict[str, str]:
    artifacts = store.store()
    with artifacts.new_version("t/made") as tmp:
        (tmp / "x.txt").write_text("x")
        final = artifacts.final_path(tmp)
    return {"path": str(final)}
