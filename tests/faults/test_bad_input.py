"""Every class of bad input, in every raw format, fails the dataset step with one message
naming file, line, column and problem, and leaves the store without a new version.

Each case edits a copy of the small published-format fixtures (``tests/fixtures``) and
materializes that dataset's real canonical asset, so the message checked is the one a
user reads in the UI; lines are counted as in an editor (the header is line 1).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assets.cooc import build_cooc_assets
from assets.datasets import build_file_dataset_asset
from assets.io_manager import JsonHandleIOManager
from assets.raw import build_raw_source, raw_files_key
from assets.resources import DataSourcesResource, StoreResource
from recflow.data.registry import FILE_DATASETS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FOLDERS = {"ml_small": "ml_latest", "ml100k": "ml100k", "ml1m": "ml1m", "tenrec": "tenrec"}
SETTINGS = {
    "ml_small": "movielens_small_dir",
    "ml100k": "ml100k_dir",
    "ml1m": "ml1m_dir",
    "tenrec": "tenrec_dir",
}
IDS = "ids are non-negative integers (0 <= id < 2**63)"


def set_line(n: int, text: str) -> Callable[[bytes], bytes]:
    """Replace line ``n`` (1-based) of the file."""

    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[n - 1] = text.encode("utf-8")
        return b"\n".join(lines)

    return edit


def replace(old: str, new: str) -> Callable[[bytes], bytes]:
    """Replace every ``old`` in the file's text."""
    return lambda data: data.replace(old.encode("utf-8"), new.encode("utf-8"))


def truncate_last_line(keep: int) -> Callable[[bytes], bytes]:
    """Cut the file ``keep`` bytes into its last line, as an interrupted copy does."""

    def edit(data: bytes) -> bytes:
        body = data.rstrip(b"\n")
        return body[: body.rfind(b"\n") + 1 + keep]

    return edit


@dataclass(frozen=True)
class Case:
    fault: str
    dataset: str
    file: str
    edit: Callable[[bytes], bytes]
    message: str
    """The failure message after the file's path."""


