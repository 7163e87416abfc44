"""JSON Schemas of workflow definitions, one per ``schema_version``, and the validator built on them.

Where the schemas come from (ours A14, §1.8):
  * built in: ``stepflow/definitions/schemas/<version>/workflow-definition.schema.json`` plus the
    schemas it references, in the same folder. A new standard version is one more folder;
  * ``STEPFLOW_WORKFLOW_SCHEMA`` pointing at a **folder**: the same layout, as
    ``<folder>/<version>/…`` or ``<folder>/standard/<version>/…`` (the original's
    ``specification_folder + uri.path``). It replaces the built-in schemas entirely;
  * ``STEPFLOW_WORKFLOW_SCHEMA`` pointing at a **file**: that one schema for every version. The
    other ``*.json`` files of its folder are registered too, so that its relative ``$ref``s resolve.

The schema of a document is chosen by the document's own ``schema_version``. Every schema is
loaded into a ``referencing`` registry up front and is never fetched over the network: a ``$ref``
that no loaded file provides fails at construction, naming the file and the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

from jsonschema import Draft7Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError as JsonSchemaError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

from stepflow.definitions.semantics import Findings, check_semantics

BUILTIN_SCHEMAS: Path = Path(__file__).with_name("schemas")
"""Folder of the built-in schemas, laid out as ``<version>/workflow-definition.schema.json``."""

ROOT_SCHEMA: str = "workflow-definition.schema.json"
"""File name of the schema a definition is validated against, in each version folder."""

MAX_MESSAGE: int = 300
"""Longest message kept from jsonschema (fits the parameter ``type`` enum, cuts runaway quotes)."""

MAX_QUOTED_VALUE: int = 60
"""A quoted offending value longer than this is replaced by its type ("an array") in messages."""


class SchemaConfigError(Exception):
    """The schemas themselves cannot be used: unreadable, not JSON Schema, or a dangling ``$ref``."""


@dataclass(frozen=True)
class SchemaCatalog:
    """Every loaded schema (``registry``) and, per ``schema_version``, the URI of its root schema.

    ``every_version`` is set when one file serves all versions (the file override); ``roots`` is
    then empty.
    """

    registry: Registry[Any]
    roots: Mapping[str, str]
    every_version: str | None = None

    def root_uri(self, version: str) -> str | None:
        """URI of the root schema for ``version``, or None when no schema covers it."""
        return self.every_version or self.roots.get(version)


def load_catalog(override: Path | None = None) -> SchemaCatalog:
    """Load the built-in schemas, or those at ``override`` (a file or a folder, see the module doc).

    Raises ``SchemaConfigError`` on anything that would make validation fail later for reasons that
    are not the document's fault.
    """
    if override is None:
        return _catalog_from_folders(_version_folders(BUILTIN_SCHEMAS), source=BUILTIN_SCHEMAS)
    if override.is_file():
        return _catalog_from_file(override)
    if override.is_dir():
        return _catalog_from_folders(_override_folders(override), source=override)
    raise SchemaConfigError(f"workflow schema {str(override)!r}: no such file or folder")


class DefinitionValidator:
    """Judges workflow definition documents: the schema of their ``schema_version``, then semantics.

    Construction loads and checks every schema (``SchemaConfigError`` if unusable); build one per
    process and reuse it: calls keep no state between documents.
    """

    def __init__(self, schema_path: Path | None = None) -> None:
        """Use the built-in schemas, or the ``STEPFLOW_WORKFLOW_SCHEMA`` file or folder ``schema_path``."""
        self._catalog = load_catalog(schema_path)
        self._validators: dict[str, Validator] = {}
        for uri in {*self._catalog.roots.values(), *filter(None, [self._catalog.every_version])}:
            schema = self._catalog.registry.contents(uri)
            cls = validators.validator_for(schema, default=Draft7Validator)
            self._validators[uri] = cls(schema, registry=self._catalog.registry)

    @property
    def versions(self) -> tuple[str, ...] | None:
        """The ``schema_version`` values with a schema, sorted; None when one file serves them all."""
        if self._catalog.every_version is not None:
            return None
        return tuple(sorted(self._catalog.roots, key=_version_key))

    def check(self, document: object) -> Findings:
        """Schema errors; if there are none, the semantic errors and warnings (``semantics``).

        Semantic checks assume a schema-valid document, so a document with schema errors gets no
        semantic findings. Every message starts with the JSON path it concerns (``(root)`` for the
        document itself).
        """
        errors = self.schema_errors(document)
        if errors or not isinstance(document, Mapping):
            return Findings(errors=errors)
        return check_semantics(document)

    def errors(self, document: object) -> list[str]:
        """Every reason to reject ``document`` (schema, then semantic); empty when it is valid."""
        return self.check(document).errors

    def schema_errors(self, document: object) -> list[str]:
        """JSON Schema errors of ``document`` against the schema of its ``schema_version``."""
        if not isinstance(document, Mapping):
            return [f"(root): a workflow definition is a JSON object, not {json_type(document)}"]
        uri = self._schema_for(document)
        if isinstance(uri, list):
            return uri
        try:
            found = list(self._validators[uri].iter_errors(document))
        except Unresolvable as error:  # load_catalog checked every $ref: a bug if it happens
            raise SchemaConfigError(f"schema {uri}: cannot resolve {error}") from error
        found.sort(key=lambda error: (_path_key(error.absolute_path), error.message))
        return list(dict.fromkeys(_format(error) for error in found))

    def _schema_for(self, document: Mapping[str, Any]) -> str | list[str]:
        """The root schema URI for ``document``, or the error list explaining why there is none."""
        if self._catalog.every_version is not None:
            return self._catalog.every_version
        if "schema_version" not in document:
            return ["(root): 'schema_version' is a required property"]
        version = document["schema_version"]
        if not isinstance(version, str):
            return [f"schema_version: {version!r} is not of type 'string'"]
        uri = self._catalog.root_uri(version)
        if uri is None:
            known = ", ".join(self.versions or ())
            return [f"schema_version: unknown schema_version {version!r} (known: {known})"]
        return uri


# --- loading -------------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort "1.8" before "1.10" (numerically), and anything non-numeric after, by text."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.split("."))


def _version_folders(base: Path) -> dict[str, Path]:
    """``{version: folder}`` for every sub-folder of ``base`` holding a root schema."""
    if not base.is_dir():
        return {}
    return {child.name: child for child in sorted(base.iterdir()) if (child / ROOT_SCHEMA).is_file()}


def _override_folders(folder: Path) -> dict[str, Path]:
    direct = _version_folders(folder)
    nested = _version_folders(folder / "standard")
    both = sorted(direct.keys() & nested.keys(), key=_version_key)
    if both:
        raise SchemaConfigError(
            f"workflow schema folder {str(folder)!r}: version {both[0]} is in both "
            f"{str(direct[both[0]])!r} and {str(nested[both[0]])!r}"
        )
    return {**direct, **nested}


def _catalog_from_folders(folders: Mapping[str, Path], source: Path) -> SchemaCatalog:
    if not folders:
        raise SchemaConfigError(
            f"workflow schema folder {str(source)!r}: no <version>/{ROOT_SCHEMA} "
            f"nor standard/<version>/{ROOT_SCHEMA} in it"
        )
    loaded = _Resources()
    roots: dict[str, str] = {}
    for version, folder in folders.items():
        for path in sorted(folder.glob("*.json")):
            uri = loaded.add(path, _read_schema(path))
            if path.name == ROOT_SCHEMA:
                roots[version] = uri
    registry = loaded.registry()
    for uri in roots.values():
        _check_references(registry, uri, loaded.files)
    return SchemaCatalog(registry=registry, roots=roots)


def _catalog_from_file(path: Path) -> SchemaCatalog:
    loaded = _Resources()
    root = loaded.add(path, _read_schema(path))
    # Siblings are only candidates for the root's relative $refs: one that is not a usable schema
    # is skipped here, and only matters (as a dangling $ref, reported below) if it is referenced.
    for sibling in sorted(path.parent.glob("*.json")):
        if sibling.resolve() == path.resolve():
            continue
        try:
            loaded.add(sibling, _read_schema(sibling))
        except SchemaConfigError:
            continue
    registry = loaded.registry()
    _check_references(registry, root, loaded.files)
    return SchemaCatalog(registry=registry, roots={}, every_version=root)


def _read_schema(path: Path) -> dict[str, Any]:
    """Parse ``path`` and check it against its meta-schema (draft-07 unless it says otherwise)."""
    try:
        contents = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SchemaConfigError(f"workflow schema {str(path)!r}: cannot read it ({error})") from error
    if not isinstance(contents, dict):
        raise SchemaConfigError(f"workflow schema {str(path)!r}: not a JSON object")
    try:
        validators.validator_for(contents, default=Draft7Validator).check_schema(contents)
    except JsonSchemaError as error:
        raise SchemaConfigError(f"workflow schema {str(path)!r}: not a valid JSON Schema ({error.message})") from error
    if not isinstance(contents.get("$id"), str):
        # Without an $id, relative $refs would resolve against "" (nothing); the file's own URI
        # makes "parameter.schema.json" mean the sibling file, as a reader expects.
        contents = {"$id": path.resolve().as_uri(), **contents}
    return contents


class _Resources:
    """Schemas being collected for one registry, keyed by URI, refusing two files with one ``$id``."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource[Any]] = {}
        self.files: dict[str, Path] = {}

    def add(self, path: Path, contents: dict[str, Any]) -> str:
        """Register ``contents`` (read from ``path``) under its ``$id``; return that URI."""
        resource = Resource.from_contents(contents, default_specification=DRAFT7)
        uri = _without_fragment(resource.id() or path.resolve().as_uri())
        if uri in self.files and self.files[uri] != path:
            raise SchemaConfigError(
                f"workflow schema {str(path)!r}: $id {uri} is already used by {str(self.files[uri])!r}"
            )
        self._resources[uri] = resource
        self.files[uri] = path
        return uri

    def registry(self) -> Registry[Any]:
        """A crawled registry (anchors and embedded ``$id``s indexed) that never retrieves anything."""
        return Registry().with_resources(self._resources.items()).crawl()


