"""The relay's XRPC errors: each carries the lexicon's error name and an HTTP status."""

from __future__ import annotations

from plaza.errors import InvalidInputError, NotFoundError, PlazaError


class InvalidRequestError(InvalidInputError):
    code = "InvalidRequest"


class HostNotFoundError(NotFoundError):
    code = "HostNotFound"
    status = 400


class RepoNotFoundError(NotFoundError):
    code = "RepoNotFound"
    status = 400


class RepoInactiveError(PlazaError):
    """``getLatestCommit`` of an account that is not active (the code names why)."""

    code = "RepoDeactivated"
    status = 400


class HostUnreachableError(PlazaError):
    """A host named by ``requestCrawl`` did not answer ``describeServer``."""

    code = "HostUnreachable"
    status = 400


class TooManyHostsError(PlazaError):
    code = "TooManyHosts"
    status = 429


class HostBannedError(PlazaError):
    code = "HostBanned"
    status = 400
