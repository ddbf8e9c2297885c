"""The README's code map matches the tree: every module of pipe/ is named, every module named exists,
and each module imports only modules named above it (the one-way flow the map describes)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Files with nothing to map: the package markers and the `python -m pipe` entry point.
TRIVIAL = {"pipe/__init__.py", "pipe/__main__.py", "pipe/reports/__init__.py"}
WIRING = "pipe/pipe.py"  # imports anything, by design


def code_map() -> str:
    return README.split("### Code map\n", 1)[1].split("\n### ", 1)[0]


def named_in_order() -> list[str]:
    """The pipe/ files the map's entries are about (each entry opens with them), in the map's order."""
    heads = re.findall(r"^\s*- ((?:`pipe/[^`]+`(?:, )?)+):", code_map(), re.M)
    paths = (path for head in heads for path in re.findall(r"`(pipe/[\w/]+\.(?:py|yml))`", head))
    return list(dict.fromkeys(paths))


def on_disk() -> set[str]:
    files = {str(p.relative_to(ROOT)) for p in (ROOT / "pipe").rglob("*") if p.suffix in (".py", ".yml")}
    return {f for f in files if "__pycache__" not in f} - TRIVIAL


def module_of(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def pipe_imports(path: str) -> set[str]:
    """The pipe modules a file imports (`from pipe import x` counts as pipe.x when x is a module)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipe":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _is_module(candidate) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "pipe"}
    return found - {"pipe"}


def _is_module(dotted: str) -> bool:
    base = ROOT / dotted.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def test_every_module_of_pipe_is_in_the_code_map():
    assert on_disk() - set(named_in_order()) == set()


def test_every_module_in_the_code_map_exists():
    assert set(named_in_order()) - on_disk() == set()


def test_imports_only_flow_down_the_code_map():
    order = [module_of(p) for p in named_in_order() if p.endswith(".py")]
    rank = {m: i for i, m in enumerate(order)}
    upward = []
    for path in named_in_order():
        if not path.endswith(".py") or path == WIRING or path not in on_disk():
            continue
        module = module_of(path)
        package = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module
        for imported in pipe_imports(path):
            if imported.startswith(package + ".") and package != "pipe":
                continue  # a package's own modules (pipe/survey/*) use each other
            if imported not in rank or rank[imported] >= rank[module]:
                upward.append(f"{module} imports {imported}")
    assert upward == [], upward