RATINGS_LATEST = "userId,movieId,rating,timestamp"
CASES = [
    # ml-latest: UTF-8 CSV with a header
    Case(
        "negative id",
        "ml_small",
        "ratings.csv",
        set_line(3, "-1,2571,5.0,964981247"),
        f": line 3: column 'userId': negative ids, e.g. [-1]; {IDS} (1 rows)",
    ),
    Case(
        "non-integer id",
        "ml_small",
        "ratings.csv",
        set_line(4, "2,73.5,3.5,1445714994"),
        ": line 4: column 'movieId': values that are not Int64, e.g. '73.5' (1 rows)",
    ),
    Case(
        "non-numeric rating",
        "ml_small",
        "ratings.csv",
        set_line(5, "2,171749,good,1445715000"),
        ": line 5: column 'rating': values that are not Float64, e.g. 'good' (1 rows)",
    ),
    Case(
        "rating out of range",
        "ml_small",
        "ratings.csv",
        set_line(6, "2,8,7.0,1445715100"),
        ": line 6: column 'rating': values outside the allowed set "
        "[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0], e.g. [7.0] (1 rows)",
    ),
    Case(
        "bad timestamp",
        "ml_small",
        "ratings.csv",
        set_line(2, "1,1,4.0,2018-09-24"),
        ": line 2: column 'timestamp': values that are not unix timestamps (integer "
        "seconds), e.g. '2018-09-24' (1 rows)",
    ),
    Case(
        "unknown item id",
        "ml_small",
        "ratings.csv",
        set_line(3, "1,99999,5.0,964981247"),
        ": line 3: column 'movieId': ids not listed in movies.csv, e.g. [99999] (1 rows)",
    ),
    Case(
        "missing column",
        "ml_small",
        "ratings.csv",
        set_line(1, "userId,movieId,stars,timestamp"),
        ": line 1: column 'rating': missing column(s) ['rating']; expected "
        f"{RATINGS_LATEST.split(',')}, found ['userId', 'movieId', 'stars', 'timestamp'] "
        "(5 rows)",
    ),
    Case(
        "wrong separator",
        "ml_small",
        "ratings.csv",
        replace(",", ";"),
        ": line 1: column 'userId': missing column(s) ['userId', 'movieId', 'rating', "
        "'timestamp'] (a different separator?); expected ['userId', 'movieId', 'rating', "
        "'timestamp'], found ['userId;movieId;rating;timestamp'] (5 rows)",
    ),
    Case(
        "wrong encoding (Latin-1 in a UTF-8 file)",
        "ml_small",
        "movies.csv",
        lambda data: data.replace("é".encode(), "é".encode("latin-1")),
        ": line 3: not valid utf-8 text at byte 8 of line 3 (b'\\xe9rab'; expected "
        "encoding utf-8) (1 rows)",
    ),
    Case(
        "wrong encoding (UTF-16)",
        "ml_small",
        "ratings.csv",
        lambda data: data.decode("utf-8").encode("utf-16"),
        ": lines 1, 2, 3, ...: NUL byte at byte 4 of line 1: not a utf-8 text file (binary, "
        "UTF-16, or padded by a failed copy?) (7 rows)",
    ),
    Case(
        "empty file",
        "ml_small",
        "ratings.csv",
        lambda data: b"",
        ": file is empty (no header row) (0 rows)",
    ),
    Case(
        "header only",
        "ml_small",
        "ratings.csv",
        lambda data: (RATINGS_LATEST + "\n").encode(),
        ": file has no data rows (0 rows)",
    ),
    Case(
        "column named twice in the header",
        "ml_small",
        "ratings.csv",
        set_line(1, "userId,movieId,rating,userId"),
        ": line 1: column 'userId': header names column(s) ['userId'] twice: "
        "['userId', 'movieId', 'rating', 'userId'] (5 rows)",
    ),
    Case(
        "header repeated mid-file",
        "ml_small",
        "ratings.csv",
        set_line(4, RATINGS_LATEST),
        f": line 4: the header repeated as data (files joined together?): {RATINGS_LATEST!r} "
        "(1 rows)",
    ),
    Case(
        "unclosed quote",
        "ml_small",
        "movies.csv",
        replace('"Misérables, Les (1995)"', '"Misérables, Les (1995)'),
        ": line 3: malformed quoting: an odd number of double quotes (a quote never closed?): "
        "'73,\"Misérables, Les (1995),Drama|War' (1 rows)",
    ),
    Case(
        "truncated last line",
        "ml_small",
        "ratings.csv",
        truncate_last_line(6),
        ": line 6: wrong number of fields: expected 4 separated by ',', line 6 has 3 "
        "(the last line: a truncated file?): '2,8,2.' (1 rows)",
    ),
    Case(
        "NUL bytes",
        "ml_small",
        "ratings.csv",
        set_line(3, "1,25\x0071,5.0,964981247"),
        ": line 3: NUL byte at byte 5 of line 3: not a utf-8 text file (binary, UTF-16, "
        "or padded by a failed copy?) (1 rows)",
    ),
    Case(
        "duplicate rating",
        "ml_small",
        "ratings.csv",
        set_line(6, "1,1,3.0,964982999"),
        ": lines 2, 6: column 'userId,movieId': duplicate rows on ['userId', 'movieId'], "
        "e.g. {'userId': 1, 'movieId': 1} (2 rows)",
    ),
    # ML-100K: Latin-1, tab-separated, no header (the first rating is line 1)
    Case(
        "negative id",
        "ml100k",
        "u.data",
        set_line(4, "2\t-3\t2\t888551234"),
        f": line 4: column 'item_id': negative ids, e.g. [-3]; {IDS} (1 rows)",
    ),
    Case(
        "non-integer id",
        "ml100k",
        "u.data",
        set_line(1, "1x\t1\t5\t874965758"),
        ": line 1: column 'user_id': values that are not Int64, e.g. '1x' (1 rows)",
    ),
    Case(
        "rating out of range",
        "ml100k",
        "u.data",
        set_line(5, "3\t2\t6\t889237455"),
        ": line 5: column 'rating': values outside the allowed set "
        "[1.0, 2.0, 3.0, 4.0, 5.0], e.g. [6.0] (1 rows)",
    ),
    Case(
        "unknown user id",
        "ml100k",
        "u.data",
        set_line(6, "9\t3\t5\t889237460"),
        ": line 6: column 'user_id': ids not listed in u.user, e.g. [9] (1 rows)",
    ),
    Case(
        "wrong separator",
        "ml100k",
        "u.data",
        replace("\t", ","),
        ": lines 1, 2, 3, ...: wrong number of fields: expected 4 separated by '\\t', line 1 "
        "has 1 (a different separator?): '1,1,5,874965758' (6 rows)",
    ),
    Case(
        "wrong encoding (UTF-16)",
        "ml100k",
        "u.user",
        lambda data: data.decode("latin-1").encode("utf-16"),
        ": lines 1, 2, 3, ...: NUL byte at byte 4 of line 1: not a latin-1 text file "
        "(binary, UTF-16, or padded by a failed copy?) (4 rows)",
    ),
    Case(
        "truncated last line",
        "ml100k",
        "u.data",
        truncate_last_line(4),
        ": line 6: wrong number of fields: expected 4 separated by '\\t', line 6 has 3 "
        "(the last line: a truncated file?): '3\\t3\\t' (1 rows)",
    ),
    Case(
        "empty file",
        "ml100k",
        "u.data",
        lambda data: b"",
        ": file has no data rows (0 rows)",
    ),
    # ML-1M: Latin-1, "::"-separated, no header
    Case(
        "negative id",
        "ml1m",
        "ratings.dat",
        set_line(2, "-1::661::3::978302109"),
        f": line 2: column 'user_id': negative ids, e.g. [-1]; {IDS} (1 rows)",
    ),
    Case(
        "bad timestamp",
        "ml1m",
        "ratings.dat",
        set_line(3, "2::1193::4::2000-12-31"),
        ": line 3: column 'timestamp': values that are not unix timestamps (integer "
        "seconds), e.g. '2000-12-31' (1 rows)",
    ),
    Case(
        "wrong separator",
        "ml1m",
        "ratings.dat",
        replace("::", "\t"),
        ": lines 1, 2, 3, ...: wrong number of fields: expected 4 separated by '::', line 1 "
        "has 1 (a different separator?): '1\\t1193\\t5\\t978300760' (5 rows)",
    ),
    Case(
        "NUL bytes",
        "ml1m",
        "users.dat",
        set_line(2, "2::M::56::16::\x00\x00\x00"),
        ": line 2: NUL byte at byte 15 of line 2: not a latin-1 text file (binary, UTF-16, "
        "or padded by a failed copy?) (1 rows)",
    ),
    # Tenrec: UTF-8 CSV with a header, scanned lazily
    Case(
        "negative id",
        "tenrec",
        "QK-video.csv",
        set_line(5, "-3,12,0,0,0,0,5,0,1,4"),
        f": line 5: column 'user_id': negative ids, e.g. [-3]; {IDS} (1 rows)",
    ),
    Case(
        "non-integer id",
        "tenrec",
        "QK-article.csv",
        set_line(3, "4,2o,0,0,0,0,,"),
        ": line 3: column 'item_id': values that are not integers, e.g. ['2o'] (1 rows)",
    ),
    Case(
        "click out of range",
        "tenrec",
        "QK-video.csv",
        set_line(7, "2,11,2,0,0,0,5,1,1,2"),
        ": line 7: column 'click': values outside the allowed set [0, 1], e.g. [2] (1 rows)",
    ),
    Case(
        "missing column",
        "tenrec",
        "QK-article.csv",
        replace("click", "clicked"),
        ": line 1: column 'click': missing column(s) ['click']; expected at least "
        "['user_id', 'item_id', 'click'] (optional ['follow', 'like', 'share', "
        "'video_category', 'watching_times', 'gender', 'age']), found ['user_id', 'item_id', "
        "'clicked', 'follow', 'like', 'share', 'gender', 'age'] (4 rows)",
    ),
    Case(
        "column named twice in the header",
        "tenrec",
        "QK-video.csv",
        replace("share", "like"),
        ": line 1: column 'like': header names column(s) ['like'] twice: ['user_id', "
        "'item_id', 'click', 'follow', 'like', 'like', 'video_category', 'watching_times', "
        "'gender', 'age'] (0 rows)",
    ),
    Case(
        "truncated last line",
        "tenrec",
        "QK-video.csv",
        truncate_last_line(4),
        ": line 7: column 'click': null or empty values in a required column (1 rows)",
    ),
    Case(
        "too many fields",
        "tenrec",
        "QK-video.csv",
        set_line(4, "1,11,1,1,0,0,5,1,2,3,9"),
        ": line 4: lines with more fields than the 10 in the header, e.g. "
        "'1,11,1,1,0,0,5,1,2,3,9' (1 rows)",
    ),
    Case(
        "wrong encoding (UTF-16)",
        "tenrec",
        "QK-video.csv",
        lambda data: data.decode("utf-8").encode("utf-16"),
        ": line 1: NUL bytes in the header: not a UTF-8 CSV (UTF-16 or binary?) (0 rows)",
    ),
    Case(
        "wrong separator",
        "tenrec",
        "QK-article.csv",
        replace(",", "\t"),
        ": line 1: column 'user_id': missing column(s) ['user_id', 'item_id', 'click'] (a "
        "different separator?); expected at least ['user_id', 'item_id', 'click'] (optional "
        "['follow', 'like', 'share', 'video_category', 'watching_times', 'gender', 'age']), "
        "found ['user_id\\titem_id\\tclick\\tfollow\\tlike\\tshare\\tgender\\tage'] (4 rows)",
    ),
    Case(
        "empty file",
        "tenrec",
        "QK-article.csv",
        lambda data: b"",
        ": file is empty (no header row) (0 rows)",
    ),
]


