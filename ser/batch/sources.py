"""Turn the ``SOURCE`` arguments of ``python -m ser batch`` into the audio files to score.

A source is a folder (searched recursively for audio files), a glob pattern (``**`` crosses
folders), a manifest (``.csv`` with a ``path`` column, or ``.txt``/``.lst`` with one path per
line; relative paths are relative to the manifest's folder) or one audio file. Files named
directly or in a manifest are always scored, whatever their extension (a file that is not
audio becomes a row with an error); folders and globs keep only audio extensions, so a
README or a picture in a corpus folder is not reported as a failure.

Example
-------
>>> from ser.batch.sources import expand_sources
>>> found = expand_sources(["assets/examples"])
>>> len(found.paths), found.warnings
(16, [])
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ser.errors import SERError

#: Extensions picked up when a folder is walked or a glob is expanded (lower case).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".webm", ".aif", ".aiff",
     ".caf", ".w64"}
)
#: Extensions of manifest files: a CSV with a ``path`` column, or one path per line.
MANIFEST_EXTENSIONS = frozenset({".csv", ".txt", ".lst"})
_GLOB_CHARACTERS = frozenset("*?[")


@dataclasses.dataclass(frozen=True)
class Sources:
    """The expanded sources.

    Attributes
    ----------
    paths : list of str
        Absolute paths, each once, in the order the sources named them (folders and globs
        sorted). Absolute because they identify a file across runs (resume) and on every
        node of a cluster, whatever each process's working directory.
    warnings : list of str
        Sources that matched nothing (a glob without matches, an empty folder).
    """

    paths: list[str]
    warnings: list[str]


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def _walk(folder: Path) -> list[str]:
    found = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        found += [os.path.join(root, name) for name in sorted(files) if _is_audio(Path(name))]
    return found


def _read_manifest(manifest: Path) -> list[str]:
    """Paths listed in a CSV (``path`` column) or text manifest, relative to its folder."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SERError(f"{manifest}: a manifest must be UTF-8 text (a CSV with a 'path' column, "
                       "or one path per line)") from error
    if manifest.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if "path" not in (reader.fieldnames or []):
            raise SERError(f"{manifest}: the CSV has no 'path' column (columns: {reader.fieldnames}); "
                           "name the column of audio file paths 'path'")
        entries = []
        for line, row in enumerate(reader, start=2):
            value = (row.get("path") or "").strip()
            if not value:
                raise SERError(f"{manifest}: row {line} has an empty 'path'; fill it in or delete the row")
            entries.append(value)
    else:
        entries = [line.strip() for line in text.splitlines()]
        entries = [entry for entry in entries if entry and not entry.startswith("#")]
    return [str(manifest.parent / entry) if not os.path.isabs(entry) else entry for entry in entries]


def _expand_one(source: str) -> tuple[list[str], str | None]:
    """The files one source names, and a warning when it names none."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = _walk(path)
        return files, None if files else f"{source}: no audio files in this folder"
    if path.suffix.lower() in MANIFEST_EXTENSIONS:
        if not path.is_file():
            raise SERError(f"{source}: no such manifest; check the path")
        files = _read_manifest(path)
        return files, None if files else f"{source}: the manifest lists no files"
    if _GLOB_CHARACTERS & set(source) and not path.exists():
        matches = sorted(glob.glob(str(path), recursive=True))
        files = []
        for match in matches:
            if os.path.isdir(match):
                files += _walk(Path(match))
            elif _is_audio(Path(match)):
                files.append(match)
        return files, None if files else f"{source}: the pattern matches no audio files"
    # A file, or a path that does not exist: scored (or reported) as a row of its own.
    return [str(path)], None


def expand_sources(sources: Iterable[str]) -> Sources:
    """Expand folders, globs and manifests into audio file paths.

    Parameters
    ----------
    sources : iterable of str
        Folders, glob patterns, manifests (``.csv`` with a ``path`` column, ``.txt``/``.lst``
        with one path per line, ``#`` comments allowed) or audio files.

    Returns
    -------
    Sources
        Absolute paths without duplicates, and a warning per source that matched nothing.

    Raises
    ------
    SERError
        If a manifest cannot be read or a CSV manifest has no ``path`` column.
    """
    seen: set[str] = set()
    paths: list[str] = []
    warnings: list[str] = []
    for source in sources:
        files, warning = _expand_one(str(source))
        if warning:
            warnings.append(warning)
        for file in files:
            absolute = os.path.abspath(file)
            if absolute not in seen:
                seen.add(absolute)
                paths.append(absolute)
    return Sources(paths=paths, warnings=warnings)
