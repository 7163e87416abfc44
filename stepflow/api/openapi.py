"""The OpenAPI 3.1 document and its docs UI (api.md §4 "Swagger").

* ``{prefix}/openapi.json``: the document Litestar generates from the handlers' types.
  Operations whose handler resolves the ``principal`` dependency (directly or through
  another dependency) carry the bearer security requirement; the others are anonymous.
* ``{prefix}/docs``: Swagger UI, with its assets served from the ``swagger-ui-py``
  package under ``{prefix}/docs/assets/`` (no CDN: it works without internet access).
* ``{prefix}/swagger``, ``{prefix}/swagger/`` and ``{prefix}/swagger/index.html``
  redirect (302) to the docs, as the original's ``/swagger/`` did to its UI.

All of these are anonymous and left out of the document itself.
"""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from stepflow import __version__
from stepflow.settings import Settings

SECURITY_SCHEME = "bearer"
# The dependency that authenticates a request (stepflow.api.principal).
PRINCIPAL_DEPENDENCY = "principal"

DESCRIPTION = (
    "Workflow orchestrator for Media Cloud AI workers (successor of step_flow 1.x).\n\n"
    "Authenticate with `Authorization: Bearer <token>` (a raw `<token>` is accepted too): "
    "a session token from `POST .../sessions` or a static token."
)


def swagger_ui_directory() -> Path:
    """The Swagger UI (5.x) static files shipped by ``swagger-ui-py``, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def uses_principal(route: HTTPRoute, method: str) -> bool:
    """Whether the handler of ``method`` on ``route`` resolves the ``principal`` dependency."""
    entry = route.route_handler_map.get(method.upper())  # type: ignore[call-overload]
    if entry is None:
        return False
    _, kwargs_model = entry
    return any(
        dependency.key == PRINCIPAL_DEPENDENCY
        for batch in getattr(kwargs_model, "dependency_batches", ())
        for dependency in batch
    )


class StepFlowJsonPlugin(JsonRenderPlugin):
    """The JSON document, with the security requirement set on the operations that need it."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        paths = openapi_schema.get("paths") or {}
        for route in request.app.routes:
            if not isinstance(route, HTTPRoute) or (path_item := paths.get(route.path_format or "/")) is None:
                continue
            for method in route.route_handler_map:
                operation = path_item.get(str(method).lower())
                if isinstance(operation, dict) and "security" not in operation and uses_principal(route, method):
                    operation["security"] = [{SECURITY_SCHEME: []}]
        return super().render(request, openapi_schema)


def openapi_config(settings: Settings) -> OpenAPIConfig:
    """The document served at ``{prefix}/openapi.json`` (Litestar mounts its own router there)."""
    return OpenAPIConfig(
        title="StepFlow",
        version=__version__,
        description=DESCRIPTION,
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="`Authorization: Bearer <token>`; the raw `<token>` alone is accepted too.",
                )
            }
        ),
        openapi_router=Router(path=f"{settings.api_prefix}/openapi.json", route_handlers=[], include_in_schema=False),
        render_plugins=[StepFlowJsonPlugin(path=["/", "/openapi.json"])],
    )


def docs_html(prefix: str) -> str:
    assets = f"{prefix}/docs/assets"
    config = {
        "url": f"{prefix}/openapi.json",
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "persistAuthorization": True,
        "displayRequestDuration": True,
        # No badge fetched from the public validator: the page stays offline.
        "validatorUrl": None,
    }
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>StepFlow API</title>
  <link rel="stylesheet" href="{html.escape(assets)}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{html.escape(assets)}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{html.escape(assets)}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{html.escape(assets)}/swagger-ui-bundle.js"></script>
  <script src="{html.escape(assets)}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {{
      const config = {json.dumps(config)};
      config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
      config.plugins = [SwaggerUIBundle.plugins.DownloadUrl];
      config.layout = "StandaloneLayout";
      window.ui = SwaggerUIBundle(config);
    }};
  </script>
</body>
</html>
"""


def docs_router(settings: Settings) -> Router:
    """The docs page, its assets and the ``/swagger`` redirects, relative to the API prefix."""
    page = docs_html(settings.api_prefix)
    docs_path = f"{settings.api_prefix}/docs"

    @get("/docs", media_type=MediaType.HTML, sync_to_thread=False)
    def docs() -> str:
        """Swagger UI for the OpenAPI document."""
        return page

    @get(["/swagger", "/swagger/index.html"], sync_to_thread=False)
    def swagger() -> Redirect:
        """The original's Swagger path: redirects to the docs."""
        return Redirect(path=docs_path, status_code=302)

    assets = create_static_files_router(
        path="/docs/assets", directories=[swagger_ui_directory()], name="stepflow_docs_assets"
    )
    return Router(path="/", route_handlers=[docs, swagger, assets], include_in_schema=False)
