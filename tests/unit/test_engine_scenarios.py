"""Multi-step scenarios of engine.md §13 (as changed by ours.md §4.1), driven by a tiny simulator.

The simulator mirrors what the actors do (stepflow/actors/advance.py, transitions.py, state.py)
without a database: step counters, the jobs' parameters per step in creation order, passes of
``steps_to_start`` + ``plan_step`` repeated until nothing new starts, then ``workflow_status``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stepflow.engine.graph import StepGraph, steps_to_start
from stepflow.engine.launch import input_steps, plan_step
from stepflow.engine.states import TERMINAL_WORKFLOW_STATES
from stepflow.engine.status import StepCounts, workflow_status
from stepflow.engine.templates import WorkflowContext
from tests.unit.orders import DP, REQ, SP, SRC

W = 42
WD = "/test_work_dir"
NOW = datetime(2021, 6, 1, 10, 20, 30, tzinfo=UTC)


def out(name: str) -> str:
    return f"{WD}/{W}/{name}"


@dataclass
class SimJob:
    step_id: int
    name: str
    input_index: int
    state: str
    parameters: list[dict[str, Any]]
    message: str | None = None


@dataclass
class Simulator:
    steps: list[dict[str, Any]]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    reference: str | None = "some id"
    status: str = "pending"
    jobs: list[SimJob] = field(default_factory=list)
    counts: dict[int, StepCounts] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.statuses.append(self.status)

    # -- what the actors do -------------------------------------------------------------
    def advance(self) -> list[SimJob]:
        """advance(): start steps until none can start, then settle the workflow status."""
        created: list[SimJob] = []
        if self.status not in TERMINAL_WORKFLOW_STATES and self.status != "paused":
            context = WorkflowContext(W, self.reference, self.parameters, WD, NOW)
            started: set[int] = set()
            while startable := [s for s in steps_to_start(StepGraph(self.steps), self.counts) if s["id"] not in started]:
                for step in startable:
                    started.add(step["id"])
                    inputs = {
                        step_id: [job.parameters for job in self.jobs if job.step_id == step_id]
                        for step_id in input_steps(step)
                    }
                    plans = plan_step(step, context, inputs)
                    indexes = [plan.input_index for plan in plans]
                    assert len(indexes) == len(set(indexes)), "input_index must be unique per step"
                    for plan in plans:
                        job = SimJob(
                            step["id"], step["name"], plan.input_index, plan.state, plan.parameters, plan.message
                        )
                        self.jobs.append(job)
                        self._count(job.step_id, None, job.state)
                        created.append(job)
        self._refresh()
        return created

    def _count(self, step_id: int, from_state: str | None, to_state: str) -> None:
        self.counts[step_id] = self.counts.get(step_id, StepCounts()).moved(from_state, to_state)

    def _refresh(self) -> None:
        new = workflow_status(self.status, self.steps, self.counts)
        if new != self.status:
            self.status = new
            self.statuses.append(new)

    def _move(self, job: SimJob, state: str) -> None:
        self._count(job.step_id, job.state, state)
        job.state = state

    def progress(self, step_id: int) -> None:
        """A first progression on the first job of the step (queued → processing)."""
        job = self.of(step_id)[0]
        if job.state in ("queued", "retrying"):
            self._move(job, "processing")
            self.advance()

    def complete(self, step_id: int, destination_paths: list[str] | None = None) -> list[SimJob]:
        """job_completed for every active job of the step; returns the jobs the advances created."""
        created: list[SimJob] = []
        for job in self.of(step_id):
            if job.state in ("queued", "retrying", "processing"):
                if destination_paths:
                    job.parameters = [
                        *job.parameters,
                        {"id": "destination_paths", "type": "array_of_strings", "value": destination_paths},
                    ]
                self._move(job, "completed")
                created += self.advance()
        return created

    def fail(self, step_id: int) -> None:
        job = self.of(step_id)[0]
        self._move(job, "error")
        self._refresh()
        self.advance()

    def retry(self, step_id: int) -> None:
        job = self.of(step_id)[0]
        assert job.state in ("error", "stopped")
        self._move(job, "retrying")
        self._refresh()

    # -- reading ---------------------------------------------------------------------------
    def of(self, step_id: int) -> list[SimJob]:
        return [job for job in self.jobs if job.step_id == step_id]

    def params(self, step_id: int) -> list[list[dict[str, Any]]]:
        return [job.parameters for job in self.of(step_id)]

    def count(self, step_id: int) -> int:
        return len(self.of(step_id))

    @property
    def total(self) -> int:
        return len(self.jobs)


def steps_of(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"label": "Step", "icon": "step_icon", **step} for step in steps]


# ---------------------------------------------------------------- single-step flows


def test_s1_simple_workflow() -> None:
    sim = Simulator(steps_of({"id": 0, "name": "job_test", "parameters": [SP(["my_file.mov"])]}))
    created = sim.advance()
    assert sim.total == 1 and sim.count(0) == 1
    assert [(j.name, j.state) for j in created] == [("job_test", "queued")]
    assert sim.params(0) == [[SP(["my_file.mov"]), DP(out("my_file.mov")), SRC("my_file.mov"), REQ([])]]
    assert sim.status == "processing"
    assert sim.complete(0) == []
    assert sim.total == 1 and sim.status == "completed"
    assert sim.statuses == ["pending", "processing", "completed"]


def test_s2_empty_workflow() -> None:
    sim = Simulator([])
    assert sim.advance() == []
    assert sim.statuses == ["pending", "completed"]


def test_s3_multiple_inputs() -> None:
    files = ["my_file_1.mov", "my_file_2.mov"]
    sim = Simulator(steps_of({"id": 0, "name": "job_test", "parameters": [SP(files)]}))
    sim.advance()
    assert sim.total == 2 and sim.count(0) == 2
    assert sim.params(0) == [
        [SP(files), DP(out("my_file_1.mov")), SRC("my_file_1.mov"), REQ([])],
        [SP(files), DP(out("my_file_2.mov")), SRC("my_file_2.mov"), REQ([out("my_file_1.mov")])],
    ]
    sim.complete(0)
    assert sim.total == 2 and sim.status == "completed"


def test_s3_completion_waits_for_every_job() -> None:
    sim = Simulator(steps_of({"id": 0, "name": "job_test", "parameters": [SP(["a.mov", "b.mov"])]}))
    sim.advance()
    first = sim.of(0)[0]
    sim._move(first, "completed")
    sim.advance()
    assert sim.status == "processing"
    sim.complete(0)
    assert sim.status == "completed"


def test_s4_two_root_steps_start_together() -> None:
    files = ["my_file_1.mov", "my_file_2.mov"]
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_test", "parameters": [SP(files)]},
            {"id": 1, "name": "job_test", "parameters": [SP(["my_file_3.mov"])]},
        )
    )
    sim.advance()
    assert (sim.total, sim.count(0), sim.count(1)) == (3, 2, 1)
    assert sim.params(0) == [
        [SP(files), DP(out("my_file_1.mov")), SRC("my_file_1.mov"), REQ([])],
        [SP(files), DP(out("my_file_2.mov")), SRC("my_file_2.mov"), REQ([out("my_file_1.mov")])],
    ]
    assert sim.params(1) == [[SP(["my_file_3.mov"]), DP(out("my_file_3.mov")), SRC("my_file_3.mov"), REQ([])]]
    sim.complete(0)
    assert sim.status == "processing"
    sim.complete(1)
    assert sim.total == 3 and sim.status == "completed"


def test_s5_segments_flow() -> None:
    segments = {
        "id": "segments",
        "type": "array_of_media_segments",
        "value": [{"start": 0, "end": 999}, {"start": 1000, "end": 1999}, {"start": 2000, "end": 2999}],
    }
    sim = Simulator(
        steps_of({"id": 0, "name": "job_test", "multiple_jobs": "segments", "parameters": [SP(["my_file_1.mov"])]}),
        parameters=[segments],
    )
    sim.advance()
    assert sim.params(0) == [
        [
            SP(["my_file_1.mov"]),
            {"id": "sdk_start_index", "type": "integer", "value": s},
            {"id": "sdk_stop_index", "type": "integer", "value": e},
            DP(out("my_file_1.mov")),
            SRC("my_file_1.mov"),
            REQ([]),
        ]
        for s, e in [(0, 999), (1000, 1999), (2000, 2999)]
    ]
    assert [j.input_index for j in sim.of(0)] == [0, 1, 2]
    sim.complete(0)
    assert sim.total == 3 and sim.status == "completed"


# ---------------------------------------------------------------- chains, forks and joins


def test_s8_two_steps() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_test", "parameters": [SP(["coucou.mov"])]},
            {"id": 1, "name": "job_test", "parent_ids": [0], "required_to_start": [0], "parameters": []},
        )
    )
    sim.advance()
    assert sim.total == 1 and sim.count(0) == 1
    sim.complete(0)
    assert (sim.total, sim.count(0), sim.count(1)) == (2, 1, 1)
    assert sim.params(1) == [[DP(out("coucou.mov")), SRC(out("coucou.mov")), REQ([])]]
    assert sim.status == "processing"
    sim.complete(1)
    assert sim.total == 2 and sim.status == "completed"


def test_child_takes_reported_destination_paths_too() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_a", "parameters": [SP(["in.mov"])]},
            {"id": 1, "name": "job_b", "parent_ids": [0], "parameters": []},
        )
    )
    sim.advance()
    sim.complete(0, destination_paths=[out("in.wav"), out("in.mov")])
    assert sim.params(1) == [
        [DP(out("in.mov")), SRC(out("in.mov")), REQ([])],
        [DP(out("in.wav")), SRC(out("in.wav")), REQ([out("in.mov")])],
    ]


PARALLEL = [
    {"id": 0, "name": "job_test", "parameters": [SP(["my_file_1.mov"])]},
    {"id": 1, "name": "job_test", "required_to_start": [0], "parent_ids": [0], "parameters": []},
    {"id": 2, "name": "job_test", "required_to_start": [0], "parent_ids": [0], "parameters": []},
]


def test_s10_fork_and_join() -> None:
    sim = Simulator(
        steps_of(
            *PARALLEL,
            {"id": 3, "name": "job_test", "required_to_start": [1, 2], "parent_ids": [1, 2], "parameters": []},
        )
    )
    sim.advance()
    assert sim.total == 1
    sim.complete(0)
    assert (sim.count(1), sim.count(2), sim.count(3)) == (1, 1, 0)
    sim.progress(1)
    sim.progress(2)
    assert sim.total == 3
    sim.complete(1)
    assert (sim.count(1), sim.count(2), sim.count(3)) == (1, 1, 0)
    sim.complete(2)
    assert [sim.count(s) for s in range(4)] == [1, 1, 1, 1] and sim.total == 4
    expected = [[DP(out("my_file_1.mov")), SRC(out("my_file_1.mov")), REQ([])]]
    assert sim.params(1) == sim.params(2) == sim.params(3) == expected
    assert sim.status == "processing"
    sim.complete(3)
    assert sim.status == "completed" and sim.total == 4


def test_s11_parallel_and_sequential() -> None:
    sim = Simulator(
        steps_of(
            *PARALLEL,
            {"id": 3, "required_to_start": [1], "parent_ids": [1], "name": "job_test", "parameters": []},
            {"id": 4, "required_to_start": [2, 3], "parent_ids": [2, 3], "name": "job_test", "parameters": []},
        )
    )
    sim.advance()
    assert sim.total == 1
    sim.progress(0)
    assert sim.total == 1
    sim.complete(0)
    assert (sim.count(1), sim.count(2), sim.total) == (1, 1, 3)
    sim.progress(1)
    sim.progress(2)
    sim.complete(1)
    assert (sim.count(1), sim.count(2), sim.count(3), sim.total) == (1, 1, 1, 4)
    sim.complete(2)
    sim.progress(3)
    sim.complete(2)  # a second completion changes nothing
    assert (sim.count(3), sim.count(4), sim.total) == (1, 0, 4)
    sim.complete(3)
    assert [sim.count(s) for s in range(5)] == [1] * 5 and sim.total == 5
    expected = [[DP(out("my_file_1.mov")), SRC(out("my_file_1.mov")), REQ([])]]
    for step_id in (1, 2, 3, 4):
        assert sim.params(step_id) == expected
    sim.complete(4)
    assert sim.status == "completed"


def test_s19_empty_inputs_propagate_as_skipped_jobs() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_step", "parameters": [SP([])]},
            {"id": 1, "required_to_start": [0], "parent_ids": [0], "name": "job_step", "parameters": []},
            {"id": 2, "required_to_start": [0], "parent_ids": [0], "name": "job_test", "parameters": []},
            {"id": 3, "required_to_start": [1, 2], "parent_ids": [1, 2], "name": "job_test", "parameters": []},
        )
    )
    created = sim.advance()
    assert [(j.step_id, j.name, j.state, j.parameters, j.input_index) for j in created] == [
        (0, "job_step", "skipped", [], 0),
        (1, "job_step", "skipped", [], 0),
        (2, "job_test", "skipped", [], 0),
        (3, "job_test", "skipped", [], 0),
    ]
    assert sim.statuses == ["pending", "completed"]


def test_skipped_branch_joins_with_a_real_branch() -> None:
    """A join whose parents include one real branch takes only that branch's outputs (engine §7)."""
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_a", "parameters": [SP(["a.mov"])]},
            {"id": 1, "name": "job_b", "parameters": [SP([])]},
            {"id": 2, "name": "job_c", "parent_ids": [1], "parameters": []},
            {"id": 3, "name": "job_d", "parent_ids": [0, 2], "parameters": []},
        )
    )
    sim.advance()
    assert [(j.step_id, j.state) for j in sim.jobs] == [(0, "queued"), (1, "skipped"), (2, "skipped")]
    assert sim.status == "processing"
    sim.complete(0)
    assert sim.params(3) == [[DP(out("a.mov")), SRC(out("a.mov")), REQ([])]]
    sim.complete(3)
    assert sim.status == "completed"


