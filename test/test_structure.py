"""Imports only flow down (notes on the layout: README's code map): each module of pipe/ is parsed
with ast and every import it makes, at any depth (functions and TYPE_CHECKING blocks included),
is checked against the layers below. A new module must be placed in a layer here."""

from __future__ import annotations

import ast
from pathlib import Path

PIPE = Path(__file__).resolve().parents[1] / "pipe"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "data",  # facts, vocabularies, the typed configuration and credential: no I/O with Bitbucket
        {
            "pipe",
            "pipe.errors",
            "pipe.outcomes",
            "pipe.redaction",
            "pipe.scopes",
            "pipe.shapes",
            "pipe.variables",
            "pipe.logs",
            "pipe.credential",
            "pipe.catalog",
            "pipe.profiles",
            "pipe.guidance",
        },
    ),
    ("transport", {"pipe.client", "pipe.paging"}),
    ("survey", {"pipe.survey", "pipe.survey.*"}),
    ("assessment", {"pipe.assessment"}),
    ("reports", {"pipe.reports", "pipe.reports.*"}),
    ("wiring", {"pipe.pipe", "pipe.__main__"}),
]
# What the layers above the survey may take from it: the evidence dataclasses, and (wiring) the
# `survey` function itself. The steps inside stay the survey's own.
SURVEY_FACE = {"pipe.survey.evidence"}
WIRING_FACE = SURVEY_FACE | {"pipe.survey"}
# The survey's steps use what they share (evidence, grants, git) but never one another.
STEPS = {"pipe.survey.auth", "pipe.survey.inventory", "pipe.survey.reads"}


def _name(path: Path) -> str:
    parts = path.relative_to(PIPE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in sorted(PIPE.rglob("*.py"))}


def _layer(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member.endswith(".*") and module.startswith(member[:-1])):
                return index
    raise AssertionError(f"{module} is in no layer of test_structure.LAYERS: place it there")


def imports(module: str) -> set[str]:
    """The pipe modules `module` imports (`from pipe import x` names the module pipe.x when it is one)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name == "pipe" or name.startswith("pipe.")}


def test_every_module_is_found_and_placed():
    assert {"pipe.survey", "pipe.survey.evidence", "pipe.assessment", "pipe.reports.document"} <= set(MODULES)
    for module in MODULES:
        _layer(module)


def test_imports_only_flow_down():
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module in MODULES
        for target in imports(module)
        if _layer(target) > _layer(module)
    ]
    assert not upward, upward


def test_only_the_evidence_is_taken_from_the_survey():
    survey = _layer("pipe.survey")
    reached = [
        f"{module} imports {target}"
        for module in MODULES
        if _layer(module) > survey
        for target in imports(module)
        if _layer(target) == survey and target not in (WIRING_FACE if module == "pipe.pipe" else SURVEY_FACE)
    ]
    assert not reached, reached


def test_the_survey_steps_do_not_import_one_another():
    crossed = [
        f"{step} imports {target}" for step in STEPS for target in imports(step) if target in STEPS | {"pipe.survey"}
    ]
    assert not crossed, crossed
