"""SQLAlchemy tables. No HTTP, no AMQP: only what is stored and how it relates.

Current state lives in columns (``workflows.status``, ``jobs.state``, ``workflow_steps``
counters) so every worker message costs O(1) work; history lives in append-only tables.
"""

from stepflow.models.base import Base
from stepflow.models.definition import WorkflowDefinition
from stepflow.models.job import Job, JobStatus, Progression, Update
from stepflow.models.outbox import Outbox
from stepflow.models.right import Right
from stepflow.models.worker import LiveWorker, WorkerDefinition, WorkerStatus
from stepflow.models.workflow import Artifact, Workflow, WorkflowCounter, WorkflowStatus, WorkflowStep

__all__ = [
    "Artifact",
    "Base",
    "Job",
    "JobStatus",
    "LiveWorker",
    "Outbox",
    "Progression",
    "Right",
    "Update",
    "WorkerDefinition",
    "WorkerStatus",
    "Workflow",
    "WorkflowCounter",
    "WorkflowDefinition",
    "WorkflowStatus",
    "WorkflowStep",
]
