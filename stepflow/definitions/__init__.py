"""Workflow definitions: JSON Schema per ``schema_version``, semantic checks, hooks, and the folder loader.

Pure Python: no database, no network. ``schema.DefinitionValidator`` judges one document,
``loader.read_definition_folders`` reads the configured folders through it, and
``hooks.normalise_hooks`` turns the three shapes of ``notification_hooks`` (1.10, 1.11–1.12,
1.13) into one.
"""
