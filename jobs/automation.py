"""Rerun on data change: automation conditions applied to the whole graph in one place.

How a changed input reaches the models:

1. the ``observe_sources_on_change`` sensor (``jobs/sensors.py``) observes every raw
   source when a raw file was written: a raw source's data version is the content hash
   of its files (one per day file for daily feeds);
2. the ``recflow_automation`` sensor (running by default) evaluates the conditions below
   every 30 s and launches runs for what they select:

   * an asset that has been materialized before reruns when an upstream asset was
     updated (a new materialization, or an observation with a *new* data version),
     once nothing upstream or itself is in progress and the upstream blocking checks
     passed; its checks ride along in the same run. Assets never materialized stay
     missing (the first materialization is yours: UI, job or schedule);
   * a day of a daily feed is ingested once its file is observed (new or changed
     content) and the day before it is ingested, so days land in order (the condition
     ``ingest_when_delivered`` sits on that asset, in ``assets/daily.py``).

An observation that finds the same content records the same data version and triggers
nothing. One exception, by design: an asset materialized before its raw source was
ever observed has no recorded input version, so it reruns once after the first
observation. The observe sensor's first tick (right after ``dagster dev`` starts) and
the ``materialize_default`` job (which observes first) keep that from happening.

Conditions are set here rather than on each asset, so the method sub-graphs get them
without touching their files.
"""

from collections.abc import Sequence

import dagster as dg

from assets.daily import ingest_when_delivered

AC = dg.AutomationCondition
AUTOMATION_SENSOR = "recflow_automation"
OPT_OUT_TAG = "recflow/automation"
"""An asset tagged ``recflow/automation: off`` never reruns by itself (e.g. a full
retrain that the daily warm-start refresh stands in for)."""


def rerun_when_upstream_changed(
    partitioned: Sequence[dg.AssetKey] = (),
) -> dg.AutomationCondition:
    """Unpartitioned assets: rerun after an upstream update, never materialize from scratch.

    Like ``eager()`` without its "newly missing" clause. Of a partitioned parent
    (``partitioned``: the daily feeds' days), missing days do not block the asset (a feed
    is always short of future days) and a day about to be ingested makes it wait for
    every day ready to be ingested, so a batch of new days leads to one rerun, not one
    per day.
    """
    condition = AC.any_deps_updated().since_last_handled() & ~AC.missing()
    if partitioned:
        days = dg.AssetSelection.assets(*partitioned)
        condition = (
            condition
            & ~AC.any_deps_missing().ignore(days)
            & ~AC.any_deps_match(ingest_when_delivered()).allow(days)
        )
    else:
        condition = condition & ~AC.any_deps_missing()
    return (
        condition
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
    ).with_label("rerun_when_upstream_changed")


def _is_asset(d: object) -> bool:
    return (
        isinstance(d, dg.AssetsDefinition)
        and not isinstance(d, dg.AssetChecksDefinition)
        and d.is_materializable
    )


def _opted_out(asset: dg.AssetsDefinition) -> bool:
    return any(spec.tags.get(OPT_OUT_TAG) == "off" for spec in asset.specs)


def with_automation(definitions: Sequence[object]) -> list[object]:
    """``definitions`` with ``rerun_when_upstream_changed`` on every unpartitioned asset
    that declares no condition of its own and is not tagged ``recflow/automation: off``.
    Sources, checks and partitioned assets (the daily feeds set ``ingest_when_delivered``
    themselves) are returned as they are."""
    assets = [d for d in definitions if _is_asset(d)]
    partitioned = [k for d in assets if d.partitions_def is not None for k in d.keys]
    rerun = rerun_when_upstream_changed(partitioned)
    out: list[object] = []
    for d in definitions:
        if (
            _is_asset(d)
            and d.partitions_def is None
            and not any(d.automation_conditions_by_key.values())
            and not _opted_out(d)
        ):
            d = d.with_attributes(automation_condition=rerun)
        out.append(d)
    return out


automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Reruns exactly the assets whose upstream data changed (see jobs/automation.py). "
        "Running by default; stop it on the Automation page to pause reruns."
    ),
)
