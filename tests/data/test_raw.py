"""Raw delimited files: every failure class gives one error naming file, lines, column, rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from recflow.data.raw import (
    CSV,
    TIMESTAMP,
    DelimitedFormat,
    check_allowed_values,
    content_hash,
    read_delimited,
    read_table,
)
from recflow.data.validate import LINE, DataValidationError

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
RATINGS = {
    "userId": pl.Int64(),
    "movieId": pl.Int64(),
    "rating": pl.Float64(),
    "timestamp": pl.Int64(),
}


def read_ratings(path: Path) -> pl.DataFrame:
    return read_table(
        path,
        CSV,
        RATINGS,
        not_null=["userId", "movieId"],
        unique=["userId", "movieId"],
        what={"timestamp": TIMESTAMP},
    )


def test_reads_quoted_csv_as_text(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_text('movieId,title\n1,"Matrix, The (1999)"\n2,"""Cats"" (1998)"\n3,\n')
    df = read_delimited(path, required=["movieId", "title"])
    assert df.schema == pl.Schema({"movieId": pl.String(), "title": pl.String(), LINE: pl.Int64()})
    assert df.get_column("title").to_list() == ["Matrix, The (1999)", '"Cats" (1998)', None]
    assert df.get_column(LINE).to_list() == [2, 3, 4]


def test_multi_char_separator_and_latin1(tmp_path: Path) -> None:
    path = tmp_path / "movies.dat"
    path.write_bytes(
        '73::Misérables, Les (1995)::Drama|Musical\r\n\n1::A "quote"::\n'.encode("latin-1")
    )
    fmt = DelimitedFormat(
        "::", has_header=False, columns=("id", "title", "genres"), encoding="latin-1", quoted=False
    )
    df = read_delimited(path, fmt)
    # no header: the first row is line 1; the blank line 2 is skipped but still counted
    assert df.rows() == [
        ("73", "Misérables, Les (1995)", "Drama|Musical", 1),
        ("1", 'A "quote"', None, 3),
    ]


def test_read_table_casts_and_keeps_only_named_columns() -> None:
    path = BAD.parent / "ml_latest" / "ratings.csv"
    df = read_table(path, CSV, {"movieId": pl.Int64(), "rating": pl.Float64()})
    assert df.columns == ["movieId", "rating", LINE]
    assert df.row(2) == (73, 3.5, 4)


def test_missing_file() -> None:
    with pytest.raises(DataValidationError, match="file not found") as err:
        read_ratings(BAD / "no_such_file.csv")
    assert err.value.file.endswith("no_such_file.csv")
    assert err.value.rows == 0


def test_empty_file_and_header_only() -> None:
    with pytest.raises(DataValidationError, match="no header row") as err:
        read_ratings(BAD / "empty.csv")
    assert err.value.file.endswith("empty.csv")
    with pytest.raises(DataValidationError, match="no data rows") as err:
        read_ratings(BAD / "header_only.csv")
    assert (err.value.file.endswith("header_only.csv"), err.value.rows) == (True, 0)


def test_misnamed_column_says_expected_and_found() -> None:
    with pytest.raises(DataValidationError) as err:
        read_ratings(BAD / "misnamed_column.csv")
    e = err.value
    assert e.file.endswith("misnamed_column.csv")
    assert e.column == "userId"
    assert e.rows == 2
    assert "'userId' looks like 'userID'" in e.problem
    assert "expected ['userId', 'movieId', 'rating', 'timestamp']" in e.problem
    assert "found ['userID', 'movieId', 'rating', 'timestamp']" in e.problem


def test_wrong_type_counts_bad_values() -> None:
    with pytest.raises(DataValidationError) as err:
        read_ratings(BAD / "wrong_type.csv")
    e = err.value
    assert (Path(e.file).name, e.column, e.rows) == ("wrong_type.csv", "rating", 2)
    assert e.lines == [2, 4]
    assert str(e) == (
        f"{BAD / 'wrong_type.csv'}: lines 2, 4: column 'rating': "
        "values that are not Float64, e.g. 'four', 'five' (2 rows)"
    )


def test_null_and_blank_ids() -> None:
    with pytest.raises(DataValidationError, match="null or empty") as err:
        read_ratings(BAD / "null_id.csv")
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == (
        "null_id.csv",
        "userId",
        2,
    )
    assert err.value.lines == [3, 4]


