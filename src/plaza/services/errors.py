"""Errors shared by every service's process edge (binding ports, starting servers).

Each service keeps its protocol errors in its own ``errors.py``; these are about
running one.
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
