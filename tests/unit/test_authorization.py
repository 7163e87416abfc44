"""Route-level authorization: action keys, the check chain, custom checks, and the guard on a bare app."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from litestar import Litestar, Router, route
from litestar.testing import TestClient

from stepflow.api.authorization import (
    action_key,
    authorization_guard,
    resolve_check,
    run_check,
)
from stepflow.api.errors import EXCEPTION_HANDLERS, ApiError, forbidden
from stepflow.security import Principal, anonymous_warning
from stepflow.settings import DEFAULT_CHECKS, SettingsError, load_settings

PREFIX = "/api/step_flow"

# api.md §3, in the router's order: (method, path template, a concrete path, action key).
ROUTES: list[tuple[str, str, str, str | None]] = [
    ("GET", "/", "", None),
    ("GET", "/definitions", "/definitions", "get_definitions"),
    ("GET", "/definitions/{identifier:str}", "/definitions/simple", "get_definitions"),
    ("POST", "/definitions", "/definitions", "post_definitions"),
    ("GET", "/workflows", "/workflows", "get_workflows"),
    ("GET", "/workflows/{id:int}", "/workflows/12", "get_workflows"),
    ("POST", "/workflows", "/workflows", "post_workflows"),
    ("PATCH", "/workflows/{id:int}", "/workflows/12", "patch_workflows"),
    ("PUT", "/workflows/{id:int}", "/workflows/12", "put_workflows"),
    ("DELETE", "/workflows/{id:int}", "/workflows/12", "delete_workflows"),
    ("POST", "/workflows/{id:int}/events", "/workflows/12/events", "post_workflows_events"),
    ("POST", "/launch_workflow", "/launch_workflow", "post_launch_workflow"),
    ("GET", "/workflows_statistics", "/workflows_statistics", "get_workflows_statistics"),
    ("GET", "/jobs", "/jobs", "get_jobs"),
    ("GET", "/worker_definitions", "/worker_definitions", "get_worker_definitions"),
    ("GET", "/worker_definitions/{id:str}", "/worker_definitions/7", "get_worker_definitions"),
    ("POST", "/worker_definitions", "/worker_definitions", "post_worker_definitions"),
    ("GET", "/live_workers", "/live_workers", "get_live_workers"),
    ("GET", "/workers", "/workers", "get_workers"),
    ("GET", "/workers/{id:str}", "/workers/abc", "get_workers"),
    ("PATCH", "/workers/{id:str}", "/workers/abc", "patch_workers"),
    ("PUT", "/workers/{id:str}", "/workers/abc", "put_workers"),
    ("GET", "/metrics", "/metrics", None),
    ("GET", "/swagger/index.html", "/swagger/index.html", "get_swagger"),
    ("GET", "/blacklist", "/blacklist", "get_blacklist"),
]
KEYS = sorted({key for *_, key in ROUTES if key is not None})


@pytest.mark.parametrize(("method", "path", "key"), [(m, p, k) for m, _, p, k in ROUTES])
def test_action_key_of_every_route(method: str, path: str, key: str | None) -> None:
    assert action_key(method, PREFIX + path, PREFIX) == key


def test_action_key_edges() -> None:
    assert action_key("GET", PREFIX + "/", PREFIX) is None, "the index"
    assert action_key("POST", "/api/sessions", PREFIX) is None, "outside the prefix"
    assert action_key("GET", "/api/step_flowers", PREFIX) is None
    assert action_key("GET", PREFIX + "/workflows/1/events", PREFIX + "/") == "get_workflows_events"
    assert action_key("GET", PREFIX + "/workflows/1/other", PREFIX) == "get_workflows"


def test_default_checks() -> None:
    settings = load_settings({})
    assert DEFAULT_CHECKS == ("user_check",)
    for key in ("put_workers", "patch_workers", "post_definitions", "post_worker_definitions"):
        assert settings.authorize[key] == ("user_check", "right_administrator_check")
    assert "get_workflows" not in settings.authorize, "unlisted keys get DEFAULT_CHECKS"
    merged = load_settings({"STEPFLOW_AUTHORIZE": '{"get_workflows": ["user_check", "right_technician_check"]}'})
    assert merged.authorize["get_workflows"] == ("user_check", "right_technician_check")
    assert merged.authorize["post_definitions"] == ("user_check", "right_administrator_check"), "merged, not replaced"
    emptied = load_settings({"STEPFLOW_AUTHORIZE": '{"post_definitions": []}'})
    assert emptied.authorize["post_definitions"] == ()


def refusal(check_name: str, principal: Principal | None, **env: str) -> int | None:
    """The status a check answers for ``principal``, None when it lets the request through."""
    check = resolve_check(check_name, load_settings(env))
    try:
        asyncio.run(run_check(check, principal, None))  # type: ignore[arg-type]
    except ApiError as error:
        return error.status_code
    return None


def test_user_check_and_right_checks() -> None:
    user = Principal("u", ("user_view",))
    anonymous = Principal("anonymous", ("administrator",), anonymous=True)
    assert refusal("user_check", None) == 401
    assert refusal("user_check", user) is None
    assert refusal("user_check", anonymous) == 401, "anonymous passes only when anonymous access is on"
    assert refusal("user_check", anonymous, STEPFLOW_AUTH_ANONYMOUS="true") is None
    assert refusal("right_user_view_check", user) is None, "a group name may contain underscores"
    assert refusal("right_administrator_check", user) == 403
    assert refusal("right_administrator_check", None) == 401
    assert refusal("right_administrator_check", anonymous) is None


# Custom checks, named by dotted path in STEPFLOW_AUTHORIZE.


def require_header(principal: Principal | None, connection: Any) -> None:
    if connection.headers.get("x-allow") != "yes":
        raise forbidden()


async def refuse_later(principal: Principal | None, connection: Any) -> None:
    raise PermissionError("no")


class Checks:
    @staticmethod
    def teapot(principal: Principal | None, connection: Any) -> None:
        if principal is None or principal.name != "tea":
            raise ApiError(418, {"errors": {"detail": "I'm a teapot"}})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('{"get_jobs": ["tests.unit.nope:check"]}', "ModuleNotFoundError"),
        ('{"get_jobs": ["tests.unit.test_authorization:missing"]}', "AttributeError"),
        ('{"get_jobs": ["tests.unit.test_authorization:PREFIX"]}', "not callable"),
        ('{"get_jobs": ["admin_check"]}', "neither a built-in check"),
        ('{"GET jobs": ["user_check"]}', "not an action key"),
        ('{"get_jobs": "user_check"}', "list of check names"),
        ("[]", "JSON object"),
    ],
)
def test_bad_authorize_fails_fast_with_one_line(value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"STEPFLOW_AUTHORIZE": value})
    message = str(error.value)
    assert message.startswith("STEPFLOW_AUTHORIZE:") and "\n" not in message and fragment in message


def test_anonymous_warning_names_the_groups() -> None:
    assert anonymous_warning(load_settings({})) is None
    line = anonymous_warning(
        load_settings({"STEPFLOW_AUTH_ANONYMOUS": "true", "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "a,b"})
    )
    assert line is not None and "a, b" in line and "\n" not in line


# The guard on a bare app with a stub handler for every route of api.md §3.


def stub(method: str, path: str) -> Any:
    @route(path, http_method=[method], name=f"{method} {path}", sync_to_thread=False, status_code=200)
    def endpoint() -> str:
        return "ok"

    return endpoint


def bare_app(**env: str) -> Litestar:
    settings = load_settings(env)
    api = Router(
        path=PREFIX,
        route_handlers=[stub(method, template) for method, template, *_ in ROUTES],
        guards=[authorization_guard(settings)],
    )
    return Litestar(route_handlers=[api], exception_handlers=EXCEPTION_HANDLERS, openapi_config=None)


def token_env(groups_by_token: dict[str, list[str]]) -> str:
    return json.dumps(
        {
            token: {"sha256": hashlib.sha256(token.encode()).hexdigest(), "groups": groups}
            for token, groups in groups_by_token.items()
        }
    )


def test_every_route_runs_the_checks_of_its_own_key() -> None:
    """Each key requires a group named after it: only that key's token passes its routes."""
    authorize = {key: ["user_check", f"right_{key}_check"] for key in KEYS}
    tokens = {f"token-{key}": [key] for key in KEYS}
    app = bare_app(STEPFLOW_AUTHORIZE=json.dumps(authorize), STEPFLOW_AUTH_TOKENS=token_env(tokens))
    with TestClient(app) as client:
        for method, _, path, key in ROUTES:
            url = PREFIX + path
            if key is None:
                assert client.request(method, url).status_code == 200, (method, path)
                continue
            own = client.request(method, url, headers={"Authorization": f"Bearer token-{key}"})
            assert own.status_code == 200, (method, path, own.text)
            other_key = next(k for k in KEYS if k != key)
            other = client.request(method, url, headers={"Authorization": f"token-{other_key}"})
            assert other.status_code == 403, (method, path)
            assert other.json() == {"errors": {"detail": "You are not authorized to view this resource"}}
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.json() == {"errors": {"detail": "You need to login to view this resource"}}


