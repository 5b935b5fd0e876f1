"""Messages of the command line on stderr: ``log`` for progress, ``log_error`` for one failure per line."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def log_error(message: str) -> None:
    """One line on stderr, whatever the message holds (a file name may contain a newline)."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    log(f"error: {line}")
