"""StepFlow: workflow orchestrator for MCAI workers."""

__version__ = "2.0.0"
