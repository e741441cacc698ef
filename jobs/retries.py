"""Retry policies for training assets, applied to the whole graph in one place.

A training asset is one that takes a slot of the ``gpu`` pool or has the ``torch`` kind.
When its step fails (a lost GPU, an out-of-memory spike, a preempted machine) it is
retried after ``RECFLOW_TRAIN_RETRY_DELAY_S`` seconds, doubling each time, up to
``RECFLOW_TRAIN_RETRIES`` times; a training loop given a checkpoint folder resumes after
its last completed epoch, so a retry repeats at most one epoch.
"""

import os
from collections.abc import Sequence

import dagster as dg

TRAINING_POOL = "gpu"


def training_retry_policy() -> dg.RetryPolicy:
    """The policy from the environment (defaults: 2 retries, 30 s, exponential backoff)."""
    return dg.RetryPolicy(
        max_retries=int(os.environ.get("RECFLOW_TRAIN_RETRIES", "2")),
        delay=float(os.environ.get("RECFLOW_TRAIN_RETRY_DELAY_S", "30")),
        backoff=dg.Backoff.EXPONENTIAL,
    )


def is_training_asset(asset: dg.AssetsDefinition) -> bool:
    """Uses the ``gpu`` pool, or any of its assets has the ``torch`` kind."""
    if asset.op.pool == TRAINING_POOL:
        return True
    return any("torch" in spec.kinds for spec in asset.specs)


def with_retry_policy(asset: dg.AssetsDefinition, policy: dg.RetryPolicy) -> dg.AssetsDefinition:
    """A copy of ``asset`` whose op retries with ``policy``.

    Dagster sets retry policies on the op (``@asset(retry_policy=...)``), not on asset
    specs, so the op is rebuilt with every other property kept.
    """
    if not asset.is_materializable or not isinstance(asset.node_def, dg.OpDefinition):
        names = ", ".join(k.to_user_string() for k in asset.keys)
        raise ValueError(f"{names}: only an op-backed, materializable asset can retry")
    op = asset.op
    retrying = dg.OpDefinition(
        compute_fn=op.compute_fn,
        name=op.name,
        ins={d.name: dg.In.from_definition(d) for d in op.input_defs},
        outs={d.name: dg.Out.from_definition(d) for d in op.output_defs},
        description=op.description,
        config_schema=op.config_schema,
        required_resource_keys=op.required_resource_keys,
        tags=op.tags,
        retry_policy=policy,
        pool=op.pool,
    )
    # execution_type is left to its default (materialization; checked above)
    attributes = {k: v for k, v in asset.get_attributes_dict().items() if k != "execution_type"}
    return dg.AssetsDefinition(**{**attributes, "node_def": retrying})


def with_training_retries(
    definitions: Sequence[object], policy: dg.RetryPolicy | None = None
) -> list[object]:
    """``definitions`` with ``policy`` (default ``training_retry_policy()``) on every
    training asset that has no retry policy of its own."""
    policy = policy or training_retry_policy()
    out: list[object] = []
    for d in definitions:
        if (
            isinstance(d, dg.AssetsDefinition)
            and not isinstance(d, dg.AssetChecksDefinition)
            and d.is_materializable
            and isinstance(d.node_def, dg.OpDefinition)
            and d.op.retry_policy is None
            and is_training_asset(d)
        ):
            d = with_retry_policy(d, policy)
        out.append(d)
    return out
