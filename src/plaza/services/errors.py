"""Errors shared by every service's process edge (binding ports, starting servers).

Each service keeps its protocol errors in its own ``errors.py``; these are about
running one, and refusing a client over its rate limit.
"""

from __future__ import annotations

from plaza.errors import PlazaError


class ServiceError(PlazaError):
    """A service could not be started or run."""

    code = "ServiceError"
    status = 503


class BindError(ServiceError):
    """The listening address is taken, not local, or not allowed."""

    code = "AddressUnavailable"


class RateLimitedError(PlazaError):
    """A client has used up its allowance; ``retry_after_s`` says when to try again."""

    code = "RateLimitExceeded"
    status = 429

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidTokenError(PlazaError):
    """A bearer token is malformed, forged or revoked (400, as the reference PDS does)."""

    code = "InvalidToken"
    status = 400


class ExpiredTokenError(PlazaError):
    """A bearer token is past its ``exp`` (400 ``ExpiredToken``; clients refresh on it)."""

    code = "ExpiredToken"
    status = 400
