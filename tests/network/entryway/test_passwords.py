"""Members' password hashes: salted scrypt, checked in constant time."""

from __future__ import annotations

from plaza.network.entryway.passwords import hash_password, verify_password


def test_a_hash_checks_its_password_only() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$32768$8$1$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert hash_password("correct horse") != stored  # a fresh salt each time


def test_a_malformed_hash_matches_nothing() -> None:
    for stored in ("", "argon2$x", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!$!!"):
        assert not verify_password(stored, "anything")
