"""plan_step and its helpers, one step at a time (engine.md §5, §13 as overridden by ours.md).

Expected job orders are written from the scenario catalogue (engine.md §13, "Other behaviour
tests") and changed only where ours.md says so (Q4/A7, Q5, A13, §4.2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stepflow.engine.launch import JobPlan, input_steps, job_outputs, plan_step, source_paths
from stepflow.engine.templates import WorkflowContext
from tests.unit.orders import DP, REQ, SP, SRC

W = 42
WD = "/test_work_dir"
NOW = datetime(2021, 6, 1, 10, 20, 30, tzinfo=UTC)
DT = "2021_06_01__10_20_30"


def context(parameters: list[dict[str, Any]] | None = None, reference: str | None = "some id") -> WorkflowContext:
    return WorkflowContext(workflow_id=W, reference=reference, parameters=parameters or [], work_directory=WD, now=NOW)


def STR(identifier: str, value: str) -> dict[str, Any]:
    return {"id": identifier, "type": "string", "value": value}


def SDK(start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {"id": "sdk_start_index", "type": "integer", "value": start},
        {"id": "sdk_stop_index", "type": "integer", "value": stop},
    ]


def out(name: str) -> str:
    return f"{WD}/{W}/{name}"


def step(step_id: int = 0, name: str = "job_test", parameters: list[dict[str, Any]] | None = None, **extra: Any):
    return {"id": step_id, "name": name, "label": "Step", "icon": "step_icon", "parameters": parameters or [], **extra}


def queued(plans: list[JobPlan]) -> list[list[dict[str, Any]]]:
    """The parameters of the plans, asserting every plan is a queued job in input order."""
    assert [plan.state for plan in plans] == ["queued"] * len(plans)
    assert [plan.input_index for plan in plans] == list(range(len(plans)))
    assert all(plan.message is None for plan in plans)
    return [plan.parameters for plan in plans]


FILTER = {"id": "input_filter", "type": "filter", "value": {"ends_with": [".ttml", ".wav"]}}
FOUR = ["my_file_1.mov", "my_file_2.ttml", "my_file_3.wav", "my_file_4.mov"]
SELECTS = [
    {"id": "audio_path", "type": "select_input", "value": {"ends_with": [".wav"]}},
    {"id": "subtitle_path", "type": "select_input", "value": {"ends_with": [".ttml"]}},
]


# ---------------------------------------------------------------- §13 single-step scenarios


def test_s1_simple_workflow() -> None:
    plans = plan_step(step(parameters=[SP(["my_file.mov"])]), context(), {})
    assert queued(plans) == [[SP(["my_file.mov"]), DP(out("my_file.mov")), SRC("my_file.mov"), REQ([])]]


def test_s3_two_inputs_give_two_jobs_and_the_second_requires_the_first() -> None:
    files = ["my_file_1.mov", "my_file_2.mov"]
    plans = plan_step(step(parameters=[SP(files)]), context(), {})
    assert queued(plans) == [
        [SP(files), DP(out("my_file_1.mov")), SRC("my_file_1.mov"), REQ([])],
        [SP(files), DP(out("my_file_2.mov")), SRC("my_file_2.mov"), REQ([out("my_file_1.mov")])],
    ]


def test_jobs_follow_source_order_and_the_sorted_first_file_needs_nothing() -> None:
    files = ["c.mov", "a.mov", "b.mov"]
    plans = plan_step(step(parameters=[SP(files)]), context(), {})
    assert queued(plans) == [
        [SP(files), DP(out("c.mov")), SRC("c.mov"), REQ([out("a.mov")])],
        [SP(files), DP(out("a.mov")), SRC("a.mov"), REQ([])],
        [SP(files), DP(out("b.mov")), SRC("b.mov"), REQ([out("a.mov")])],
    ]


def test_s4_second_root_step() -> None:
    plans = plan_step(step(1, parameters=[SP(["my_file_3.mov"])]), context(), {})
    assert queued(plans) == [[SP(["my_file_3.mov"]), DP(out("my_file_3.mov")), SRC("my_file_3.mov"), REQ([])]]


SEGMENTS = {
    "id": "segments",
    "type": "array_of_media_segments",
    "value": [{"start": 0, "end": 999}, {"start": 1000, "end": 1999}, {"start": 2000, "end": 2999}],
}


def test_s5_one_job_per_segment() -> None:
    plans = plan_step(step(multiple_jobs="segments", parameters=[SP(["my_file_1.mov"])]), context([SEGMENTS]), {})
    assert queued(plans) == [
        [SP(["my_file_1.mov"]), *SDK(s, e), DP(out("my_file_1.mov")), SRC("my_file_1.mov"), REQ([])]
        for s, e in [(0, 999), (1000, 1999), (2000, 2999)]
    ]


def test_x1_segments_times_sources_with_exactly_one_sdk_pair_each() -> None:
    """X1 with Q5 fixed: segment outer, source inner; one sdk pair per job."""
    segments = {**SEGMENTS, "value": [{"start": 0, "end": 999}, {"start": 1000, "end": 1999}]}
    files = ["b.mov", "a.mov"]
    plans = plan_step(step(multiple_jobs="segments", parameters=[SP(files)]), context([segments]), {})
    expected = []
    for s, e in [(0, 999), (1000, 1999)]:
        expected.append([SP(files), *SDK(s, e), DP(out("b.mov")), SRC("b.mov"), REQ([out("a.mov")])])
        expected.append([SP(files), *SDK(s, e), DP(out("a.mov")), SRC("a.mov"), REQ([])])
    assert queued(plans) == expected


def test_multiple_jobs_naming_no_segment_parameter_is_a_plain_step() -> None:
    plans = plan_step(step(multiple_jobs="segments", parameters=[SP(["a.mov"])]), context(), {})
    assert queued(plans) == [[SP(["a.mov"]), DP(out("a.mov")), SRC("a.mov"), REQ([])]]


def test_multiple_jobs_segments_must_be_a_workflow_media_segment_parameter() -> None:
    wrong_type = {"id": "segments", "type": "array_of_strings", "value": ["x"]}
    plans = plan_step(step(multiple_jobs="segments", parameters=[SP(["a.mov"])]), context([wrong_type]), {})
    assert queued(plans) == [[SP(["a.mov"]), DP(out("a.mov")), SRC("a.mov"), REQ([])]]


def test_s6_destination_filename_template() -> None:
    template = {
        "id": "destination_filename",
        "type": "template",
        "default": "{source_path}.wav",
        "value": "{source_path}.wav",
    }
    plans = plan_step(step(parameters=[SP(["my_file.mov"]), template]), context(reference="some-identifier"), {})
    assert queued(plans) == [
        [
            SP(["my_file.mov"]),
            STR("destination_filename", "my_file.mov.wav"),
            DP(out("my_file.mov.wav")),
            SRC("my_file.mov"),
            REQ([]),
        ]
    ]


def test_destination_filename_keeps_only_the_basename_of_the_rendered_template() -> None:
    template = {"id": "destination_filename", "type": "template", "value": "sub/dir/{name}.json"}
    plans = plan_step(step(parameters=[SP(["in/clip.mov"]), template]), context(), {})
    assert queued(plans)[0][2] == DP(out("clip.json"))


def test_two_destination_filename_templates_are_not_used_for_the_destination() -> None:
    """The generated path uses the template only when there is exactly one (engine §5.3)."""
    templates = [
        {"id": "destination_filename", "type": "template", "value": "x.json"},
        {"id": "destination_filename", "type": "template", "value": "y.json"},
    ]
    plans = plan_step(step(parameters=[SP(["a.mov"]), *templates]), context(), {})
    assert queued(plans) == [
        [
            SP(["a.mov"]),
            STR("destination_filename", "x.json"),
            STR("destination_filename", "y.json"),
            DP(out("a.mov")),
            SRC("a.mov"),
            REQ([]),
        ]
    ]


def test_s7_destination_path_template_replaces_the_generated_path_q4() -> None:
    """Q4 / A7: one destination_path, the rendered template, at its precompile position."""
    template = {
        "id": "destination_path",
        "type": "template",
        "default": "{workflow_reference}/{date_time}/{filename}",
        "value": "{workflow_reference}/{date_time}/{filename}",
    }
    plans = plan_step(step(parameters=[SP(["my_file.mov"]), template]), context(reference="some-identifier"), {})
    assert queued(plans) == [
        [SP(["my_file.mov"]), DP(f"some-identifier/{DT}/my_file.mov"), SRC("my_file.mov"), REQ([])]
    ]
    assert plans[0].parameters[1]["value"].split("/") == ["some-identifier", DT, "my_file.mov"]


def test_a7_destination_path_string_replaces_the_generated_path_in_place() -> None:
    plans = plan_step(
        step(parameters=[STR("destination_path", "s3://out/x.mp4"), SP(["a.mov"]), STR("after", "1")]), context(), {}
    )
    assert queued(plans) == [[DP("s3://out/x.mp4"), SP(["a.mov"]), STR("after", "1"), SRC("a.mov"), REQ([])]]


def test_a7_destination_path_wins_over_destination_filename() -> None:
    parameters = [
        SP(["a.mov"]),
        {"id": "destination_filename", "type": "template", "value": "{name}.wav"},
        {"id": "destination_path", "type": "template", "value": "/out/{filename}"},
    ]
    plans = plan_step(step(parameters=parameters), context(), {})
    assert queued(plans) == [
        [SP(["a.mov"]), STR("destination_filename", "a.wav"), DP("/out/a.mov"), SRC("a.mov"), REQ([])]
    ]


def test_s20_templates_keep_their_other_keys_and_lose_default() -> None:
    parameters = [
        SP(["my_file.mov"]),
        {
            "id": "special_file",
            "type": "template",
            "store": "BACKEND",
            "default": "{workflow_reference}/{date_time}/toto",
            "value": "{workflow_reference}/{date_time}/toto",
        },
        {
            "id": "several_special_files",
            "type": "array_of_templates",
            "store": "BACKEND",
            "default": ["{workflow_reference}/{date_time}/tata", "{workflow_reference}/{date_time}/titi"],
            "value": ["{workflow_reference}/{date_time}/tata", "{workflow_reference}/{date_time}/titi"],
        },
    ]
    plans = plan_step(step(parameters=parameters), context(reference="some-identifier"), {})
    special = {"id": "special_file", "store": "BACKEND", "type": "string", "value": f"some-identifier/{DT}/toto"}
    several = {
        "id": "several_special_files",
        "store": "BACKEND",
        "type": "array_of_strings",
        "value": [f"some-identifier/{DT}/tata", f"some-identifier/{DT}/titi"],
    }
    assert queued(plans) == [
        [SP(["my_file.mov"]), special, several, DP(out("my_file.mov")), SRC("my_file.mov"), REQ([])]
    ]
    assert sorted(plans[0].parameters[1]) == ["id", "store", "type", "value"]


def test_template_default_is_used_when_there_is_no_value() -> None:
    parameters = [SP(["a.mov"]), {"id": "label", "type": "template", "default": "{name}-{workflow_id}"}]
    plans = plan_step(step(parameters=parameters), context(), {})
    assert queued(plans)[0][1] == STR("label", f"a-{W}")


def test_array_of_templates_get_no_source_bindings() -> None:
    parameters = [
        SP(["a.mov"]),
        {"id": "list", "type": "array_of_templates", "value": ["{source_path}", "{workflow_id}"]},
    ]
    plans = plan_step(step(parameters=parameters), context(), {})
    assert queued(plans)[0][1] == {"id": "list", "type": "array_of_strings", "value": ["{source_path}", str(W)]}


def test_passthrough_types_are_sent_unchanged() -> None:
    passthrough = [
        {"id": "flag", "type": "boolean", "value": False},
        {"id": "count", "type": "integer", "value": 3, "default": 1},
        {"id": "secret", "type": "credential", "value": "S3_KEY", "store": "BACKEND"},
        {"id": "extra", "type": "extended", "value": {"a": [1]}},
        {"id": "tpl_text", "type": "string", "value": "{source_path} stays"},
    ]
    plans = plan_step(step(parameters=[SP(["a.mov"]), *passthrough]), context(), {})
    assert queued(plans) == [[SP(["a.mov"]), *passthrough, DP(out("a.mov")), SRC("a.mov"), REQ([])]]


def test_s9_one_for_many_with_templated_source_paths() -> None:
    parameters = [
        {
            "id": "source_paths",
            "type": "array_of_templates",
            "value": ["{work_directory}/{workflow_id}", "{work_directory}/folder"],
        }
    ]
    plans = plan_step(step(mode="one_for_many", parameters=parameters), context(), {})
    paths = [f"{WD}/{W}", f"{WD}/folder"]
    assert queued(plans) == [[SP(paths), REQ(paths)]]


def test_root_source_paths_template_is_sent_as_an_array_of_strings() -> None:
    """ours.md §4.2: SDK 2.x workers validate source_paths as an array."""
    workflow = [{"id": "audio_source_filename", "type": "string", "value": "awsome.mp4"}]
    parameters = [{"id": "source_paths", "type": "template", "value": "{audio_source_filename}"}]
    plans = plan_step(step(parameters=parameters), context(workflow), {})
    assert queued(plans) == [[SP(["awsome.mp4"]), DP(out("awsome.mp4")), SRC("awsome.mp4"), REQ([])]]


# ---------------------------------------------------------------- source paths (engine §5.1)


def test_l1_source_paths_and_the_second_message() -> None:
    files = ["my_file_1.mov", "my_file_2.mov"]
    s = step(parameters=[SP(files)])
    assert source_paths(s, context(), {}) == files
    assert queued(plan_step(s, context(), {}))[1] == [
        SP(files),
        DP(out("my_file_2.mov")),
        SRC("my_file_2.mov"),
        REQ([out("my_file_1.mov")]),
    ]


def test_l2_keep_source_paths_false_drops_the_array_parameter() -> None:
    files = ["my_file_1.mov", "my_file_2.mov"]
    plans = plan_step(step(keep_source_paths=False, parameters=[SP(files)]), context(), {})
    assert queued(plans) == [
        [DP(out("my_file_1.mov")), SRC("my_file_1.mov"), REQ([])],
        [DP(out("my_file_2.mov")), SRC("my_file_2.mov"), REQ([out("my_file_1.mov")])],
    ]


def test_keep_source_paths_true_keeps_it() -> None:
    plans = plan_step(step(keep_source_paths=True, parameters=[SP(["a.mov"])]), context(), {})
    assert queued(plans)[0][0] == SP(["a.mov"])


def test_l3_input_filter() -> None:
    s = step(parameters=[SP(FOUR), FILTER])
    assert source_paths(s, context(), {}) == ["my_file_2.ttml", "my_file_3.wav"]
    assert queued(plan_step(s, context(), {})) == [
        [SP(FOUR), DP(out("my_file_2.ttml")), SRC("my_file_2.ttml"), REQ([])],
        [SP(FOUR), DP(out("my_file_3.wav")), SRC("my_file_3.wav"), REQ([out("my_file_2.ttml")])],
    ]


def test_input_filter_accepts_a_single_suffix_and_uses_the_default() -> None:
    """T: filter_path_list(["path_1.ext1","path2.ext2"], [{ends_with:".ext2"}]) → ["path2.ext2"]."""
    s = step(
        parameters=[
            SP(["path_1.ext1", "path2.ext2"]),
            {"id": "input_filter", "type": "filter", "default": {"ends_with": ".ext2"}},
        ]
    )
    assert source_paths(s, context(), {}) == ["path2.ext2"]


def test_input_filters_apply_in_sequence() -> None:
    filters = [
        {"id": "input_filter", "type": "filter", "value": {"ends_with": [".wav", ".ttml"]}},
        {"id": "input_filter", "type": "filter", "value": {"ends_with": [".wav"]}},
    ]
    assert source_paths(step(parameters=[SP(FOUR), *filters]), context(), {}) == ["my_file_3.wav"]


def test_input_filter_without_ends_with_is_an_error_job() -> None:
    s = step(parameters=[SP(["a.mov"]), {"id": "input_filter", "type": "filter", "value": {"starts_with": "a"}}])
    with pytest.raises(ValueError):
        source_paths(s, context(), {})
    plans = plan_step(s, context(), {})
    assert len(plans) == 1
    assert plans[0].state == "error" and plans[0].input_index == 0 and plans[0].parameters == []
    assert plans[0].message and "ends_with" in plans[0].message


def test_filtering_everything_out_gives_a_skipped_job() -> None:
    s = step(parameters=[SP(["a.mov"]), {"id": "input_filter", "type": "filter", "value": {"ends_with": ".wav"}}])
    assert plan_step(s, context(), {}) == [JobPlan(0, "skipped", [], None)]


def test_root_source_paths_are_rendered_flattened_and_deduplicated() -> None:
    parameters = [
        SP(["{work_directory}/{workflow_id}/a.mov", "b.mov"]),
        {"id": "source_paths", "type": "string", "value": "b.mov"},
        {"id": "source_paths", "type": "array_of_strings", "value": ["{source_path}", None, "c.mov"]},
    ]
    assert source_paths(step(parameters=parameters), context(), {}) == [
        f"{WD}/{W}/a.mov",
        "b.mov",
        "{source_path}",
        "c.mov",
    ]


def test_root_duplicates_are_removed() -> None:
    plans = plan_step(step(parameters=[SP(["a.mov", "a.mov"])]), context(), {})
    assert len(plans) == 1


def test_child_reads_destination_path_then_destination_paths_of_parent_jobs_in_order() -> None:
    child = step(2, parent_ids=[0, 1])
    inputs = {
        0: [
            [
                SP(["x"]),
                DP("/o/a.mov"),
                SRC("x"),
                REQ([]),
                {"id": "destination_paths", "type": "array_of_strings", "value": ["/o/a.wav", "/o/a.mov"]},
            ],
            [],  # a skipped or error job has no parameters
        ],
        1: [
            [DP("/o/b.mov"), {"id": "destination_paths", "type": "array_of_strings", "value": ["/o/a.wav", "/o/c.srt"]}]
        ],
    }
    assert source_paths(child, context(), inputs) == ["/o/a.mov", "/o/a.wav", "/o/b.mov", "/o/c.srt"]


def test_child_ignores_its_own_source_paths_parameter() -> None:
    child = step(1, parent_ids=[0], parameters=[SP(["ignored.mov"])])
    assert source_paths(child, context(), {0: [[DP("/o/a.mov")]]}) == ["/o/a.mov"]


def test_child_ignores_jobs_of_steps_that_are_not_parents() -> None:
    child = step(2, parent_ids=[0], required=[1])
    assert source_paths(child, context(), {0: [[DP("/o/a.mov")]], 1: [[DP("/o/b.mov")]]}) == ["/o/a.mov"]


def test_child_of_a_step_without_outputs_is_skipped() -> None:
    child = step(1, parent_ids=[0])
    assert plan_step(child, context(), {0: [[]]}) == [JobPlan(0, "skipped", [], None)]
    assert plan_step(child, context(), {}) == [JobPlan(0, "skipped", [], None)]


def test_s19_root_with_empty_source_paths_is_skipped() -> None:
    assert plan_step(step(name="job_step", parameters=[SP([])]), context(), {}) == [JobPlan(0, "skipped", [], None)]


def test_root_without_source_paths_is_skipped() -> None:
    assert plan_step(step(parameters=[STR("x", "y")]), context(), {}) == [JobPlan(0, "skipped", [], None)]


def test_job_outputs() -> None:
    parameters = [
        SRC("in.mov"),
        {"id": "destination_paths", "type": "array_of_strings", "value": ["/o/2", None]},
        DP("/o/1"),
        {"id": "destination_path", "type": "string", "default": "/o/0"},
        {"id": "destination_paths", "type": "array_of_strings", "value": ["/o/3"]},
    ]
    assert job_outputs(parameters) == ["/o/1", "/o/0", "/o/2", "/o/3"]
    assert job_outputs([]) == []


def test_input_steps_are_parents_then_required_without_duplicates() -> None:
    assert input_steps(step(3, parent_ids=[1, 2], required=[2, 0])) == [1, 2, 0]
    assert input_steps(step(0)) == []


# ---------------------------------------------------------------- one_for_many (engine §5.4, ours §4.2)


def test_l4_one_for_many_select_inputs_with_a_single_source_paths() -> None:
    """ours.md §4.2: the definition's own source_paths array is not kept."""
    s = step(mode="one_for_many", parameters=[SP(FOUR), FILTER, *SELECTS])
    filtered = ["my_file_2.ttml", "my_file_3.wav"]
    assert queued(plan_step(s, context(), {})) == [
        [STR("audio_path", "my_file_3.wav"), STR("subtitle_path", "my_file_2.ttml"), SP(filtered), REQ(filtered)]
    ]


