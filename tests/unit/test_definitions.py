"""Workflow definitions: schema 1.8, semantic checks, schema overrides and the folder loader.

Every definition is written here, inline: the tests read nothing outside the project. The later
standard versions (1.9 to 1.13) and notification hooks are in ``test_definitions_versions.py``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from stepflow.definitions.loader import InvalidFile, LoadedDefinition, read_definition_folders
from stepflow.definitions.schema import BUILTIN_SCHEMAS, DefinitionValidator, SchemaConfigError, json_path
from stepflow.definitions.semantics import check_semantics

RIGHTS: list[dict[str, Any]] = [
    {"action": "view", "groups": ["administrator_view"]},
    {"action": "create", "groups": ["administrator_create"]},
]


def minimal() -> dict[str, Any]:
    """The smallest valid 1.8 definition: no parameter, no step."""
    return {
        "schema_version": "1.8",
        "identifier": "empty_workflow",
        "label": "Empty",
        "icon": "clear",
        "version_major": 0,
        "version_minor": 0,
        "version_micro": 1,
        "tags": [],
        "parameters": [],
        "steps": [],
        "rights": copy.deepcopy(RIGHTS),
    }


def step(step_id: int, name: str = "job_transfer", **extra: Any) -> dict[str, Any]:
    """A valid step with one string parameter; ``extra`` adds or replaces keys."""
    return {
        "id": step_id,
        "name": name,
        "label": f"Step {step_id}",
        "icon": "file_download",
        "parameters": [{"id": "action", "type": "string", "value": "copy"}],
        **extra,
    }


def realistic() -> dict[str, Any]:
    """A definition using every feature of 1.8 the engine reads, and our step extensions."""
    return {
        "schema_version": "1.8",
        "identifier": "speech_to_text",
        "label": "Transcription",
        "icon": "subtitles",
        "version_major": 1,
        "version_minor": 2,
        "version_micro": 3,
        "tags": ["speech_to_text", "audio"],
        "reference": "8f7c-external",
        "is_live": False,
        "rights": [
            {"action": "view", "groups": ["user_view", "administrator"]},
            {"action": "create", "groups": ["user_create"]},
            {"action": "retry", "groups": ["user_retry"]},
            {"action": "abort", "groups": ["user_abort"]},
            {"action": "delete", "groups": ["user_delete"]},
            {"action": "update", "groups": ["user_update"]},
        ],
        "start_parameters": [
            {"id": "audio_source_filename", "label": "Audio source", "type": "file", "accept": ".wav,.mp4"},
            {
                "id": "language",
                "label": "Language",
                "type": "choice",
                "default": "fr",
                "required": True,
                "items": [{"id": "fr", "label": "French"}, {"id": "en", "label": "English"}],
            },
            {"id": "threshold", "label": "Threshold", "type": "number", "default": 0.5, "step": 0.1},
            {"id": "note", "label": "Note", "type": "string", "icon": "notes", "work_dir": "/tmp"},
        ],
        "parameters": [
            {"id": "audio_source_filename", "type": "string", "value": "to_change.mp4"},
            {
                "id": "segments",
                "type": "array_of_media_segments",
                "value": [{"start": 0, "end": 99}, {"start": 100, "end": 199}],
            },
            {"id": "retries", "type": "integer", "default": 3},
        ],
        "steps": [
            {
                "id": 0,
                "name": "job_transfer",
                "label": "Download source elements",
                "icon": "file_download",
                "parameters": [
                    {"id": "source_paths", "type": "template", "value": "{audio_source_filename}"},
                    {"id": "source_hostname", "type": "credential", "store": "BACKEND", "value": "S3_STORAGE_HOSTNAME"},
                    {"id": "source_secret_key", "type": "credential", "default": "S3_SECRET", "value": "S3_SECRET"},
                ],
            },
            {
                "id": 1,
                "parent_ids": [0],
                "required_to_start": [0],
                "name": "job_ffmpeg",
                "label": "Convert audio",
                "icon": "queue_music",
                "multiple_jobs": "segments",
                "work_dir": "/data/work",
                "parameters": [
                    {"id": "command_template", "type": "string", "value": "ffmpeg -i {source_path} {destination_path}"},
                    {"id": "destination_filename", "type": "template", "value": "{source_path}.wav"},
                    {"id": "audio_channels", "type": "integer", "value": 1},
                    {"id": "overwrite", "type": "boolean", "default": True},
                    {"id": "input_filter", "type": "filter", "value": {"ends_with": [".wav", ".mp4"]}},
                    {"id": "options", "type": "extended", "value": {"codec": "pcm_s16le", "rates": [16000]}},
                ],
            },
            {
                "id": 2,
                "parent_ids": [1],
                "required_to_start": [1],
                "name": "job_speech_to_text",
                "label": "Speech to text",
                "icon": "text_fields",
                "mode": "one_for_many",
                "condition": "workflow.reference != nil",
                "allow_failure": True,
                "keep_source_paths": False,
                "required": [0],
                "skip_destination_path": True,
                "parameters": [
                    {"id": "audio", "type": "select_input", "value": {"ends_with": [".wav"]}},
                    {"id": "languages", "type": "array_of_strings", "value": ["fr", "en"]},
                    {"id": "requirements", "type": "requirements", "value": {"paths": ["/data/models/fr"]}},
                    {"id": "source_paths", "type": "array_of_templates", "value": ["{work_directory}/{workflow_id}"]},
                    {"id": "destination_path", "type": "template", "value": "{workflow_id}/transcript.json"},
                ],
            },
            {
                "id": 3,
                "parent_ids": [2],
                "required_to_start": [2],
                "name": "notify",
                "label": "Tell the newsroom",
                "icon": "notifications",
                "mode": "notification",
                "parameters": [
                    {"id": "url", "type": "string", "value": "https://example.org/hook"},
                    {"id": "body", "type": "template", "value": "{workflow_id} done"},
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def validator() -> DefinitionValidator:
    return DefinitionValidator()


VERSIONS: tuple[str, ...] = ("1.8", "1.9", "1.10", "1.11", "1.12", "1.13")


@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_schemas_are_draft07_with_our_ids(version: str) -> None:
    files = sorted((BUILTIN_SCHEMAS / version).glob("*.json"))
    # Only 1.8 has rights; every version folder stands alone (its $refs stay inside it).
    expected = ["parameter.schema.json", "rights.schema.json", "workflow-definition.schema.json"]
    assert [path.name for path in files] == (expected if version == "1.8" else [expected[0], expected[2]])
    for path in files:
        schema = json.loads(path.read_text())
        Draft7Validator.check_schema(schema)
        assert schema["$id"] == f"https://stepflow.local/standard/{version}/{path.name}"


def test_versions_come_from_the_folders(validator: DefinitionValidator) -> None:
    assert validator.versions == VERSIONS


def test_minimal_definition_is_valid(validator: DefinitionValidator) -> None:
    findings = validator.check(minimal())
    assert findings.errors == [] and findings.warnings == []


def test_realistic_definition_is_valid(validator: DefinitionValidator) -> None:
    findings = validator.check(realistic())
    assert findings.errors == []
    assert findings.warnings == []


@pytest.mark.parametrize(
    "field",
    [
        "schema_version",
        "identifier",
        "label",
        "icon",
        "version_major",
        "version_minor",
        "version_micro",
        "tags",
        "parameters",
        "steps",
        "rights",
    ],
)
def test_each_required_top_level_field(validator: DefinitionValidator, field: str) -> None:
    document = minimal()
    del document[field]
    assert f"(root): '{field}' is a required property" in validator.errors(document)


@pytest.mark.parametrize("field", ["id", "name", "label", "icon", "parameters"])
def test_each_required_step_field(validator: DefinitionValidator, field: str) -> None:
    document = minimal()
    document["steps"] = [step(0), step(1)]
    del document["steps"][1][field]
    assert validator.errors(document) == [f"steps[1]: '{field}' is a required property"]


@pytest.mark.parametrize("field", ["id", "type"])
def test_each_required_parameter_field(validator: DefinitionValidator, field: str) -> None:
    document = minimal()
    document["parameters"] = [{"id": "count", "type": "integer", "value": 1}]
    del document["parameters"][0][field]
    # Only the missing key: the type-specific rules don't fire on a parameter without a type.
    assert validator.errors(document) == [f"parameters[0]: '{field}' is a required property"]


@pytest.mark.parametrize("field", ["action", "groups"])
def test_each_required_right_field(validator: DefinitionValidator, field: str) -> None:
    document = minimal()
    del document["rights"][1][field]
    assert validator.errors(document) == [f"rights[1]: '{field}' is a required property"]


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        ("identifier", "Speech-To-Text", "identifier"),
        ("identifier", "", "identifier"),
        ("icon", "Subtitles", "icon"),
        ("step_name", "jobTransfer", "steps[0].name"),
        ("parameter_id", "source-paths", "steps[0].parameters[0].id"),
        ("store", "backend", "steps[0].parameters[0].store"),
    ],
)
def test_identifier_patterns(validator: DefinitionValidator, where: str, value: str, path: str) -> None:
    document = minimal()
    document["steps"] = [step(0)]
    if where == "step_name":
        document["steps"][0]["name"] = value
    elif where == "parameter_id":
        document["steps"][0]["parameters"][0]["id"] = value
    elif where == "store":
        document["steps"][0]["parameters"][0]["store"] = value
    else:
        document[where] = value
    errors = validator.errors(document)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}: {value!r} does not match")


GOOD_VALUES: list[tuple[str, Any]] = [
    ("string", "text"),
    ("integer", -3),
    ("boolean", False),
    ("credential", "S3_KEY_2"),
    ("array_of_strings", ["a", "b"]),
    ("array_of_templates", ["{workflow_id}/x"]),
    ("template", "{source_path}.wav"),
    ("filter", {"ends_with": [".mp4"]}),
    ("select_input", {"ends_with": []}),
    ("requirements", {"paths": ["/a"]}),
    ("array_of_media_segments", [{"start": 0, "end": 10}]),
    ("extended", {"any": ["thing"]}),
    ("extended", [1, "two"]),
]

BAD_VALUES: list[tuple[str, Any, str]] = [
    ("string", 1, "1 is not of type 'string'"),
    ("integer", "16000", "'16000' is not of type 'integer'"),
    ("integer", 1.5, "1.5 is not of type 'integer'"),
    ("boolean", "true", "'true' is not of type 'boolean'"),
    ("credential", "s3_key", "'s3_key' does not match '^[A-Z0-9_]+$'"),
    ("array_of_strings", ["a", 2], "2 is not of type 'string'"),
    ("array_of_templates", "{x}", "'{x}' is not of type 'array'"),
    ("template", ["{x}"], "['{x}'] is not of type 'string'"),
    ("filter", {"ends_with": ".mp4"}, "'.mp4' is not of type 'array'"),
    ("select_input", [".wav"], "['.wav'] is not of type 'object'"),
    ("requirements", {"paths": [1]}, "1 is not of type 'string'"),
    ("array_of_media_segments", [{"start": "0", "end": 1}], "'0' is not of type 'integer'"),
    ("extended", "text", "'text' is not of type 'object', 'array'"),
]


@pytest.mark.parametrize("key", ["value", "default"])
@pytest.mark.parametrize(("kind", "value"), GOOD_VALUES)
def test_type_specific_values_accepted(validator: DefinitionValidator, key: str, kind: str, value: Any) -> None:
    document = minimal()
    document["parameters"] = [{"id": "param", "type": kind, key: value}]
    assert validator.errors(document) == []


@pytest.mark.parametrize("key", ["value", "default"])
@pytest.mark.parametrize(("kind", "value", "message"), BAD_VALUES)
def test_type_specific_values_rejected(
    validator: DefinitionValidator, key: str, kind: str, value: Any, message: str
) -> None:
    document = minimal()
    document["steps"] = [step(0), step(1)]
    document["steps"][1]["parameters"].append({"id": "param", "type": kind, key: value})
    errors = validator.errors(document)
    assert len(errors) == 1
    path, _, text = errors[0].partition(": ")
    assert path.startswith(f"steps[1].parameters[1].{key}")
    assert text == message


def test_unknown_parameter_type(validator: DefinitionValidator) -> None:
    document = minimal()
    # Not in the 1.8 enum, although the engine would pass it through (engine §2.3).
    document["parameters"] = [{"id": "ids", "type": "array_of_integers", "value": [1]}]
    [error] = validator.errors(document)
    assert error.startswith("parameters[0].type: 'array_of_integers' is not one of ['array_of_media_segments'")


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("top", "(root): Additional properties are not allowed ('timeout' was unexpected)"),
        ("step", "steps[0]: Additional properties are not allowed ('timeout' was unexpected)"),
        ("parameter", "steps[0].parameters[0]: Additional properties are not allowed ('timeout' was unexpected)"),
        ("start_parameter", "start_parameters[0]: Additional properties are not allowed ('timeout' was unexpected)"),
    ],
)
def test_unknown_keys_rejected(validator: DefinitionValidator, place: str, expected: str) -> None:
    document = minimal()
    document["steps"] = [step(0)]
    document["start_parameters"] = [{"id": "file", "label": "File", "type": "file"}]
    target = {
        "top": document,
        "step": document["steps"][0],
        "parameter": document["steps"][0]["parameters"][0],
        "start_parameter": document["start_parameters"][0],
    }[place]
    target["timeout"] = 10
    assert validator.errors(document) == [expected]


@pytest.mark.parametrize(
    ("key", "value"),
    [("keep_source_paths", False), ("keep_source_paths", True), ("required", [0]), ("allow_failure", True)],
)
def test_step_extensions_accepted(validator: DefinitionValidator, key: str, value: Any) -> None:
    document = minimal()
    document["steps"] = [step(0), step(1, **{key: value})]
    assert validator.check(document).errors == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("keep_source_paths", "no", "steps[0].keep_source_paths: 'no' is not of type 'boolean'"),
        ("required", ["0"], "steps[0].required[0]: '0' is not of type 'integer'"),
        ("allow_failure", 1, "steps[0].allow_failure: 1 is not of type 'boolean'"),
        (
            "mode",
            "one_for_all",
            "steps[0].mode: 'one_for_all' is not one of ['one_for_one', 'one_for_many', 'notification']",
        ),
        ("parent_ids", [0.5], "steps[0].parent_ids[0]: 0.5 is not of type 'integer'"),
        ("condition", 0, "steps[0].condition: 0 is not of type 'string'"),
    ],
)
def test_step_field_types(validator: DefinitionValidator, key: str, value: Any, message: str) -> None:
    document = minimal()
    document["steps"] = [step(0, **{key: value})]
    assert validator.errors(document) == [message]


def test_rights_constraints(validator: DefinitionValidator) -> None:
    document = minimal()
    document["rights"] = [{"action": "pause", "groups": ["ops"]}, {"action": "view", "groups": ["-"]}]
    errors = validator.errors(document)
    assert errors[0].startswith("rights[0].action: 'pause' is not one of ['abort', 'create'")
    assert errors[1] == "rights[1].groups[0]: '-' does not match '\\\\w+'"
    document["rights"] = {"view": ["ops"]}
    assert validator.errors(document) == ["rights: {'view': ['ops']} is not of type 'array'"]


def test_errors_are_sorted_by_path_numerically(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(index) for index in range(11)]
    document["steps"][10]["icon"] = 1
    document["steps"][2]["icon"] = 2
    assert validator.errors(document) == [
        "steps[2].icon: 2 is not of type 'string'",
        "steps[10].icon: 1 is not of type 'string'",
    ]


def test_long_values_are_not_quoted(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [list(range(100))]
    assert validator.errors(document) == ["steps[0]: an array is not of type 'object'"]


def test_json_path() -> None:
    assert json_path([]) == "(root)"
    assert json_path(["steps", 1, "parameters", 0, "value"]) == "steps[1].parameters[0].value"


# --- schema_version ------------------------------------------------------------------------------


def test_unknown_schema_version_is_named(validator: DefinitionValidator) -> None:
    document = minimal()
    document["schema_version"] = "1.7"
    assert validator.errors(document) == [
        "schema_version: unknown schema_version '1.7' (known: 1.8, 1.9, 1.10, 1.11, 1.12, 1.13)"
    ]


def test_non_string_schema_version(validator: DefinitionValidator) -> None:
    document = minimal()
    document["schema_version"] = 1.8
    assert validator.errors(document) == ["schema_version: 1.8 is not of type 'string'"]


def test_document_must_be_an_object(validator: DefinitionValidator) -> None:
    assert validator.errors([minimal()]) == ["(root): a workflow definition is a JSON object, not an array"]


# --- semantics -----------------------------------------------------------------------------------


def test_duplicate_step_ids(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(0), step(1, "job_ffmpeg"), step(1, "job_speech")]
    assert validator.errors(document) == [
        "steps[2]: duplicate step id 1 (job_speech), already used by steps[1] (job_ffmpeg)"
    ]


def test_cycle(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [
        step(0),
        step(1, "job_a", parent_ids=[0, 3]),
        step(2, "job_b", required_to_start=[1]),
        step(3, "job_c", parent_ids=[2]),
    ]
    assert validator.errors(document) == [
        "steps[1]: cycle in parent_ids/required_to_start: 1 (job_a) -> 3 (job_c) -> 2 (job_b) -> 1 (job_a)"
    ]


def test_self_reference_is_a_cycle(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(0), step(5, "job_a", required_to_start=[5])]
    assert validator.errors(document) == ["steps[1]: cycle in parent_ids/required_to_start: 5 (job_a) -> 5 (job_a)"]


def test_two_separate_cycles_are_both_reported() -> None:
    document = minimal()
    document["steps"] = [
        step(0, parent_ids=[1]),
        step(1, parent_ids=[0]),
        step(2, parent_ids=[3]),
        step(3, required_to_start=[2]),
    ]
    assert [error.split(":")[0] for error in check_semantics(document).errors] == ["steps[0]", "steps[2]"]


def test_a_long_chain_is_no_cycle() -> None:
    document = minimal()
    document["steps"] = [step(0)] + [step(index, parent_ids=[index - 1]) for index in range(1, 3000)]
    assert check_semantics(document).errors == []


def test_parameter_without_value_or_default(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(0), step(7, "job_ffmpeg")]
    document["steps"][1]["parameters"].append({"id": "audio_channels", "type": "integer"})
    assert validator.errors(document) == [
        "steps[1].parameters[1]: step 7 (job_ffmpeg) parameter audio_channels has no value or default"
    ]


def test_explicit_null_value_counts_as_a_value(validator: DefinitionValidator) -> None:
    document = minimal()
    # The effective value is `value` when the key is present, even null (engine §2.3); 1.8's
    # type-specific rules would reject null for most types, `extended` too, so only the semantic
    # check is exercised here.
    document["steps"] = [step(0)]
    document["steps"][0]["parameters"].append({"id": "extra", "type": "string", "value": None})
    assert check_semantics(document).errors == []


def test_unknown_step_ids_are_warnings(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(0), step(1, parent_ids=[0, 9], required_to_start=[9, 9], required=[4])]
    findings = validator.check(document)
    assert findings.errors == []
    assert findings.warnings == [
        "steps[1].parent_ids: step 1 (job_transfer) refers to unknown step id 9",
        "steps[1].required_to_start: step 1 (job_transfer) refers to unknown step id 9",
        "steps[1].required: step 1 (job_transfer) refers to unknown step id 4",
    ]


def test_multiple_jobs_must_name_a_segments_parameter(validator: DefinitionValidator) -> None:
    document = minimal()
    document["parameters"] = [{"id": "segments", "type": "array_of_strings", "value": []}]
    document["steps"] = [step(0, multiple_jobs="segments")]
    findings = validator.check(document)
    assert findings.errors == []
    assert findings.warnings == [
        "steps[0].multiple_jobs: step 0 (job_transfer) refers to 'segments', "
        "which is not a workflow parameter of type array_of_media_segments"
    ]


def test_semantics_wait_for_a_schema_valid_document(validator: DefinitionValidator) -> None:
    document = minimal()
    document["steps"] = [step(0), step(0)]
    document["label"] = 1
    assert validator.check(document).errors == ["label: 1 is not of type 'string'"]


# --- the loader ----------------------------------------------------------------------------------


def write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_loader_sorts_files_into_loaded_and_invalid(tmp_path: Path, validator: DefinitionValidator) -> None:
    folder = tmp_path / "definitions"
    warned = realistic()
    warned["steps"][3]["parent_ids"] = [2, 42]
    write(folder / "b_valid.json", warned)
    write(folder / "a_minimal.json", minimal())
    bad = minimal()
    del bad["identifier"]
    bad["icon"] = "Bad"
    write(folder / "c_invalid.json", bad)
    write(folder / "d_broken.json", '{"schema_version": "1.8",')
    write(folder / "e_array.json", [minimal()])
    write(folder / "f_nan.json", '{"value": NaN}')
    write(folder / "notes.txt", "not a definition")
    write(folder / "other.file", "{}")
    write(folder / ".hidden.json", "garbage")
    write(folder / "nested" / "deeper.json", minimal())
    (folder / "folder.json").mkdir()

    report = read_definition_folders([folder], validator)

    assert report.loaded == [
        LoadedDefinition(file=str(folder / "a_minimal.json"), document=minimal(), warnings=[]),
        LoadedDefinition(
            file=str(folder / "b_valid.json"),
            document=warned,
            warnings=["steps[3].parent_ids: step 3 (notify) refers to unknown step id 42"],
        ),
    ]
    assert report.invalid == [
        InvalidFile(
            file=str(folder / "c_invalid.json"),
            error="(root): 'identifier' is a required property; icon: 'Bad' does not match '^[a-z_]+$'",
        ),
        InvalidFile(
            file=str(folder / "d_broken.json"),
            error="not valid JSON: Expecting property name enclosed in double quotes (line 1, column 26)",
        ),
        InvalidFile(file=str(folder / "e_array.json"), error="not a JSON object but an array"),
        InvalidFile(file=str(folder / "f_nan.json"), error="not valid JSON: NaN is not a JSON value"),
    ]


def test_loader_reads_folders_in_the_given_order(tmp_path: Path, validator: DefinitionValidator) -> None:
    first, second = tmp_path / "z_first", tmp_path / "a_second"
    one, two = minimal(), minimal()
    two["version_micro"] = 2
    write(first / "x.json", one)
    write(second / "a.json", two)
    report = read_definition_folders([first, second], validator)
    assert [loaded.file for loaded in report.loaded] == [str(first / "x.json"), str(second / "a.json")]


def test_loader_reports_a_missing_folder(tmp_path: Path, validator: DefinitionValidator) -> None:
    missing = tmp_path / "nowhere"
    report = read_definition_folders([missing], validator)
    assert report.loaded == []
    assert report.invalid == [InvalidFile(file=str(missing), error="cannot list folder: No such file or directory")]


def test_loader_caps_the_error_line(tmp_path: Path, validator: DefinitionValidator) -> None:
    write(tmp_path / "empty.json", {})
    [invalid] = read_definition_folders([tmp_path], validator).invalid
    # {} only lacks schema_version as far as the validator can tell: one message.
    assert invalid.error == "(root): 'schema_version' is a required property"
    # Ten missing fields and an unknown one: eleven errors, ten shown.
    write(tmp_path / "empty.json", {"schema_version": "1.8", "extra": 1})
    [invalid] = read_definition_folders([tmp_path], validator).invalid
    parts = invalid.error.split("; ")
    assert parts[0] == "(root): 'icon' is a required property"
    assert parts[-1] == "… and 1 more"
    assert len(parts) == 11


def test_loader_accepts_a_byte_order_mark(tmp_path: Path, validator: DefinitionValidator) -> None:
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(minimal()).encode())
    assert [loaded.document for loaded in read_definition_folders([tmp_path], validator).loaded] == [minimal()]


# --- schema overrides (STEPFLOW_WORKFLOW_SCHEMA) -------------------------------------------------

# A tiny stand-in for a standard: the root requires a `name` and refers to a sibling file by a
# relative $ref, as the official schemas do.
TINY_ROOT: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["schema_version", "name"],
    "properties": {"schema_version": {"type": "string"}, "name": {"$ref": "name.schema.json"}},
}
TINY_NAME: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "string",
    "pattern": "^[a-z]+$",
}


def tiny_standard(folder: Path, version: str = "1.8", with_ids: bool = False) -> None:
    root, name = copy.deepcopy(TINY_ROOT), copy.deepcopy(TINY_NAME)
    if with_ids:
        root["$id"] = f"https://example.org/standard/{version}/workflow-definition.schema.json"
        name["$id"] = f"https://example.org/standard/{version}/name.schema.json"
    write(folder / version / "workflow-definition.schema.json", root)
    write(folder / version / "name.schema.json", name)


def test_override_file_serves_every_version(tmp_path: Path) -> None:
    tiny_standard(tmp_path)
    validator = DefinitionValidator(tmp_path / "1.8" / "workflow-definition.schema.json")
    assert validator.versions is None
    assert validator.errors({"schema_version": "1.8", "name": "abc"}) == []
    assert validator.errors({"schema_version": "9.9", "name": "abc"}) == []
    assert validator.errors({"schema_version": "1.8", "name": "ABC"}) == ["name: 'ABC' does not match '^[a-z]+$'"]


@pytest.mark.parametrize("layout", ["direct", "standard"])
@pytest.mark.parametrize("with_ids", [False, True])
def test_override_folder_layouts(tmp_path: Path, layout: str, with_ids: bool) -> None:
    base = tmp_path if layout == "direct" else tmp_path / "standard"
    tiny_standard(base, "1.8", with_ids)
    tiny_standard(base, "1.10", with_ids)
    validator = DefinitionValidator(tmp_path)
    assert validator.versions == ("1.8", "1.10")
    assert validator.errors({"schema_version": "1.10", "name": "abc"}) == []
    assert validator.errors({"schema_version": "1.8"}) == ["(root): 'name' is a required property"]
    assert validator.errors({"schema_version": "1.9", "name": "abc"}) == [
        "schema_version: unknown schema_version '1.9' (known: 1.8, 1.10)"
    ]


def test_override_folder_with_a_version_twice(tmp_path: Path) -> None:
    tiny_standard(tmp_path)
    tiny_standard(tmp_path / "standard")
    with pytest.raises(SchemaConfigError, match="version 1.8 is in both"):
        DefinitionValidator(tmp_path)


def test_override_folder_without_schemas(tmp_path: Path) -> None:
    with pytest.raises(SchemaConfigError, match="no <version>/workflow-definition.schema.json"):
        DefinitionValidator(tmp_path)


def test_override_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(SchemaConfigError, match="no such file or folder"):
        DefinitionValidator(tmp_path / "missing.json")


def test_a_dangling_ref_is_never_fetched(tmp_path: Path) -> None:
    root = copy.deepcopy(TINY_ROOT)
    root["$id"] = "https://example.org/standard/1.8/workflow-definition.schema.json"
    root["properties"]["rights"] = {"$ref": "rights.schema.json#"}
    write(tmp_path / "1.8" / "workflow-definition.schema.json", root)
    write(
        tmp_path / "1.8" / "name.schema.json", {**TINY_NAME, "$id": "https://example.org/standard/1.8/name.schema.json"}
    )
    with pytest.raises(SchemaConfigError, match=r"rights.schema.json.*never fetched over the network"):
        DefinitionValidator(tmp_path)


def test_an_override_that_is_not_a_schema(tmp_path: Path) -> None:
    write(tmp_path / "1.8" / "workflow-definition.schema.json", {"type": "no such type"})
    with pytest.raises(SchemaConfigError, match="not a valid JSON Schema"):
        DefinitionValidator(tmp_path)
    write(tmp_path / "1.8" / "workflow-definition.schema.json", "{")
    with pytest.raises(SchemaConfigError, match="cannot read it"):
        DefinitionValidator(tmp_path)


def test_the_builtin_folder_as_an_override(tmp_path: Path) -> None:
    # The built-in layout is the override layout: copying it is how a site pins or patches one.
    for path in (BUILTIN_SCHEMAS / "1.8").glob("*.json"):
        write(tmp_path / "standard" / "1.8" / path.name, path.read_text())
    validator = DefinitionValidator(tmp_path)
    assert validator.check(realistic()).errors == []
