"""The real image against the simulator: each credential kind and trap, and every output.

The container shares the host network, so the simulator on 127.0.0.1 is Bitbucket to it, and
the Code Insights proxy (CODE_INSIGHTS_PROXY) is the simulator too."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from test.conftest import (
    ACCESS_TOKEN,
    ALL_READ,
    API_TOKEN,
    EMAIL,
    OAUTH_SECRET,
    access_token,
    api_token,
    credential_env,
    oauth,
    simulator_env,
)
from test.test_container import base_image, docker_client, image  # noqa: F401 - shared fixtures

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text())
CLONE_DIR = "/opt/atlassian/pipelines/agent/build"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
NO_PULLS = [s for s in ALL_READ if s != "read:pullrequest:bitbucket"]


def run_image(docker_client, image, sim, workdir: Path, env: dict[str, str]) -> tuple[int, str]:  # noqa: F811
    environment = {"WORKSPACE": "acme", "CODE_INSIGHTS": "false", "NO_COLOR": "1"}
    environment.update(simulator_env(sim) if sim else {})
    environment.update(env)
    container = docker_client.containers.run(
        image.id,
        environment=environment,
        network_mode="host",
        detach=True,
        working_dir=CLONE_DIR,
        volumes={str(workdir): {"bind": CLONE_DIR, "mode": "rw"}},
    )
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)


def leaks(text: str) -> list[str]:
    found = []
    for secret in (API_TOKEN, ACCESS_TOKEN, OAUTH_SECRET):
        forms = [
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"{EMAIL}:{secret}".encode()).decode(),
        ]
        forms += [secret[i : i + 8] for i in range(len(secret) - 7)]
        found += [form for form in forms if form in text]
    return found


@pytest.mark.parametrize(
    ("name", "make", "variables", "expected"),
    [
        ("api token, complete", lambda: api_token(), {}, 0),
        ("api token, no pull requests", lambda: api_token(NO_PULLS), {}, 1),
        (
            "workspace access token",
            lambda: access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"]),
            {},
            0,
        ),
        ("oauth consumer", lambda: oauth(), {}, 0),
        ("api token, username for email", lambda: api_token(), {"BITBUCKET_EMAIL": "acme-backup"}, 2),
        ("api token, email as git username", lambda: api_token(), {"BITBUCKET_USERNAME": EMAIL}, 2),
        ("api token, newline pasted", lambda: api_token(), {"BITBUCKET_API_TOKEN": API_TOKEN + "\n"}, 2),
        (
            "app password",
            lambda: api_token(),
            {"BITBUCKET_API_TOKEN": "", "BITBUCKET_EMAIL": "", "BITBUCKET_APP_PASSWORD": "ATBBcanaryAppPassword123456"},
            2,
        ),
        (
            "app password in the API token variable",
            lambda: api_token(),
            {"BITBUCKET_API_TOKEN": "ATBBcanaryAppPassword123456"},
            2,
        ),
        ("access token in the API token variable", lambda: api_token(), {"BITBUCKET_API_TOKEN": ACCESS_TOKEN}, 2),
        ("two credential kinds", lambda: api_token(), {"BITBUCKET_ACCESS_TOKEN": ACCESS_TOKEN}, 2),
    ],
)
def test_each_credential_kind_in_the_container(
    docker_client,  # noqa: F811 - the shared fixture, by name
    image,  # noqa: F811
    start,
    tmp_path,
    name,
    make,
    variables,
    expected,
):
    cred = make()
    sim = start([cred])
    env = {k: v for k, v in {**credential_env(cred), **variables}.items() if v != ""}
    code, output = run_image(docker_client, image, sim, tmp_path, env)
    assert code == expected, f"{name}: exit {code}\n{output[-3000:]}"
    assert "Traceback" not in output
    report = json.loads((tmp_path / "backup-readiness" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["exit_code"] == expected
    if expected == 2:
        assert not [r for r in sim.requests if r.path.startswith("/2.0")], "bad input must send nothing"
    assert not leaks(output), name


def test_every_output_in_the_container(docker_client, image, start, tmp_path):  # noqa: F811
    cred = api_token(NO_PULLS, permissions={"repo-0001": "read"})
    sim = start([cred])
    env = {
        **credential_env(cred),
        "CODE_INSIGHTS": "true",
        "CODE_INSIGHTS_PROXY": sim.base_url,
        "CHECK_RESTORE": "true",
        "DEBUG": "true",
        "BITBUCKET_COMMIT": COMMIT,
        "BITBUCKET_REPO_SLUG": "infra",
        "BITBUCKET_WORKSPACE": "acme",
        "BITBUCKET_BUILD_NUMBER": "7",
    }
    code, output = run_image(docker_client, image, sim, tmp_path, env)
    assert code == 1, output[-3000:]
    assert "read:pullrequest:bitbucket" in output and "NOT READY" in output
    report = json.loads((tmp_path / "backup-readiness" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert (tmp_path / "backup-readiness" / "report.md").read_text().startswith("# Backup readiness")
    suite = ET.parse(tmp_path / "test-results" / "backup-readiness.xml").getroot()
    assert int(suite.get("failures")) >= 1
    payload = sim.reports[f"acme/infra/{COMMIT}/backup-readiness"]
    assert payload["result"] == "FAILED" and payload["report_type"] == "SECURITY"
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    posted = json.dumps(payload) + "".join(r.body.decode("utf-8", "replace") for r in sim.requests)
    assert not leaks(output + written + posted)


def _installed(docker_client, image) -> set[str]:  # noqa: F811
    script = (
        "import importlib.metadata as m; "
        "print('\\n'.join(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))"
    )
    output = docker_client.containers.run(image.id, entrypoint=["python", "-c", script], remove=True)
    return {line.strip().lower().replace("_", "-") for line in output.decode().splitlines() if line.strip()}


def test_image_holds_only_the_pinned_requirements(docker_client, image):  # noqa: F811
    text = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text()
    pinned = {
        line.split()[0].lower().replace("_", "-")
        for line in text.splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert _installed(docker_client, image) == pinned


def test_image_holds_only_the_pipe(docker_client, image):  # noqa: F811
    script = "cd /opt/pipe && find . -type f | sort"
    output = docker_client.containers.run(image.id, entrypoint=["sh", "-c", script], remove=True).decode()
    files = [line[2:] for line in output.split()]
    assert {f.split("/")[0] for f in files} == {"pipe", "pipe.yml", "LICENSE", "README.md"}
    assert not [f for f in files if f.startswith("pipe/") and not f.endswith((".py", ".yml"))]