def test_select_input_without_match_is_null() -> None:
    s = step(
        mode="one_for_many",
        parameters=[SP(["a.mov"]), {"id": "audio", "type": "select_input", "value": {"ends_with": ".wav"}}],
    )
    assert queued(plan_step(s, context(), {})) == [
        [{"id": "audio", "type": "string", "value": None}, SP(["a.mov"]), REQ(["a.mov"])]
    ]


def test_l6_one_for_many_templated_source_paths_are_not_filtered() -> None:
    workflow = [
        STR("mov_input_path", "my_file_1.mov"),
        STR("ttml_input_path", "my_file_2.ttml"),
        STR("wav_input_path", "my_file_3.wav"),
        STR("param_value_1", "hello"),
        STR("param_value_2", "world"),
    ]
    parameters = [
        {
            "id": "source_paths",
            "type": "array_of_templates",
            "value": ["{mov_input_path}", "{ttml_input_path}", "{wav_input_path}"],
        },
        FILTER,
        *SELECTS,
        {"id": "parameter_with_values", "type": "array_of_templates", "value": ["{param_value_1}", "{param_value_2}"]},
    ]
    s = step(mode="one_for_many", parameters=parameters)
    assert source_paths(s, context(workflow), {}) == ["my_file_2.ttml", "my_file_3.wav"]
    three = ["my_file_1.mov", "my_file_2.ttml", "my_file_3.wav"]
    assert queued(plan_step(s, context(workflow), {})) == [
        [
            {"id": "parameter_with_values", "type": "array_of_strings", "value": ["hello", "world"]},
            STR("audio_path", "my_file_3.wav"),
            STR("subtitle_path", "my_file_2.ttml"),
            SP(three),
            REQ(three),
        ]
    ]


