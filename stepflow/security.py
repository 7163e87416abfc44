"""Passwords, session tokens, JWTs and the principal a request acts as (ours.md §3.2).

Passwords and sessions use only the standard library: scrypt password hashes
(``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, 64-byte key) and HMAC-SHA256 signed session
tokens carrying ``sub``, ``groups`` and ``exp``. Static tokens are stored as SHA-256 digests.
JWTs from an identity provider (``STEPFLOW_AUTH_JWT_*``) are verified with PyJWT: signature
with allow-listed algorithms only, ``exp`` required, ``nbf``, and ``aud`` / ``iss`` when set.
Secrets and tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
import structlog

from stepflow.settings import Settings

log = structlog.get_logger(__name__)

JWT_LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp`` and ``nbf``."""

SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
KEY_LENGTH = 64


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a name and the rights groups matched against definitions."""

    name: str
    groups: tuple[str, ...]
    anonymous: bool = False

    def in_any(self, groups: list[str] | tuple[str, ...]) -> bool:
        return any(group in self.groups for group in groups)


class RightLike(Protocol):
    action: str
    groups: list[str]


def has_right(rights: Iterable[RightLike], principal: Principal, action: str) -> bool:
    """Whether one of ``rights`` grants ``action`` to one of the principal's groups."""
    return any(right.action == action and principal.in_any(right.groups) for right in rights)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_LENGTH, maxmem=2**27)
    return "$".join(["scrypt", str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(key).decode()])


def verify_password(password: str, password_hash: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = password_hash.split("$")
        if scheme != "scrypt":
            return False
        key = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
            maxmem=2**27,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(key, base64.b64decode(expected))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue_token(secret: str, subject: str, groups: tuple[str, ...], ttl: int, now: float | None = None) -> str:
    """A session token: ``<payload b64>.<HMAC b64>``, valid ``ttl`` seconds."""
    claims = {"sub": subject, "groups": list(groups), "exp": int((now or time.time()) + ttl)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


def read_token(secret: str, token: str, now: float | None = None) -> Principal | None:
    """The principal of a valid, unexpired session token; None otherwise."""
    payload, _, signature = token.partition(".")
    if not signature or not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    try:
        claims = json.loads(_unb64(payload))
        expires, subject, groups = int(claims["exp"]), str(claims["sub"]), tuple(str(g) for g in claims["groups"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now or time.time()):
        return None
    return Principal(subject, groups)


def token_from_header(authorization: str | None) -> str | None:
    """``Bearer <t>`` or a raw ``<t>`` (SDK workers send it raw)."""
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" and rest else authorization.strip()
    return token or None


def read_jwt(settings: Settings, token: str) -> Principal | None:
    """The principal of a JWT valid under ``STEPFLOW_AUTH_JWT_*``; None otherwise (or when JWTs are off).

    The name is ``sub`` (else ``email``); the groups are the ``STEPFLOW_AUTH_JWT_GROUPS_CLAIM``
    claim, a list of strings (absent: no groups). The claim may be a dotted path into nested
    objects (``realm_access.roles``) when no top-level claim has that exact name.
    """
    key: Any = settings.auth_jwt_public_key if settings.auth_jwt_public_key is not None else settings.auth_jwt_secret
    if key is None or not settings.auth_jwt_algorithms or token.count(".") != 2:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(settings.auth_jwt_algorithms),
            audience=list(settings.auth_jwt_audience) or None,
            issuer=settings.auth_jwt_issuer,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["exp"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        log.debug("jwt rejected", reason=type(error).__name__)
        return None
    name = claims.get("sub") or claims.get("email")
    groups = _claim(claims, settings.auth_jwt_groups_claim)
    if not isinstance(name, str) or not name:
        log.debug("jwt rejected", reason="no sub or email")
        return None
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        log.debug("jwt rejected", reason=f"{settings.auth_jwt_groups_claim} is not a list of strings")
        return None
    return Principal(name, tuple(groups))


def _claim(claims: dict[str, Any], name: str) -> Any:
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def authenticate(settings: Settings, authorization: str | None) -> Principal | None:
    """The principal of a request: its token's, else the anonymous one when allowed, else None.

    A token is tried as a session token, then as a static token, then as a JWT. A token that
    is present but invalid never falls back to anonymous.
    """
    token = token_from_header(authorization)
    if token is None:
        if settings.auth_anonymous:
            return Principal("anonymous", settings.auth_anonymous_groups, anonymous=True)
        return None
    if settings.session_secret:
        principal = read_token(settings.session_secret, token)
        if principal is not None:
            return principal
    digest = hashlib.sha256(token.encode()).hexdigest()
    for static in settings.auth_tokens.values():
        if hmac.compare_digest(static.sha256, digest):
            return Principal(static.name, static.groups)
    return read_jwt(settings, token)


def anonymous_warning(settings: Settings) -> str | None:
    """The one line ``stepflow serve`` logs at start when anonymous access is on; None when off."""
    if not settings.auth_anonymous:
        return None
    groups = ", ".join(settings.auth_anonymous_groups) or "(none)"
    return f"anonymous access is on (STEPFLOW_AUTH_ANONYMOUS): requests without credentials get the groups {groups}"


def open_session(settings: Settings, email: str, password: str) -> str | None:
    """A session token for a configured user with the right password; None otherwise."""
    user = settings.auth_users.get(email)
    if user is None or settings.session_secret is None:
        # Spend the same time as a real check so unknown emails are not told apart.
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return issue_token(settings.session_secret, user.email, user.groups, settings.session_ttl)


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + base64.b64encode(bytes(64)).decode()