def test_x4_child_without_required_to_start_waits_for_its_parent_q9() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_test", "parameters": [SP(["a.mov"])]},
            {"id": 1, "name": "job_test", "parent_ids": [0], "parameters": []},
        )
    )
    sim.advance()
    assert sim.total == 1 and sim.count(1) == 0
    sim.progress(0)
    assert sim.count(1) == 0
    sim.complete(0)
    assert sim.params(1) == [[DP(out("a.mov")), SRC(out("a.mov")), REQ([])]]


def test_required_steps_gate_and_add_requirements() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_a", "parameters": [SP(["a.mov"])]},
            {"id": 1, "name": "job_b", "parameters": [SP(["b.srt"])]},
            {
                "id": 2,
                "name": "job_c",
                "parent_ids": [0],
                "required_to_start": [0, 1],
                "required": [1],
                "parameters": [],
            },
        )
    )
    sim.advance()
    sim.complete(0)
    assert sim.count(2) == 0
    sim.complete(1)
    assert sim.params(2) == [[DP(out("a.mov")), SRC(out("a.mov")), REQ([out("b.srt")])]]


def test_error_blocks_children_until_retried_and_completed() -> None:
    sim = Simulator(steps_of(*PARALLEL[:2]))
    sim.advance()
    sim.fail(0)
    assert sim.status == "error" and sim.count(1) == 0
    sim.retry(0)
    assert sim.status == "processing"
    sim.complete(0)
    assert sim.count(1) == 1
    sim.complete(1)
    assert sim.statuses == ["pending", "processing", "error", "processing", "completed"]


