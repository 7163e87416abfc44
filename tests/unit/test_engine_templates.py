"""``{name}`` templates: bindings and rendering (engine.md §6.1, helpers_test T1–T5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stepflow.engine.templates import WorkflowContext, bindings, effective_value, extension, render

WD = "/test_work_dir"
NOW = datetime(2019, 12, 5, 11, 41, 40, tzinfo=UTC)
REFERENCE = "110e8400-e29b-11d4-a716-446655440000"
STEP = {"id": 0, "name": "job_step", "parameters": []}
SOURCE = "source_folder/filename.ttml"
WORKFLOW_PARAMETERS = [
    {"id": "source_prefix", "type": "string", "value": "/343079/http"},
    {"id": "title", "type": "string", "value": "content_title"},
]


def context(parameters: list[dict[str, Any]] | None = None, **overrides: Any) -> WorkflowContext:
    values: dict[str, Any] = {
        "workflow_id": 666,
        "reference": REFERENCE,
        "parameters": parameters or [],
        "work_directory": WD,
        "now": NOW,
    }
    values.update(overrides)
    return WorkflowContext(**values)


def rendered(template: str, ctx: WorkflowContext | None = None, step: dict[str, Any] = STEP, source: Any = None) -> str:
    return render(template, bindings(ctx or context(), step, source))


# ---------------------------------------------------------------- helpers_test T1–T5


def test_t1_filename() -> None:
    assert (
        rendered("{work_directory}/{date_time}/{filename}", source=SOURCE)
        == "/test_work_dir/2019_12_05__11_41_40/filename.ttml"
    )


def test_t2_name_and_extension() -> None:
    assert (
        rendered("{work_directory}/{date_time}/{name}{extension}", source=SOURCE)
        == "/test_work_dir/2019_12_05__11_41_40/filename.ttml"
    )


def test_t3_workflow_parameters() -> None:
    ctx = context(WORKFLOW_PARAMETERS)
    assert (
        rendered("{work_directory}/{title}/{name}{extension}", ctx, source=SOURCE)
        == "/test_work_dir/content_title/filename.ttml"
    )


def test_t4_source_list_binding() -> None:
    """T4 uses an EEx expression; the plain binding of a list renders as the concatenation."""
    sources = ["source_folder/filename.ttml", "source_folder/filename.mp4"]
    names = bindings(context(WORKFLOW_PARAMETERS), STEP, sources)
    assert names["source_paths"] == sources
    assert "source_path" not in names and "filename" not in names
    assert (
        render("{title}:{source_paths}", names) == "content_title:source_folder/filename.ttmlsource_folder/filename.mp4"
    )
    assert render("{source_path}|{filename}", names) == "{source_path}|{filename}"


def test_t5_step_work_dir() -> None:
    step = {**STEP, "work_dir": "/custom/work_dir"}
    ctx = context(WORKFLOW_PARAMETERS)
    assert (
        rendered("{work_directory}/{title}/{name}{extension}", ctx, step, SOURCE)
        == "/custom/work_dir/content_title/filename.ttml"
    )


# ---------------------------------------------------------------- built-in names


def test_builtin_names() -> None:
    names = bindings(context(), STEP)
    assert names["workflow_id"] == 666
    assert render("#{workflow_id} {workflow_reference} {step_name} {work_directory}", names) == (
        f"#666 {REFERENCE} job_step /test_work_dir"
    )


def test_missing_reference_renders_empty() -> None:
    assert rendered("[{workflow_reference}]", context(reference=None)) == "[]"


def test_work_directory_is_used_as_is() -> None:
    assert rendered("{work_directory}|", context(work_directory="/wd/")) == "/wd/|"
    assert rendered("{work_directory}|", context(work_directory="")) == "|"


def test_dates_are_utc() -> None:
    assert rendered("{date_time} {date}") == "2019_12_05__11_41_40 2019_12_05"
    paris = datetime(2021, 6, 1, 0, 20, 30, tzinfo=timezone(timedelta(hours=2)))
    assert rendered("{date_time} {date}", context(now=paris)) == "2021_05_31__22_20_30 2021_05_31"


def test_naive_now_is_taken_as_utc() -> None:
    assert rendered("{date_time}", context(now=datetime(2021, 6, 1, 10, 20, 30))) == "2021_06_01__10_20_30"


# ---------------------------------------------------------------- source bindings


@pytest.mark.parametrize(
    ("source", "filename", "ext", "name"),
    [
        ("source_folder/filename.ttml", "filename.ttml", ".ttml", "filename"),
        ("/a/b/archive.tar.gz", "archive.tar.gz", ".gz", "archive.tar"),
        ("/a/b.dir/noext", "noext", "", "noext"),
        ("/home/.bashrc", ".bashrc", "", ".bashrc"),
        ("plain.mov", "plain.mov", ".mov", "plain"),
        ("s3://bucket/key/clip.MP4", "clip.MP4", ".MP4", "clip"),
    ],
)
def test_source_string_bindings(source: str, filename: str, ext: str, name: str) -> None:
    names = bindings(context(), STEP, source)
    assert (names["source_path"], names["filename"], names["extension"], names["name"]) == (source, filename, ext, name)
    assert "source_paths" not in names
    assert render("{source_path}|{filename}|{name}|{extension}", names) == f"{source}|{filename}|{name}|{ext}"


def test_extension_helper() -> None:
    assert extension("a/b.c/d") == ""
    assert extension("x.") == "."
    assert extension("dir/.hidden.txt") == ".txt"


def test_no_source_leaves_source_names_literal() -> None:
    names = bindings(context(), STEP)
    for key in ("source_path", "source_paths", "filename", "extension", "name"):
        assert key not in names
    assert render("{source_path}/{name}{extension}", names) == "{source_path}/{name}{extension}"


def test_empty_source_list_is_bound() -> None:
    assert rendered("[{source_paths}]", source=[]) == "[]"


# ---------------------------------------------------------------- workflow parameters


@pytest.mark.parametrize(
    ("parameter", "text"),
    [
        ({"type": "string", "value": "abc"}, "abc"),
        ({"type": "integer", "value": 5}, "5"),
        ({"type": "integer", "value": -12}, "-12"),
        ({"type": "array_of_strings", "value": ["a", "b"]}, '["a", "b"]'),
        ({"type": "array_of_strings", "value": []}, "[]"),
        ({"type": "array_of_integers", "value": [1, 2, 3]}, "[1, 2, 3]"),
        ({"type": "string", "value": None}, "nil"),
        ({"type": "string", "default": "from_default"}, "from_default"),
        ({"type": "integer", "default": 7}, "7"),
        ({"type": "string", "value": None, "default": "ignored"}, "nil"),
    ],
)
def test_workflow_parameters_print_with_inspect(parameter: dict[str, Any], text: str) -> None:
    """Q12: the value keeps its JSON type; only ``{p}`` prints it as the original's inspect did."""
    names = bindings(context([{"id": "p", **parameter}]), STEP)
    assert names["p"] == effective_value({"id": "p", **parameter})
    assert names.text("p") == text
    assert render("<{p}>", names) == f"<{text}>"


