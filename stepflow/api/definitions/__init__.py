"""Workflow definitions: loaded from the configured folders, read by identifier."""
