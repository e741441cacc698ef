"""Typed artifacts survive the JSON round trip, and a handle cannot name arbitrary code."""

import json
from pathlib import Path

import polars as pl
import pytest

from recflow.artifacts import EvaluationArtifact, decode, encode, paths_in
from recflow.cooc import CoocArtifact
from recflow.data.dataset import DatasetArtifact


def test_round_trip_keeps_type_and_fields() -> None:
    a = CoocArtifact(path="/s/m/v1", matrix="/s/m/v1/matrix.parquet", item_index="/s/i", top_k=7)
    back = decode(json.loads(json.dumps(encode(a))))
    assert type(back) is CoocArtifact and back == a
    assert encode(a)["type"] == "recflow.cooc:CoocArtifact"
    assert sorted(paths_in(a)) == ["/s/i", "/s/m/v1", "/s/m/v1/matrix.parquet"]
    d = decode(encode(DatasetArtifact("/s/ds/v2")))
    assert isinstance(d, DatasetArtifact) and d.load().root == Path("/s/ds/v2")


@pytest.mark.parametrize(
    "type_name",
    ["os:system", "subprocess:Popen", "recflow.cooc:build_cooc", "recflow.cooc:CoocConfig"],
)
def test_decode_refuses_anything_but_recflow_artifacts(type_name: str) -> None:
    with pytest.raises(ValueError, match="not a recflow artifact|not an Artifact"):
        decode({"type": type_name, "fields": {"path": "x"}})


def test_decode_names_a_stale_handle() -> None:
    with pytest.raises(ValueError, match="materialize it again"):
        decode({"type": "recflow.cooc:CoocArtifact", "fields": {"path": "x"}})


def test_evaluation_tables(tmp_path: Path) -> None:
    pl.DataFrame({"method": ["a", "b"], "ndcg": [0.5, 0.25]}).write_parquet(
        tmp_path / "summary.parquet"
    )
    e = EvaluationArtifact(str(tmp_path))
    assert e.table() == [{"method": "a", "ndcg": 0.5}, {"method": "b", "ndcg": 0.25}]
    assert e.has_table() and not e.has_table("comparison")
