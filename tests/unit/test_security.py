"""Passwords, session tokens and how a request's principal is decided."""

from __future__ import annotations

import dataclasses
import hashlib

from stepflow.security import (
    Principal,
    authenticate,
    hash_password,
    issue_token,
    open_session,
    read_token,
    token_from_header,
    verify_password,
)
from stepflow.settings import StaticToken, User, load_settings


def test_password_hash_round_trip_and_format() -> None:
    hashed = hash_password("secret", n=1024)
    scheme, n, r, p, _, key = hashed.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    assert verify_password("secret", hashed)
    assert not verify_password("Secret", hashed)
    assert not verify_password("secret", "not a hash")


def test_tokens_are_signed_and_expire() -> None:
    token = issue_token("key", "w@x", ("worker",), ttl=60, now=1000)
    assert read_token("key", token, now=1030) == Principal("w@x", ("worker",))
    assert read_token("other key", token, now=1030) is None
    assert read_token("key", token, now=1061) is None
    payload, signature = token.split(".")
    assert read_token("key", payload + "x." + signature, now=1030) is None


def test_authorization_header_forms() -> None:
    assert token_from_header("Bearer abc") == "abc"
    assert token_from_header("bearer abc") == "abc"
    assert token_from_header("abc") == "abc"
    assert token_from_header("") is None
    assert token_from_header(None) is None


def test_authenticate_decides_the_principal() -> None:
    static = hashlib.sha256(b"static-token").hexdigest()
    settings = dataclasses.replace(
        load_settings({}),
        session_secret="key",
        auth_tokens={"ci": StaticToken("ci", static, ("admin",))},
    )
    assert authenticate(settings, None) is None
    anonymous = dataclasses.replace(settings, auth_anonymous=True, auth_anonymous_groups=("viewer",))
    assert authenticate(anonymous, None) == Principal("anonymous", ("viewer",), anonymous=True)
    assert authenticate(anonymous, "Bearer forged") is None, "a bad token never falls back to anonymous"
    assert authenticate(settings, "static-token") == Principal("ci", ("admin",))
    token = issue_token("key", "w@x", ("worker",), ttl=60)
    assert authenticate(settings, f"Bearer {token}") == Principal("w@x", ("worker",))


def test_open_session_checks_the_password() -> None:
    user = User("w@x", hash_password("pw", n=1024), ("worker",))
    settings = dataclasses.replace(load_settings({}), session_secret="key", auth_users={"w@x": user})
    assert open_session(settings, "w@x", "wrong") is None
    assert open_session(settings, "nobody@x", "pw") is None
    token = open_session(settings, "w@x", "pw")
    assert token is not None and read_token("key", token) == Principal("w@x", ("worker",))