def test_x5_one_for_many_destination_filename_with_plain_template() -> None:
    """X5 with a `{name}` template (the EEx expression of X5 belongs to the evaluator issue)."""
    parameters = [
        SP(["a.mov", "b.wav", "c.ttml"]),
        {"id": "input_filter", "type": "filter", "value": {"ends_with": [".wav", ".ttml"]}},
        {"id": "audio", "type": "select_input", "value": {"ends_with": ".wav"}},
        {"id": "destination_filename", "type": "template", "value": "sub/out_{step_name}_{source_paths}.json"},
    ]
    s = step(name="job_merge", mode="one_for_many", parameters=parameters)
    name = "out_job_merge_b.wavc.ttml.json"
    assert queued(plan_step(s, context(), {})) == [
        [
            STR("destination_filename", f"sub/{name}"),
            STR("audio", "b.wav"),
            DP(out(name)),
            SP(["b.wav", "c.ttml"]),
            REQ(["b.wav", "c.ttml"]),
        ]
    ]


def test_one_for_many_skip_destination_path_drops_the_generated_path() -> None:
    parameters = [SP(["a.wav"]), {"id": "destination_filename", "type": "template", "value": "out.json"}]
    s = step(mode="one_for_many", skip_destination_path=True, parameters=parameters)
    assert queued(plan_step(s, context(), {})) == [
        [STR("destination_filename", "out.json"), SP(["a.wav"]), REQ(["a.wav"])]
    ]


