"""Exceptions and warnings of audiotagger.

Every error the library raises on purpose derives from :class:`AudioTaggerError`; its message is one
line that names the file (or flag) and the problem. The CLI prints that line and maps the error to an
exit code (1 for a failed input, 2 for a usage error).
"""

from __future__ import annotations


class AudioTaggerError(Exception):
    """Root of every error audiotagger raises on purpose."""


class ParameterError(AudioTaggerError, ValueError):
    """An argument is out of range or inconsistent (a usage error; exit code 2 from the CLI)."""


class AudioError(AudioTaggerError):
    """An input cannot be decoded to audio (missing, not media, corrupt, no audio stream, ...)."""


class StreamStalled(AudioError):
    """A live source delivered no audio for longer than its stall timeout."""


class ModelError(AudioTaggerError):
    """A model file (checkpoint, PCA parameters, classifier) is missing, corrupt or of the wrong shape."""


class DataError(AudioTaggerError):
    """Training or evaluation data is missing or malformed."""


class DownloadError(ModelError):
    """A model could not be downloaded (network, HTTP status, checksum, offline mode)."""


class AudioTaggerWarning(UserWarning):
    """Something was handled but the user should know (short audio padded, classes skipped, ...)."""
