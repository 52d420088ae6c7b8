"""Errors of the hosting service (``plaza.services.pds``).

Each class names the XRPC error the AT Protocol specs and the reference PDS use for the
situation, with the HTTP status the XRPC spec gives it. Handlers raise these; the
dispatcher (:mod:`plaza.services.pds.xrpc`) renders any :class:`~plaza.errors.PlazaError`
as ``{"error": code, "message": message}`` with its status.
"""

from __future__ import annotations

from plaza.errors import ConflictError, InvalidInputError, NotFoundError, PlazaError
from plaza.services import errors as shared

# Shared with every service that checks tokens (plaza.services.service_jwt).
InvalidTokenError = shared.InvalidTokenError
ExpiredTokenError = shared.ExpiredTokenError


class PdsError(PlazaError):
    """Root of the hosting service's errors."""


class InvalidRequestError(PdsError, InvalidInputError):
    """The request is malformed or not allowed in the current state (400)."""

    code = "InvalidRequest"
    status = 400


class AuthRequiredError(PdsError):
    """No credentials, or credentials that do not authenticate anyone (401)."""

    code = "AuthenticationRequired"
    status = 401


class ForbiddenError(PdsError):
    """Authenticated, but not allowed to do this (403)."""

    code = "Forbidden"
    status = 403


class AccountDeactivatedError(PdsError):
    """The account is deactivated (or being migrated in) and refuses writes (401)."""

    code = "AccountDeactivated"
    status = 401


class AccountTakedownError(PdsError):
    """The account was taken down by the provider (401)."""

    code = "AccountTakedown"
    status = 401


class RateLimitedError(PdsError):
    """Too many requests of this kind from this caller (429)."""

    code = "RateLimitExceeded"
    status = 429


class MethodNotImplementedError(PdsError):
    """The XRPC method is unknown here, or needs an app view that is not configured (501)."""

    code = "MethodNotImplemented"
    status = 501


class PayloadTooLargeError(PdsError):
    """The request body exceeds the limit for this method (413)."""

    code = "PayloadTooLarge"
    status = 413


class BlobQuotaExceededError(PdsError):
    """The account's blobs would pass its storage quota (413 ``BlobQuotaExceeded``)."""

    code = "BlobQuotaExceeded"
    status = 413


class RepoNotFoundError(PdsError, NotFoundError):
    """No repository for this DID or handle is hosted here (400 ``RepoNotFound``)."""

    code = "RepoNotFound"
    status = 400


class RecordNotFoundError(PdsError, NotFoundError):
    """The record does not exist (400 ``RecordNotFound``)."""

    code = "RecordNotFound"
    status = 400


class BlobNotFoundError(PdsError, NotFoundError):
    """The blob does not exist for this account (400 ``BlobNotFound``)."""

    code = "BlobNotFound"
    status = 400


class RepoInactiveError(PdsError):
    """The repository exists but is not active (400 ``RepoDeactivated`` and friends)."""

    code = "RepoDeactivated"
    status = 400


class InvalidSwapError(PdsError, ConflictError):
    """``swapCommit`` or ``swapRecord`` does not match the current state (400)."""

    code = "InvalidSwap"
    status = 400


class HandleNotAvailableError(PdsError, ConflictError):
    """The handle is taken on this host (400)."""

    code = "HandleNotAvailable"
    status = 400


class InvalidHandleError(PdsError, InvalidInputError):
    """The handle is malformed or outside this host's domains (400)."""

    code = "InvalidHandle"
    status = 400


class AlreadyExistsError(PdsError, ConflictError):
    """An account, app password or record with that identity exists already (400)."""

    code = "AlreadyExists"
    status = 400


class ExportInterruptedError(PdsError):
    """A repository changed while its export was streaming: the response is cut off
    (after its status was sent), so the client sees a broken transfer, never a CAR
    that is silently incomplete."""

    code = "ExportInterrupted"
    status = 503


class UpstreamError(PdsError):
    """A service this PDS depends on (directory, app view) failed (502)."""

    code = "UpstreamFailure"
    status = 502
