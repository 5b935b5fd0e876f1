"""Write result rows as they come, so a killed run can resume where it stopped.

The format follows the extension of ``--out``:

- ``.jsonl``: one JSON object per line;
- ``.csv``: a header, then one row per line (quoted where needed);
- ``.parquet``: a *folder* of Parquet part files, one per batch (the layout Ray, Spark and
  pandas read as one table: ``pandas.read_parquet("results.parquet")``). A Parquet file
  cannot be appended to, and a file cut short by a kill is unreadable, so every batch is its
  own file, written under a temporary name and renamed into place when complete.

Every batch is flushed to disk before the next one is scored. When the output already
exists, :meth:`ResultWriter.completed` reads the paths it holds (so the runner skips them)
after cutting off a last row that a kill left half-written.

Example
-------
>>> from ser.batch.writers import open_writer
>>> writer = open_writer("results.jsonl", columns=["path", "emotion"], types={})
>>> done = writer.completed()  # paths already in results.jsonl (empty for a new file)
>>> writer.write([{"path": "/data/a.wav", "emotion": "calm"}])
>>> writer.close()
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ser.errors import SERError

FORMATS = (".parquet", ".csv", ".jsonl")


def timeline_path(out: str | os.PathLike[str]) -> Path:
    """Where ``--timeline`` rows go: ``results.parquet`` -> ``results.timeline.parquet``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.timeline{out.suffix}")


