"""Read workflow definition files from folders and sort them into loaded and invalid ones.

No database here: the caller inserts the loaded definitions and deals with an identifier + version
that is already stored with other content (ours A11).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stepflow.definitions.schema import json_type
from stepflow.definitions.semantics import Findings

MAX_ERRORS_PER_FILE: int = 10
"""Errors joined into one ``InvalidFile.error``; the rest are counted ("… and N more")."""


class DefinitionChecker(Protocol):
    """What the loader needs of a validator (``schema.DefinitionValidator`` is one)."""

    def check(self, document: object) -> Findings:
        """Errors (reject) and warnings (keep) for one decoded document."""
        ...


@dataclass(frozen=True, slots=True)
class LoadedDefinition:
    """A file that decoded to a valid definition.

    ``file`` is the path as found (folder as given, joined with the file name), ``document`` the
    decoded JSON object, unchanged; ``warnings`` the validator's warnings, each naming its JSON path.
    """

    file: str
    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InvalidFile:
    """A file (or an unreadable folder) that gives no definition.

    ``error`` is one line: why it could not be read or decoded, or the validation errors joined
    with ``"; "`` (at most ``MAX_ERRORS_PER_FILE`` of them).
    """

    file: str
    error: str


@dataclass(frozen=True, slots=True)
class LoadReport:
    """Everything read, in reading order: folders in the given order, files by name in each."""

    loaded: list[LoadedDefinition] = field(default_factory=list)
    invalid: list[InvalidFile] = field(default_factory=list)


def read_definition_folders(folders: Sequence[Path], validator: DefinitionChecker) -> LoadReport:
    """Read every ``*.json`` file of each folder (not recursive) through ``validator``.

    Files are read in name order; other files, sub-folders and hidden files (``.*``: editor and
    macOS ``._*`` droppings) are ignored. A folder that cannot be listed is reported as an
    ``InvalidFile`` carrying the folder's path rather than raised, so that one bad entry does not
    stop the others. Never raises for the content of a file.
    """
    report = LoadReport()
    for folder in folders:
        try:
            paths = sorted((path for path in folder.iterdir() if _is_definition_file(path)), key=lambda path: path.name)
        except OSError as error:
            report.invalid.append(InvalidFile(file=str(folder), error=f"cannot list folder: {_os_reason(error)}"))
            continue
        for path in paths:
            result = read_definition_file(path, validator)
            if isinstance(result, LoadedDefinition):
                report.loaded.append(result)
            else:
                report.invalid.append(result)
    return report


def read_definition_file(path: Path, validator: DefinitionChecker) -> LoadedDefinition | InvalidFile:
    """Decode and validate one file: a ``LoadedDefinition``, or an ``InvalidFile`` saying why not."""
    file = str(path)
    try:
        # utf-8-sig: tolerate the BOM some Windows editors write.
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        return InvalidFile(file=file, error=f"cannot read file: {_os_reason(error)}")
    except UnicodeDecodeError as error:
        return InvalidFile(file=file, error=f"not UTF-8 text (byte {error.start})")
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        return InvalidFile(file=file, error=f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")
    except ValueError as error:
        return InvalidFile(file=file, error=f"not valid JSON: {error}")
    except RecursionError:
        return InvalidFile(file=file, error="not valid JSON: nested too deeply")
    if not isinstance(document, dict):
        return InvalidFile(file=file, error=f"not a JSON object but {json_type(document)}")
    findings = validator.check(document)
    if findings.errors:
        return InvalidFile(file=file, error=_one_line(findings.errors))
    return LoadedDefinition(file=file, document=document, warnings=list(findings.warnings))


def _is_definition_file(path: Path) -> bool:
    return path.suffix == ".json" and not path.name.startswith(".") and path.is_file()


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and would not survive storage.
    raise ValueError(f"{name} is not a JSON value")


def _one_line(errors: Sequence[str]) -> str:
    shown = [" ".join(error.splitlines()) for error in errors[:MAX_ERRORS_PER_FILE]]
    if len(errors) > MAX_ERRORS_PER_FILE:
        shown.append(f"… and {len(errors) - MAX_ERRORS_PER_FILE} more")
    return "; ".join(shown)


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error)