def test_one_for_many_destination_path_parameter_replaces_the_generated_one() -> None:
    """A7: same for one_for_many."""
    parameters = [
        {"id": "destination_path", "type": "template", "value": "/out/{workflow_id}.json"},
        SP(["a.wav"]),
        {"id": "destination_filename", "type": "template", "value": "out.json"},
    ]
    s = step(mode="one_for_many", parameters=parameters)
    assert queued(plan_step(s, context(), {})) == [
        [DP(f"/out/{W}.json"), STR("destination_filename", "out.json"), SP(["a.wav"]), REQ(["a.wav"])]
    ]


def test_one_for_many_child_takes_all_parent_outputs_in_one_job() -> None:
    s = step(1, mode="one_for_many", parent_ids=[0], parameters=[STR("action", "merge")])
    inputs = {0: [[DP("/o/b.mov")], [DP("/o/a.mov")]]}
    assert queued(plan_step(s, context(), inputs)) == [
        [STR("action", "merge"), SP(["/o/b.mov", "/o/a.mov"]), REQ(["/o/b.mov", "/o/a.mov"])]
    ]


def test_one_for_many_step_declared_requirements_merge_first() -> None:
    declared = {"id": "requirements", "type": "requirements", "value": {"paths": ["/lock", "a.wav"]}}
    s = step(2, mode="one_for_many", required=[1], parameters=[declared, SP(["a.wav", "b.wav"])])
    plans = plan_step(s, context(), {1: [[DP("/o/req.bin")]]})
    assert queued(plans) == [[SP(["a.wav", "b.wav"]), REQ(["/lock", "a.wav", "/o/req.bin", "b.wav"])]]