def _sync(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


class ResultWriter:
    """Appends batches of rows to one result file (or folder); the only writer of it."""

    def __init__(self, path: Path, *, columns: list[str]) -> None:
        self.path = path
        self.columns = list(columns)
        #: True when :meth:`completed` cut off a row that a kill left half-written.
        self.repaired = False

    def completed(self) -> set[str]:
        """Paths of the rows already in the output (after repairing a torn last row)."""
        raise NotImplementedError

    def keep_only(self, paths: set[str]) -> int:
        """Drop rows whose path is not in ``paths``; returns how many were dropped.

        Used on the timeline file: a kill between writing a batch's timeline and its results
        leaves windows of files that will be scored again.
        """
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append one batch; on return it is on disk."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file (the data is already on disk)."""


class _LineWriter(ResultWriter):
    """Shared by JSON lines and CSV: one record per line (CSV fields may hold quoted newlines),
    appended with one write per batch."""

    def __init__(self, path: Path, *, columns: list[str]) -> None:
        super().__init__(path, columns=columns)
        self._handle: Any = None
        self._records: list[tuple[str, str]] | None = None  # (path, raw text) of complete rows

    # -- subclasses: parse the existing text, format new rows
    def _parse(self, text: str) -> Iterator[tuple[str, str, bool]]:
        """Yield ``(path, raw_text, complete)`` per record, the header (CSV) excluded."""
        raise NotImplementedError

    def _header(self) -> str:
        return ""

    def _format(self, rows: list[dict[str, Any]]) -> str:
        raise NotImplementedError

    def _load(self) -> list[tuple[str, str]]:
        if self._records is not None:
            return self._records
        self._records = []
        if not self.path.exists():
            return self._records
        if not self.path.is_file():
            raise SERError(f"{self.path}: is a folder; name a {self.path.suffix} file for --out")
        text = self.path.read_bytes().decode("utf-8")
        kept = len(self._header()) if text.startswith(self._header()) else 0
        for record_path, raw, complete in self._parse(text):
            if not complete:
                break
            self._records.append((record_path, raw))
            kept += len(raw)
        if kept < len(text):
            # A kill mid-write leaves at most the last batch half-written: cut it off (its
            # files are scored again).
            self.repaired = True
            with open(self.path, "r+b") as handle:
                handle.truncate(len(text[:kept].encode("utf-8")))
        return self._records

    def completed(self) -> set[str]:
        return {record_path for record_path, _ in self._load()}

    def keep_only(self, paths: set[str]) -> int:
        records = self._load()
        kept = [record for record in records if record[0] in paths]
        if len(kept) == len(records):
            return 0
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(self._header() + "".join(raw for _, raw in kept))
            _sync(handle)
        os.replace(temporary, self.path)  # atomic: the old file or the filtered one, never half
        self._records = kept
        return len(records) - len(kept)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._handle is None:
            self._load()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8", newline="")
            if self._handle.tell() == 0:
                self._handle.write(self._header())
        self._handle.write(self._format(rows))
        _sync(self._handle)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class JsonLinesWriter(_LineWriter):
    def _parse(self, text: str) -> Iterator[tuple[str, str, bool]]:
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            last = number == len(lines)
            if last and not line:
                return
            try:
                record = json.loads(line)
                path = record["path"]
            except (ValueError, KeyError, TypeError) as error:
                if last:  # a torn last line
                    yield "", line, False
                    return
                raise SERError(f"{self.path}: line {number} is not a result row ({error}); fix or delete "
                               "that line, or choose a new --out") from error
            if sorted(record) != sorted(self.columns):
                raise SERError(f"{self.path}: line {number} has other columns than this model writes "
                               "(results of another model?); choose a new --out")
            yield path, line + "\n", not last

    def _format(self, rows: list[dict[str, Any]]) -> str:
        return "".join(json.dumps({column: row.get(column) for column in self.columns}, ensure_ascii=False,
                                  allow_nan=False) + "\n" for row in rows)


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


class CsvWriter(_LineWriter):
    def _header(self) -> str:
        return self._format_lines([self.columns])

    @staticmethod
    def _format_lines(rows: list[list[Any]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()

    def _parse(self, text: str) -> Iterator[tuple[str, str, bool]]:
        header = self._header()
        if not text.startswith(header):
            if header.startswith(text):  # killed while writing the header
                return
            raise SERError(f"{self.path}: its header is not the columns this model writes (results of another "
                           "model, or another file?); choose a new --out")
        position = len(header)

        def lines() -> Iterator[str]:
            nonlocal position
            while position < len(text):
                end = text.find("\n", position)
                end = len(text) if end < 0 else end + 1
                line = text[position:end]
                position = end
                yield line

        start = position
        reader = csv.reader(lines(), strict=True)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:  # an open quote at the end: a torn last row
                yield "", text[start:], False
                return
            raw = text[start:position]
            complete = raw.endswith("\n") and len(fields) == len(self.columns)
            if not complete and position < len(text):
                raise SERError(f"{self.path}: a row near character {start} does not have the {len(self.columns)} "
                               "columns this model writes; fix or delete it, or choose a new --out")
            yield fields[0] if fields else "", raw, complete
            start = position

    def _format(self, rows: list[dict[str, Any]]) -> str:
        return self._format_lines([[_csv_value(row.get(column)) for column in self.columns] for row in rows])


class ParquetFolderWriter(ResultWriter):
    """One Parquet file per batch in the folder ``path`` (renamed into place when written)."""

    def __init__(self, path: Path, *, columns: list[str], types: dict[str, str]) -> None:
        super().__init__(path, columns=columns)
        import pyarrow as pa

        kinds = {"string": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
        self.schema = pa.schema([(column, kinds[types.get(column, "string")]) for column in columns])
        # Part names sort by run, then batch; the random part keeps two runs in one second apart.
        self._run = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._parts = 0

    def _part_files(self) -> list[Path]:
        if not self.path.exists():
            return []
        if not self.path.is_dir():
            raise SERError(f"{self.path}: is a file; batch writes Parquet results as a folder of parts, "
                           "so choose a new --out name")
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink()  # a part whose writing a kill interrupted
        return sorted(self.path.glob("part-*.parquet"))

    def _read_paths(self, part: Path) -> list[str]:
        import pyarrow.parquet as pq

        schema = pq.read_schema(part)
        if schema.names != self.columns:
            raise SERError(f"{part}: has other columns than this model writes (results of another model?); "
                           "choose a new --out")
        return pq.read_table(part, columns=["path"]).column("path").to_pylist()

    def completed(self) -> set[str]:
        return {path for part in self._part_files() for path in self._read_paths(part)}

    def keep_only(self, paths: set[str]) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        dropped = 0
        for part in self._part_files():
            table = pq.read_table(part, schema=self.schema)
            keep = pc.is_in(table.column("path"), value_set=pa.array(sorted(paths), type=pa.string()))
            if pc.all(keep).as_py():
                continue
            dropped += table.num_rows - pc.sum(keep).as_py()
            self._write_table(table.filter(keep), part)
        return dropped

    def _write_table(self, table: Any, final: Path) -> None:
        import pyarrow.parquet as pq

        temporary = final.with_name(f".{final.name}.tmp")
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            _sync(handle)
        os.replace(temporary, final)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa

        self.path.mkdir(parents=True, exist_ok=True)
        self._parts += 1
        table = pa.Table.from_pylist([{column: row.get(column) for column in self.columns} for row in rows],
                                     schema=self.schema)
        self._write_table(table, self.path / f"part-{self._run}-{self._parts:06d}.parquet")


def open_writer(path: str | os.PathLike[str], *, columns: list[str], types: dict[str, str]) -> ResultWriter:
    """The writer for ``path``'s extension (``.parquet``, ``.csv`` or ``.jsonl``).

    Parameters
    ----------
    columns : list of str
        Column order of every row.
    types : dict
        ``column -> "string" | "float" | "bool"`` (used by Parquet).

    Raises
    ------
    SERError
        For any other extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetFolderWriter(path, columns=columns, types=types)
    if suffix == ".csv":
        return CsvWriter(path, columns=columns)
    if suffix == ".jsonl":
        return JsonLinesWriter(path, columns=columns)
    raise SERError(f"{path}: --out must end in {', '.join(FORMATS)} (the extension picks the format)")
