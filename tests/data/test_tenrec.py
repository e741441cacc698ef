"""Tenrec loader against a hand-written two-file fixture (values checked by hand)."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from recflow.data.tenrec import ITEM_ID_STRIDE, entity_of, load_tenrec
from recflow.data.validate import DataValidationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TENREC = FIXTURES / "tenrec"
ARTICLE = ITEM_ID_STRIDE  # the second file's id offset

COLUMNS = [
    "user_id",
    "item_id",
    "timestamp",
    "label",
    "event",
    "entity",
    "follow",
    "like",
    "share",
    "watching_times",
]


def test_entity_from_file_name() -> None:
    assert entity_of(Path("QK-video.csv")) == "video"
    assert entity_of(Path("/x/QB-article.csv")) == "article"


def test_interactions_in_file_order_with_positions() -> None:
    t = load_tenrec(TENREC)
    assert t.name == "tenrec"
    assert t.interactions.columns == COLUMNS
    # QK-video rows, then QK-article rows; timestamp = position in the user's rows of the file
    assert t.interactions.rows() == [
        (3, 10, 0, 1.0, "impression", "video", 0, 1, 0, 3),
        (1, 10, 0, 0.0, "impression", "video", 0, 0, 0, 0),
        (1, 11, 1, 1.0, "impression", "video", 1, 0, 0, 1),
        (3, 12, 1, 0.0, "impression", "video", 0, 0, 0, 0),
        (1, 12, 2, 1.0, "impression", "video", 0, 0, 1, 2),
        (2, 11, 0, 1.0, "impression", "video", 0, 0, 0, 1),
        (1, ARTICLE + 10, 0, 1.0, "impression", "article", 0, 0, 0, None),
        (4, ARTICLE + 20, 0, 0.0, "impression", "article", 0, 0, 0, None),
        (1, ARTICLE + 20, 1, 1.0, "impression", "article", 0, 1, 0, None),
        (3, ARTICLE + 10, 0, 0.0, "impression", "article", 0, 0, 0, None),
    ]


def test_items_unique_ids_source_ids_and_category() -> None:
    items = load_tenrec(TENREC).items
    assert items.columns == ["item_id", "entity", "title", "genres", "category", "source_item_id"]
    assert items.select("item_id", "entity", "category", "source_item_id").rows() == [
        (10, "video", 2, 10),  # categories 2 and 3 once each: the tie goes to 2
        (11, "video", 5, 11),
        (12, "video", 5, 12),
        (ARTICLE + 10, "article", None, 10),  # the article file has no video_category
        (ARTICLE + 20, "article", None, 20),
    ]
    assert items.get_column("title").null_count() == items.height


def test_users_take_most_frequent_attribute() -> None:
    users = load_tenrec(TENREC).users
    assert users.rows() == [
        (1, "2", 3, None),  # ages 3,3,3 (video), 4,3 (article): 3
        (2, "1", 2, None),
        (3, "1", 4, None),  # genders 1,1 (video), 2 (article): "1"
        (4, None, None, None),  # empty gender and age
    ]


def test_max_users_keeps_whole_logs_of_smallest_ids() -> None:
    full = load_tenrec(TENREC)
    sample = load_tenrec(TENREC, max_users=2)
    assert sample.users.get_column("user_id").to_list() == [1, 2]
    expected = full.interactions.filter(pl.col("user_id").is_in([1, 2]))
    assert sample.interactions.equals(expected)
    assert sample.items.get_column("item_id").to_list() == [10, 11, 12, ARTICLE + 10, ARTICLE + 20]
    # item 10's category now comes from user 1's row only
    assert sample.items.row(0, named=True)["category"] == 3


def test_single_file_keeps_source_ids(tmp_path: Path) -> None:
    t = load_tenrec(TENREC, files=("QK-article.csv",))
    assert t.items.get_column("item_id").to_list() == [10, 20]
    assert set(t.interactions.get_column("entity")) == {"article"}


def bad_dir(tmp_path: Path, bad_file: str) -> Path:
    d = tmp_path / "tenrec"
    d.mkdir()
    shutil.copy(FIXTURES / "bad" / bad_file, d / "QK-video.csv")
    return d


def test_missing_required_column(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as err:
        load_tenrec(bad_dir(tmp_path, "tenrec_missing_click.csv"), files=("QK-video.csv",))
    e = err.value
    assert (Path(e.file).name, e.column, e.rows, e.lines) == ("QK-video.csv", "click", 3, [1])
    assert "found ['user_id', 'item_id', 'clicked', 'like']" in e.problem


def test_non_integer_value(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="not integers") as err:
        load_tenrec(bad_dir(tmp_path, "tenrec_bad_int.csv"), files=("QK-video.csv",))
    e = err.value
    assert (Path(e.file).name, e.column, e.rows, e.lines) == ("QK-video.csv", "item_id", 1, [3])
    assert "'abc'" in e.problem


def test_too_many_fields(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="more fields") as err:
        load_tenrec(bad_dir(tmp_path, "tenrec_ragged.csv"), files=("QK-video.csv",))
    assert (Path(err.value.file).name, err.value.rows, err.value.lines) == (
        "QK-video.csv",
        2,
        [3, 4],
    )


def test_missing_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="file not found"):
        load_tenrec(tmp_path, files=("QK-video.csv",))
    (tmp_path / "QK-video.csv").write_text("")
    with pytest.raises(DataValidationError, match="no header row"):
        load_tenrec(tmp_path, files=("QK-video.csv",))
    (tmp_path / "QK-video.csv").write_text("user_id,item_id,click\n")
    with pytest.raises(DataValidationError, match="no data rows"):
        load_tenrec(tmp_path, files=("QK-video.csv",))


def test_null_id_and_non_binary_click(tmp_path: Path) -> None:
    path = tmp_path / "QK-video.csv"
    path.write_text("user_id,item_id,click\n1,10,1\n,11,0\n2,12,1\n")
    with pytest.raises(DataValidationError, match="null") as err:
        load_tenrec(tmp_path, files=("QK-video.csv",))
    assert (err.value.column, err.value.rows, err.value.lines) == ("user_id", 1, [3])
    path.write_text("user_id,item_id,click\n1,10,1\n1,11,2\n2,12,3\n")
    with pytest.raises(DataValidationError, match="allowed set") as err:
        load_tenrec(tmp_path, files=("QK-video.csv",))
    assert (err.value.column, err.value.rows, err.value.lines) == ("click", 2, [3, 4])


def test_lines_are_file_lines_after_sampling_users(tmp_path: Path) -> None:
    """max_users filters rows before anything is checked; the error still names the line
    of the file, not the row's place among the sampled ones."""
    path = tmp_path / "QK-video.csv"
    path.write_text("user_id,item_id,click\n7,10,1\n1,10,1\n7,11,0\n\n1,12,5\n")
    with pytest.raises(DataValidationError) as err:
        load_tenrec(tmp_path, files=("QK-video.csv",), max_users=1)
    assert str(err.value) == (
        f"{path}: line 6: column 'click': values outside the allowed set [0, 1], e.g. [5] (1 rows)"
    )
    path.write_text("user_id,item_id,click\n3,10,1\n-1,10,1\n")
    with pytest.raises(DataValidationError, match="negative ids") as err:
        load_tenrec(tmp_path, files=("QK-video.csv",), max_users=1)
    assert (err.value.column, err.value.lines) == ("user_id", [3])


def test_item_id_beyond_stride(tmp_path: Path) -> None:
    path = tmp_path / "QK-video.csv"
    path.write_text("user_id,item_id,click\n1,10,1\n1,100,0\n")
    with pytest.raises(DataValidationError, match="item_id_stride") as err:
        load_tenrec(tmp_path, files=("QK-video.csv",), item_id_stride=100)
    assert (err.value.column, err.value.rows, err.value.lines) == ("item_id", 1, [3])
