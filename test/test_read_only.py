"""Issue: nothing written. The simulator records every request: a full run only reads, apart
from the OAuth consumer's token POST and, when enabled, the Code Insights report and its annotations."""

from __future__ import annotations

import pytest

from test.conftest import ALL_READ, ALL_WRITE, access_token, api_token, oauth

TOKEN_PATH = "/site/oauth2/access_token"
PIPELINES = {
    "BITBUCKET_BUILD_NUMBER": "7",
    "BITBUCKET_COMMIT": "c0ffee" * 6 + "beef",
    "BITBUCKET_REPO_SLUG": "repo-0000",
    "BITBUCKET_WORKSPACE": "acme",
}
CREDENTIALS = {
    "api_token": lambda: api_token(ALL_READ + ALL_WRITE, scope_headers=True),
    "access_token": lambda: access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"]),
    "oauth": oauth,
}


def writes(sim):
    return [(r.method, r.path) for r in sim.requests if r.method not in ("GET", "HEAD")]


def assert_git_only_reads(sim):
    git = [r for r in sim.requests if ".git/" in r.path]
    assert git, "git was never asked: the check tests nothing"
    for r in git:
        assert "receive-pack" not in r.path + r.query, (r.method, r.path, r.query)
        if r.method == "POST":  # protocol v2 asks for refs with a POST to git-upload-pack
            assert r.path.endswith("/git-upload-pack"), r.path


def api_writes(sim, kind):
    allowed = {("POST", TOKEN_PATH)} if kind == "oauth" else set()
    return [w for w in writes(sim) if w not in allowed and not w[1].endswith("/git-upload-pack")]


@pytest.mark.parametrize("restore", ["false", "true"])
@pytest.mark.parametrize("kind", CREDENTIALS)
def test_a_full_run_only_reads(start, run_pipe, kind, restore):
    cred = CREDENTIALS[kind]()
    sim = start([cred])
    # Inside Pipelines with the report proxy reachable, so that a report posted despite
    # CODE_INSIGHTS: "false" would land on the simulator and be seen.
    run = run_pipe(
        sim, cred, CHECK_RESTORE=restore, CODE_INSIGHTS="false", CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES
    )
    assert run.code in (0, 1), run.output
    assert len(sim.requests) > 5
    assert api_writes(sim, kind) == []
    if kind == "oauth":
        assert writes(sim).count(("POST", TOKEN_PATH)) == 1
    assert_git_only_reads(sim)
    assert sim.reports == {} and sim.annotations == {}


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_code_insights_is_the_one_write(start, run_pipe, kind):
    cred = CREDENTIALS[kind]()
    sim = start([cred])
    commit = "c0ffee" * 6 + "beef"
    run = run_pipe(
        sim,
        cred,
        CHECK_RESTORE="true",
        CODE_INSIGHTS="true",
        CODE_INSIGHTS_PROXY=sim.base_url,
        BITBUCKET_COMMIT=commit,
        BITBUCKET_REPO_SLUG="repo-0000",
        BITBUCKET_WORKSPACE="acme",
    )
    assert run.code in (0, 1), run.output
    report = f"/2.0/repositories/acme/repo-0000/commit/{commit}/reports/backup-readiness"
    puts = [w for w in api_writes(sim, kind)]
    # The report, then its annotations (what to fix, in batches of 100), and nothing else.
    assert puts[0] == ("PUT", report), puts
    assert set(puts[1:]) <= {("POST", f"{report}/annotations")}, puts
    insights = [r for r in sim.requests if r.path.startswith(report)]
    assert len(insights) == len(puts)
    assert all(r.authorization_scheme is None for r in insights), "the proxy authenticates: no credential is sent"
    assert sim.reports
    assert_git_only_reads(sim)


def test_a_refused_configuration_sends_nothing(start, run_pipe):
    sim = start([api_token()])
    run = run_pipe(sim, None, BITBUCKET_API_TOKEN="ATBBnotanymore1234567890123456")
    assert run.code == 2
    assert sim.requests == []
