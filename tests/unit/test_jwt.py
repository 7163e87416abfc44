"""JWTs from an identity provider: settings, verification and their place in ``authenticate``."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from stepflow.security import Principal, authenticate, issue_token, read_jwt
from stepflow.settings import Settings, SettingsError, StaticToken, load_settings

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice@example.com", "rights": ["technician"], "iat": now, "exp": now + 300, **overrides}


def hs_settings(**env: str) -> Settings:
    return load_settings({"STEPFLOW_AUTH_JWT_SECRET": SECRET, **env})


def rs_settings(key: Any, **env: str) -> Settings:
    return load_settings({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": public_pem(key), **env})


def test_hs256_token_gives_sub_and_groups() -> None:
    settings = hs_settings()
    assert settings.auth_jwt_algorithms == ("HS256",)
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert read_jwt(settings, token) == Principal("alice@example.com", ("technician",))
    assert authenticate(settings, f"Bearer {token}") == Principal("alice@example.com", ("technician",))
    assert authenticate(settings, token) == Principal("alice@example.com", ("technician",)), "raw header form"


def test_name_falls_back_to_email_and_groups_claim_is_configurable() -> None:
    settings = hs_settings(STEPFLOW_AUTH_JWT_GROUPS_CLAIM="groups")
    without_sub = {k: v for k, v in claims(email="bob@example.com", groups=["a", "b"]).items() if k != "sub"}
    token = jwt.encode(without_sub, SECRET, algorithm="HS256")
    assert read_jwt(settings, token) == Principal("bob@example.com", ("a", "b"))
    nested = hs_settings(STEPFLOW_AUTH_JWT_GROUPS_CLAIM="realm_access.roles")
    token = jwt.encode(claims(realm_access={"roles": ["administrator"]}), SECRET, algorithm="HS256")
    assert read_jwt(nested, token) == Principal("alice@example.com", ("administrator",))
    no_groups = jwt.encode({k: v for k, v in claims().items() if k != "rights"}, SECRET, algorithm="HS256")
    assert read_jwt(settings, no_groups) == Principal("alice@example.com", ())


@pytest.mark.parametrize(
    "payload",
    [
        claims(rights="technician"),  # not a list
        claims(rights=["ok", 1]),  # not strings
        {k: v for k, v in claims().items() if k != "sub"},  # no sub nor email
        {k: v for k, v in claims().items() if k != "exp"},  # exp is required
    ],
)
def test_malformed_claims_are_refused(payload: dict[str, Any]) -> None:
    assert read_jwt(hs_settings(), jwt.encode(payload, SECRET, algorithm="HS256")) is None


def test_expiry_and_not_before_with_a_small_leeway() -> None:
    settings = hs_settings()
    now = int(time.time())
    assert read_jwt(settings, jwt.encode(claims(exp=now - 120), SECRET, algorithm="HS256")) is None
    assert read_jwt(settings, jwt.encode(claims(exp=now - 5), SECRET, algorithm="HS256")) is not None, "leeway"
    assert read_jwt(settings, jwt.encode(claims(nbf=now + 600), SECRET, algorithm="HS256")) is None
    assert read_jwt(settings, jwt.encode(claims(nbf=now + 5), SECRET, algorithm="HS256")) is not None


def test_audience_and_issuer_when_configured() -> None:
    settings = hs_settings(STEPFLOW_AUTH_JWT_AUDIENCE="stepflow,other", STEPFLOW_AUTH_JWT_ISSUER="https://idp")
    good = claims(aud="stepflow", iss="https://idp")
    assert read_jwt(settings, jwt.encode(good, SECRET, algorithm="HS256")) is not None
    assert read_jwt(settings, jwt.encode({**good, "aud": ["x", "other"]}, SECRET, algorithm="HS256")) is not None
    assert read_jwt(settings, jwt.encode({**good, "aud": "someone-else"}, SECRET, algorithm="HS256")) is None
    assert read_jwt(settings, jwt.encode({**good, "iss": "https://evil"}, SECRET, algorithm="HS256")) is None
    assert read_jwt(settings, jwt.encode(claims(iss="https://idp"), SECRET, algorithm="HS256")) is None, "aud missing"
    assert read_jwt(settings, jwt.encode(claims(aud="stepflow"), SECRET, algorithm="HS256")) is None, "iss missing"
    # Without an audience configured, a token meant for some audience is not ours to accept.
    assert read_jwt(hs_settings(), jwt.encode(claims(aud="stepflow"), SECRET, algorithm="HS256")) is None


def test_algorithms_are_allow_listed() -> None:
    settings = hs_settings()
    assert read_jwt(settings, jwt.encode(claims(), SECRET, algorithm="HS512")) is None
    both = hs_settings(STEPFLOW_AUTH_JWT_ALGORITHMS="HS256, HS512")
    assert both.auth_jwt_algorithms == ("HS256", "HS512")
    assert read_jwt(both, jwt.encode(claims(), SECRET, algorithm="HS512")) is not None


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_none_algorithm_is_never_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    for settings in (hs_settings(), rs_settings(rsa_key)):
        assert read_jwt(settings, unsigned(claims())) is None
        assert read_jwt(settings, jwt.encode(claims(), None, algorithm="none")) is None
        assert authenticate(dataclasses.replace(settings, auth_anonymous=True), unsigned(claims())) is None


def test_tampered_and_foreign_tokens_are_refused() -> None:
    settings = hs_settings()
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(rights=["administrator"])).encode()).rstrip(b"=").decode()
    assert read_jwt(settings, f"{header}.{forged}.{signature}") is None
    assert read_jwt(settings, f"{header}.{payload}.{signature[:-2]}xx") is None
    assert read_jwt(settings, jwt.encode(claims(), SECRET + "-other", algorithm="HS256")) is None
    assert read_jwt(settings, "not.a.jwt") is None
    assert read_jwt(load_settings({}), token) is None, "JWTs are off without a key"


def test_rs256_with_pem_text_file_and_certificate(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    settings = rs_settings(rsa_key)
    assert settings.auth_jwt_algorithms == ("RS256",)
    assert read_jwt(settings, token) == Principal("alice@example.com", ("technician",))
    key_file = tmp_path / "idp.pem"
    key_file.write_text(public_pem(rsa_key))
    assert read_jwt(load_settings({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": str(key_file)}), token) is not None
    escaped = public_pem(rsa_key).replace("\n", "\\n")
    assert read_jwt(load_settings({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": escaped}), token) is not None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(rsa_key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert read_jwt(load_settings({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": pem}), token) is not None


def test_rs256_refuses_other_keys_and_hmac_confusion(rsa_key: rsa.RSAPrivateKey) -> None:
    settings = rs_settings(rsa_key)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert read_jwt(settings, jwt.encode(claims(), other, algorithm="RS256")) is None
    assert read_jwt(settings, jwt.encode(claims(), rsa_key, algorithm="RS512")) is None, "not allow-listed"
    # The classic confusion: an HS256 token keyed with the public key's PEM text.
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode() for part in (header, claims())
    )
    mac = hmac.new(public_pem(rsa_key).encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert read_jwt(settings, confused) is None


def test_es256_with_an_ec_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    settings = load_settings({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": public_pem(key), "STEPFLOW_AUTH_JWT_ALGORITHMS": "ES256"})
    assert read_jwt(settings, jwt.encode(claims(), key, algorithm="ES256")) is not None


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"STEPFLOW_AUTH_JWT_SECRET": SECRET, "STEPFLOW_AUTH_JWT_PUBLIC_KEY": "x"}, "STEPFLOW_AUTH_JWT_PUBLIC_KEY"),
        ({"STEPFLOW_AUTH_JWT_SECRET": "short"}, "STEPFLOW_AUTH_JWT_SECRET"),
        ({"STEPFLOW_AUTH_JWT_SECRET": SECRET, "STEPFLOW_AUTH_JWT_ALGORITHMS": "none"}, "STEPFLOW_AUTH_JWT_ALGORITHMS"),
        ({"STEPFLOW_AUTH_JWT_SECRET": SECRET, "STEPFLOW_AUTH_JWT_ALGORITHMS": "RS256"}, "STEPFLOW_AUTH_JWT_ALGORITHMS"),
        ({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": "/does/not/exist.pem"}, "STEPFLOW_AUTH_JWT_PUBLIC_KEY"),
        ({"STEPFLOW_AUTH_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope"}, "STEPFLOW_AUTH_JWT_PUBLIC_KEY"),
    ],
)
def test_bad_jwt_settings_fail_fast_naming_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    assert str(error.value).startswith(setting) and "\n" not in str(error.value)


@pytest.mark.parametrize("algorithms", ["HS256", "RS256,HS256", "none", "ES256"])
def test_a_public_key_never_allows_hmac_none_or_a_foreign_family(rsa_key: rsa.RSAPrivateKey, algorithms: str) -> None:
    with pytest.raises(SettingsError, match="^STEPFLOW_AUTH_JWT_ALGORITHMS"):
        rs_settings(rsa_key, STEPFLOW_AUTH_JWT_ALGORITHMS=algorithms)


def test_authenticate_tries_session_then_static_then_jwt_and_never_logs_tokens() -> None:
    static = "static-token-value"
    settings = dataclasses.replace(
        hs_settings(),
        session_secret="session-key",
        auth_tokens={"ci": StaticToken("ci", hashlib.sha256(static.encode()).hexdigest(), ("ci",))},
        auth_anonymous=True,
    )
    session = issue_token("session-key", "w@x", ("worker",), ttl=60)
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    expired = jwt.encode(claims(exp=int(time.time()) - 600), SECRET, algorithm="HS256")
    with capture_logs() as logs:
        assert authenticate(settings, session) == Principal("w@x", ("worker",))
        assert authenticate(settings, static) == Principal("ci", ("ci",))
        assert authenticate(settings, good) == Principal("alice@example.com", ("technician",))
        assert authenticate(settings, expired) is None, "an invalid token never falls back to anonymous"
    text = repr(logs)
    for token in (session, static, good, expired):
        assert token not in text