def test_allow_failure_step_releases_the_steps_that_require_it() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_a", "allow_failure": True, "parameters": [SP(["a.mov"])]},
            {"id": 1, "name": "job_b", "required_to_start": [0], "parameters": [SP(["b.mov"])]},
        )
    )
    sim.advance()
    assert sim.count(1) == 0
    sim.fail(0)
    assert sim.status == "processing"
    assert sim.params(1) == [[SP(["b.mov"]), DP(out("b.mov")), SRC("b.mov"), REQ([])]]
    sim.complete(1)
    assert sim.status == "completed"


def test_paused_workflow_starts_nothing_and_stays_paused_on_error() -> None:
    sim = Simulator(steps_of(*PARALLEL))
    sim.advance()
    sim.status = "paused"
    sim.fail(0)
    assert sim.status == "paused"
    sim.retry(0)
    sim.complete(0)
    assert sim.status == "paused" and sim.total == 1


def test_unsupported_step_is_an_error_job_that_fails_the_workflow() -> None:
    sim = Simulator(
        steps_of(
            {"id": 0, "name": "job_a", "parameters": [SP(["a.mov"])]},
            {"id": 1, "name": "job_fan_out", "mode": "workflow_one_for_one", "parent_ids": [0], "parameters": []},
            {"id": 2, "name": "job_b", "parent_ids": [1], "parameters": []},
        )
    )
    sim.advance()
    sim.complete(0)
    [job] = sim.of(1)
    assert (job.state, job.parameters) == ("error", [])
    assert job.message == "mode workflow_one_for_one is not supported"
    assert sim.status == "error" and sim.count(2) == 0


