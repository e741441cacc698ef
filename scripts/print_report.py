"""Print the newest ``report.md`` of a dataset (``<dataset>/report`` in the artifact store).

    python scripts/print_report.py ml_small

The store root is ``$RECFLOW_HOME``, else ``.recflow/`` in the repository (the default
of ``assets.resources.StoreResource``). Exits 1 with a message when there is no report.
"""

import argparse
import os
import sys
from pathlib import Path

from recflow.store import ArtifactStore

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", help="e.g. ml_small or synthetic")
    p.add_argument(
        "--root",
        default=os.environ.get("RECFLOW_HOME", str(REPO_ROOT / ".recflow")),
        help="artifact store root (default: $RECFLOW_HOME, else .recflow/)",
    )
    args = p.parse_args(argv)
    try:
        version = ArtifactStore(args.root).latest(f"{args.dataset}/report")
    except FileNotFoundError as err:
        print(f"print_report: {err}", file=sys.stderr)
        return 1
    path = version / "report.md"
    if not path.exists():
        print(f"print_report: {path} is missing", file=sys.stderr)
        return 1
    print(f"==> {path}\n")
    print(path.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
