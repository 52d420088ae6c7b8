"""Errors of the archive (``plaza.services.archive``).

The XRPC ones carry the names and statuses a PDS answers with for the same methods
(``RepoNotFound``, ``RecordNotFound``, ``BlobNotFound``, ``InvalidRequest``), so a
client reading an archive needs no special case. :class:`FetchError` is a repository
or blob that could not be fetched from its host this time (retried with backoff).
"""

from __future__ import annotations

from plaza.errors import InvalidInputError, NotFoundError, PlazaError


class ArchiveError(PlazaError):
    """Root of the archive's errors."""


class InvalidRequestError(ArchiveError, InvalidInputError):
    """The request is malformed (400 ``InvalidRequest``)."""

    code = "InvalidRequest"
    status = 400


class RepoNotFoundError(ArchiveError, NotFoundError):
    """No repository of this DID is archived (400 ``RepoNotFound``)."""

    code = "RepoNotFound"
    status = 400


class RecordNotFoundError(ArchiveError, NotFoundError):
    """The archived repository has no such record (400 ``RecordNotFound``)."""

    code = "RecordNotFound"
    status = 400


class BlobNotFoundError(ArchiveError, NotFoundError):
    """The archive holds no such blob for this DID (400 ``BlobNotFound``)."""

    code = "BlobNotFound"
    status = 400


class ExportInterruptedError(ArchiveError):
    """The repository moved while its export streamed: the response is cut off rather
    than ending short."""

    code = "ExportInterrupted"
    status = 503


class FetchError(ArchiveError):
    """A repository or blob could not be fetched from its host, or what came back did
    not verify; the fetch is retried later."""

    code = "UpstreamFailure"
    status = 502
