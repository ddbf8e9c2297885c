"""Issue 4: the step log, JUnit XML, Code Insights, JSON and Markdown, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from pipe.catalog import load
from test.conftest import ALL_READ, api_token

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text())
PIPELINES = {
    "BITBUCKET_BUILD_NUMBER": "42",
    "BITBUCKET_COMMIT": "0123456789abcdef0123456789abcdef01234567",
    "BITBUCKET_REPO_SLUG": "infra",
    "BITBUCKET_WORKSPACE": "acme",
}
NO_PULLS = [s for s in ALL_READ if s != "read:pullrequest:bitbucket"]


def validate(report: dict) -> None:
    jsonschema.validate(report, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    ("scopes", "variables", "verdict"),
    [
        (ALL_READ, {}, "ready"),
        (NO_PULLS, {}, "not-ready"),
        (NO_PULLS, {"CHECK_RESTORE": "true"}, "not-ready"),
        (ALL_READ, {"BITBUCKET_EMAIL": "user-name"}, "error"),
        (ALL_READ, {"BITBUCKET_API_URL": "http://127.0.0.1:9/2.0", "TIMEOUT": "6"}, "inconclusive"),
    ],
)
def test_json_report_validates_against_the_shipped_schema(start, run_pipe, scopes, variables, verdict):
    cred = api_token(scopes, scope_headers=True)
    run = run_pipe(start([cred]), cred, **variables)
    report = run.report
    validate(report)
    assert report["verdict"] == verdict
    assert report["exit_code"] == run.code
    assert report["pipe_version"] == __import__("pipe").__version__


def _without_categories(report: dict) -> dict:
    (section,) = report["workspaces"]
    return {**report, "workspaces": [{k: v for k, v in section.items() if k != "categories"}]}


def _with_a_section(report: dict) -> dict:
    return {**report, "workspaces": [{"workspace": "acme", "verdict": "ready", "exit_code": 0, "error": None}]}


@pytest.mark.parametrize(
    ("credential", "lie"),
    [
        (True, lambda report: {**report, "verdict": "maybe"}),
        (True, lambda report: {**report, "exit_code": 7}),
        (True, _without_categories),
        (True, lambda report: {**report, "workspaces": []}),
        (True, lambda report: {k: v for k, v in report.items() if k != "profile_source"}),
        (False, lambda report: {**report, "exit_code": 0}),
        (False, _with_a_section),
    ],
    ids=[
        "unknown-verdict",
        "unknown-exit-code",
        "checked-without-categories",
        "ready-without-workspaces",
        "no-profile-source",
        "error-with-exit-0",
        "error-with-a-workspace",
    ],
)
def test_schema_rejects_a_report_that_lies(start, run_pipe, credential, lie):
    # A real report (ready, or a configuration error) that validates, with one lie told: that lie alone
    # is why the schema rejects it.
    cred = api_token()
    report = run_pipe(start([cred]), cred if credential else None).report
    validate(report)
    with pytest.raises(jsonschema.ValidationError):
        validate(lie(report))


def test_json_report_carries_requests_scopes_and_guidance(start, run_pipe):
    cred = api_token(NO_PULLS, scope_headers=True)
    sim = start([cred])
    run = run_pipe(sim, cred, OUTPUT_JSON="out/readiness.json")
    report = json.loads((run.cwd / "out" / "readiness.json").read_text())
    assert report["requests"] == len([r for r in sim.requests if r.path.startswith("/2.0")])
    assert report["credential"]["scopes_source"][0] == "x-oauth-scopes header"
    (section,) = report["workspaces"]
    pulls = next(c for c in section["categories"] if c["id"] == "pull-requests")
    assert pulls["missing_scopes"] == ["read:pullrequest:bitbucket"]
    # The category's guidance is the assessment's items that name it: the scope, where to tick it, the note.
    assert pulls["guidance"][0] == "read:pullrequest:bitbucket: unblocks Pull requests, 6 repositories."
    assert pulls["guidance"][1].startswith("Where: id.atlassian.com > Security > API tokens > Create API token")
    assert pulls["guidance"][2] == "Note, Pull requests: read:repository does not cover pull requests."
    naming = [i["id"] for i in section["guidance"] if "pull-requests" in i["categories"]]
    assert naming == ["missing-scope", "where-to-tick", "note"]
    assert (run.cwd / "out" / "readiness.md").exists()


def test_markdown_summary_has_the_table_and_the_verdict(start, run_pipe):
    cred = api_token(NO_PULLS)
    run = run_pipe(start([cred]), cred)
    text = (run.cwd / "backup-readiness" / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Backup readiness: not-ready"
    assert "| Pull requests | missing | missing | required |" in lines
    todo = text.split("## What to do\n", 1)[1].splitlines()
    assert "      * read:pullrequest:bitbucket: unblocks Pull requests, 6 repositories." in todo
    assert "**NOT READY: the backup would silently miss data (see above). (exit 1)**" in lines


def test_junit_has_one_case_per_category_and_failures_carry_guidance(start, run_pipe):
    cred = api_token(NO_PULLS)
    run = run_pipe(start([cred]), cred)
    (suite,) = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
    cases = suite.findall("testcase")
    assert len(cases) == len(load().categories) == int(suite.get("tests"))
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["backup: Pull requests [pull-requests]"]
    assert suite.get("failures") == "1"
    assert "read:pullrequest:bitbucket" in failures[0].find("failure").text
    assert "id.atlassian.com" in failures[0].find("failure").text
    retired = [
        c.get("name") for c in cases if c.find("skipped") is not None and "retired" in c.find("skipped").get("message")
    ]
    assert retired == ["backup: Issues [issues]", "backup: Wikis [wikis]"]


def test_junit_adds_restore_cases_when_asked(start, run_pipe):
    cred = api_token(scope_headers=True)
    run = run_pipe(start([cred]), cred, CHECK_RESTORE="true")
    (suite,) = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
    names = [c.get("name") for c in suite.findall("testcase")]
    assert len(names) == 2 * len(load().categories)
    failed = {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None}
    assert "restore: Pull requests [pull-requests]" in failed


def test_junit_for_a_configuration_error(run_pipe):
    run = run_pipe(None, None)
    (suite,) = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
    assert suite.get("errors") == "1"
    error = suite.find("testcase[@name='configuration']/error")
    assert error.get("message") == "1 variable(s) need fixing; nothing was sent to Bitbucket."
    assert error.text.startswith("BITBUCKET_API_TOKEN: no credential is set. Fix: Set BITBUCKET_EMAIL + ")


def test_console_fits_80_columns_without_colour(start, run_pipe):
    cred = api_token(NO_PULLS, permissions={"repo-0001": "read"})
    run = run_pipe(start([cred]), cred, CHECK_RESTORE="true")
    lines = (run.out + run.err).splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "\x1b[" not in run.out + run.err
    assert run.out == "✖ NOT READY: the backup would silently miss data (see above). (exit 1)\n"
    log = run.err.splitlines()
    assert "INFO: Credential: api token, Acme Backup" in log  # the kind and the owner's display name
    assert "INFO: Repositories: 6 (5 admin, 0 write, 1 read)" in log
    assert "INFO: Pull requests             ✖ missing   ✖ missing   required" in log
    assert "INFO: Issues                    - retired   - retired   retired 2026-08-20" in log


def test_console_is_coloured_unless_no_color(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, NO_COLOR=None)
    assert "\x1b[32m✔ READY" in run.out


def test_code_insights_report_reaches_the_pipelines_proxy(start, run_pipe):
    cred = api_token(NO_PULLS)
    sim = start([cred])
    run = run_pipe(sim, cred, CODE_INSIGHTS=None, CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES)
    assert run.code == 1
    key = f"acme/infra/{PIPELINES['BITBUCKET_COMMIT']}/backup-readiness"
    payload = sim.reports[key]
    assert payload["report_type"] == "SECURITY" and payload["result"] == "FAILED"
    assert payload["title"] == "Backup readiness"
    assert len(payload["data"]) <= 10
    data = {d["title"]: d["value"] for d in payload["data"]}
    assert data["Verdict"] == "not-ready"
    assert data["Repositories covered"] == 6
    assert data["Admin coverage"] == 100
    assert data["Missing scopes"] == "read:pullrequest:bitbucket"
    put = [r for r in sim.requests if r.method == "PUT"]
    assert len(put) == 1 and put[0].authorization_scheme is None
    assert "Code Insights report posted" in run.output


def test_code_insights_passed_when_ready(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    run_pipe(sim, cred, CODE_INSIGHTS="true", CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES)
    (payload,) = sim.reports.values()
    assert payload["result"] == "PASSED"


def test_code_insights_failure_is_only_a_warning(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, CODE_INSIGHTS="true", CODE_INSIGHTS_PROXY="http://127.0.0.1:9", **PIPELINES)
    assert run.code == 0
    assert "WARNING: Code Insights report not posted" in run.err


def test_code_insights_off_outside_pipelines_and_never_on_bad_input(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    # Everything a report needs is there but the build number: not a Pipelines build, so off by default.
    outside = {k: v for k, v in PIPELINES.items() if k != "BITBUCKET_BUILD_NUMBER"}
    run = run_pipe(sim, cred, CODE_INSIGHTS=None, CODE_INSIGHTS_PROXY=sim.base_url, **outside)
    assert run.code == 0, run.output
    assert "Code Insights" not in run.output  # off, not skipped for want of a commit
    assert sim.reports == {}
    run = run_pipe(
        sim, cred, BITBUCKET_EMAIL="not-an-email", CODE_INSIGHTS="true", CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES
    )
    assert run.code == 2, run.output
    assert sim.reports == {}
    assert [r for r in sim.requests if r.method == "PUT"] == []
