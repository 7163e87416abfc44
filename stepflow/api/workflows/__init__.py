"""Workflows: launch from a definition, read one."""