# ---------------------------------------------------------------- requirements, work_dir, skip


def test_one_for_one_step_declared_requirements_merge_into_the_single_requirements() -> None:
    declared = {"id": "requirements", "type": "requirements", "value": {"paths": ["/lock"]}}
    plans = plan_step(step(parameters=[declared, SP(["b.mov", "a.mov"])]), context(), {})
    assert queued(plans) == [
        [SP(["b.mov", "a.mov"]), DP(out("b.mov")), SRC("b.mov"), REQ(["/lock", out("a.mov")])],
        [SP(["b.mov", "a.mov"]), DP(out("a.mov")), SRC("a.mov"), REQ(["/lock"])],
    ]
    for parameters in queued(plans):
        assert [p["id"] for p in parameters].count("requirements") == 1


def test_one_for_one_declared_then_required_then_sibling_requirements() -> None:
    declared = {"id": "requirements", "type": "requirements", "value": {"paths": ["/lock"]}}
    s = step(2, parent_ids=[0], required=[1], parameters=[declared])
    inputs = {0: [[DP("/o/b.mov")], [DP("/o/a.mov")]], 1: [[DP("/o/subs.srt")]]}
    assert queued(plan_step(s, context(), inputs)) == [
        [DP(out("b.mov")), SRC("/o/b.mov"), REQ(["/lock", "/o/subs.srt", out("a.mov")])],
        [DP(out("a.mov")), SRC("/o/a.mov"), REQ(["/lock", "/o/subs.srt"])],
    ]


