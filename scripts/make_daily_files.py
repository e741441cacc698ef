"""Write a daily feed's files from its base dataset, to try the daily refresh locally.

    python scripts/make_daily_files.py                 # ml_small_daily, every day
    python scripts/make_daily_files.py --until 2018-09-10

Reads the feed's base dataset from its raw files (the bundled ml-latest-small for the
default feed) and writes one ``YYYY-MM-DD.csv`` per day from the feed's start into
``$RECFLOW_DAILY_DIR/<feed>/`` (default ``data/daily/<feed>/``). The observe sensor
notices them within a minute and the automation ingests them, oldest day first.
"""

import argparse
from datetime import date
from pathlib import Path

from assets.daily import DAILY_FEEDS, DailyFilesResource
from assets.resources import DataSourcesResource
from recflow.data.daily import write_day_files
from recflow.data.registry import FILE_DATASETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", default="ml_small_daily", choices=sorted(DAILY_FEEDS))
    parser.add_argument("--until", type=date.fromisoformat, default=None, help="last day")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the feed's)")
    args = parser.parse_args()

    feed = DAILY_FEEDS[args.feed]
    until = args.until or feed.end
    if until is None:
        parser.error(f"{feed.name} is open-ended: give --until")
    source = FILE_DATASETS[feed.base]
    tables = source.load(DataSourcesResource().folder(source.folder_setting))
    out = args.out or DailyFilesResource().folder(feed.name)
    paths = write_day_files(tables.interactions, out, feed.start, until)
    print(f"{feed.name}: wrote {len(paths)} day files ({feed.start} .. {until}) to {out}")


if __name__ == "__main__":
    main()