# Keywords whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})


def _check_references(registry: Registry[Any], root: str, files: Mapping[str, Path]) -> None:
    """Resolve every ``$ref`` reachable from ``root``; raise ``SchemaConfigError`` on a dangling one."""
    pending = [root]
    visited: set[str] = set()
    while pending:
        document = pending.pop()
        if document in visited:
            continue
        visited.add(document)
        for base, reference in _references(registry.contents(document), document):
            target = _without_fragment(urljoin(base, reference))
            try:
                registry.resolver(base_uri=base).lookup(reference)
            except Unresolvable:
                where = files.get(document, document)
                raise SchemaConfigError(
                    f"workflow schema {str(where)!r}: $ref {reference!r} resolves to {target}, which no "
                    "loaded schema provides (schemas are never fetched over the network)"
                ) from None
            if target in files:
                pending.append(target)


def _references(node: object, base: str) -> Iterator[tuple[str, str]]:
    """``(base URI, $ref)`` for every reference under ``node``, following nested ``$id``s."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = _without_fragment(urljoin(base, node["$id"])) or base
        if isinstance(node.get("$ref"), str):
            yield base, node["$ref"]
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _references(value, base)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item, base)


def _without_fragment(uri: str) -> str:
    return urldefrag(uri).url


# --- messages ------------------------------------------------------------------------------------


def _path_key(path: Iterable[str | int]) -> tuple[tuple[int, int | str], ...]:
    # Numeric indexes sort numerically (steps[2] before steps[10]).
    return tuple((0, part) if isinstance(part, int) else (1, part) for part in path)


def json_path(path: Sequence[str | int] | Iterable[str | int]) -> str:
    """``("steps", 1, "parameters", 0)`` → ``"steps[1].parameters[0]"``; empty → ``"(root)"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _format(error: ValidationError) -> str:
    message = _shorten(_unquote_long_value(error))
    if error.context:
        # anyOf/oneOf: the summary alone doesn't say what to fix; the closest alternative does.
        closest = best_match(error.context)
        if closest is not None:
            message += f" (closest: {json_path(closest.absolute_path)}: {_shorten(closest.message)})"
    return f"{json_path(error.absolute_path)}: {message}"


def _unquote_long_value(error: ValidationError) -> str:
    # Most jsonschema messages start with repr(instance); a whole step or list there drowns the point.
    quoted = repr(error.instance)
    if len(quoted) > MAX_QUOTED_VALUE and error.message.startswith(quoted):
        return json_type(error.instance) + error.message[len(quoted) :]
    return error.message


def _shorten(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def json_type(value: object) -> str:
    """Name of a decoded JSON value's type with its article, for messages: "an array", "null"…"""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)
