"""Tests of the pipe's container image, built from the real Dockerfile.

Needs a Docker daemon (`make docker` starts one and provides the base image). Outside CI
the tests skip when no daemon answers; in CI (CI=true) they fail instead, so a missing
Docker never turns into a green run.

Environment:
  BASE_IMAGE  base image build argument (default python:3.11-slim-bookworm)
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

import pytest

docker = pytest.importorskip("docker", reason="docker SDK (requirements-dev.txt) not installed")

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_TAG = "backup-readiness:test"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "python:3.11-slim-bookworm")

# Layers the pipe adds over its base, as `docker history` counts them (decimal MB).
MAX_ADDED_BYTES = 80 * 1000 * 1000

# Exit code of the pipe when its configuration is unusable (no credential, no WORKSPACE).
# ADJUST HERE if the pipe's contract changes: see test_no_credentials_is_a_configuration_error.
CONFIG_ERROR_EXIT_CODE = 2

SECRET_PATTERNS = [
    re.compile(r"ATATT|ATBB|ATCTT"),  # Atlassian API / app-password / access token prefixes
    re.compile(r"(TOKEN|SECRET)=\S+"),  # a token or secret variable with a value
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable daemon"
        message = f"no Docker daemon answers ({exc.__class__.__name__}: {exc}); run `make docker`"
        if _in_ci():
            pytest.fail(f"CI=true: container tests must run, but {message}", pytrace=False)
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client):
    try:
        return docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"base image {BASE_IMAGE} is missing: run `make docker` "
            "(scripts/docker-setup.sh pulls it or builds the local stand-in)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def image(docker_client, base_image):
    """Builds the real Dockerfile once per session.

    With pytest-xdist every worker has its own session: a file lock serialises the builds
    and the second one is served from Docker's layer cache.
    """
    lock_path = Path(tempfile.gettempdir()) / "backup-readiness-image-build.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            built, _logs = docker_client.images.build(
                path=str(REPO_ROOT),
                tag=IMAGE_TAG,
                buildargs={"BASE_IMAGE": BASE_IMAGE},
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as exc:
            tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
            pytest.fail(f"docker build failed: {exc}\n{tail[-4000:]}", pytrace=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return built


def _run(docker_client, image, command=None, entrypoint=None, environment=None, timeout=180):
    """Runs a container to completion; returns (exit code, combined output)."""
    container = docker_client.containers.run(
        image.id,
        command=command,
        entrypoint=entrypoint,
        environment=environment or {},
        detach=True,
    )
    try:
        result = container.wait(timeout=timeout)
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return result["StatusCode"], output


# (a) ----------------------------------------------------------------------------------------
def test_added_layers_are_small(image, base_image):
    history = image.history()  # newest first
    base_history = base_image.history()
    assert len(history) > len(base_history)
    # The final stage starts FROM the base, so the oldest entries are the base's own.
    assert [h["Id"] for h in history[-len(base_history) :]] == [h["Id"] for h in base_history]
    added = history[: len(history) - len(base_history)]
    added_bytes = sum(h["Size"] for h in added)
    detail = "\n".join(f"{h['Size'] / 1e6:8.1f} MB  {h['CreatedBy'][:100]}" for h in added)
    assert added_bytes < MAX_ADDED_BYTES, f"pipe layers total {added_bytes / 1e6:.1f} MB:\n{detail}"


# (b) ----------------------------------------------------------------------------------------
def test_no_secret_in_history_or_env(image):
    history_text = "\n".join(h.get("CreatedBy") or "" for h in image.history())  # untruncated
    env = image.attrs["Config"].get("Env") or []
    labels = image.attrs["Config"].get("Labels") or {}
    for where, text in [
        ("history", history_text),
        ("Config.Env", "\n".join(env)),
        ("Config.Labels", "\n".join(f"{k}={v}" for k, v in labels.items())),
    ]:
        for pattern in SECRET_PATTERNS:
            match = pattern.search(text)
            assert match is None, f"{where} contains something token-like: {match.group(0)[:12]}..."


# (c) ----------------------------------------------------------------------------------------
def test_entrypoint_runs_the_pipe_package(image):
    config = image.attrs["Config"]
    assert config["Entrypoint"] == ["python", "-m", "pipe"]
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    assert env.get("PYTHONPATH") == "/opt/pipe"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert "User" not in config or not config["User"], "Pipelines runs pipes as root: no USER"


def test_git_and_dependencies_are_installed(docker_client, image):
    script = (
        "git --version"
        " && python -c 'import bitbucket_pipes_toolkit, httpx, colorlog; print(\"deps ok\")'"
        " && test -f /opt/pipe/pipe.yml && test -f /opt/pipe/LICENSE && test -f /opt/pipe/README.md"
    )
    code, output = _run(docker_client, image, entrypoint=["sh", "-c"], command=[script])
    assert code == 0, output
    assert "git version" in output and "deps ok" in output


def test_package_import_does_not_depend_on_cwd(docker_client, image):
    # Pipelines sets the clone directory as working directory; a repository with its own
    # pipe/ folder must not shadow the pipe's package.
    script = (
        "mkdir -p /tmp/clone/pipe && touch /tmp/clone/pipe/__init__.py"
        " && echo 'raise SystemExit(99)' > /tmp/clone/pipe/__main__.py"
        " && cd /tmp/clone && python -c 'import pipe; print(pipe.__file__)'"
    )
    code, output = _run(docker_client, image, entrypoint=["sh", "-c"], command=[script])
    assert code == 0, output
    assert "/opt/pipe/pipe/__init__.py" in output, output


# (d) ADJUSTABLE: the pipe's contract for a missing credential ---------------------------------
def test_no_credentials_is_a_configuration_error(docker_client, image):
    """With no credential variables (and no WORKSPACE) the pipe exits CONFIG_ERROR_EXIT_CODE."""
    code, output = _run(docker_client, image, environment={"CODE_INSIGHTS": "false"})
    assert code == CONFIG_ERROR_EXIT_CODE, f"exit {code}, output:\n{output[-3000:]}"
    for pattern in SECRET_PATTERNS[:1]:
        assert not pattern.search(output)