# ---------------------------------------------------------------- S22: the fixture definition


# The shape of the original's test/definitions/simple_workflow.json, in our own words: a root
# template source, destination_filename templates, a destination_path template, a credential
# with both value and default, and a one_for_many clean-up step without required_to_start.
SUBTITLES_PARAMETERS = [{"id": "media_file", "type": "string", "value": "placeholder.mxf"}]
SUBTITLES_STEPS: list[dict[str, Any]] = [
    {
        "id": 0,
        "name": "job_transfer",
        "label": "Fetch",
        "icon": "download",
        "parameters": [
            {"id": "source_paths", "type": "template", "value": "{media_file}"},
            {"id": "source_host", "type": "credential", "value": "STORE_HOST"},
        ],
    },
    {
        "id": 1,
        "parent_ids": [0],
        "required_to_start": [0],
        "name": "job_ffmpeg",
        "label": "Extract audio",
        "icon": "audio",
        "parameters": [
            {
                "id": "command_template",
                "type": "string",
                "value": "ffmpeg -i {source_path} -ar {sample_rate} {destination_path}",
            },
            {"id": "destination_filename", "type": "template", "value": "{source_path}.flac"},
            {"id": "sample_rate", "type": "integer", "value": 48000},
        ],
    },
    {
        "id": 2,
        "parent_ids": [1],
        "required_to_start": [1],
        "name": "job_speech_to_text",
        "label": "Transcribe",
        "icon": "text",
        "parameters": [
            {"id": "provider", "type": "string", "value": "whisper"},
            {"id": "api_key", "type": "credential", "value": "STT_API_KEY"},
            {"id": "language", "type": "template", "value": "{language}"},
            {"id": "destination_filename", "type": "template", "value": "subtitles.vtt"},
        ],
    },
    {
        "id": 3,
        "name": "job_transfer",
        "label": "Publish",
        "icon": "upload",
        "parent_ids": [2],
        "required_to_start": [2],
        "parameters": [
            {"id": "destination_host", "type": "credential", "value": "STORE_HOST", "default": "STORE_HOST"},
            {"id": "destination_path", "type": "template", "value": "{workflow_id}/subtitles.vtt"},
        ],
    },
    {
        "id": 4,
        "parent_ids": [3],
        "name": "job_file_system",
        "label": "Clean up",
        "icon": "delete",
        "mode": "one_for_many",
        "parameters": [
            {"id": "action", "type": "string", "value": "remove"},
            {"id": "source_paths", "type": "array_of_templates", "value": ["{work_directory}/{workflow_id}"]},
        ],
    },
]


