"""Standard versions 1.9 to 1.13: what each adds to our schemas, and notification hooks normalised.

Every definition is written here, inline: the tests read nothing outside the project.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stepflow.api.definitions.service import definition_rights
from stepflow.definitions.hooks import (
    DEFAULT_EVENTS,
    EVENTS,
    HookError,
    hook_errors,
    normalise_hooks,
    unknown_credentials,
)
from stepflow.definitions.loader import InvalidFile, read_definition_folders
from stepflow.definitions.schema import BUILTIN_SCHEMAS, DefinitionValidator
from stepflow.settings import load_settings

VERSIONS: tuple[str, ...] = ("1.8", "1.9", "1.10", "1.11", "1.12", "1.13")
RIGHTS: list[dict[str, Any]] = [{"action": "view", "groups": ["administrator"]}]
ENDPOINT = "https://hooks.example.org/stepflow?source=mcai"


def later(version: str) -> tuple[str, ...]:
    """``version`` and the versions after it."""
    return VERSIONS[VERSIONS.index(version) :]


def earlier(version: str) -> tuple[str, ...]:
    """The versions before ``version``."""
    return VERSIONS[: VERSIONS.index(version)]


def minimal(version: str) -> dict[str, Any]:
    """The smallest valid definition of ``version``: rights only in 1.8, which requires them."""
    document: dict[str, Any] = {
        "schema_version": version,
        "identifier": "hooked_workflow",
        "label": "Hooked",
        "icon": "webhook",
        "version_major": 1,
        "version_minor": 0,
        "version_micro": 0,
        "tags": [],
        "parameters": [],
        "steps": [],
    }
    if version == "1.8":
        document["rights"] = copy.deepcopy(RIGHTS)
    return document


def step(step_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": "job_transfer",
        "label": f"Step {step_id}",
        "icon": "file_download",
        "parameters": [{"id": "action", "type": "string", "value": "copy"}],
        **extra,
    }


def hook(conditions: Any = None, **extra: Any) -> dict[str, Any]:
    """A hook; ``conditions`` None leaves the key out (the 1.10 shape)."""
    found: dict[str, Any] = {"label": "Newsroom", "endpoint": ENDPOINT, **extra}
    if conditions is not None:
        found["conditions"] = conditions
    return found


def with_hooks(version: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    document = minimal(version)
    document["notification_hooks"] = list(hooks)
    return document


# One hook in the shape of each version that has hooks.
SHAPES: dict[str, dict[str, Any]] = {
    "1.10": hook(credentials="NEWSROOM"),
    "1.11": hook(["workflow_error", "job_error"]),
    "1.12": hook(["workflow_completed"]),
    "1.13": hook({"workflow_completed": True, "job_error": True, "workflow_error": False}),
}


@pytest.fixture(scope="module")
def validator() -> DefinitionValidator:
    return DefinitionValidator()


# --- one schema per version ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_minimal_definition_of_each_version(validator: DefinitionValidator, version: str) -> None:
    findings = validator.check(minimal(version))
    assert findings.errors == [] and findings.warnings == []


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_schema_version_picks_the_schema(validator: DefinitionValidator, version: str) -> None:
    # A 1.8 document relabelled: the later schema judges it, and it has no `rights` any more.
    document = minimal("1.8")
    document["schema_version"] = version
    assert validator.errors(document) == ["(root): Additional properties are not allowed ('rights' was unexpected)"]


def test_rights_are_required_in_1_8_only(validator: DefinitionValidator) -> None:
    document = minimal("1.8")
    del document["rights"]
    assert validator.errors(document) == ["(root): 'rights' is a required property"]


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_rights_are_gone_from_1_9(validator: DefinitionValidator, version: str) -> None:
    document = minimal(version)
    document["rights"] = copy.deepcopy(RIGHTS)
    assert validator.errors(document) == ["(root): Additional properties are not allowed ('rights' was unexpected)"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("key", "value"),
    [("keep_source_paths", False), ("required", [0]), ("allow_failure", True)],
)
def test_our_step_extensions_in_every_version(
    validator: DefinitionValidator, version: str, key: str, value: Any
) -> None:
    document = minimal(version)
    document["steps"] = [step(0), step(1, **{key: value})]
    assert validator.check(document).errors == []


@pytest.mark.parametrize("version", VERSIONS)
def test_parameters_are_the_same_in_every_version(validator: DefinitionValidator, version: str) -> None:
    document = minimal(version)
    document["parameters"] = [
        {"id": "secret", "type": "credential", "store": "BACKEND", "value": "S3_SECRET"},
        {"id": "segments", "type": "array_of_media_segments", "value": [{"start": 0, "end": 9}]},
    ]
    assert validator.errors(document) == []
    document["parameters"] = [{"id": "secret", "type": "credential", "value": "s3_secret"}]
    assert validator.errors(document) == ["parameters[0].value: 's3_secret' does not match '^[A-Z0-9_]+$'"]
    document["parameters"] = [{"id": "ids", "type": "array_of_integers", "value": [1]}]
    assert validator.errors(document)[0].startswith("parameters[0].type: 'array_of_integers' is not one of")


@pytest.mark.parametrize("mode", ["workflow_one_for_one", "workflow_one_for_many"])
def test_workflow_modes_from_1_12(validator: DefinitionValidator, mode: str) -> None:
    for version in earlier("1.12"):
        document = minimal(version)
        document["steps"] = [step(0, mode=mode)]
        [error] = validator.errors(document)
        assert error.startswith(
            f"steps[0].mode: '{mode}' is not one of ['one_for_one', 'one_for_many', 'notification']"
        )
    for version in later("1.12"):
        document = minimal(version)
        document["steps"] = [step(0, mode=mode)]
        findings = validator.check(document)
        # Loaded, but StepFlow does not run these modes (ours A13): say so at load.
        assert findings.errors == []
        assert findings.warnings == [
            f"steps[0].mode: step 0 (job_transfer) has mode '{mode}', "
            "which StepFlow does not run: its jobs will end in error"
        ]


# --- notification hooks in the schemas -----------------------------------------------------------


@pytest.mark.parametrize("version", earlier("1.10"))
def test_no_hooks_before_1_10(validator: DefinitionValidator, version: str) -> None:
    assert validator.errors(with_hooks(version, SHAPES["1.10"])) == [
        "(root): Additional properties are not allowed ('notification_hooks' was unexpected)"
    ]


@pytest.mark.parametrize("version", ["1.10", "1.11", "1.12", "1.13"])
def test_each_version_takes_its_own_hook_shape_only(validator: DefinitionValidator, version: str) -> None:
    for shape, example in SHAPES.items():
        errors = validator.errors(with_hooks(version, example))
        same = shape == version or {shape, version} == {"1.11", "1.12"}
        assert (errors == []) is same, (shape, errors)


def test_hook_shape_errors(validator: DefinitionValidator) -> None:
    assert validator.errors(with_hooks("1.10", SHAPES["1.11"])) == [
        "notification_hooks[0]: Additional properties are not allowed ('conditions' was unexpected)"
    ]
    assert validator.errors(with_hooks("1.11", SHAPES["1.10"])) == [
        "notification_hooks[0]: 'conditions' is a required property"
    ]
    assert validator.errors(with_hooks("1.12", SHAPES["1.13"])) == [
        "notification_hooks[0].conditions: an object is not of type 'array'"
    ]
    assert validator.errors(with_hooks("1.13", SHAPES["1.12"])) == [
        "notification_hooks[0].conditions: ['workflow_completed'] is not of type 'object'"
    ]


@pytest.mark.parametrize("version", ["1.10", "1.11", "1.12", "1.13"])
@pytest.mark.parametrize("field", ["label", "endpoint"])
def test_hook_required_fields(validator: DefinitionValidator, version: str, field: str) -> None:
    example = copy.deepcopy(SHAPES[version])
    del example[field]
    assert validator.errors(with_hooks(version, example)) == [
        f"notification_hooks[0]: '{field}' is a required property"
    ]


@pytest.mark.parametrize("version", ["1.10", "1.13"])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("endpoint", "hooks.example.org/x", "'hooks.example.org/x' does not match"),
        ("endpoint", "ftp://hooks.example.org/x", "'ftp://hooks.example.org/x' does not match"),
        ("endpoint", "https:///path", "'https:///path' does not match"),
        ("endpoint", "https://host/a b", "'https://host/a b' does not match"),
        ("credentials", "", "'' does not match"),
        ("credentials", "MY KEY", "'MY KEY' does not match"),
        ("credentials", 3, "3 is not of type 'string'"),
        ("label", None, "None is not of type 'string'"),
    ],
)
def test_hook_endpoint_and_credentials(
    validator: DefinitionValidator, version: str, field: str, value: Any, message: str
) -> None:
    example = dict(SHAPES[version], **{field: value})
    [error] = validator.errors(with_hooks(version, example))
    assert error.startswith(f"notification_hooks[0].{field}: {message}")


@pytest.mark.parametrize("version", ["1.11", "1.12"])
def test_array_conditions(validator: DefinitionValidator, version: str) -> None:
    # workflow_aborted is our extension, in every shape.
    assert validator.errors(with_hooks(version, hook(list(EVENTS)))) == []
    assert validator.errors(with_hooks(version, hook([]))) == [
        "notification_hooks[0].conditions: [] should be non-empty"
    ]
    [error] = validator.errors(with_hooks(version, hook(["workflow_completed", "job_started"])))
    assert error.startswith("notification_hooks[0].conditions[1]: 'job_started' is not one of ['job_completed'")


def test_object_conditions(validator: DefinitionValidator) -> None:
    assert validator.errors(with_hooks("1.13", hook(dict.fromkeys(EVENTS, True)))) == []
    [error] = validator.errors(with_hooks("1.13", hook({"workflow_completed": True, "job_started": True})))
    assert error.startswith("notification_hooks[0].conditions: 'job_started' is not one of ['job_completed'")
    assert validator.errors(with_hooks("1.13", hook({"workflow_completed": "yes"}))) == [
        "notification_hooks[0].conditions.workflow_completed: 'yes' is not of type 'boolean'"
    ]


def test_a_hook_that_never_fires_is_a_warning(validator: DefinitionValidator) -> None:
    findings = validator.check(with_hooks("1.13", hook({"workflow_completed": False}), hook({})))
    assert findings.errors == []
    assert findings.warnings == [
        "notification_hooks[0]: hook 'Newsroom' has no condition set to true, it never fires",
        "notification_hooks[1]: hook 'Newsroom' has no condition set to true, it never fires",
    ]


# --- normalisation -------------------------------------------------------------------------------


def test_normalise_the_three_shapes() -> None:
    document = minimal("1.13")
    document["notification_hooks"] = [
        SHAPES["1.10"],
        hook(["workflow_error", "job_error", "workflow_error"]),
        hook({"workflow_completed": True, "job_error": True, "workflow_error": False}),
    ]
    assert normalise_hooks(document) == [
        {
            "label": "Newsroom",
            "endpoint": ENDPOINT,
            "credentials": "NEWSROOM",
            "events": ["workflow_aborted", "workflow_completed", "workflow_error"],
        },
        {"label": "Newsroom", "endpoint": ENDPOINT, "credentials": None, "events": ["job_error", "workflow_error"]},
        {"label": "Newsroom", "endpoint": ENDPOINT, "credentials": None, "events": ["job_error", "workflow_completed"]},
    ]
    assert list(DEFAULT_EVENTS) == normalise_hooks(with_hooks("1.10", hook()))[0]["events"]
    # Plain JSON: what is stored is what the function returns.
    assert json.loads(json.dumps(normalise_hooks(document))) == normalise_hooks(document)


def test_no_hooks_normalise_to_an_empty_list() -> None:
    assert normalise_hooks(minimal("1.8")) == []
    assert normalise_hooks(with_hooks("1.13")) == []


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (
            ["workflow_started"],
            "notification_hooks[0].conditions: unknown event 'workflow_started' (known: job_completed",
        ),
        ({"job_done": True}, "notification_hooks[0].conditions: unknown event 'job_done' (known: job_completed"),
        ({"job_done": False}, "notification_hooks[0].conditions: unknown event 'job_done' (known: job_completed"),
        ({"job_error": 1}, "notification_hooks[0].conditions.job_error: 1 is not a boolean"),
        ([], "notification_hooks[0].conditions: no event listed"),
        ([3], "notification_hooks[0].conditions: 3 is not an event name"),
        ("workflow_error", "notification_hooks[0].conditions: expected an array (1.11, 1.12) or an object (1.13)"),
    ],
)
def test_unknown_events_cannot_be_normalised(conditions: Any, message: str) -> None:
    document = with_hooks("1.13", dict(hook(), conditions=conditions))
    with pytest.raises(HookError) as raised:
        normalise_hooks(document)
    assert raised.value.errors[0].startswith(message)
    assert hook_errors(document) == raised.value.errors


@pytest.mark.parametrize(
    ("hook_fields", "message"),
    [
        ({"endpoint": "mailto:news@example.org"}, "notification_hooks[0].endpoint: 'mailto:news@example.org' is not"),
        ({"endpoint": "http://host:99999/x"}, "notification_hooks[0].endpoint: 'http://host:99999/x' is not"),
        ({"endpoint": None}, "notification_hooks[0]: 'endpoint' is required"),
        ({"credentials": "A B"}, "notification_hooks[0].credentials: 'A B' is not a credentials name"),
        ({"label": 4}, "notification_hooks[0].label: expected a string"),
    ],
)
def test_bad_endpoint_or_credentials_cannot_be_normalised(hook_fields: dict[str, Any], message: str) -> None:
    document = with_hooks("1.10", {k: v for k, v in {**hook(), **hook_fields}.items() if v is not None})
    [error] = hook_errors(document)
    assert error.startswith(message)


def test_hooks_must_be_a_list_of_objects() -> None:
    assert hook_errors({"notification_hooks": {"a": 1}}) == ["notification_hooks: expected an array of hooks"]
    assert hook_errors({"notification_hooks": ["x"]}) == ["notification_hooks[0]: a hook is an object"]


def test_unknown_credentials() -> None:
    hooks = normalise_hooks(with_hooks("1.10", hook(credentials="NEWSROOM"), hook(), hook(credentials="OTHER")))
    assert unknown_credentials(hooks, {"NEWSROOM"}) == [
        "notification_hooks[2].credentials: unknown notification credentials 'OTHER'"
    ]
    assert unknown_credentials(hooks, {"NEWSROOM", "OTHER"}) == []


# --- the loader ----------------------------------------------------------------------------------


def test_an_unknown_event_is_a_load_error_naming_the_file(tmp_path: Path, validator: DefinitionValidator) -> None:
    good = with_hooks("1.13", SHAPES["1.13"])
    bad = with_hooks("1.13", hook({"workflow_completed": True, "workflow_paused": True}))
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    report = read_definition_folders([tmp_path], validator)
    assert [loaded.document for loaded in report.loaded] == [good]
    [invalid] = report.invalid
    assert invalid.file == str(tmp_path / "bad.json")
    assert invalid.error.startswith("notification_hooks[0].conditions: 'workflow_paused' is not one of")


def test_a_looser_site_schema_still_refuses_unknown_events(tmp_path: Path) -> None:
    # A site schema as loose as the official 1.13 (`conditions` is any object): the semantic
    # check catches what the schema lets through.
    loose = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"notification_hooks": {"type": "array"}},
    }
    (tmp_path / "schema").mkdir()
    schema_file = tmp_path / "schema" / "workflow-definition.schema.json"
    schema_file.write_text(json.dumps(loose))
    folder = tmp_path / "definitions"
    folder.mkdir()
    bad = with_hooks("1.13", hook({"workflow_completed": True, "workflow_paused": True}))
    (folder / "bad.json").write_text(json.dumps(bad))
    report = read_definition_folders([folder], DefinitionValidator(schema_file))
    assert report.loaded == []
    assert report.invalid == [
        InvalidFile(
            file=str(folder / "bad.json"),
            error="notification_hooks[0].conditions: unknown event 'workflow_paused' (known: "
            "job_completed, job_error, workflow_aborted, workflow_completed, workflow_error)",
        )
    ]


def test_a_version_folder_stands_alone_as_an_override(tmp_path: Path) -> None:
    for path in (BUILTIN_SCHEMAS / "1.13").glob("*.json"):
        (tmp_path / "1.13").mkdir(exist_ok=True)
        (tmp_path / "1.13" / path.name).write_text(path.read_text())
    validator = DefinitionValidator(tmp_path)
    assert validator.versions == ("1.13",)
    assert validator.errors(with_hooks("1.13", SHAPES["1.13"])) == []


# --- rights of 1.9+ definitions ------------------------------------------------------------------


def test_rights_come_from_the_document_or_the_settings() -> None:
    settings = load_settings(
        {
            "STEPFLOW_DEFAULT_RIGHTS": json.dumps([{"action": "view", "groups": ["everyone"]}]),
            "STEPFLOW_RIGHTS_OVERRIDES": json.dumps(
                {"hooked_workflow": [{"action": "create", "groups": ["newsroom", "ops"]}]}
            ),
        }
    )
    assert definition_rights(minimal("1.8"), settings) == RIGHTS
    assert definition_rights(minimal("1.13"), settings) == [{"action": "create", "groups": ["newsroom", "ops"]}]
    other = dict(minimal("1.9"), identifier="other_workflow")
    assert definition_rights(other, settings) == [{"action": "view", "groups": ["everyone"]}]
    assert definition_rights(other, load_settings({})) == []
