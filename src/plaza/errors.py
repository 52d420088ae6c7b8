"""The root of Plaza's one error tree.

Every error Plaza raises on purpose derives from :class:`PlazaError`. Each carries a
machine-readable ``code`` (the XRPC error name where the protocol defines one) and an
HTTP ``status`` hint that a service can send back unchanged. Packages define their own
subtrees in their ``errors.py``.
"""

from __future__ import annotations


class PlazaError(Exception):
    """Base class of every deliberate Plaza error.

    ``code`` is stable and machine-readable; ``message`` is for people. Subclasses set
    class-level defaults; a raise site may override either for one instance.
    """

    code: str = "InternalError"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, str]:
        """The XRPC error body: ``{"error": code, "message": message}``."""
        return {"error": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidInputError(PlazaError):
    """The caller sent something malformed or not allowed (any layer)."""

    code = "InvalidRequest"
    status = 400


class NotFoundError(PlazaError):
    """A named thing does not exist."""

    code = "NotFound"
    status = 404


class ConflictError(PlazaError):
    """The request lost a race or contradicts current state; nothing was changed."""

    code = "Conflict"
    status = 409


class StorageError(PlazaError):
    """The storage backend failed or is unreachable."""

    code = "StorageError"
    status = 503
