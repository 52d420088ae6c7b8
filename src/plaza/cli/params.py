"""Option validators shared by the ``plaza`` commands: ports and DIDs.

Each is a typer ``callback``: a value that cannot be right is a usage error (exit 2,
``typer.BadParameter`` naming the option), caught before the command does anything.
"""

from __future__ import annotations

from typing import Final

import typer

from plaza.atproto.errors import InvalidSyntaxError
from plaza.atproto.syntax import validate_did, validate_did_plc

PORT_MAX: Final = 65535


def port_range(base: int, count: int, *, option: str = "--port-base") -> int:
    """``base`` if ``base .. base+count-1`` are all TCP ports (1..65535), else a usage error."""
    last = base + count - 1
    if base < 1 or last > PORT_MAX:
        span = f"{base}..{last}" if count > 1 else str(base)
        raise typer.BadParameter(
            f"{span} is not a port range: every port must be 1..{PORT_MAX}, so the base "
            f"must be 1..{PORT_MAX - count + 1}",
            param_hint=f"'{option}'",
        )
    return base


def port(value: int) -> int:
    """A TCP port to listen on, 0 meaning any free one."""
    if not 0 <= value <= PORT_MAX:
        raise typer.BadParameter(f"{value} is not a port: give 1..{PORT_MAX}, or 0 for any free")
    return value


def fixed_port(value: int) -> int:
    """A TCP port 1..65535 (one others must find, so not 0)."""
    if not 1 <= value <= PORT_MAX:
        raise typer.BadParameter(f"{value} is not a port: give 1..{PORT_MAX}")
    return value


def did(value: str | None) -> str | None:
    """A DID in atproto's syntax (any method); ``None`` passes (the option was not given)."""
    if value is not None:
        try:
            validate_did(value)
        except InvalidSyntaxError as exc:
            raise typer.BadParameter(exc.message) from exc
    return value


def did_or_name(value: str) -> str:
    """A DID in atproto's syntax, or a keystore name (anything not starting ``did:``)."""
    if value.startswith("did:"):
        did(value)
    return value


def did_plc(value: str) -> str:
    """A well-formed ``did:plc``."""
    try:
        return validate_did_plc(value)
    except InvalidSyntaxError as exc:
        raise typer.BadParameter(exc.message) from exc
