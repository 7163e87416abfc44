"""The transition tables themselves (ours.md §3.4–3.5): complete, well formed, and saying what
the state model says."""

from __future__ import annotations

import itertools

import pytest

from stepflow.engine.states import (
    ACTIVE_STATES,
    FINAL_JOB_STATES,
    LIVE_STAGES,
    TERMINAL_WORKFLOW_STATES,
    JobState,
    WorkflowState,
)
from stepflow.engine.transitions import (
    LIVE_REPORTS,
    STATUS_RULES,
    TRANSITIONS,
    WORKFLOW_EVENTS,
    Action,
    Event,
    Outcome,
    Progress,
    Verdict,
    WorkflowEvent,
    decide,
    verdict,
)

CASES = list(list(itertools.product(Event, JobState, (False, True))))
"""Every (event, job state, aborted) there is."""


def test_every_event_has_exactly_one_rule_for_every_job_state() -> None:
    assert list(TRANSITIONS) == list(Event)
    for event, row in TRANSITIONS.items():
        assert list(row) == list(JobState), event


def test_every_outcome_is_well_formed() -> None:
    for event, state, aborted in CASES:
        outcome = decide(event, state, aborted)
        case = (event, state, aborted)
        assert (outcome.state is not None) == (outcome.action in (Action.MOVE, Action.RECORD)), case
        assert (outcome.otherwise is not None) == (outcome.action is Action.RESEND), case
        if outcome.otherwise is not None:
            assert decide(outcome.otherwise, state, aborted).action is not Action.RESEND, f"{case}: re-sends end"


def test_a_redelivered_message_changes_nothing() -> None:
    for event, state, aborted in CASES:
        outcome = decide(event, state, aborted)
        if outcome.action is Action.MOVE:
            assert outcome.state is not None
            again = decide(event, outcome.state, aborted)
            assert again.action in (Action.DUPLICATE, Action.IGNORE), (event, state, aborted)


def test_completed_absorbs_everything() -> None:
    for event, aborted in itertools.product(Event, (False, True)):
        outcome = decide(event, JobState.COMPLETED, aborted)
        assert outcome.action in (Action.DUPLICATE, Action.RECORD, Action.IGNORE), (event, aborted)


def test_a_final_job_moves_only_on_a_completion_in_a_running_workflow() -> None:
    for event, state, aborted in CASES:
        if state in FINAL_JOB_STATES:
            moves = decide(event, state, aborted).action in (Action.MOVE, Action.RESEND)
            wins = event is Event.COMPLETED and state in (JobState.ERROR, JobState.STOPPED) and not aborted
            assert moves == wins, (event, state, aborted)


def test_a_completion_wins_over_error_and_stopped_unless_the_workflow_is_aborted() -> None:
    for state in (JobState.ERROR, JobState.STOPPED):
        assert decide(Event.COMPLETED, state, aborted=False) == Outcome(Action.MOVE, JobState.COMPLETED)
        assert decide(Event.COMPLETED, state, aborted=True) == Outcome(Action.RECORD, JobState.COMPLETED)
    assert decide(Event.COMPLETED, JobState.SKIPPED, aborted=False) == Outcome(Action.RECORD, JobState.COMPLETED)


@pytest.mark.parametrize("aborted", [False, True])
def test_an_error_or_a_progression_for_a_stopped_job_is_history_only(aborted: bool) -> None:
    assert decide(Event.ERROR, JobState.STOPPED, aborted) == Outcome(Action.RECORD, JobState.ERROR)
    assert decide(Event.BUSY, JobState.STOPPED, aborted) == Outcome(Action.RECORD, JobState.ERROR)
    assert decide(Event.PROGRESSION, JobState.STOPPED, aborted).action is Action.IGNORE


def test_in_an_aborted_workflow_only_an_unfinished_job_takes_a_final_state() -> None:
    for event, state in itertools.product(Event, JobState):
        outcome = decide(event, state, aborted=True)
        assert outcome.action is not Action.RESEND, f"{event, state}: an aborted workflow sends nothing again"
        if outcome.action is Action.MOVE:
            assert state not in FINAL_JOB_STATES and outcome.state in FINAL_JOB_STATES, (event, state)


def test_a_job_still_running_in_an_aborted_workflow_takes_its_final_state() -> None:
    assert decide(Event.COMPLETED, JobState.PROCESSING, aborted=True) == Outcome(Action.MOVE, JobState.COMPLETED)
    assert decide(Event.STOPPED, JobState.PROCESSING, aborted=True) == Outcome(Action.MOVE, JobState.STOPPED)
    assert decide(Event.ERROR, JobState.PROCESSING, aborted=True) == Outcome(Action.MOVE, JobState.ERROR)
    assert decide(Event.PROGRESSION, JobState.QUEUED, aborted=True).action is Action.IGNORE


def test_a_duplicate_is_a_job_already_in_the_state_the_message_puts_it_in() -> None:
    targets = {
        Event.COMPLETED: JobState.COMPLETED,
        Event.ERROR: JobState.ERROR,
        Event.BUSY: JobState.ERROR,
        Event.STOPPED: JobState.STOPPED,
    }
    for event, state, aborted in CASES:
        if decide(event, state, aborted).action is Action.DUPLICATE:
            assert targets.get(event) == state, (event, state, aborted)


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES))
def test_the_busy_refusal_sends_the_order_again_then_is_an_error(state: JobState) -> None:
    assert decide(Event.BUSY, state, aborted=False) == Outcome(Action.RESEND, otherwise=Event.ERROR)
    assert decide(Event.BUSY, state, aborted=True) == decide(Event.ERROR, state, aborted=True)