def test_required_steps_outputs_come_before_the_sibling_requirement() -> None:
    s = step(3, parent_ids=[1], required=[0, 2])
    inputs = {
        0: [[DP("/o/src.mov"), {"id": "destination_paths", "type": "array_of_strings", "value": ["/o/subs.srt"]}]],
        1: [[DP("/o/b.mov")], [DP("/o/a.mov")]],
        2: [[DP("/o/subs.srt")], [], [DP("/o/more.srt")]],
    }
    assert queued(plan_step(s, context(), inputs)) == [
        [DP(out("b.mov")), SRC("/o/b.mov"), REQ(["/o/src.mov", "/o/subs.srt", "/o/more.srt", out("a.mov")])],
        [DP(out("a.mov")), SRC("/o/a.mov"), REQ(["/o/src.mov", "/o/subs.srt", "/o/more.srt"])],
    ]


def test_required_step_without_jobs_adds_nothing() -> None:
    plans = plan_step(step(1, required=[7], parameters=[SP(["a.mov"])]), context(), {})
    assert queued(plans) == [[SP(["a.mov"]), DP(out("a.mov")), SRC("a.mov"), REQ([])]]


def test_work_dir_overrides_the_work_directory() -> None:
    parameters = [
        SP(["{work_directory}/in/a.mov", "b.mov"]),
        {"id": "where", "type": "template", "value": "{work_directory}"},
    ]
    plans = plan_step(step(work_dir="/custom/work_dir", parameters=parameters), context(), {})
    files = ["/custom/work_dir/in/a.mov", "b.mov"]
    assert queued(plans) == [
        [
            SP(["{work_directory}/in/a.mov", "b.mov"]),
            STR("where", "/custom/work_dir"),
            DP(f"/custom/work_dir/{W}/a.mov"),
            SRC(files[0]),
            REQ([]),
        ],
        [
            SP(["{work_directory}/in/a.mov", "b.mov"]),
            STR("where", "/custom/work_dir"),
            DP(f"/custom/work_dir/{W}/b.mov"),
            SRC("b.mov"),
            REQ([f"/custom/work_dir/{W}/a.mov"]),
        ],
    ]


