"""Search on a hand-made toy model: exact rankings and scores, unknown words, fallback, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from recflow.cli import main
from recflow.store import ArtifactStore
from recflow.text import TextConfig, Vocabulary
from recflow.zsl.artifact import load_model, save_model
from recflow.zsl.models import ZslConfig, ZslModel
from recflow.zsl.search import Searcher

TERMS = ["dark", "comedi", "spac"]  # "dark", "comedy", "space" as text.fold stores them
WORDS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
#                    A           B            C           D
ITEMS = np.array([[1.0, 1.0], [2.0, -0.5], [0.0, 3.0], [-1.0, -1.0]])
IDS = np.array([101, 102, 103, 104])
TITLES = ["Alpha", "Beta", "Gamma", "Delta"]


def write_toy(path, popularity=None, prior_weight=None):
    model = ZslModel(ZslConfig(method="zsl_te", dim=2), ITEMS, WORDS, None, [3.0, 1.0])
    vocab = Vocabulary(TERMS, np.array([2, 2, 1]))
    return save_model(
        path, model, vocab, IDS, TextConfig(), TITLES, popularity, prior_weight, scoring="dot"
    )


def test_dot_ranking_by_hand(tmp_path):
    s = Searcher.from_dir(write_toy(tmp_path / "m"))
    r = s.search("Dark comedy", top=3)
    # u_q = mean(w_dark, w_comedy) = (0.5, 0.5): scores A 1.0, B 0.75, C 1.5, D −1.0
    assert r.hits.get_column("item_id").to_list() == [103, 101, 102]
    np.testing.assert_allclose(r.hits.get_column("score").to_numpy(), [1.5, 1.0, 0.75])
    assert r.hits.get_column("title").to_list() == ["Gamma", "Alpha", "Beta"]
    assert r.unknown_terms == [] and not r.fallback


def test_cosine_ranking_by_hand(tmp_path):
    s = Searcher.from_dir(write_toy(tmp_path / "m"), scoring="cosine")
    r = s.search("space", top=4)
    # u_q = (−1, 0): cos with A −0.707, B −0.970, C 0, D 0.707
    assert r.hits.get_column("item_id").to_list() == [104, 103, 101, 102]
    np.testing.assert_allclose(
        r.hits.get_column("score").to_numpy(), [2**-0.5, 0.0, -(2**-0.5), -2 / 4.25**0.5]
    )


def test_unknown_words_reported_and_fallback_flagged(tmp_path):
    pop = np.array([5, 50, 1, 20])
    s = Searcher.from_dir(write_toy(tmp_path / "m", popularity=pop, prior_weight=0.0))
    r = s.search("dark zombies", top=2)
    assert r.unknown_terms == ["zombies"] and r.known_terms == ["dark"] and not r.fallback
    assert r.hits.get_column("item_id").to_list() == [102, 101]  # v·(1,0): B 2, A 1
    assert "unknown words" in r.describe() and "zombies" in r.describe()
    r = s.search("zombies", top=4)
    assert r.fallback and r.unknown_terms == ["zombies"]
    assert r.hits.get_column("item_id").to_list() == [102, 104, 101, 103]  # by popularity
    assert "most popular" in r.describe()


def test_prior_weight_changes_order(tmp_path):
    pop = np.array([0, 0, 0, 1000])
    s = Searcher.from_dir(write_toy(tmp_path / "m", popularity=pop, prior_weight=10.0))
    assert s.search("dark comedy", top=1).hits.get_column("item_id").to_list() == [104]
    s = Searcher.from_dir(write_toy(tmp_path / "m2", popularity=pop), prior_weight=0.0)
    assert s.search("dark comedy", top=1).hits.get_column("item_id").to_list() == [103]


def test_no_prior_means_no_popularity_fallback(tmp_path):
    pop = np.array([5, 50, 1, 20])
    s = Searcher.from_dir(write_toy(tmp_path / "m", popularity=pop, prior_weight=1.0), prior=False)
    assert s.search("zombies").hits.height == 0 and not s.search("zombies").fallback
    assert s.search("dark comedy", top=1).hits.get_column("item_id").to_list() == [103]


def test_no_fallback_without_popularity(tmp_path):
    r = Searcher.from_dir(write_toy(tmp_path / "m")).search("zombies")
    assert r.hits.height == 0 and not r.fallback and r.unknown_terms == ["zombies"]
    assert "no popularity" in r.describe()


def test_roundtrip(tmp_path):
    write_toy(tmp_path / "m", popularity=np.array([1, 2, 3, 4]), prior_weight=0.5)
    m = load_model(tmp_path / "m")
    np.testing.assert_array_equal(m.item_vectors, ITEMS.astype(np.float32))
    assert m.vocab.terms == TERMS and m.prior_weight == 0.5 and m.method == "zsl_te"
    assert m.popularity.tolist() == [1, 2, 3, 4]
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")


def test_cli_search_latest(tmp_path, capsys):
    store = ArtifactStore(tmp_path / "store")
    with store.new_version("toy/zsl_te_model") as d:
        write_toy(d)
    code = main(
        [
            "search",
            "dark comedy",
            "--top",
            "2",
            "--store",
            str(tmp_path / "store"),
            "--dataset",
            "toy",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = [x for x in out.splitlines() if x.strip()[:1].isdigit()]
    assert "Gamma" in lines[0] and "Alpha" in lines[1] and len(lines) == 2
    code = main(["search", "x", "--store", str(tmp_path / "nothing")])
    assert code == 2 and "materialize it first" in capsys.readouterr().err


def test_cli_hybrid_prints_versions_weights_and_explains(tmp_path, capsys):
    from recflow.zsl.hybrid import FusionWeights
    from recflow.zsl.lexical import LexicalIndex
    from recflow.zsl.search_index import save_search_index

    store = ArtifactStore(tmp_path / "store")
    with store.new_version("toy/zsl_te_model") as d:
        write_toy(d, popularity=np.array([5, 50, 1, 20]), prior_weight=1.0)
        model_dir = store.final_path(d)
    lexical = LexicalIndex.build([[t, "space"] if t == "Gamma" else [t] for t in TITLES], TITLES)
    weights = {
        "zsl_te/dot/prior": FusionWeights(0.5, 1.0, 2.0),
        "zsl_te/dot/no_prior": FusionWeights(0.25, 1.0, 0.0),
        "zsl_te/cosine/prior": FusionWeights(1.0, 1.0, 1.0),
        "zsl_te/cosine/no_prior": FusionWeights(1.0, 1.0, 0.0),
    }
    with store.new_version("toy/zsl_search_index") as d:
        save_search_index(d, lexical, {"zsl_te": str(model_dir)}, weights, {}, 3)
    args = ["search", "--store", str(tmp_path / "store"), "--dataset", "toy", "--top", "2"]
    assert main([*args, "beta", "--explain"]) == 0
    out = capsys.readouterr().out
    assert str(model_dir) in out and "zsl_search_index" in out
    assert "fusion weights: lexical 0.5 · vector 1 · prior 2" in out
    lines = out.splitlines()
    first = next(i for i, x in enumerate(lines) if x.strip().startswith("1 "))
    assert "Beta" in lines[first] and "title hit" in lines[first + 1]  # a title hit ranks first
    assert "words matched in its text: beta" in lines[first + 1]
    assert main([*args, "zombies", "--no-prior"]) == 0
    out = capsys.readouterr().out
    assert "prior 0 (prior off)" in out and "no popularity to fall back on" in out


def test_search_index_keeps_tag_counts_and_the_fused_tag_weight(tmp_path, capsys):
    from recflow.zsl.hybrid import FusionWeights
    from recflow.zsl.lexical import LexicalIndex
    from recflow.zsl.search import HybridSearcher
    from recflow.zsl.search_index import load_search_index, save_search_index

    model_dir = write_toy(tmp_path / "m", popularity=np.array([5, 50, 1, 20]), prior_weight=1.0)
    lexical = LexicalIndex.build([[t] for t in TITLES], TITLES)
    weights = {
        "zsl_te/dot/prior": FusionWeights(0.0, 0.0, 1.0, 4.0),
        "zsl_te/dot/no_prior": FusionWeights(1.0, 1.0, 0.0),
    }
    tags = np.array([0, 0, 30, 0])  # Gamma: the least popular, the most tagged
    meta = {"weight": 4.0, "fused": True}
    save_search_index(
        tmp_path / "i", lexical, {"zsl_te": str(model_dir)}, weights, {}, 3, tags, meta
    )
    index = load_search_index(tmp_path / "i")
    np.testing.assert_array_equal(index.tag_counts, tags)
    assert index.tag_weight == 4.0 and index.weights("zsl_te", "dot", True).tags == 4.0
    assert index.fused_tag_weight == 4.0
    r = HybridSearcher(index).search("zombies", top=1)  # no known word: the prior's top
    assert r.fallback and r.hits.get_column("title").to_list() == ["Gamma"]
    # an index without counts is popularity alone
    save_search_index(tmp_path / "p", lexical, {"zsl_te": str(model_dir)}, weights, {}, 3)
    plain = load_search_index(tmp_path / "p")
    assert plain.tag_counts is None and plain.tag_weight == 0.0 and plain.fused_tag_weight == 0
    save_search_index(  # counts and ρ saved, but not fused: the prior is popularity
        tmp_path / "u",
        lexical,
        {"zsl_te": str(model_dir)},
        weights,
        {},
        3,
        tags,
        {"weight": 4.0, "fused": False},
    )
    assert load_search_index(tmp_path / "u").fused_tag_weight == 0.0
    assert HybridSearcher(plain).search("zombies", top=1).hits.get_column("title")[0] == "Beta"
    with pytest.raises(ValueError, match="tag counts"):
        save_search_index(
            tmp_path / "x", lexical, {"zsl_te": str(model_dir)}, weights, {}, 3, tags[:2]
        )
    assert main(["search", "zombies", "--index-dir", str(tmp_path / "i"), "--top", "1"]) == 0
    assert "tag weight 4 in the prior" in capsys.readouterr().out


def test_cli_search_loads_no_heavy_library(tmp_path):
    """A query is a whole process (< 1 s asked): the hybrid search loads its index and model
    with numpy and polars only; scipy, scikit-learn, torch and the compiled kernels (numba)
    would each add a large share of that second at import."""
    import subprocess
    import sys

    from recflow.zsl.hybrid import FusionWeights
    from recflow.zsl.lexical import LexicalIndex
    from recflow.zsl.search_index import save_search_index

    model_dir = write_toy(tmp_path / "m", popularity=np.array([5, 50, 1, 20]), prior_weight=1.0)
    weights = {"zsl_te/dot/prior": FusionWeights(1.0, 1.0, 1.0)}
    lexical = LexicalIndex.build([[t] for t in TITLES], TITLES)
    save_search_index(tmp_path / "i", lexical, {"zsl_te": str(model_dir)}, weights, {}, 3)
    code = (
        "import sys\n"
        "from recflow.cli import main\n"
        f"assert main(['search', 'alpha dark', '--explain', '--index-dir', {str(tmp_path / 'i')!r}]) == 0\n"
        "heavy = [m for m in ('scipy', 'sklearn', 'torch', 'numba', 'dagster') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    # a word BM25 knows and one the model knows: both parts ran in that process
    assert "query words known: alpha, dark" in out.stdout
    assert "lexical +1.000" in out.stdout and "words matched in its text: alpha" in out.stdout
