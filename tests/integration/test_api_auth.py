"""Authentication and route-level authorization on the real app: every kind of token, STEPFLOW_AUTHORIZE."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.security import hash_password
from stepflow.settings import Settings, load_settings
from tests.support import TWO_STEPS, write_definitions

PREFIX = "/api/step_flow"
JWT_SECRET = "integration-secret-long-enough-for-hs256!"
STATIC_TOKEN = "static-token-for-ci"
UNAUTHENTICATED = {"errors": {"detail": "You need to login to view this resource"}}
FORBIDDEN = {"errors": {"detail": "You are not authorized to view this resource"}}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def secured_settings(definitions_folder: Path, **env: str) -> Settings:
    """Anonymous access off, one user, one static token; ``env`` adds or overrides settings."""
    users = {"user@example.com": {"password_hash": hash_password("pw", n=1024), "groups": ["administrator"]}}
    tokens = {"ci": {"sha256": hashlib.sha256(STATIC_TOKEN.encode()).hexdigest(), "groups": ["administrator"]}}
    return load_settings(
        {
            **os.environ,
            "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions_folder),
            "STEPFLOW_AUTH_ANONYMOUS": "false",
            "STEPFLOW_AUTH_USERS": json.dumps(users),
            "STEPFLOW_SESSION_SECRET": "session-secret",
            "STEPFLOW_AUTH_TOKENS": json.dumps(tokens),
            **env,
        }
    )


@pytest.fixture
def app_for(database_url: str, sessions: sessionmaker[Session], definitions_folder: Path) -> Iterator[Any]:
    write_definitions(definitions_folder, TWO_STEPS)
    clients: list[TestClient] = []

    def start(**env: str) -> TestClient:
        client = TestClient(create_app(secured_settings(definitions_folder, **env), launcher=lambda _: None))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "idp-user", "rights": ["administrator"], "exp": int(time.time()) + 300, **overrides}


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# Public on purpose: the docs page and the /swagger redirect (DEFAULT_AUTHORIZE), the OpenAPI
# document (Litestar's own router, outside the API router) and metrics (own basic auth).
PUBLIC_SEGMENTS = {"docs", "swagger", "openapi.json", "metrics"}
ROUTES = [("get", "/jobs"), ("get", "/workflows"), ("get", "/definitions"), ("get", "/blacklist")]


def test_session_static_and_hs256_tokens(app_for: Any) -> None:
    client = app_for(STEPFLOW_AUTH_JWT_SECRET=JWT_SECRET, STEPFLOW_AUTH_JWT_AUDIENCE="stepflow")
    session = client.post("/api/sessions", json={"session": {"email": "user@example.com", "password": "pw"}})
    assert session.status_code == 200
    good_jwt = jwt.encode(claims(aud="stepflow"), JWT_SECRET, algorithm="HS256")
    for token in (session.json()["access_token"], STATIC_TOKEN, good_jwt):
        for method, path in ROUTES:
            response = client.request(method, PREFIX + path, headers=bearer(token))
            assert response.status_code == 200, (path, response.text)
        assert client.get(PREFIX + "/jobs", headers={"Authorization": token}).status_code == 200, "raw form"
    for bad in (
        jwt.encode(claims(aud="elsewhere"), JWT_SECRET, algorithm="HS256"),
        jwt.encode(claims(aud="stepflow", exp=int(time.time()) - 600), JWT_SECRET, algorithm="HS256"),
        jwt.encode(claims(aud="stepflow"), "another-secret-that-is-long-enough-too", algorithm="HS256"),
        "forged",
    ):
        response = client.get(PREFIX + "/jobs", headers=bearer(bad))
        assert response.status_code == 401 and response.json() == UNAUTHENTICATED
    for method, path in ROUTES:
        assert client.request(method, PREFIX + path).status_code == 401, path


def test_rs256_tokens_and_their_groups(app_for: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    client = app_for(STEPFLOW_AUTH_JWT_PUBLIC_KEY=public_pem(rsa_key), STEPFLOW_AUTH_JWT_ISSUER="https://idp")
    admin = jwt.encode(claims(iss="https://idp"), rsa_key, algorithm="RS256")
    viewer = jwt.encode(claims(iss="https://idp", rights=["user_view"]), rsa_key, algorithm="RS256")
    assert client.get(PREFIX + "/workflows", headers=bearer(admin)).status_code == 200
    assert client.post(PREFIX + "/definitions", headers=bearer(admin)).status_code == 200
    refused = client.post(PREFIX + "/definitions", headers=bearer(viewer))
    assert refused.status_code == 403 and refused.json() == FORBIDDEN, "post_definitions needs administrator"
    # The viewer is authenticated; the definition's rights (administrator only) hide its workflows.
    assert client.get(PREFIX + "/workflows", headers=bearer(viewer)).json() == {"data": [], "total": 0}
    foreign_issuer = jwt.encode(claims(iss="https://evil"), rsa_key, algorithm="RS256")
    assert client.get(PREFIX + "/workflows", headers=bearer(foreign_issuer)).status_code == 401
    hmac_confusion = jwt.encode(claims(iss="https://idp"), JWT_SECRET, algorithm="HS256")
    assert client.get(PREFIX + "/workflows", headers=bearer(hmac_confusion)).status_code == 401


def test_authorize_setting_adds_a_right_check(app_for: Any) -> None:
    client = app_for(
        STEPFLOW_AUTH_JWT_SECRET=JWT_SECRET,
        STEPFLOW_AUTHORIZE=json.dumps({"get_workflows": ["user_check", "right_technician_check"]}),
    )
    without = jwt.encode(claims(rights=["administrator"]), JWT_SECRET, algorithm="HS256")
    with_it = jwt.encode(claims(rights=["administrator", "technician"]), JWT_SECRET, algorithm="HS256")
    refused = client.get(PREFIX + "/workflows", headers=bearer(without))
    assert refused.status_code == 403 and refused.json() == FORBIDDEN
    assert client.get(PREFIX + "/workflows", headers=bearer(with_it)).status_code == 200
    assert client.get(PREFIX + "/workflows").status_code == 401
    assert client.get(PREFIX + "/jobs", headers=bearer(without)).status_code == 200, "other keys keep their checks"


def test_unknown_paths_are_404_before_any_auth(app_for: Any) -> None:
    client = app_for()
    unknown = client.get(PREFIX + "/unknown/route")
    assert unknown.status_code == 404 and unknown.text == "Not found"
    assert client.post(PREFIX + "/nothing/here").status_code == 404
    assert client.get(PREFIX + "/workflows/1/events").status_code in (404, 405), "no GET on events"
    assert client.get(PREFIX).status_code == 200, "the index is anonymous"
    assert client.post("/api/sessions", json={"session": {"email": "x@y", "password": "z"}}).status_code == 401
    assert client.get(PREFIX + "/jobs").json() == UNAUTHENTICATED


def test_safe_by_default_without_any_credentials_configured(
    database_url: str, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    """No users, tokens, JWT and anonymous off: every API route but the public ones answers 401."""
    write_definitions(definitions_folder, TWO_STEPS)
    bare = load_settings(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "AMQP_URL": os.environ["AMQP_URL"],
            "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions_folder),
        }
    )
    assert not bare.auth_anonymous and not bare.auth_users and not bare.auth_tokens and bare.auth_jwt_secret is None
    app = create_app(bare, launcher=lambda _: None)
    walked = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(PREFIX + "/"):
            continue
        if route.path[len(PREFIX) + 1 :].split("/")[0] in PUBLIC_SEGMENTS:
            continue
        path = re.sub(r"\{[^}]*\}", "1", route.path)
        walked += [(method, path) for method in sorted(route.methods) if method not in ("OPTIONS", "HEAD")]
    assert ("POST", f"{PREFIX}/workflows/1/events") in walked and len(walked) >= 10
    with TestClient(app) as client:
        assert client.get(PREFIX).status_code == 200
        for method, path in walked:
            response = client.request(method, path)
            assert response.status_code == 401, (method, path)
            assert response.json() == UNAUTHENTICATED
