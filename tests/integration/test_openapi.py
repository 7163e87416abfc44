"""The OpenAPI 3.1 document, the offline docs UI and the ``/swagger`` redirects (api.md §4)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

import stepflow
from stepflow.api.app import create_app
from stepflow.api.openapi import uses_principal
from stepflow.settings import Settings
from tests.support import TWO_STEPS, write_definitions

PREFIX = "/api/step_flow"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path) -> Iterator[TestClient]:
    """An app that does not let anonymous requests in: the docs must not need credentials."""
    write_definitions(definitions_folder, TWO_STEPS)
    strict = dataclasses.replace(settings, auth_anonymous=False)
    with TestClient(create_app(strict, launcher=lambda _: None, send_owed=lambda _: 0)) as test_client:
        yield test_client


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200, response.text
    assert "json" in response.headers["content-type"]
    return response.json()


class References(HTMLParser):
    """Every ``src``/``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value for name, value in attrs if name in {"src", "href"} and value)


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    # schemathesis checks the document against the OpenAPI 3.1 meta-schema (raises when invalid).
    schemathesis.openapi.from_dict(document).validate()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "StepFlow"
    assert document["info"]["version"] == stepflow.__version__


def test_document_declares_the_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    requirements = [
        operation.get("security")
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert [{"bearer": []}] in requirements, "no operation requires the bearer token"
    # The anonymous index asks for nothing.
    assert "security" not in document["paths"]["/api/step_flow"]["get"]


def test_document_describes_every_route_with_its_parameters(client: TestClient, document: dict[str, Any]) -> None:
    """Whatever the routes are: each schema-included route and method is an operation, with its path parameters."""
    paths = document["paths"]
    described = 0
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if not handler.resolve_include_in_schema():
                continue
            item = paths.get(route.path_format or "/")
            assert item is not None, f"{route.path_format} missing from the document"
            operation = item.get(str(method).lower())
            assert operation is not None, f"{method} {route.path_format} missing from the document"
            assert operation["responses"], f"{method} {route.path_format} has no response"
            names = {parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "path"}
            names |= {parameter["name"] for parameter in item.get("parameters", []) if parameter["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", route.path_format)), f"{method} {route.path_format}"
            described += 1
    assert described >= 5
    # The docs themselves stay out of the document.
    assert not any(path.startswith((f"{PREFIX}/docs", f"{PREFIX}/swagger", f"{PREFIX}/openapi")) for path in paths)


def test_docs_page_is_anonymous_and_offline(client: TestClient) -> None:
    assert client.get(f"{PREFIX}/workflows").status_code == 401  # the API itself is not anonymous here
    response = client.get(f"{PREFIX}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "the page references an external URL"
    assert f'"url": "{PREFIX}/openapi.json"' in page
    parser = References()
    parser.feed(page)
    scripts_and_styles = [url for url in parser.urls if url.endswith((".js", ".css"))]
    assert len(scripts_and_styles) >= 3
    for url in parser.urls:
        assert url.startswith(f"{PREFIX}/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert client.get(f"{PREFIX}/docs/assets/no-such-file.js").status_code == 404


def test_docs_and_document_do_not_resolve_the_principal(client: TestClient) -> None:
    docs_paths = (f"{PREFIX}/docs", f"{PREFIX}/swagger", f"{PREFIX}/openapi.json")
    checked = 0
    for route in client.app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(docs_paths):
            for method in route.route_handler_map:
                assert not uses_principal(route, method), f"{method} {route.path}"
                checked += 1
    assert checked >= 4
    # ...while the protected routes do (the check is not vacuous).
    blacklist = next(route for route in client.app.routes if route.path == f"{PREFIX}/blacklist")
    assert isinstance(blacklist, HTTPRoute) and uses_principal(blacklist, "GET")


@pytest.mark.parametrize("path", ["/swagger", "/swagger/", "/swagger/index.html"])
def test_swagger_redirects_to_the_docs(client: TestClient, path: str) -> None:
    response = client.get(f"{PREFIX}{path}", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == f"{PREFIX}/docs"
    followed = client.get(f"{PREFIX}{path}")
    assert followed.status_code == 200 and "swagger-ui" in followed.text


def test_unmatched_paths_still_answer_not_found(client: TestClient) -> None:
    response = client.get(f"{PREFIX}/no_such_route")
    assert response.status_code == 404 and response.text == "Not found"
