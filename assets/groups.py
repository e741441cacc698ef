"""Asset group names: one group per dataset and stage, so every node in the UI says
which dataset it belongs to (``ml_small_zsl``, ``synthetic_peterrec``, …)."""

STAGES = ("raw", "canonical", "cooc", "zsl", "sequences", "peterrec", "mkt", "report")


def group_name(dataset: str, stage: str) -> str:
    """``<dataset>_<stage>``; ``stage`` is one of ``STAGES``."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {STAGES}")
    return f"{dataset}_{stage}"
