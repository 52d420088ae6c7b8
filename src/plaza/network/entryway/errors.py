"""The entryway's errors, named as the AT Protocol's Lexicons name them (the XRPC error
``code``) with their HTTP status."""

from __future__ import annotations

from plaza.errors import ConflictError, InvalidInputError, NotFoundError, PlazaError


class EntrywayError(PlazaError):
    """Root of the entryway's errors."""

    code = "InternalServerError"
    status = 500


class InvalidRequestError(EntrywayError, InvalidInputError):
    """The request is malformed or breaks a rule (400 ``InvalidRequest``)."""

    code = "InvalidRequest"
    status = 400


class InvalidHandleError(InvalidRequestError):
    """The handle is not a handle, or not under one of the network's domains."""

    code = "InvalidHandle"


class HandleNotAvailableError(EntrywayError, ConflictError):
    """Another account holds the handle."""

    code = "HandleNotAvailable"
    status = 400


class AuthRequiredError(EntrywayError):
    """Missing or wrong credentials (401 ``AuthenticationRequired``)."""

    code = "AuthenticationRequired"
    status = 401


class ForbiddenError(EntrywayError):
    """The caller is known but may not do this (403)."""

    code = "Forbidden"
    status = 403


class AccountNotFoundError(EntrywayError, NotFoundError):
    """The entryway holds no account for the DID."""

    code = "AccountNotFound"
    status = 404


class NoCapacityError(EntrywayError):
    """No contracted host has room for a new account now (503; the agents procure more)."""

    code = "NoCapacity"
    status = 503


class UpstreamError(EntrywayError):
    """The directory or the account's host refused or failed a step (502)."""

    code = "UpstreamFailure"
    status = 502