def test_s22_template_source_destination_templates_and_clean_up() -> None:
    """S22 under ours.md §4.1 (Q9 + Q4 + §4.2)."""
    parameters = [dict(SUBTITLES_PARAMETERS[0], value="interview.mxf")]  # the launch merge
    steps = copy.deepcopy(SUBTITLES_STEPS)
    by_id = {s["id"]: s for s in steps}
    sim = Simulator(steps, parameters=parameters, reference="REF-1")

    sim.advance()
    assert [j.step_id for j in sim.jobs] == [0]  # Q9: step 4 waits for step 3
    [job] = sim.of(0)
    assert job.name == "job_transfer"
    assert job.parameters == [
        SP(["interview.mxf"]),  # §4.2: the rendered template is sent as an array
        {"id": "source_host", "type": "credential", "value": "STORE_HOST"},
        DP(out("interview.mxf")),
        SRC("interview.mxf"),
        REQ([]),
    ]

    sim.complete(0)
    [job] = sim.of(1)
    assert job.name == "job_ffmpeg"
    ffmpeg = by_id[1]["parameters"]
    assert job.parameters == [
        ffmpeg[0],  # command_template: a string, not rendered
        {"id": "destination_filename", "type": "string", "value": out("interview.mxf.flac")},
        ffmpeg[2],
        DP(out("interview.mxf.flac")),
        SRC(out("interview.mxf")),
        REQ([]),
    ]
    assert "{source_path}" in job.parameters[0]["value"]

    sim.complete(1)
    [job] = sim.of(2)
    assert job.name == "job_speech_to_text"
    assert job.parameters == [
        {"id": "provider", "type": "string", "value": "whisper"},
        {"id": "api_key", "type": "credential", "value": "STT_API_KEY"},
        {"id": "language", "type": "string", "value": "{language}"},  # unknown names stay literal
        {"id": "destination_filename", "type": "string", "value": "subtitles.vtt"},
        DP(out("subtitles.vtt")),
        SRC(out("interview.mxf.flac")),
        REQ([]),
    ]

    sim.complete(2)
    [job] = sim.of(3)
    assert job.name == "job_transfer"
    assert job.parameters == [  # Q4: the template is the one destination path
        {"id": "destination_host", "type": "credential", "value": "STORE_HOST", "default": "STORE_HOST"},
        DP(f"{W}/subtitles.vtt"),
        SRC(out("subtitles.vtt")),
        REQ([]),
    ]
    assert sim.count(4) == 0

    sim.complete(3)
    [job] = sim.of(4)
    assert job.name == "job_file_system"
    assert job.parameters == [
        {"id": "action", "type": "string", "value": "remove"},
        SP([f"{WD}/{W}"]),
        REQ([f"{WD}/{W}"]),
    ]
    assert sim.status == "processing"
    sim.complete(4)
    assert sim.status == "completed" and sim.total == 5
    assert sim.statuses == ["pending", "processing", "completed"]
