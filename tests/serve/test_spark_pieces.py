"""How the Spark engine cuts a table into pieces, and finds repeated keys across them, on the driver."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_modes.data.gate import Gate
from crm_modes.data.io import TableReadError
from crm_modes.data.schema import input_names
from crm_modes.serve.spark import CSV_FILE_STRIDE, plan_pieces, repeated_rows


@pytest.fixture
def book(small_book) -> pd.DataFrame:
    columns = [name for name in input_names() if name in small_book.columns]
    return small_book[columns].head(2_500).reset_index(drop=True)


def _write(frame: pd.DataFrame, path, row_group_size: int):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)


def test_pieces_cover_every_row_once_in_order(book, tmp_path):
    folder = tmp_path / "book.parquet"
    folder.mkdir()
    _write(book.iloc[:1_600], folder / "part-0.parquet", row_group_size=1_000)  # groups of 1,000 and 600
    _write(book.iloc[1_600:], folder / "part-1.parquet", row_group_size=5_000)  # one group of 900
    pieces, columns = plan_pieces(folder, tasks=4, chunk_rows=300)
    assert columns == list(book.columns)
    # 2,500 rows for 4 tasks: pieces of at most 625 rows, cut at whole 300-row chunks
    assert [(piece.row_group, piece.start, piece.rows) for piece in pieces] == [
        (0, 0, 600),
        (0, 600, 400),
        (1, 0, 600),
        (0, 0, 600),
        (0, 600, 300),
    ]
    read = pd.concat(
        [frame for piece in pieces for frame in piece.frames(300, ["facility_id"])], ignore_index=True
    )
    assert read["facility_id"].tolist() == book["facility_id"].tolist()
    assert [piece.first_id for piece in pieces] == [0, 600, 1_000, 1_600, 2_200]


def test_no_piece_is_smaller_than_a_chunk_but_the_last_of_a_group(book, tmp_path):
    _write(book, tmp_path / "book.parquet", row_group_size=2_500)
    pieces, _ = plan_pieces(tmp_path / "book.parquet", tasks=64, chunk_rows=1_000)
    assert [(piece.start, piece.rows) for piece in pieces] == [(0, 1_000), (1_000, 1_000), (2_000, 500)]


def test_a_csv_file_is_one_piece_and_files_must_agree_on_columns(book, tmp_path):
    folder = tmp_path / "book.csv"
    folder.mkdir()
    book.iloc[:100].to_csv(folder / "a.csv", index=False)
    book.iloc[100:150].to_csv(folder / "b.csv", index=False)
    pieces, columns = plan_pieces(folder, tasks=4, chunk_rows=10)
    assert [piece.first_id for piece in pieces] == [0, CSV_FILE_STRIDE]
    assert sum(len(frame) for piece in pieces for frame in piece.frames(10, columns)) == 150
    book.iloc[:5].drop(columns=["leverage"]).to_csv(folder / "c.csv", index=False)
    with pytest.raises(TableReadError, match=r"c\.csv has other columns than the first file"):
        plan_pieces(folder, tasks=4, chunk_rows=10)
    with pytest.raises(TableReadError, match="no such file or folder"):
        plan_pieces(tmp_path / "missing.parquet", tasks=4, chunk_rows=10)


def test_repeated_keys_across_pieces_are_the_in_process_gates(book, tmp_path):
    book = book.copy()
    book.loc[2_100] = book.loc[3]  # repeats a row of the first piece in the last
    book.loc[700] = book.loc[650]  # within a piece
    book.loc[40, "leverage"] = 99.0  # a bad row still counts as having had its key
    book.loc[1_800] = book.loc[40]
    book.loc[900, "facility_id"] = None  # no key: never a repeat
    book.loc[901, "facility_id"] = None
    _write(book, tmp_path / "book.parquet", row_group_size=1_000)
    pieces, _ = plan_pieces(tmp_path / "book.parquet", tasks=4, chunk_rows=300)
    assert len(pieces) > 3
    repeated = repeated_rows(pieces, 300)
    assert repeated.tolist() == [700, 1_800, 2_100]
    in_process = Gate().check(book)
    duplicates = in_process.quarantine[
        in_process.quarantine["quarantine_reason"].str.contains("duplicate key")
    ]
    assert (duplicates["source_row"].to_numpy() - 1).tolist() == repeated.tolist()
    assert repeated.dtype == np.int64
