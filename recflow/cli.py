"""The ``recflow`` command line: things users run by hand, one subcommand each.

    recflow search "dark comedy" --top 10 [--store PATH] [--dataset ml_small] [--model zsl_te]

Add a subcommand by writing ``_add_<name>(subparsers)`` that registers its arguments and
sets ``handler``; ``main`` dispatches on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from recflow.store import ArtifactStore

MODEL_ASSETS = {"stl": "stl_model", "zsl_me": "zsl_me_model", "zsl_te": "zsl_te_model"}


def default_store() -> str:
    """``$RECFLOW_HOME``, else ``.recflow`` in the current folder (the repository root)."""
    return os.environ.get("RECFLOW_HOME", ".recflow")


def _run_search(args: argparse.Namespace) -> int:
    from recflow.zsl.search import Searcher

    t0 = time.perf_counter()
    model_dir = args.model_dir or ArtifactStore(args.store).latest(
        f"{args.dataset}/{MODEL_ASSETS[args.model]}"
    )
    searcher = Searcher.from_dir(
        model_dir,
        scoring=args.scoring,
        prior_weight=0.0 if args.no_prior else None,
    )
    result = searcher.search(args.query, args.top)
    print(f"{result.method} model {model_dir} · query {args.query!r}")
    print(result.describe())
    print(f"({time.perf_counter() - t0:.3f} s including loading)", file=sys.stderr)
    return 0


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="zero-shot search over the latest trained ZSL model")
    p.add_argument("query", help="free-text query, e.g. 'dark comedy'")
    p.add_argument("--top", type=int, default=10, help="how many items to show (default 10)")
    p.add_argument("--store", default=default_store(), help="artifact store root")
    p.add_argument("--dataset", default="ml_small", help="dataset the model was trained on")
    p.add_argument("--model", choices=sorted(MODEL_ASSETS), default="zsl_te")
    p.add_argument("--model-dir", default=None, help="a model folder (overrides --store/--model)")
    p.add_argument("--scoring", choices=("dot", "cosine"), default=None)
    p.add_argument("--no-prior", action="store_true", help="ignore the popularity prior")
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
    except FileNotFoundError as e:
        print(f"recflow: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