def test_skip_destination_path() -> None:
    plans = plan_step(step(skip_destination_path=True, parameters=[SP(["b.mov", "a.mov"])]), context(), {})
    assert queued(plans) == [
        [SP(["b.mov", "a.mov"]), SRC("b.mov"), REQ([out("a.mov")])],
        [SP(["b.mov", "a.mov"]), SRC("a.mov"), REQ([])],
    ]


def test_skip_destination_path_keeps_a_declared_destination_path() -> None:
    parameters = [SP(["srt://:9999"]), STR("destination_path", "srt://:8888")]
    plans = plan_step(step(skip_destination_path=True, parameters=parameters), context(), {})
    assert queued(plans) == [[SP(["srt://:9999"]), DP("srt://:8888"), SRC("srt://:9999"), REQ([])]]


# ---------------------------------------------------------------- A13: not supported yet → error job


@pytest.mark.parametrize("mode", ["workflow_one_for_one", "workflow_one_for_many", "bogus"])
def test_unsupported_modes_give_one_error_job(mode: str) -> None:
    plans = plan_step(step(mode=mode, parameters=[SP(["a.mov"])]), context(), {})
    assert len(plans) == 1
    assert (plans[0].input_index, plans[0].state, plans[0].parameters) == (0, "error", [])
    assert plans[0].message is not None and mode in plans[0].message and "not supported" in plans[0].message