def _resources(store: Path, dataset: str, folder: Path) -> dict[str, object]:
    return {
        "store": StoreResource(root=str(store)),
        "io_manager": JsonHandleIOManager(root=str(store)),
        "data_sources": DataSourcesResource(**{SETTINGS[dataset]: str(folder)}),
    }


def _bad_copy(tmp_path: Path, case: Case) -> Path:
    folder = tmp_path / "raw"
    shutil.copytree(FIXTURES / FOLDERS[case.dataset], folder)
    target = folder / case.file
    target.write_bytes(case.edit(target.read_bytes()))
    return folder


def _failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    return next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.dataset}-{c.fault.replace(' ', '_')}" for c in CASES]
)
def test_bad_input_fails_naming_file_line_column_and_writes_nothing(
    tmp_path: Path, case: Case, fault_table
) -> None:
    folder = _bad_copy(tmp_path, case)
    store = tmp_path / "store"
    asset = build_file_dataset_asset(FILE_DATASETS[case.dataset])
    result = dg.materialize(
        [asset], resources=_resources(store, case.dataset, folder), raise_on_error=False
    )
    assert not result.success
    failure = _failure(result).step_failure_data
    assert failure.user_failure_data is not None, failure.error
    assert failure.user_failure_data.description == str(folder / case.file) + case.message
    # nothing reached the store: no version folder, no LATEST, no temporary leftovers
    assert not (store / case.dataset).exists() or not any((store / case.dataset).iterdir())
    where = case.message.split(": ")[1].split(" (")[0]
    fault_table.record(
        f"bad input: {case.fault} ({case.dataset}, {case.file})",
        "store untouched (no version written)",
        f"nothing; rejected naming {where}",
    )


