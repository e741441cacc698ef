"""One DatasetSpec per dataset: the Definitions hold exactly the sub-graphs each spec's
capabilities allow, a new spec adds its graph, and the method tables a spec names
(transfer setups, MKT mappings) hold an entry for it and for nothing else."""

from pathlib import Path

import dagster as dg
import pytest

from assets.groups import STAGES
from assets.resources import DataSourcesResource
from jobs.definitions import build_definitions, method_datasets
from recflow.data.registry import (
    DAILY_FEEDS,
    DATASET_SPECS,
    DEFAULT_DATASETS,
    FILE_DATASETS,
    Capabilities,
    DatasetSpec,
    Setting,
    data_settings,
)
from recflow.mkt.mappings import MAPPINGS
from recflow.seq.domains import TRANSFER_SETUPS


def expected_stages(spec: DatasetSpec) -> set[str]:
    """The stages (group suffixes) a method dataset's graph has, from its spec alone."""
    can = spec.capabilities
    stages = {"canonical", "cooc"}
    if not spec.synthetic:
        stages.add("raw")  # files or day files, observed
    if can.item_text:
        stages.add("zsl")
    if can.sequences:
        stages |= {"sequences", "peterrec"}
    if can.two_entities:
        stages.add("mkt")
    if can.item_text or can.sequences or can.two_entities:
        stages.add("report")
    return stages


def stages_in(defs: dg.Definitions) -> dict[str, set[str]]:
    """Dataset → the stages its groups hold in ``defs`` (group ``<dataset>_<stage>``)."""
    graph = defs.resolve_asset_graph()
    out: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        dataset, group = key.path[0], graph.get(key).group_name
        assert group.startswith(f"{dataset}_"), f"{key.to_user_string()} is in {group}"
        stage = group.removeprefix(f"{dataset}_")
        assert stage in STAGES, f"{key.to_user_string()}: unknown stage {stage!r}"
        out.setdefault(dataset, set()).add(stage)
    return out


@pytest.fixture(scope="module")
def every_method_dataset() -> dg.Definitions:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECFLOW_DATASETS", ",".join(DATASET_SPECS))
        return build_definitions()


def test_every_spec_gets_exactly_the_sub_graphs_its_capabilities_allow(
    every_method_dataset: dg.Definitions,
) -> None:
    found = stages_in(every_method_dataset)
    assert set(found) == set(DATASET_SPECS)
    for name, spec in DATASET_SPECS.items():
        assert found[name] == expected_stages(spec), name


def test_a_dataset_outside_recflow_datasets_gets_only_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECFLOW_DATASETS", "ml_small")
    found = stages_in(build_definitions())
    assert found["ml_small"] == expected_stages(DATASET_SPECS["ml_small"])
    assert found["ml100k"] == {"raw", "canonical"}
    assert found["synthetic"] == {"canonical"}
    assert found["ml_small_daily"] == {"raw", "canonical"}


def test_adding_a_spec_adds_its_graph_and_its_job(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = DatasetSpec(
        "books",
        "A made-up file dataset with item text only.",
        Capabilities(item_text=True),
        files=("events.csv", "books.csv"),
        folder=Setting("books_dir", "RECFLOW_BOOKS_DIR"),
        loader=lambda folder: None,
    )
    monkeypatch.setenv("RECFLOW_DATASETS", "books")
    defs = build_definitions({**DATASET_SPECS, "books": extra})
    found = stages_in(defs)
    assert found["books"] == {"raw", "canonical", "cooc", "zsl", "report"}
    assert found["ml_small"] == {"raw", "canonical"}  # no longer a method dataset
    job = defs.resolve_job_def("materialize_books")
    in_job = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"books/raw_files", "books/dataset", "books/cooc_matrix", "books/report"} <= in_job
    assert all(k.startswith("books/") for k in in_job)


def test_recflow_datasets_defaults_to_the_default_specs_and_refuses_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECFLOW_DATASETS", raising=False)
    assert method_datasets() == ["ml_small", "synthetic", "ml_small_daily"]
    assert DEFAULT_DATASETS == ("ml_small", "synthetic", "ml_small_daily")
    monkeypatch.setenv("RECFLOW_DATASETS", "ml_small, movielens")
    with pytest.raises(ValueError, match="movielens"):
        method_datasets()


def test_method_tables_hold_an_entry_for_each_spec_that_names_one_and_no_other() -> None:
    setups = {s.transfer_setup for s in DATASET_SPECS.values() if s.transfer_setup}
    mappings = {s.mkt_mapping for s in DATASET_SPECS.values() if s.mkt_mapping}
    assert setups == set(TRANSFER_SETUPS)
    assert mappings == set(MAPPINGS)
    for spec in DATASET_SPECS.values():
        if spec.capabilities.sequences:
            assert spec.transfer() is TRANSFER_SETUPS[spec.name]
        if spec.capabilities.two_entities:
            mapping = spec.feature_mapping()
            assert mapping is MAPPINGS[spec.name] and mapping.dataset == spec.name


def test_the_data_sources_resource_has_a_field_per_setting_and_no_other() -> None:
    assert set(DataSourcesResource.model_fields) == set(data_settings())
    assert set(FILE_DATASETS) == {"ml_small", "ml100k", "ml1m", "tenrec"}
    assert set(DAILY_FEEDS) == {"ml_small_daily"}
    tenrec = FILE_DATASETS["tenrec"]
    sources = DataSourcesResource(tenrec_dir="/data/tenrec", tenrec_max_users=100)
    assert sources.loader_options(tenrec) == {"max_users": 100}
    assert sources.loader_options(FILE_DATASETS["ml_small"]) == {}


def test_a_spec_that_contradicts_itself_is_refused() -> None:
    folder = Setting("x_dir", "RECFLOW_X_DIR")
    with pytest.raises(ValueError, match="exactly one"):
        DatasetSpec("x", "both", folder=folder, files=("a",), loader=Path, synthetic=True)
    with pytest.raises(ValueError, match="transfer setup"):
        DatasetSpec("x", "no setup", Capabilities(sequences=True), synthetic=True)
    with pytest.raises(ValueError, match="MKT mapping"):
        DatasetSpec("x", "mapping only", synthetic=True, mkt_mapping="x")
    with pytest.raises(ValueError, match="files and a loader"):
        DatasetSpec("x", "no files", folder=folder, loader=Path)
