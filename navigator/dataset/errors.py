"""Errors about datasets. All are UserErrors: the CLI prints the message (which names the file and the problem)
and exits 2, without a traceback."""

from __future__ import annotations

from navigator.errors import UserError


class DatasetError(UserError):
    """Base of every dataset error."""


class DatasetNotFoundError(DatasetError):
    """The path given is not a dataset folder."""


class ManifestError(DatasetError):
    """manifest.json is missing, unreadable, or not a manifest of this format."""


class EditedManifestError(ManifestError):
    """manifest.json no longer matches its own checksum: edited by hand or damaged since navigator wrote it.
    `reason` says which, without the advice that follows it in the message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SchemaVersionError(DatasetError):
    """A manifest or episode file written with a schema version this code does not read."""


class CorruptEpisodeError(DatasetError):
    """An episode file that is truncated, not a valid container, or holds arrays of the wrong dtype or shape."""


class ChecksumError(CorruptEpisodeError):
    """An episode file whose sha256 differs from the one recorded in the manifest."""


class IncompatibleDatasetsError(DatasetError):
    """Datasets (or episodes) that cannot be used together: different image sizes or action conventions."""


class InvalidEpisodeError(DatasetError, ValueError):
    """An episode handed to the writer that breaks the episode contract; nothing is written."""
