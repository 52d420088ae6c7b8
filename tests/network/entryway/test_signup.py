"""Checking a createAccount body before anything is placed."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.network.entryway.errors import InvalidHandleError, InvalidRequestError
from plaza.network.entryway.signup import parse_request

DOMAINS = (".test",)


def test_a_sign_up_is_normalized() -> None:
    key = PrivateKey.generate("ES256K").did_key()
    req = parse_request(
        {"handle": "Alice.TEST", "password": "12345678", "email": " A@B.example ",
         "recoveryKey": key},
        DOMAINS,
    )  # fmt: skip
    assert (req.handle, req.email, req.recovery_key) == ("alice.test", "a@b.example", key)
    assert "12345678" not in repr(req)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"password": "12345678"}, InvalidRequestError),
        ({"handle": "a.test"}, InvalidRequestError),
        ({"handle": "a b", "password": "12345678"}, InvalidHandleError),
        ({"handle": "a.example.com", "password": "12345678"}, InvalidHandleError),
        ({"handle": "a.test", "password": "1234567"}, InvalidRequestError),
        ({"handle": "a.test", "password": "x" * 257}, InvalidRequestError),
        ({"handle": "a.test", "password": "12345678", "email": "nope"}, InvalidRequestError),
        ({"handle": "a.test", "password": "12345678", "recoveryKey": 7}, InvalidRequestError),
        (
            {"handle": "a.test", "password": "12345678", "recoveryKey": "did:key:z"},
            InvalidRequestError,
        ),
        ({"handle": "a.test", "password": "12345678", "did": "did:plc:x"}, InvalidRequestError),
        ({"handle": "a.test", "password": "12345678", "plcOp": {}}, InvalidRequestError),
    ],
)
def test_bad_sign_ups_are_refused(body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_request(body, DOMAINS)
