"""The ``recflow`` command line: things users run by hand, one subcommand each.

    recflow search "dark comedy" --top 10 [--store PATH] [--dataset ml_small] [--model zsl_me]
                   [--scoring dot|cosine] [--no-prior] [--explain] [--vectors-only]

Add a subcommand by writing ``_add_<name>(subparsers)`` that registers its arguments and
sets ``handler``; ``main`` dispatches on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from recflow.data.registry import default_store_root

MODEL_ASSETS = {"stl": "stl_model", "zsl_me": "zsl_me_model", "zsl_te": "zsl_te_model"}
SEARCH_INDEX_ASSET = "zsl_search_index"
VECTOR_ORDER = ("zsl_me", "stl", "zsl_te")  # best first on ml_small validation tags


def _latest(store: str, key: str) -> str | None:
    from recflow.store import ArtifactStore

    try:
        return str(ArtifactStore(store).latest(key))
    except FileNotFoundError:
        return None


def _vector_model_dir(args: argparse.Namespace) -> str:
    """``--model``'s latest folder; without it the first materialized of VECTOR_ORDER."""
    from recflow.store import ArtifactStore

    names = [args.model] if args.model else list(VECTOR_ORDER)
    for name in names:
        found = _latest(args.store, f"{args.dataset}/{MODEL_ASSETS[name]}")
        if found is not None:
            return found
    # nothing materialized: the store's own error says what to materialize
    return str(ArtifactStore(args.store).latest(f"{args.dataset}/{MODEL_ASSETS[names[0]]}"))


def _run_search(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    index_dir = None
    if not args.vectors_only and args.model_dir is None:
        index_dir = args.index_dir or _latest(args.store, f"{args.dataset}/{SEARCH_INDEX_ASSET}")
    if index_dir is not None:
        from recflow.zsl.search import HybridSearcher

        searcher = HybridSearcher.from_dir(
            index_dir, model=args.model, scoring=args.scoring, prior=not args.no_prior
        )
        w = searcher.weights
        print(f"search index {index_dir}")
        print(f"{searcher.model_name} model {searcher.model.root} · scoring {searcher.scoring}")
        print(
            f"fusion weights: lexical {w.lexical:g} · vector {w.vector:g} · prior {w.prior:g}"
            f"{f' (tag weight {w.tags:g} in the prior)' if w.tags and not args.no_prior else ''}"
            f"{' (prior off)' if args.no_prior else ''} · title hits first"
        )
        result = searcher.search(args.query, args.top)
    else:
        from recflow.zsl.search import Searcher

        if not args.vectors_only and args.model_dir is None:
            print(
                f"no {args.dataset}/{SEARCH_INDEX_ASSET} in {args.store}: vectors only",
                file=sys.stderr,
            )
        model_dir = args.model_dir or _vector_model_dir(args)
        searcher = Searcher.from_dir(model_dir, scoring=args.scoring, prior=not args.no_prior)
        beta = searcher.ensemble.prior_weight if searcher.ensemble is not None else 0.0
        print(f"{searcher.model.method} model {model_dir} · scoring {searcher.base.scoring}")
        print(f"fusion weights: vector 1 · prior {beta:g} (vectors only)")
        result = searcher.search(args.query, args.top)
    print(f"query {args.query!r}")
    print(result.describe(explain=args.explain))
    print(f"({time.perf_counter() - t0:.3f} s including loading)", file=sys.stderr)
    return 0


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search the latest models: BM25 + ZSL vectors + popularity prior, fused",
    )
    p.add_argument("query", help="free-text query, e.g. 'dark comedy'")
    p.add_argument("--top", type=int, default=10, help="how many items to show (default 10)")
    p.add_argument(
        "--store",
        default=default_store_root(),
        help="artifact store root (default: $RECFLOW_HOME, else .recflow/ in the repository)",
    )
    p.add_argument("--dataset", default="ml_small", help="dataset the model was trained on")
    p.add_argument(
        "--model",
        choices=sorted(MODEL_ASSETS),
        default=None,
        help="ZSL model to fuse (default: the search index's best on validation)",
    )
    p.add_argument("--model-dir", default=None, help="a model folder (implies --vectors-only)")
    p.add_argument("--index-dir", default=None, help="a search-index folder (overrides --store)")
    p.add_argument("--scoring", choices=("dot", "cosine"), default=None)
    p.add_argument("--no-prior", action="store_true", help="leave out the popularity prior")
    p.add_argument(
        "--explain",
        action="store_true",
        help="per result: each part's contribution and the query words it matched",
    )
    p.add_argument(
        "--vectors-only", action="store_true", help="rank by the model's vectors (+ prior) only"
    )
    p.set_defaults(handler=_run_search)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_search(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, KeyError) as e:
        print(f"recflow: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