def test_defaults_on_the_bare_app() -> None:
    tokens = token_env({"user": ["user_view"], "admin": ["administrator"]})
    with TestClient(bare_app(STEPFLOW_AUTH_TOKENS=tokens)) as client:
        assert client.get(PREFIX + "/jobs").status_code == 401
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "user"}).status_code == 200
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "forged"}).status_code == 401
        assert client.put(PREFIX + "/workers/abc", headers={"Authorization": "user"}).status_code == 403
        assert client.put(PREFIX + "/workers/abc", headers={"Authorization": "admin"}).status_code == 200
        assert client.post(PREFIX + "/definitions", headers={"Authorization": "user"}).status_code == 403
        assert client.get(PREFIX).status_code == 200, "the index is anonymous"
        assert client.get(PREFIX + "/metrics").status_code == 200, "metrics have their own auth"
        # Route matching comes first: unknown paths are 404 and wrong methods 405, without credentials.
        unknown = client.get(PREFIX + "/unknown/route")
        assert unknown.status_code == 404 and unknown.text == "Not found"
        assert client.post(PREFIX + "/nothing").status_code == 404
        assert client.delete(PREFIX + "/jobs").status_code == 405
        assert client.options(PREFIX + "/jobs").status_code in (200, 204), "preflights carry no credentials"
    open_app = bare_app(STEPFLOW_AUTH_ANONYMOUS="true", STEPFLOW_AUTH_ANONYMOUS_GROUPS="viewer")
    with TestClient(open_app) as client:
        assert client.get(PREFIX + "/jobs").status_code == 200
        assert client.put(PREFIX + "/workers/abc").status_code == 403
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "forged"}).status_code == 401


