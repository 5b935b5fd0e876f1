"""The project's own exception types.

Every error that user input can trigger is an :class:`SERError` (or a subclass), with a
message that says what is wrong and what to do about it, so callers (the CLI, the app)
can catch one type and show its message instead of a traceback.
"""

from __future__ import annotations


class SERError(Exception):
    """Base class for every error the ``ser`` library raises on bad input or bad files."""


class AudioDecodeError(SERError):
    """The bytes or file could not be decoded as audio, or the audio is unusable."""


class NoSpeechError(SERError):
    """The audio decodes, but holds no speech to score (silence, noise, too short)."""


class BundleError(SERError):
    """A model bundle folder is missing a file or holds an inconsistent one."""


class DatasetError(SERError):
    """A dataset folder or file name does not follow the expected layout."""
