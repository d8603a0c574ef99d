import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_modes.data.io import (
    AtomicTableWriter,
    TableWriteError,
    frame_of,
    iter_chunks,
    iter_row_group,
    read_table,
    table_format,
    write_table,
)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_and_chunks(small_book, tmp_path, suffix):
    path = write_table(small_book.head(1000), tmp_path / f"book{suffix}")
    chunks = list(iter_chunks(path, chunk_rows=300))
    assert [len(chunk) for chunk in chunks] == [300, 300, 300, 100]
    assert len(read_table(path)) == 1000
    assert list(chunks[0].columns) == list(small_book.columns)


def write_then_fail(target, chunk, error: BaseException) -> None:
    with AtomicTableWriter(target) as writer:
        writer.write(chunk)
        raise error


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_interrupted_write_leaves_nothing_behind(small_book, tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_then_fail(target, small_book.head(100), RuntimeError("disk on fire"))
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_rewrite_keeps_the_previous_file(small_book, tmp_path):
    target = write_table(small_book.head(10), tmp_path / "out.parquet")
    with pytest.raises(KeyboardInterrupt):
        write_then_fail(target, small_book.head(500), KeyboardInterrupt())
    assert len(pd.read_parquet(target)) == 10


def test_chunks_must_agree_on_columns(small_book, tmp_path):
    with AtomicTableWriter(tmp_path / "x.csv") as writer:
        writer.write(small_book.head(2))
        with pytest.raises(ValueError, match="chunk columns"):
            writer.write(small_book.head(2).drop(columns=["segment"]))
    assert len(pd.read_csv(tmp_path / "x.csv")) == 2


def test_unsupported_extension_is_named():
    with pytest.raises(ValueError, match=r"'book.xlsx': unsupported extension '.xlsx'"):
        table_format("book.xlsx")


def test_parquet_timestamps_are_written_in_microseconds_that_spark_reads(tmp_path):
    frame = pd.DataFrame(
        {"snapshot_date": pd.to_datetime(["2026-01-31", "2026-02-28"]).astype("datetime64[ns]")}
    )
    path = write_table(frame, tmp_path / "dates.parquet")
    assert pq.read_schema(path).field("snapshot_date").type.unit == "us"
    assert read_table(path)["snapshot_date"].tolist() == frame["snapshot_date"].tolist()
    finer = frame.assign(snapshot_date=frame["snapshot_date"] + pd.Timedelta(nanoseconds=1))
    with pytest.raises(TableWriteError, match=r"finer.parquet: cannot write: .*would lose data"):
        write_table(finer, tmp_path / "finer.parquet")
    assert not (tmp_path / "finer.parquet").exists()


def test_text_columns_the_schema_declares_categorical_arrive_as_categories(small_book):
    book = small_book.head(100).reset_index(drop=True)
    text = book.astype({name: str for name in ("industry", "client_id")}).set_index(
        pd.Index(range(100, 200), name="n")
    )
    batch = pa.RecordBatch.from_pandas(text)
    frame = frame_of(batch)
    assert isinstance(frame["industry"].dtype, pd.CategoricalDtype)  # a declared category
    assert frame["client_id"].dtype == object  # an identifier stays text
    assert frame["industry"].astype(str).tolist() == text["industry"].tolist()
    assert frame.index.tolist() == list(range(100, 200))  # the file's metadata still applies
    assert frame.index.name == "n"


@pytest.mark.parametrize(("start", "rows"), [(0, None), (0, 700), (700, 700), (1400, 300), (350, 1000)])
def test_a_piece_of_a_row_group_is_exactly_its_rows(small_book, tmp_path, start, rows):
    path = tmp_path / "book.parquet"
    pq.write_table(
        pa.Table.from_pandas(small_book.head(1700), preserve_index=False), path, row_group_size=1700
    )
    chunks = list(iter_row_group(path, 0, start=start, rows=rows, chunk_rows=700, columns=["facility_id"]))
    assert all(len(chunk) <= 700 for chunk in chunks)
    read = pd.concat(chunks, ignore_index=True)
    end = 1700 if rows is None else start + rows
    assert read["facility_id"].tolist() == small_book["facility_id"].iloc[start:end].tolist()
    assert list(read.columns) == ["facility_id"]
