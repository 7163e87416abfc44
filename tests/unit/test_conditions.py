"""Step conditions (engine.md §7, decisions Q2/Q12) and ``<%= %>`` templates (§6.1, S12, T4, X5)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from stepflow.engine.expressions import MAX_STRING_LENGTH, ExpressionError
from stepflow.engine.templates import (
    MAX_TEMPLATE_LENGTH,
    Bindings,
    ConditionError,
    WorkflowContext,
    bindings,
    evaluate_condition,
    render,
)

W = 42
STEP = {"id": 1, "name": "job_test", "parameters": []}


def context(parameters: list[dict[str, Any]] | None = None, **overrides: Any) -> WorkflowContext:
    values: dict[str, Any] = {
        "workflow_id": W,
        "reference": "ref",
        "parameters": parameters or [],
        "work_directory": "/test_work_dir",
        "now": datetime(2021, 6, 1, 10, 20, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return WorkflowContext(**values)


def names(
    sources: list[str] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    step: dict[str, Any] = STEP,
) -> Bindings:
    return bindings(context(parameters), step, ["/test_work_dir/W/my_file_1.mov"] if sources is None else sources)


def integer(identifier: str, value: int) -> dict[str, Any]:
    return {"id": identifier, "type": "integer", "value": value}


# ---------------------------------------------------------------- conditions of S13–S15


@pytest.mark.parametrize(
    ("condition", "sources", "expected"),
    [
        ("length(source_paths)==1", ["a"], True),
        ("length(source_paths)==1", ["a", "b"], False),
        ("length(source_paths) > 2", ["a"], False),
        ("length(source_paths) > 2", ["a", "b", "c"], True),
        ("length(source_paths) > 2", [], False),
    ],
)
def test_scenario_conditions(condition: str, sources: list[str], expected: bool) -> None:
    assert evaluate_condition(condition, names(sources)) is expected


@pytest.mark.parametrize(("condition", "expected"), [("true", True), ("false", False), (" true ", True)])
def test_boolean_literals(condition: str, expected: bool) -> None:
    assert evaluate_condition(condition, names()) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('Enum.at(source_paths, 0) |> String.ends_with?(".mov")', True),
        ('Enum.at(source_paths, 0) |> Path.extname() == ".wav"', False),
        ('"/test_work_dir/W/my_file_1.mov" in source_paths', True),
        ('workflow_id == 42 and step_name == "job_test"', True),
        ("not (length(source_paths) > 1)", True),
        ("is_nil(Enum.at(source_paths, 3))", True),
        ('"true"', True),  # the printed text decides, as in "<%= condition %>"
    ],
)
def test_other_conditions(condition: str, expected: bool) -> None:
    assert evaluate_condition(condition, names()) is expected


@pytest.mark.parametrize(("n", "expected"), [(5, True), (2, False), (3, False), (4, True)])
def test_workflow_integers_compare_numerically(n: int, expected: bool) -> None:
    """Q12: a workflow integer keeps its type (the original compared the string "2" with 3: always true)."""
    assert evaluate_condition("n > 3", names(parameters=[integer("n", n)])) is expected


def test_step_integers_and_workflow_lists_keep_their_types() -> None:
    step = {**STEP, "parameters": [integer("rate", 16000)]}
    parameters = [{"id": "langs", "type": "array_of_strings", "value": ["fr", "en"]}]
    bound = names(parameters=parameters, step=step)
    assert evaluate_condition("rate >= 8000", bound)
    assert evaluate_condition('"en" in langs and length(langs) == 2', bound)


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("nil", "the result nil is not true or false"),
        ('"yes"', 'the result "yes" is not true or false'),
        ("1", "the result 1 is not true or false"),
        ("length(source_paths)", "the result 1 is not true or false"),
        ("Enum.at(source_paths, 5)", "the result nil is not true or false"),
        ("source_paths", 'the result ["/test_work_dir/W/my_file_1.mov"] is not true or false'),
        ("length(source_paths) > x", "unknown name x"),
        ("my_condition", "unknown name my_condition"),
        ("length(source_paths) > {x}", "{ is not valid in an expression"),
        ("length(source_paths) > {workflow_id}", "{ is not valid in an expression"),
        ("length(source_paths) > ", "unexpected end of expression"),
        ("length source_paths > 2", "cannot order list and integer"),
        ('n > "3"', "cannot order integer and string"),
        ("1 and true", "and expects a boolean on its left"),
        ("x %> y", "maps and structs"),
        ('System.cmd("rm", ["-rf", "/"])', "unknown function System.cmd/2"),
        ("", "empty expression"),
    ],
)
def test_bad_conditions_raise_naming_the_condition(condition: str, reason: str) -> None:
    with pytest.raises(ConditionError) as raised:
        evaluate_condition(condition, names(parameters=[integer("n", 5)]))
    message = str(raised.value)
    assert message.startswith(f'condition "{condition}" failed: ') and reason in message


def test_condition_error_is_an_expression_error() -> None:
    assert issubclass(ConditionError, ExpressionError) and issubclass(ConditionError, ValueError)
    with pytest.raises(ConditionError, match=r'^condition "length\(source_paths\) > x" failed: unknown name x$'):
        evaluate_condition("length(source_paths) > x", names())


def test_long_conditions_and_results_are_shortened_in_messages() -> None:
    started = time.perf_counter()
    with pytest.raises(ConditionError) as raised:
        evaluate_condition("x" * 1_000_000, names())
    assert time.perf_counter() - started < 0.5
    assert len(str(raised.value)) < 300 and "longer than 2000 characters" in str(raised.value)
    with pytest.raises(ConditionError, match="a 2000-character text is not true or false"):
        evaluate_condition("s", {"s": "y" * 2000})


# ---------------------------------------------------------------- templates: S12, T4, X5


def test_s12_notification_body() -> None:
    body = "Workflow #<%= workflow_id %> - {step_name}\n\nFiles generated: <%= inspect source_paths %>"
    assert render(body, names(["/a", "/b"])) == 'Workflow #42 - job_test\n\nFiles generated: ["/a", "/b"]'
    assert render(body, names()) == ('Workflow #42 - job_test\n\nFiles generated: ["/test_work_dir/W/my_file_1.mov"]')


def test_t4_enum_at_piped_into_basename() -> None:
    parameters = [{"id": "title", "type": "string", "value": "content_title"}]
    sources = ["source_folder/filename.ttml", "source_folder/filename.mp4"]
    template = "{work_directory}/{title}/<%= Enum.at(source_paths, 1) |> Path.basename() %>"
    assert render(template, names(sources, parameters)) == "/test_work_dir/content_title/filename.mp4"


def test_x5_length_in_destination_filename() -> None:
    assert render("out_<%= length(source_paths) %>.json", names(["b.wav", "c.ttml"])) == "out_2.json"


def test_tags_print_with_to_string() -> None:
    bound = names(["a", "b"])
    assert render("[<%= nil %>|<%= true %>|<%= 7 %>|<%= source_paths %>|<%= 1.5 %>]", bound) == "[|true|7|ab|1.5]"
    assert render("<%= Enum.at(source_paths, 9) %>", bound) == ""  # out of range → nil → ""
    assert render("<%=workflow_id%><%= workflow_reference %>", bound) == "42ref"
    assert render("<%= workflow_reference %>|", bindings(context(reference=None), STEP)) == "|"


def test_placeholders_of_workflow_parameters_print_like_inspect() -> None:
    parameters = [
        {"id": "langs", "type": "array_of_strings", "value": ["fr", "en"]},
        {"id": "count", "type": "integer", "value": 5},
        {"id": "none", "type": "string", "value": None},
        {"id": "title", "type": "string", "value": "t"},
    ]
    bound = names(["x"], parameters)
    assert render("{langs} {count} {none} {title} {source_paths}", bound) == '["fr", "en"] 5 nil t x'
    # Inside a tag the typed value is used (Q12): to_string of a list concatenates, nil prints "".
    assert render("<%= langs %>|<%= none %>|<%= inspect langs %>|<%= count + 1 %>", bound) == 'fren||["fr", "en"]|6'
    assert bound.value("langs") == ["fr", "en"] and bound.text("langs") == '["fr", "en"]'


def test_a_step_parameter_overrides_a_workflow_parameter_and_prints_with_to_string() -> None:
    step = {**STEP, "parameters": [{"id": "langs", "type": "string", "value": "de"}]}
    bound = names(parameters=[{"id": "langs", "type": "array_of_strings", "value": ["fr"]}], step=step)
    assert bound["langs"] == "de" and render("{langs}", bound) == "de"
    null_step = {**STEP, "parameters": [{"id": "opt", "type": "string", "value": None}]}
    assert render("[{opt}]", names(parameters=[{"id": "opt", "type": "integer", "value": 1}], step=null_step)) == "[]"


def test_render_with_a_plain_mapping() -> None:
    assert render("{a}-<%= a <> b %>-{c}", {"a": "x", "b": "y"}) == "x-xy-{c}"


def test_unknown_placeholders_stay_literal_but_unknown_names_in_tags_fail() -> None:
    assert render("{language}/<%= workflow_id %>", names()) == "{language}/42"
    with pytest.raises(ExpressionError, match="unknown name language"):
        render("<%= language %>", names())


def test_eex_quotation_and_comments() -> None:
    assert render("a <%% b %> c", names()) == "a <% b %> c"
    assert render("a<%# a comment, never evaluated: System.cmd %>b", names()) == "ab"
    assert render("50%> done", names()) == "50%> done"


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("a <%= workflow_id", "<% at position 2 has no closing %>"),
        ("a <% workflow_id %>", r"only <%= … %> tags are supported \(position 2\)"),
        ("<%= {step_name} %>", "{ is not valid in an expression"),
        ("<%= %>", "empty expression"),
        ("<%= 1 + %>", "unexpected end of expression"),
        ('<%= "a" + 1 %>', r"\+ expects numbers"),
        ('<%= File.read!("/etc/passwd") %>', "unknown function File.read!/1"),
        ("<%= [1, 2] %>", "to_string of a list needs strings only"),
    ],
)
def test_template_errors(template: str, match: str) -> None:
    with pytest.raises(ExpressionError, match=match):
        render(template, names())


def test_template_limits_fail_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match=f"template longer than {MAX_TEMPLATE_LENGTH}"):
        render("x" * 1_000_000, names())
    # The output is bounded too, piece by piece: a big binding repeated.
    big = {"s": "y" * (MAX_STRING_LENGTH // 4)}
    with pytest.raises(ExpressionError, match=f"rendered template longer than {MAX_STRING_LENGTH}"):
        render("{s}" * 10_000, big)
    with pytest.raises(ExpressionError, match=f"rendered template longer than {MAX_STRING_LENGTH}"):
        render("<%= s %>" * 5_000, big)
    # One work budget for every tag of a template.
    with pytest.raises(ExpressionError, match="exceeds 100000 steps"):
        render("<%= inspect l %>" * 5_000, {"l": ["p"] * 100})
    assert time.perf_counter() - started < 0.5
