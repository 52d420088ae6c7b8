"""Errors of Lexicon validation beyond the core tree in :mod:`plaza.atproto.errors`.

A record that fails its Lexicon raises
:class:`~plaza.atproto.errors.InvalidRecordError`, a broken schema
:class:`~plaza.atproto.errors.LexiconError`; everything else that fails a Lexicon
(XRPC parameters, request and response bodies, stream messages) raises
:class:`InvalidDataError`.
"""

from __future__ import annotations

from plaza.atproto.errors import AtprotoError


class InvalidDataError(AtprotoError):
    """XRPC parameters, a body or a stream message does not match its Lexicon."""

    code = "InvalidRequest"
