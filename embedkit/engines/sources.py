"""Reading a dataset's source: files (Parquet, CSV, TSV, NDJSON, JSON), Arrow, Polars.

Sources are read here, outside the sandboxed database (which can open no file),
and handed to DuckDB as Arrow. A fingerprint of a file source tells a database
file whether the rows it holds still come from the same files.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from embedkit.dataset import Dataset, file_format
from embedkit.errors import DataLoadError, first_line

__all__ = ["STREAM_FROM", "fingerprint", "read_source"]

#: Parquet sources at least this large (on disk) are streamed into DuckDB rather than
#: read into memory first: slower (each pass of the contract checks reads the files
#: again) but bounded in memory.
STREAM_FROM = 512 * 2**20


def read_source(dataset: Dataset) -> pa.Table | ds.Dataset:
    """The rows of a file or in-memory source, ready to register in DuckDB.

    Large Parquet sources are not read here: a pyarrow dataset over the files is
    returned, which DuckDB scans in streaming fashion, so loading 100M rows does not
    hold them all in memory (DuckDB sorts them within its memory limit, spilling past
    it). Smaller ones are read into memory at once, which is faster.
    """
    src = dataset.source
    name = dataset.name
    if isinstance(src, pa.Table):
        return src
    if isinstance(src, pl.DataFrame):
        return src.to_arrow()
    if isinstance(src, pl.LazyFrame):
        return _collect(src, name)
    if isinstance(src, str | Path):
        fmt = file_format(dataset)
        if fmt is None:
            raise DataLoadError(
                f"dataset '{name}': cannot tell the format of {str(src)!r}; name the file "
                "*.parquet, *.csv, *.tsv, *.ndjson or *.json, or pass format='parquet' | "
                "'csv' | 'tsv' | 'ndjson' | 'json'"
            )
        path = str(src)
        if any(ch in path for ch in "*?["):
            if not glob.glob(path, recursive=True):
                raise DataLoadError(f"dataset '{name}': no file matches {path!r}")
        elif not Path(path).exists():
            raise DataLoadError(f"dataset '{name}': file {path!r} does not exist")
        if fmt == "parquet":
            return _parquet(path, name)
        scan = {
            "csv": lambda: pl.scan_csv(path, try_parse_dates=True),
            "tsv": lambda: pl.scan_csv(path, separator="\t", try_parse_dates=True),
            "ndjson": lambda: pl.scan_ndjson(path),
            "json": lambda: _read_json(path),
        }.get(fmt)
        if scan is None:
            raise DataLoadError(
                f"dataset '{name}': unknown format {fmt!r}; use parquet, csv, tsv, ndjson or json"
            )
        try:
            frame = _parse_time_columns(scan(), dataset)
        except Exception as err:  # Polars raises many kinds; all mean "cannot read"
            raise DataLoadError(
                f"dataset '{name}': cannot read {path!r}: {first_line(err)}"
            ) from None
        return _collect(frame, name, path)
    raise DataLoadError(
        f"dataset '{name}': unsupported source {type(src).__name__}; use a path or glob, "
        "a pyarrow.Table, a polars DataFrame/LazyFrame, or embedkit.SQL('...')"
    )


def _files(path: str) -> list[str]:
    if any(ch in path for ch in "*?["):
        return sorted(glob.glob(path, recursive=True))
    return [path]


def _parquet(path: str, name: str) -> pa.Table | ds.Dataset:
    files = _files(path)
    try:
        found = ds.dataset(files, format="parquet")
        if sum(Path(f).stat().st_size for f in files) < STREAM_FROM:
            return found.to_table()  # read once, in parallel; the checks pass over it twice
        return found
    except (pa.ArrowException, OSError) as err:
        raise DataLoadError(f"dataset '{name}': cannot read {path!r}: {first_line(err)}") from None


def fingerprint(dataset: Dataset) -> str | None:
    """Names, sizes and modification times of a file source's files (None for rows
    held in memory, which a database file cannot know it already has)."""
    src = dataset.source
    if not isinstance(src, str | Path):
        return None
    digest = hashlib.sha256(str(file_format(dataset)).encode())
    for file in _files(str(src)):
        try:
            stat = Path(file).stat()
        except OSError:
            return None
        digest.update(f"{Path(file).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_json(path: str) -> pl.LazyFrame:
    """A .json file: one array of objects, or (as often found) one object per line."""
    try:
        return pl.read_json(path).lazy()
    except Exception:  # not an array: try newline-delimited JSON before giving up
        return pl.scan_ndjson(path)


def _parse_time_columns(frame: pl.LazyFrame, dataset: Dataset) -> pl.LazyFrame:
    """Text files carry times as ISO strings: parse the declared time columns."""
    schema = frame.collect_schema()
    wanted = {dataset.time} | {t.name for t in dataset.time_dimensions if t.sql is None}
    text = sorted(c for c in wanted if c and schema.get(c) == pl.String)
    if not text:
        return frame
    return frame.with_columns(pl.col(c).str.to_datetime(strict=True) for c in text)


def _collect(frame: pl.LazyFrame, name: str, path: str | None = None) -> pa.Table:
    try:
        return frame.collect().to_arrow()
    except Exception as err:  # Polars raises many kinds; all mean "cannot read"
        where = f" from {path!r}" if path else ""
        raise DataLoadError(
            f"dataset '{name}': cannot read its rows{where}: {first_line(err)}"
        ) from None
