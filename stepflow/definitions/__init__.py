"""Workflow definitions: JSON Schema per ``schema_version``, semantic checks, and the folder loader.

Pure Python: no database, no network. ``schema.DefinitionValidator`` judges one document,
``loader.read_definition_folders`` reads the configured folders through it.
"""
