import pandas as pd
import pyarrow.parquet as pq
import pytest

from crm_modes.data.io import (
    AtomicTableWriter,
    TableWriteError,
    iter_chunks,
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