def test_custom_checks_by_dotted_path() -> None:
    authorize = {
        "get_jobs": ["user_check", "tests.unit.test_authorization:require_header"],
        "get_workflows": ["tests.unit.test_authorization.refuse_later"],
        "get_live_workers": ["tests.unit.test_authorization:Checks.teapot"],
    }
    tokens = token_env({"tea": [], "coffee": []})
    app = bare_app(STEPFLOW_AUTHORIZE=json.dumps(authorize), STEPFLOW_AUTH_TOKENS=tokens)
    with TestClient(app) as client:
        assert client.get(PREFIX + "/jobs", headers={"x-allow": "yes"}).status_code == 401, "user_check runs first"
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "tea"}).status_code == 403
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "tea", "x-allow": "yes"}).status_code == 200
        refused = client.get(PREFIX + "/workflows", headers={"Authorization": "tea"})
        assert refused.status_code == 403, "PermissionError, even from an async check, is the standard 403"
        assert refused.json() == {"errors": {"detail": "You are not authorized to view this resource"}}
        assert client.get(PREFIX + "/live_workers", headers={"Authorization": "tea"}).status_code == 200
        teapot = client.get(PREFIX + "/live_workers", headers={"Authorization": "coffee"})
        assert teapot.status_code == 418 and teapot.json() == {"errors": {"detail": "I'm a teapot"}}


def test_the_principal_is_decided_once_per_request() -> None:
    calls: list[str | None] = []
    settings = load_settings({})
    import stepflow.api.principal as principal_module

    original = principal_module.authenticate

    def counting(settings_: Any, authorization: str | None) -> Principal | None:
        calls.append(authorization)
        return original(settings_, authorization)

    principal_module.authenticate = counting  # type: ignore[assignment]
    try:
        from litestar import get
        from litestar.di import Provide

        @get("/jobs", sync_to_thread=False)
        def jobs(principal: Principal) -> str:
            return principal.name

        open_settings = dataclasses.replace(settings, auth_anonymous=True)
        api = Router(path=PREFIX, route_handlers=[jobs], guards=[authorization_guard(open_settings)])
        app = Litestar(
            route_handlers=[api],
            dependencies={
                "settings": Provide(lambda: open_settings, sync_to_thread=False),
                "principal": Provide(principal_module.provide_principal),
            },
            exception_handlers=EXCEPTION_HANDLERS,
            openapi_config=None,
        )
        with TestClient(app) as client:
            assert client.get(PREFIX + "/jobs").text == "anonymous"
        assert calls == [None]
    finally:
        principal_module.authenticate = original  # type: ignore[assignment]