def test_unparseable_timestamps() -> None:
    with pytest.raises(DataValidationError, match="unix timestamps") as err:
        read_ratings(BAD / "bad_timestamp.csv")
    e = err.value
    assert (Path(e.file).name, e.column, e.rows) == ("bad_timestamp.csv", "timestamp", 2)
    assert e.lines == [2, 4]
    assert "'2018-09-24'" in e.problem


def test_duplicate_rows() -> None:
    with pytest.raises(DataValidationError, match="duplicate") as err:
        read_ratings(BAD / "duplicate_rows.csv")
    e = err.value
    # both copies of (1, 1) are counted
    assert (Path(e.file).name, e.column, e.rows) == ("duplicate_rows.csv", "userId,movieId", 2)
    assert e.lines == [2, 4]  # line 4 repeats line 2


def test_wrong_number_of_fields_csv() -> None:
    with pytest.raises(DataValidationError, match="wrong number of fields") as err:
        read_ratings(BAD / "ragged.csv")
    e = err.value
    assert (Path(e.file).name, e.rows, e.lines) == ("ragged.csv", 2, [3, 4])
    assert "expected 4" in e.problem and "line 3 has 5" in e.problem


def test_wrong_number_of_fields_multi_char_separator() -> None:
    fmt = DelimitedFormat("::", has_header=False, columns=("u", "i", "r", "t"), quoted=False)
    with pytest.raises(DataValidationError, match="line 2 has 5") as err:
        read_delimited(BAD / "ragged.dat", fmt)
    assert (Path(err.value.file).name, err.value.rows, err.value.lines) == ("ragged.dat", 1, [2])


def test_commas_inside_quotes_are_not_field_separators(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text('a,b\n1,"x, y, z"\n2,"say ""hi, there"""\n')
    assert read_delimited(path).get_column("b").to_list() == ["x, y, z", 'say "hi, there"']


def test_wrong_encoding() -> None:
    with pytest.raises(DataValidationError, match="not valid utf-8") as err:
        read_delimited(BAD / "not_utf8.csv")
    assert Path(err.value.file).name == "not_utf8.csv"
    assert err.value.lines == [2]
    assert "at byte 7 of line 2" in err.value.problem  # "73,Mis" (6 bytes), then é


def test_check_allowed_values() -> None:
    df = pl.DataFrame({"flag": [0, 1, 2, None, 3, 1]})
    check_allowed_values(df.head(2), "flag", (0, 1), "f.csv")
    with pytest.raises(DataValidationError) as err:
        check_allowed_values(df, "flag", (0, 1), "f.csv")
    assert (err.value.file, err.value.column, err.value.rows) == ("f.csv", "flag", 2)
    assert (err.value.lines, err.value.unit) == ([3, 5], "row")  # no LINE: row numbers
    with pytest.raises(DataValidationError) as err:
        check_allowed_values(df.with_columns(pl.lit(10).alias(LINE)), "flag", (0, 1), "f.csv")
    assert (err.value.lines, err.value.unit) == ([10, 10], "line")


def test_content_hash_matches_reference_and_tracks_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"x,y\n1,2\n")
    b.write_bytes(b"")
    reference = hashlib.sha256()
    for name, data in ((b"a.csv", b"x,y\n1,2\n"), (b"b.csv", b"")):
        reference.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big"))
        reference.update(data)
    assert content_hash([b, a]) == content_hash([a, b]) == reference.hexdigest()

    a.write_bytes(b"x,y\n1,3\n")
    assert content_hash([a, b]) != reference.hexdigest()
    with pytest.raises(DataValidationError, match="file not found"):
        content_hash([tmp_path / "missing.csv"])


def test_content_hash_streams_files_larger_than_a_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # 2.3 MB: more than one 1 MiB chunk
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    name = b"big.bin"
    expected = hashlib.sha256(
        len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data
    ).hexdigest()
    assert content_hash([path]) == expected


def test_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_text('movieId,title\n1,"The Matrix (1999)\n2,Cats (1998)\n3,Heat\n')
    with pytest.raises(DataValidationError, match="malformed quoting") as err:
        read_delimited(path)
    assert str(err.value) == (
        f"{path}: line 2: malformed quoting: an odd number of double quotes (a quote never "
        "closed?): '1,\"The Matrix (1999)' (1 rows)"
    )