def test_a_notification_step_runs_even_without_inputs() -> None:
    plans = plan_step(step(1, mode="notification", parent_ids=[0]), context(), {0: [[]]})
    assert [(p.input_index, p.state, p.kind, p.parameters) for p in plans] == [(0, "queued", "notification", [])]


def test_l5_a_condition_gives_one_error_job() -> None:
    plans = plan_step(
        step(condition="my_condition", parameters=[SP(["my_file_1.mov", "my_file_2.mov"])]), context(), {}
    )
    assert len(plans) == 1
    assert (plans[0].input_index, plans[0].state, plans[0].parameters) == (0, "error", [])
    assert plans[0].message and "condition" in plans[0].message


@pytest.mark.parametrize("condition", [None, 0])
def test_no_condition_values(condition: Any) -> None:
    plans = plan_step(step(condition=condition, parameters=[SP(["a.mov"])]), context(), {})
    assert [p.state for p in plans] == ["queued"]


def test_plan_step_does_not_change_the_step() -> None:
    import copy

    s = step(
        multiple_jobs="segments",
        parameters=[
            SP(["b.mov", "a.mov"]),
            {"id": "t", "type": "template", "default": "{name}"},
            {"id": "requirements", "type": "requirements", "value": {"paths": ["/x"]}},
        ],
    )
    before = copy.deepcopy(s)
    plan_step(s, context([SEGMENTS]), {})
    plan_step({**s, "mode": "one_for_many"}, context([SEGMENTS]), {})
    assert s == before
