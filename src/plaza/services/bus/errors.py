"""Errors of the event bus (:mod:`plaza.services.bus`)."""

from __future__ import annotations

from plaza.errors import InvalidInputError, PlazaError


class BusError(PlazaError):
    """The bus could not be reached or refused an operation."""

    code = "BusUnavailable"
    status = 503


class BadBusUrlError(InvalidInputError):
    """A ``--bus`` value that is not a ``nats://`` URL."""

    code = "InvalidBusUrl"


class BadBusMessageError(InvalidInputError):
    """A message on the bus without the headers the relay writes."""

    code = "InvalidBusMessage"
