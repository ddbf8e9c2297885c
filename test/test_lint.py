"""The code and the Dockerfile stay clean: ruff and hadolint run as tests, so CI enforces them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: it comes with requirements-dev.txt (make venv)")
    return found


def test_ruff_is_clean():
    result = subprocess.run([tool("ruff"), "check", "pipe", "test", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_formatter_for_the_whole_tree():
    result = subprocess.run(
        [tool("ruff"), "format", "--check", "pipe", "test", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_clean():
    result = subprocess.run([tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_requirements_are_pinned_with_hashes():
    text = (ROOT / "requirements.txt").read_text()
    entries = [e for e in text.replace("\\\n", " ").splitlines() if e.strip() and not e.lstrip().startswith("#")]
    assert entries
    for entry in entries:
        name = entry.split()[0]
        assert "==" in name, f"{name} is not pinned"
        assert "--hash=sha256:" in entry, f"{name} has no hash"