def test_a_negative_user_id_stops_the_chain_before_anything_downstream(
    tmp_path: Path, fault_table
) -> None:
    """The issue's case: ``userId`` -1 in ratings.csv. The dataset step fails, the matrix
    and its checks never run, and the store keeps the previous good version."""
    folder = tmp_path / "raw"
    shutil.copytree(FIXTURES / FOLDERS["ml_small"], folder)
    ds = FILE_DATASETS["ml_small"]
    assets = [build_raw_source(ds), build_file_dataset_asset(ds), *build_cooc_assets("ml_small")]
    selection = dg.AssetSelection.key_prefixes(["ml_small"]) - dg.AssetSelection.assets(
        raw_files_key("ml_small")
    )
    store = tmp_path / "store"
    good = dg.materialize(
        assets, resources=_resources(store, "ml_small", folder), selection=selection
    )
    assert good.success
    versions = sorted(p.name for p in (store / "ml_small").rglob("*") if p.is_dir())

    ratings = folder / "ratings.csv"
    ratings.write_bytes(set_line(2, "-1,1,4.0,964982703")(ratings.read_bytes()))
    bad = dg.materialize(
        assets,
        resources=_resources(store, "ml_small", folder),
        selection=selection,
        raise_on_error=False,
    )
    assert not bad.success
    assert _failure(bad).step_key == "ml_small__dataset"
    ran = {e.step_key for e in bad.all_events if e.event_type_value == "STEP_START"}
    assert ran == {"ml_small__dataset"}  # the matrix and its checks never started
    assert not bad.get_asset_materialization_events()
    assert sorted(p.name for p in (store / "ml_small").rglob("*") if p.is_dir()) == versions
    fault_table.record(
        "bad input: userId -1 (ml_small, full chain)",
        "previous dataset + matrix versions; downstream steps never started",
        "the bad file's rows",
    )
