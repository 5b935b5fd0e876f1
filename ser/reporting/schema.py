"""Typed JSON files: frozen dataclasses written as JSON and read back strictly.

A result file is one dataclass (:mod:`ser.reporting.results`). :func:`write_results` writes it
field by field; :func:`read_results` rebuilds it and refuses a file whose keys or value types
differ from the dataclass, with a message naming the key, the file and the command that
rewrites it. Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Any``, ``X | None``,
``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested dataclasses. A field with a default or a
default factory (added to a schema later) may be missing from a file, which then reads as that default, and is
left out of the file while it holds its default.

Example
-------
>>> import dataclasses, tempfile
>>> from pathlib import Path
>>> @dataclasses.dataclass(frozen=True)
... class Point:
...     x: float
...     label: str
>>> path = Path(tempfile.mkdtemp()) / "point.json"
>>> write_results(path, Point(x=1.5, label="a"))
>>> read_results(path, Point, command="python make_point.py")
Point(x=1.5, label='a')
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any

from ser.config import read_json, write_json
from ser.errors import SERError


class ResultsError(SERError):
    """A result file is missing, unreadable, or does not match its schema."""


def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def _default(field: dataclasses.Field) -> Any:
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def to_json(value: Any) -> Any:
    """A dataclass (or list/tuple/dict of them) as JSON-ready values, fields in declaration order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field added later with a default is written only when it differs from it, so a file
        # that does not use it reads (and is written) exactly as before the field existed.
        return {field.name: to_json(getattr(value, field.name)) for field in dataclasses.fields(value)
                if not _has_default(field) or getattr(value, field.name) != _default(field)}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    return value


def write_results(path: Path, results: Any) -> None:
    """Write the dataclass ``results`` to ``path`` as JSON (see :func:`to_json`)."""
    if not (dataclasses.is_dataclass(results) and not isinstance(results, type)):
        raise TypeError(f"write_results needs a dataclass instance, not {type(results).__name__}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(path), to_json(results))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class _Mismatch(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where or 'the top level'}: {problem}")


def _build(kind: Any, value: Any, where: str) -> Any:
    if kind is Any:
        return value
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        for option in (argument for argument in arguments if argument is not type(None)):
            try:
                return _build(option, value, where)
            except _Mismatch:
                continue
        raise _Mismatch(where, f"expected {kind}, got {type(value).__name__}")
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise _Mismatch(where, f"expected an object ({kind.__name__}), got {type(value).__name__}")
        fields = [field.name for field in dataclasses.fields(kind)]
        # A field with a default was added later: a file written before it may lack it.
        optional = {field.name for field in dataclasses.fields(kind) if _has_default(field)}
        missing = [name for name in fields if name not in value and name not in optional]
        extra = sorted(set(value) - set(fields))
        if missing or extra:
            problems = [f"missing key(s) {missing}"] if missing else []
            problems += [f"unknown key(s) {extra}"] if extra else []
            raise _Mismatch(where, " and ".join(problems))
        hints = _hints(kind)
        return kind(**{name: _build(hints[name], value[name], f"{where}.{name}".lstrip("."))
                       for name in fields if name in value})
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _Mismatch(where, f"expected a list, got {type(value).__name__}")
        item_kind = arguments[0] if arguments else Any
        items = [_build(item_kind, item, f"{where}[{index}]") for index, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch(where, f"expected an object, got {type(value).__name__}")
        item_kind = arguments[1] if arguments else Any
        return {key: _build(item_kind, item, f"{where}.{key}") for key, item in value.items()}
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(where, f"expected a number, got {type(value).__name__}")
        return float(value)
    if kind in (int, str, bool):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _Mismatch(where, f"expected {kind.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"{where}: the schema uses {kind}, which read_results does not support")


def from_json(cls: type, data: Any, *, source: str, command: str) -> Any:
    """Rebuild dataclass ``cls`` from JSON ``data`` read from ``source``.

    Raises
    ------
    ResultsError
        When a key is missing or unknown, or a value has the wrong type; the message names the
        key and says to rerun ``command``, which writes this file in the current schema.
    """
    try:
        return _build(cls, data, "")
    except _Mismatch as error:
        raise ResultsError(
            f"{source} does not match the {cls.__name__} schema ({error}); it was written by another "
            f"version of ser: rerun `{command}` to rewrite it"
        ) from None


def read_results(path: Path, cls: type, *, command: str) -> Any:
    """Read the JSON file ``path`` as dataclass ``cls`` (see :func:`from_json`).

    Raises
    ------
    ResultsError
        When the file is missing, not JSON, or not in ``cls``'s schema; the message says to run ``command``.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path} is missing; `{command}` writes it")
    try:
        data = read_json(path)
    except SERError as error:
        raise ResultsError(f"{error}; `{command}` rewrites it") from None
    return from_json(cls, data, source=str(path), command=command)
