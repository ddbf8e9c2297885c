"""Issue 13, point 1: every workspace in one step, end to end against the simulator.

WORKSPACE names several workspaces ('acme,acme-labs' or a YAML list) or '*'. Each gets its own
survey, assessment and section in every report; the step's verdict is the worst of theirs; a
workspace the credential cannot see is named with the fix and never stops the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema

from pipe import __version__
from test.conftest import access_token, api_token, workspace
from test.simulator import Fault

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text())
# acme: the credential is admin everywhere (ready); acme-labs: read on one repository, write on another
# (not ready: no admin on 2); ghost: no such workspace for this credential.
THREE = "acme,acme-labs,ghost"
LABS_GAP = {"acme-labs/repo-0001": "read", "acme-labs/repo-0002": "write"}


def two_workspaces():
    return [workspace(slug="acme"), workspace(4, git=1, slug="acme-labs")]


def api_paths(sim) -> list[str]:
    return [r.path for r in sim.requests if r.path.startswith("/2.0")]


def three_workspaces(start, run_pipe):
    """THREE with LABS_GAP: acme ready, acme-labs not ready, ghost not visible."""
    cred = api_token(permissions=LABS_GAP)
    sim = start([cred], two_workspaces())
    return run_pipe(sim, cred, WORKSPACE=THREE), sim


def validate(report: dict) -> None:
    jsonschema.validate(report, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_the_account_is_asked_once_however_many_workspaces(start, run_pipe):
    run, sim = three_workspaces(start, run_pipe)
    assert run.code == 1, run.output
    assert api_paths(sim).count("/2.0/user") == 1, api_paths(sim)
    assert all(ws["workspace"] == name for ws, name in zip(run.report["workspaces"], THREE.split(","), strict=True))
    assert run.category("account", "acme")["backup"] == run.category("account", "acme-labs")["backup"] == "ok"


def test_advice_about_the_credential_is_said_once_not_per_workspace(start, run_pipe):
    run, sim = three_workspaces(start, run_pipe)
    report = run.report
    validate(report)
    once = {item["id"] for item in report["guidance"]}
    assert {"token-lifetime", "vendor-terms", "vendor-term", "app-password-gone"} <= once, once
    for ws in report["workspaces"]:
        assert not once & {item["id"] for item in ws.get("guidance", [])}, ws["workspace"]
    for text in ('Xopero ONE\'s "Required permissions" page', "Note: API tokens expire", "Every workspace:"):
        assert run.output.count(text) == 1, text
        assert (run.cwd / "backup-readiness" / "report.md").read_text().count(text.rstrip(":")) == 1, text
    # The workspaces' own advice stays theirs: the admin gap is acme-labs'.
    assert any(item["id"] == "admin-gap" for item in report["workspaces"][1]["guidance"])


def test_three_workspaces_one_not_ready_one_not_visible(start, run_pipe):
    run, sim = three_workspaces(start, run_pipe)
    report = run.report
    validate(report)
    # The step's verdict is the worst of the three: not-ready (exit 1), never an error for one workspace.
    assert run.code == 1 and report["verdict"] == "not-ready" and report["exit_code"] == 1
    assert report["error"] is None
    assert [(ws["workspace"], ws["verdict"]) for ws in report["workspaces"]] == [
        ("acme", "ready"),
        ("acme-labs", "not-ready"),
        ("ghost", "not-ready"),
    ]
    acme, labs, ghost = report["workspaces"]
    assert acme["error"] is None and acme["repositories"]["total"] == 6 and acme["admin_gap"]["repositories"] == 0
    assert labs["repositories"]["total"] == 4 and labs["admin_gap"]["repositories"] == 2
    assert run.category("repository-admin", "acme-labs")["backup"] == "missing"
    assert run.category("repository-admin", "acme")["backup"] == "ok"
    # The workspace nobody can see is named with its fix, and has no checks of its own.
    assert ghost["error"]["message"] == "Workspace 'ghost' was not found, or this credential cannot see it."
    assert "Check WORKSPACE" in ghost["error"]["fix"]
    assert "categories" not in ghost
    # Both visible workspaces were really read; the third only asked for.
    paths = api_paths(sim)
    assert "/2.0/repositories/acme" in paths and "/2.0/repositories/acme-labs" in paths
    assert "/2.0/workspaces/ghost" in paths and not any(p.startswith("/2.0/repositories/ghost") for p in paths)
    # One home for the run's fields: the credential and the request count at the top, once.
    assert report["requests"] == len(paths)
    assert report["credential"]["kind"] == "api_token"
    assert "repositories" not in report and "categories" not in report


def test_every_report_has_a_section_per_workspace(start, run_pipe):
    run, _ = three_workspaces(start, run_pipe)
    log = run.err.splitlines()
    assert f"INFO: backup-readiness {__version__}: 3 workspaces" in log
    assert "INFO: Workspace acme: READY" in log and "INFO: Workspace acme-labs: NOT READY" in log
    assert "INFO: Workspace ghost: NOT READY" in log
    assert sum(1 for line in log if line.startswith("INFO: Category ")) == 2  # a table per checked workspace
    assert "Workspace 'ghost' was not found, or this credential cannot see it." in run.output
    assert "No admin permission on 2 repositories (e.g. acme-labs/repo-0001, acme-labs/repo-0002)" in run.output
    assert run.out.startswith("✖ NOT READY")
    markdown = (run.cwd / "backup-readiness" / "report.md").read_text()
    assert "- Workspaces: acme, acme-labs, ghost" in markdown
    for heading in ("## Workspace acme: READY", "## Workspace acme-labs: NOT READY", "## Workspace ghost: NOT READY"):
        assert heading in markdown.splitlines()
    root = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == [f"backup-readiness {ws} (xopero-one)" for ws in ("acme", "acme-labs", "ghost")]
    assert suites["backup-readiness acme (xopero-one)"].get("failures") == "0"
    labs = suites["backup-readiness acme-labs (xopero-one)"]
    assert {c.get("name") for c in labs.findall("testcase") if c.find("failure") is not None} >= {
        "backup: Repositories: admin [repository-admin]"
    }
    (ghost,) = suites["backup-readiness ghost (xopero-one)"].findall("testcase")
    assert ghost.find("failure").get("message") == "Workspace 'ghost' was not found, or this credential cannot see it."
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites.values())


def test_an_unseen_workspace_first_never_stops_the_others(start, run_pipe):
    cred = api_token()
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="ghost acme-labs")  # space separated works too
    assert run.code == 1, run.output
    assert [ws["verdict"] for ws in run.report["workspaces"]] == ["not-ready", "ready"]
    assert run.workspace("acme-labs")["repositories"]["total"] == 4


def test_every_workspace_ready_is_ready(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred], two_workspaces()), cred, WORKSPACE="acme,acme-labs")
    assert run.code == 0, run.output
    assert run.report["verdict"] == "ready"
    assert [ws["verdict"] for ws in run.report["workspaces"]] == ["ready", "ready"]


def test_a_yaml_list(start, run_pipe):
    cred = api_token(permissions=LABS_GAP)
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE=None, WORKSPACE_COUNT="2", WORKSPACE_0="acme-labs", WORKSPACE_1="acme")
    assert run.code == 1, run.output
    assert [ws["workspace"] for ws in run.report["workspaces"]] == ["acme-labs", "acme"]


def test_star_is_every_workspace_the_credential_is_a_member_of(start, run_pipe):
    cred = api_token(permissions=LABS_GAP)
    sim = start([cred], [*two_workspaces(), workspace(2, git=1, slug="acme-ops")])
    run = run_pipe(sim, cred, WORKSPACE="*")
    assert run.code == 1, run.output
    validate(run.report)
    assert [(ws["workspace"], ws["verdict"]) for ws in run.report["workspaces"]] == [
        ("acme", "ready"),
        ("acme-labs", "not-ready"),
        ("acme-ops", "ready"),
    ]
    listed = [r for r in sim.requests if r.path == "/2.0/user/workspaces"]
    assert len(listed) == 1 and "fields=" in listed[0].query
    assert f"INFO: backup-readiness {__version__}: 3 workspaces" in run.err.splitlines()


def test_star_for_a_credential_that_cannot_list_its_workspaces(start, run_pipe):
    cred = api_token([s for s in api_token().scopes if s != "read:workspace:bitbucket"])
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="*")
    assert run.code == 2, run.output
    error = run.report["error"]
    assert "GET /user/workspaces answered 403" in error["message"]
    assert "read:workspace:bitbucket" in error["fix"] and "name the workspaces in WORKSPACE" in error["fix"]
    assert run.report["workspaces"] == []
    assert error["message"] in run.output


def test_an_access_token_has_one_workspace_and_never_lists_them(start, run_pipe):
    cred = access_token()
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="*", BITBUCKET_WORKSPACE="acme", PROFILE="git-only")
    assert run.code == 0, run.output
    assert [ws["workspace"] for ws in run.report["workspaces"]] == ["acme"]
    assert "/2.0/user/workspaces" not in api_paths(sim)  # the listing would answer it 403


def test_an_access_token_with_star_needs_its_workspace_named(start, run_pipe):
    cred = access_token()
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="*")
    assert run.code == 2, run.output
    (problem,) = run.report["error"]["problems"]
    assert problem["variable"] == "WORKSPACE" and "access token belongs to exactly one workspace" in problem["message"]
    assert api_paths(sim) == []


def test_an_access_token_sees_only_its_own_workspace_of_a_list(start, run_pipe):
    cred = access_token()
    run = run_pipe(start([cred], two_workspaces()), cred, WORKSPACE="acme,acme-labs", PROFILE="git-only")
    assert run.code == 1, run.output
    labs = run.workspace("acme-labs")
    assert labs["verdict"] == "not-ready"
    assert "An access token only sees the workspace it was created in" in labs["error"]["fix"]
    assert run.workspace("acme")["verdict"] == "ready"


def test_a_refused_credential_stops_every_workspace_at_once(start, run_pipe):
    cred = api_token(expired=True)
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs")
    assert run.code == 2, run.output
    assert run.report["error"]["message"] == "Bitbucket rejected the API token (401)."
    assert run.report["workspaces"] == []


def test_repositories_with_several_workspaces_name_their_workspace(start, run_pipe):
    cred = api_token(permissions=LABS_GAP)
    sim = start([cred], two_workspaces())
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs", REPOSITORIES="repo-0001")
    assert run.code == 2, run.output
    (problem,) = run.report["error"]["problems"]
    assert problem["variable"] == "REPOSITORIES" and "names no workspace" in problem["message"]
    assert "workspace/repo-0001" in problem["fix"]
    assert api_paths(sim) == []
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs", REPOSITORIES="acme-labs/repo-0001,other/repo-0001")
    assert run.code == 2 and "'other/repo-0001' is not a repository of acme, acme-labs" in run.output
    # Entries of one workspace restrict that workspace; the other is checked whole.
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs", REPOSITORIES="acme-labs/repo-0000")
    assert run.code == 0, run.output
    assert run.workspace("acme-labs")["repositories"]["total"] == 1
    assert run.workspace("acme")["repositories"]["total"] == 6


def test_workspaces_share_one_concurrency_bound(start, run_pipe):
    """CONCURRENCY=1 over three workspaces: one request in flight at a time across all of them (a
    client per workspace would overlap), and still side by side: the workspaces interleave."""
    cred = api_token()
    latency = 0.05
    sim = start([cred], [*two_workspaces(), workspace(2, git=1, slug="acme-ops")], latency=latency)
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs,acme-ops", CONCURRENCY="1")
    assert run.code == 0, run.output
    arrivals = sorted(r.at for r in sim.requests if r.path.startswith("/2.0"))
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) >= latency * 0.8, f"{sum(g < latency * 0.8 for g in gaps)} requests overlapped"
    order = [r.path for r in sim.requests if r.path.startswith("/2.0/workspaces/")]
    last_of_acme = max(i for i, r in enumerate(sim.requests) if r.path.startswith("/2.0/repositories/acme/"))
    first_of_ops = next(i for i, r in enumerate(sim.requests) if r.path == "/2.0/workspaces/acme-ops")
    assert first_of_ops < last_of_acme, order


def test_one_timeout_for_every_workspace(start, run_pipe):
    """A workspace whose pull requests never answer in time is inconclusive at TIMEOUT; the others
    are judged, and the step is the worst of them."""
    cred = api_token()
    slow = Fault(r"^/2\.0/repositories/acme-labs/[^/]+/pullrequests$", "slow", delay=30, times=-1)
    sim = start([cred], two_workspaces(), faults=[slow])
    run = run_pipe(sim, cred, WORKSPACE="acme,acme-labs", TIMEOUT="5")
    assert run.code == 3, run.output
    assert run.report["verdict"] == "inconclusive"
    assert [ws["verdict"] for ws in run.report["workspaces"]] == ["ready", "inconclusive"]
    assert run.category("pull-requests", "acme-labs")["backup"] == "unknown"
    assert run.report["duration_seconds"] < 12


def test_a_bad_workspace_list_is_a_configuration_error_that_echoes_no_secret(start, run_pipe):
    cred = api_token()
    sim = start([cred], two_workspaces())
    for value, says in (
        (f"acme,{cred.secret}", "WORKSPACE: holds a token or secret, not a workspace ID."),
        ("acme,*", "WORKSPACE: mixes '*' with workspace IDs."),
        ("acme,acme labs!", "WORKSPACE: is not a valid workspace ID"),
    ):
        run = run_pipe(sim, cred, WORKSPACE=value)
        assert run.code == 2, run.output
        assert says in run.output
        assert cred.secret[:8] not in run.output + json.dumps(run.report)
        assert run.report["workspaces"] == []
    assert api_paths(sim) == []
