"""The web client's errors: what a page tells the person instead of a stack trace."""

from __future__ import annotations

from plaza.errors import PlazaError


class WebError(PlazaError):
    """Base of the web client's errors."""

    code = "WebError"
    status = 400


class UpstreamError(WebError):
    """A service the web client calls (PDS, app view, DAO, market) refused or failed.

    ``code`` is the service's error name when it sent one; the message is the service's
    own message, shown to the person escaped like any other text."""

    code = "UpstreamError"
    status = 502


class NotSignedInError(WebError):
    """The page needs a signed-in member."""

    code = "AuthRequired"
    status = 401


class CsrfError(WebError):
    """A form came back without this session's CSRF token."""

    code = "InvalidCsrfToken"
    status = 403


class NotConfiguredError(WebError):
    """The page needs a service this web client was not given (--dao, --market)."""

    code = "NotConfigured"
    status = 503