def test_the_busy_refusal_is_an_error_for_a_job_that_is_not_sent_again() -> None:
    for state, aborted in itertools.product(JobState, (False, True)):
        if decide(Event.BUSY, state, aborted).action is not Action.RESEND:
            assert decide(Event.BUSY, state, aborted) == decide(Event.ERROR, state, aborted), (state, aborted)


def test_a_job_given_up_fails_or_stops_in_an_aborted_workflow() -> None:
    assert decide(Event.GIVEN_UP, JobState.PROCESSING, aborted=False) == Outcome(Action.MOVE, JobState.ERROR)
    assert decide(Event.GIVEN_UP, JobState.PROCESSING, aborted=True) == Outcome(Action.MOVE, JobState.STOPPED)
    assert decide(Event.MOVED_ON, JobState.PROCESSING, aborted=False) == Outcome(
        Action.RESEND, otherwise=Event.GIVEN_UP
    )
    assert decide(Event.MOVED_ON, JobState.PROCESSING, aborted=True) == Outcome(Action.MOVE, JobState.STOPPED)


@pytest.mark.parametrize("aborted", [False, True])
def test_an_answer_about_another_job_changes_nothing(aborted: bool) -> None:
    assert all(decide(Event.OTHER_JOB, state, aborted).action is Action.IGNORE for state in JobState)


def test_a_notification_ends_only_a_job_waiting_to_run() -> None:
    for state, aborted in itertools.product(JobState, (False, True)):
        waiting = state in (JobState.QUEUED, JobState.RETRYING)
        sent = decide(Event.NOTIFICATION_SENT, state, aborted)
        failed = decide(Event.NOTIFICATION_FAILED, state, aborted)
        assert sent == (Outcome(Action.MOVE, JobState.COMPLETED) if waiting else Outcome(Action.IGNORE)), state
        assert failed == (Outcome(Action.MOVE, JobState.ERROR) if waiting else Outcome(Action.IGNORE)), state


def test_live_reports_move_a_live_job_forward_only() -> None:
    """Along ``LIVE_STAGES``; an update's ``worker_updated`` brings a live job back to
    ``processing``; in an aborted workflow a report is history only."""
    for stage, state in itertools.product(LIVE_REPORTS, JobState):
        event = LIVE_REPORTS[stage]
        forward = (state in LIVE_STAGES and LIVE_STAGES.index(state) < LIVE_STAGES.index(stage)) or (
            stage is JobState.PROCESSING and state is JobState.UPDATING
        )
        ignored = Outcome(Action.IGNORE)
        assert decide(event, state, aborted=False) == (Outcome(Action.MOVE, stage) if forward else ignored), state
        assert decide(event, state, aborted=True) == (Outcome(Action.RECORD, stage) if forward else ignored), state


def test_a_state_the_column_never_holds_is_refused() -> None:
    with pytest.raises(ValueError):
        decide(Event.COMPLETED, "unknown", aborted=False)


# ---------------------------------------------------------------- workflows


def test_every_workflow_event_has_exactly_one_verdict_for_every_status() -> None:
    assert list(WORKFLOW_EVENTS) == list(WorkflowEvent)
    for event, row in WORKFLOW_EVENTS.items():
        assert list(row) == list(WorkflowState), event


def test_workflow_event_verdicts() -> None:
    """ours.md §3.5: retry 409 on a finished workflow; abort 200 when already aborted and 409
    when completed; pause 200 when paused and 409 when finished; resume 200 unless paused."""
    for status in WorkflowState:
        finished = status in TERMINAL_WORKFLOW_STATES
        assert verdict(WorkflowEvent.RETRY, status) is (Verdict.CONFLICT if finished else Verdict.APPLY)
        assert verdict(WorkflowEvent.RESUME, status) is (
            Verdict.APPLY if status is WorkflowState.PAUSED else Verdict.NOTHING
        )
    assert verdict(WorkflowEvent.ABORT, WorkflowState.ABORTED) is Verdict.NOTHING
    assert verdict(WorkflowEvent.ABORT, WorkflowState.COMPLETED) is Verdict.CONFLICT
    assert verdict(WorkflowEvent.ABORT, WorkflowState.PAUSED) is Verdict.APPLY
    assert verdict(WorkflowEvent.PAUSE, WorkflowState.PAUSED) is Verdict.NOTHING
    assert verdict(WorkflowEvent.PAUSE, WorkflowState.ERROR) is Verdict.APPLY
    assert all(verdict(WorkflowEvent.PAUSE, status) is Verdict.CONFLICT for status in TERMINAL_WORKFLOW_STATES)


def test_every_status_has_exactly_one_next_status_for_every_progress() -> None:
    assert list(STATUS_RULES) == list(WorkflowState)
    for status, row in STATUS_RULES.items():
        assert list(row) == list(Progress), status


def test_a_finished_workflow_keeps_its_status() -> None:
    for status, progress in itertools.product(TERMINAL_WORKFLOW_STATES, Progress):
        assert STATUS_RULES[status][progress] is status


def test_completion_comes_once_every_step_is_satisfied_and_a_pause_lasts_until_then() -> None:
    for status, progress in itertools.product(WorkflowState, Progress):
        new = STATUS_RULES[status][progress]
        if status not in TERMINAL_WORKFLOW_STATES:
            assert (new is WorkflowState.COMPLETED) == (progress is Progress.DONE), (status, progress)
        if status is WorkflowState.PAUSED and progress is not Progress.DONE:
            assert new is WorkflowState.PAUSED, progress
        assert new is not WorkflowState.ABORTED or status is WorkflowState.ABORTED, "only the abort event aborts"