@pytest.mark.parametrize(
    "kind", ["boolean", "credential", "template", "array_of_templates", "filter", "array_of_media_segments"]
)
def test_other_workflow_parameter_types_are_not_bindings(kind: str) -> None:
    assert rendered("{p}", context([{"id": "p", "type": kind, "value": "X"}])) == "{p}"


def test_last_workflow_parameter_with_an_id_wins() -> None:
    parameters = [{"id": "lang", "type": "string", "value": "fr"}, {"id": "lang", "type": "string", "value": "en"}]
    assert rendered("{lang}", context(parameters)) == "en"


def test_builtins_override_workflow_parameters() -> None:
    parameters = [{"id": "workflow_id", "type": "string", "value": "x"}, {"id": "date", "type": "string", "value": "y"}]
    assert rendered("{workflow_id} {date}", context(parameters)) == "666 2019_12_05"


def test_source_overrides_workflow_parameters() -> None:
    parameters = [{"id": "filename", "type": "string", "value": "from_workflow"}]
    assert rendered("{filename}", context(parameters), source="a/b.mov") == "b.mov"
    assert rendered("{filename}", context(parameters)) == "from_workflow"


# ---------------------------------------------------------------- step parameters


def test_step_parameters_override_everything_and_keep_their_type() -> None:
    step = {
        "id": 3,
        "name": "job_x",
        "parameters": [
            {"id": "workflow_id", "type": "integer", "value": 9},
            {"id": "title", "type": "string", "value": "step_title"},
            {"id": "filename", "type": "string", "default": "step_file"},
            {"id": "rate", "type": "integer", "value": 16000},
        ],
    }
    names = bindings(context(WORKFLOW_PARAMETERS), step, "in/a.mov")
    assert names["workflow_id"] == 9 and names["rate"] == 16000
    assert render("{workflow_id}/{title}/{filename}/{rate}", names) == "9/step_title/step_file/16000"


@pytest.mark.parametrize("kind", ["boolean", "credential", "template", "array_of_strings", "array_of_templates"])
def test_other_step_parameter_types_are_not_bindings(kind: str) -> None:
    step = {"id": 0, "name": "job_step", "parameters": [{"id": "title", "type": kind, "value": "X"}]}
    assert rendered("{title}", context(WORKFLOW_PARAMETERS), step) == "content_title"


def test_step_null_value_renders_empty() -> None:
    step = {"id": 0, "name": "job_step", "parameters": [{"id": "opt", "type": "string", "value": None}]}
    assert rendered("[{opt}]", step=step) == "[]"


# ---------------------------------------------------------------- render


def test_unknown_names_stay_literal() -> None:
    assert (
        rendered("{language}/{job_id}/{step_id}/{epoch}/{workflow_id}") == "{language}/{job_id}/{step_id}/{epoch}/666"
    )


def test_not_a_name_stays_literal() -> None:
    assert rendered("{ workflow_id } {1x} {} {{workflow_id}}") == "{ workflow_id } {1x} {} {666}"


def test_json_body_template() -> None:
    """N2's body: `{"workflow_id": {workflow_id}}` → `{"workflow_id": W}`."""
    assert rendered('{"workflow_id": {workflow_id}}') == '{"workflow_id": 666}'


def test_values_are_not_rendered_again() -> None:
    parameters = [{"id": "a", "type": "string", "value": "{workflow_id}"}]
    assert rendered("{a}", context(parameters)) == "{workflow_id}"


def test_render_to_text_of_typed_values() -> None:
    names = {"t": True, "f": False, "n": None, "i": 3, "l": ["a", "b"], "s": "x"}
    assert render("{t} {f} [{n}] {i} {l} {s}", names) == "true false [] 3 ab x"
