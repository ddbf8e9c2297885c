"""Golden outputs: the step log and report.json of seven scenarios, compared exactly with test/golden/.

Any change of wording, guidance or verdict shows here as a failing test and, once accepted, as a diff of
the files in review. After a deliberate change, rewrite the expected files and read the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q test/test_golden.py
    git diff test/golden/

Only what differs between two identical runs is normalised: generated_at, duration_seconds, the
simulator's port, the working folder and an OAuth access token the simulator issued. Request counts are
kept: they are deterministic for each scenario, and a change in them is a change in what the pipe sends.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from test.conftest import ALL_READ, Run, access_token, api_token, oauth, workspace
from test.simulator import Credential, Fault, Simulator, Workspace
from test.simulator.scenarios import demo

GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA = json.loads((GOLDEN.parents[1] / "schema" / "report.schema.json").read_text(encoding="utf-8"))
UPDATE = os.environ.get("UPDATE_GOLDEN", "").strip() not in ("", "0", "false")
PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")


@dataclass
class Scenario:
    """One run of the pipe: a simulator (None: none is started), a credential and the variables."""

    credential: Credential | None
    workspaces: list[Workspace] | None = None
    faults: list[Fault] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    simulator: bool = True


def _demo() -> Scenario:
    scenario = demo()
    (credential,) = scenario.credentials.values()
    return Scenario(credential, scenario.workspaces)


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    # The README's demo: the token lacks read:pullrequest and is not admin on three repositories.
    "demo": _demo,
    "complete-api-token": lambda: Scenario(api_token(ALL_READ, scope_headers=True)),
    # webhook but no repository:admin: the admin gap's fix is the scope, not repository permissions.
    "access-token-without-admin": lambda: Scenario(
        access_token(["repository", "webhook", "pullrequest", "project", "pipeline"])
    ),
    "oauth-consumer": lambda: Scenario(oauth()),
    # Bitbucket answers 503 on every pull request list: a required category cannot be judged.
    "outage": lambda: Scenario(api_token(), faults=[Fault(r"/pullrequests$", "status", status=503, times=-1)]),
    "configuration-error": lambda: Scenario(api_token(), variables={"BITBUCKET_EMAIL": "acme-backup"}),
    # Three workspaces in one step: acme ready, acme-labs without admin on two repositories, ghost not
    # visible to the credential (issue 13): a section for each, the step's verdict the worst.
    "three-workspaces": lambda: Scenario(
        api_token(permissions={"acme-labs/repo-0001": "read", "acme-labs/repo-0002": "write"}),
        [workspace(slug="acme"), workspace(4, git=1, slug="acme-labs")],
        variables={"WORKSPACE": "acme,acme-labs,ghost"},
    ),
}


def normalise(text: str, run: Run, sim: Simulator | None) -> str:
    text = PORT.sub(r"\1:<port>", text)
    text = text.replace(str(run.cwd), "<cwd>")
    for token in sim.world.oauth_tokens if sim else ():
        text = text.replace(token, "<oauth-token>")
    return text


def normalised_report(run: Run, sim: Simulator | None) -> str:
    report: dict[str, Any] = run.report
    report["generated_at"] = "<generated_at>"
    if "duration_seconds" in report:
        report["duration_seconds"] = "<duration_seconds>"
    return normalise(json.dumps(report, indent=2, ensure_ascii=False) + "\n", run, sim)


def outputs(name: str, start, run_pipe) -> dict[str, str]:
    """The normalised step log (stderr, then stdout: the verdict line) and report.json of one scenario."""
    scenario = SCENARIOS[name]()
    sim = None
    if scenario.simulator:
        credentials = [scenario.credential] if scenario.credential else []
        sim = start(credentials, workspaces=scenario.workspaces, faults=list(scenario.faults))
    run = run_pipe(sim, scenario.credential, **scenario.variables)
    jsonschema.validate(run.report, SCHEMA, format_checker=jsonschema.FormatChecker())  # what is kept is valid
    return {f"{name}.log": normalise(run.err + run.out, run, sim), f"{name}.json": normalised_report(run, sim)}


def compare(produced: dict[str, str]) -> None:
    for filename, text in produced.items():
        path = GOLDEN / filename
        if UPDATE:
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            continue
        assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
        expected = path.read_text(encoding="utf-8")
        assert text.splitlines() == expected.splitlines(), f"{filename} differs (UPDATE_GOLDEN=1 rewrites it)"
        assert text == expected


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden_output(start, run_pipe, name):
    compare(outputs(name, start, run_pipe))
