"""Issue: faults survived. The simulator breaks one endpoint at a time; the pipe either
recovers with the right verdict or says `inconclusive` and names the check that could not run.

A transient fault (times=1) must be survived; a persistent one (times=-1) must end in exit 3,
never in `ready` on a check that did not run, and never in a traceback."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from pipe import paging
from pipe.client import ApiFailure, Client
from test.conftest import access_token, api_token, oauth
from test.simulator import Fault

TIMEOUT = 8
USER = r"^/2\.0/user$"
REPOS = r"^/2\.0/repositories/acme$"
PULLS = r"/pullrequests$"
TOKEN = r"^/site/oauth2/access_token$"
GIT = r"\.git/"


@dataclass(frozen=True)
class Case:
    path: str
    kind: str
    names: tuple[str, ...]  # what a persistent fault's reason must say: the check, and why
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    method: str = "GET"
    credential: str = "api_token"


CASES = {
    "429-retry-after": Case(USER, "status", ("authenticate", "rate limit", "429"), 429, retry_after=0.2),
    "429-no-retry-after": Case(PULLS, "status", ("Pull requests", "pullrequests", "rate limit"), 429),
    "500-user": Case(USER, "status", ("authenticate", "500")),
    "500-pull-requests": Case(PULLS, "status", ("Pull requests", "pullrequests", "500")),
    "502-repository-list": Case(REPOS, "status", ("repository list", "502"), 502),
    "503-pull-requests": Case(PULLS, "status", ("Pull requests", "pullrequests", "503"), 503),
    "reset-user": Case(USER, "reset", ("authenticate", "connection")),
    "reset-pull-requests": Case(PULLS, "reset", ("Pull requests", "pullrequests", "connection")),
    "html-pull-requests": Case(PULLS, "html", ("Pull requests", "pullrequests", "HTML")),
    "html-repository-list": Case(REPOS, "html", ("repository list", "HTML")),
    "truncated-pull-requests": Case(PULLS, "truncated", ("Pull requests", "pullrequests", "JSON")),
    "truncated-workspace": Case(r"^/2\.0/workspaces/acme$", "truncated", ("workspace", "JSON")),
    "redirect-pull-requests": Case(PULLS, "redirect", ("Pull requests", "pullrequests", "redirect")),
    "redirect-user": Case(USER, "redirect", ("authenticate", "redirect")),
    "oauth-token-500": Case(TOKEN, "status", ("OAuth token", "500"), method="POST", credential="oauth"),
    "oauth-token-503": Case(TOKEN, "status", ("OAuth token", "503"), 503, method="POST", credential="oauth"),
    "oauth-token-reset": Case(TOKEN, "reset", ("OAuth token", "connection"), method="POST", credential="oauth"),
    "git-500": Case(GIT, "status", ("Repositories and git data", "git ls-remote", "500")),
    "git-reset": Case(GIT, "reset", ("Repositories and git data", "git ls-remote", "connection")),
    "access-token-500-pull-requests": Case(PULLS, "status", ("Pull requests", "500"), credential="access_token"),
}
# The category a fault on each path leaves unknown; any other path ends the run before categories.
FAILED_CATEGORY = {PULLS: "pull-requests", REPOS: "repositories", GIT: "repositories"}
CREDENTIALS = {
    "api_token": api_token,
    "oauth": oauth,
    "access_token": lambda **kw: access_token(
        ["repository", "repository:admin", "pullrequest", "pipeline", "project"], **kw
    ),
}


def run_with(start, run_pipe, faults, credential="api_token", **variables):
    cred = CREDENTIALS[credential]()
    sim = start([cred], faults=faults)
    began = time.monotonic()
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT), **variables)
    return run, time.monotonic() - began, sim


def assert_clean(run, elapsed):
    assert "Traceback" not in run.output, run.output
    assert "unexpectedly" not in run.output and "Internal error" not in run.output, run.output
    assert elapsed < TIMEOUT + 4, f"took {elapsed:.1f} s with TIMEOUT={TIMEOUT}"


def reason_shown(run, category: str | None) -> str:
    """The one sentence that names the check that could not run and why, as report.json holds it;
    it must also be in the log. Only this sentence is searched: the header and the category table
    print the workspace, every category title and "git" whatever happened."""
    report = run.report
    if category is None:  # the run ended before any category was judged
        assert report["workspaces"] == [], report["workspaces"]
        text = report["error"]["message"]
    else:
        judged = run.category(category)
        assert judged["backup"] == "unknown", judged  # a check that did not run is never "ok"
        text = f"{judged['title']} (backup) unknown: {'; '.join(judged['details']['backup']['reasons'])}"
    assert text in run.output, (text, run.output)
    return text


def assert_named(text: str, names: tuple[str, ...]) -> None:
    for word in names:
        assert word.lower() in text.lower(), (word, text)


def fault(case: Case, times: int) -> Fault:
    return Fault(
        case.path,
        case.kind,
        status=case.status,
        times=times,
        method=case.method,
        retry_after=case.retry_after,
        delay=case.delay,
    )


@pytest.mark.parametrize("name", CASES)
def test_transient_fault_is_survived(start, run_pipe, name):
    case = CASES[name]
    run, elapsed, sim = run_with(start, run_pipe, [fault(case, 1)], case.credential)
    assert_clean(run, elapsed)
    assert run.code == 0, run.output
    assert run.report["verdict"] == "ready"
    assert sim.faults[0].times == 0, "the fault was never hit: the case tests nothing"


@pytest.mark.parametrize("name", CASES)
def test_persistent_fault_is_inconclusive(start, run_pipe, name):
    case = CASES[name]
    run, elapsed, sim = run_with(start, run_pipe, [fault(case, -1)], case.credential)
    assert_clean(run, elapsed)
    assert run.code == 3, run.output
    assert "INCONCLUSIVE" in run.output
    assert run.report["verdict"] == "inconclusive"
    assert_named(reason_shown(run, FAILED_CATEGORY.get(case.path)), case.names)


@pytest.mark.parametrize(
    ("path", "category", "named"),
    [(REPOS, "repositories", "repository list"), (PULLS, "pull-requests", "pullrequests")],
)
def test_410_on_an_endpoint_the_pipe_relies_on_is_inconclusive(start, run_pipe, path, category, named):
    run, elapsed, _ = run_with(start, run_pipe, [Fault(path, "status", status=410, times=-1)])
    assert_clean(run, elapsed)
    assert run.code == 3, run.output
    assert_named(reason_shown(run, category), (named, "410"))


@pytest.mark.parametrize(
    "path,names",
    [
        (PULLS, ("Pull requests", "in time")),
        (REPOS, ("repository list", "in time")),
        (USER, ("authenticate", "in time")),
    ],
)
def test_a_response_slower_than_timeout_ends_the_run_in_time(start, run_pipe, path, names):
    run, elapsed, _ = run_with(start, run_pipe, [Fault(path, "slow", delay=TIMEOUT + 12, times=-1)])
    assert_clean(run, elapsed)
    assert run.code == 3, run.output
    assert_named(reason_shown(run, FAILED_CATEGORY.get(path)), names)


def test_one_slow_response_is_survived(start, run_pipe):
    run, elapsed, sim = run_with(start, run_pipe, [Fault(PULLS, "slow", delay=TIMEOUT + 12, times=1)])
    assert_clean(run, elapsed)
    assert run.code == 0, run.output
    assert sim.faults[0].times == 0, "the slow response was never served: the case tests nothing"


@pytest.mark.parametrize("times", [1, -1])
def test_a_next_link_that_loops_back_is_harmless(start, run_pipe, times):
    """The listing tells its size, so pages are fetched by number and `next` is not followed."""
    run, elapsed, _ = run_with(start, run_pipe, [Fault(REPOS, "loop_next", times=times)])
    assert_clean(run, elapsed)
    assert run.code == 0, run.output
    assert run.section["repositories"]["total"] == 6


def test_a_looping_next_link_is_detected_when_followed(start):
    """Without `size` the client follows `next`: a loop must end in ApiFailure, not hang."""
    cred = api_token()
    sim = start([cred], faults=[Fault(REPOS, "loop_next", times=-1)])

    async def collect():
        import httpx

        async with Client(
            sim.api_url, httpx.BasicAuth(cred.email, cred.secret), concurrency=2, deadline=time.monotonic() + TIMEOUT
        ) as client:
            return await paging.collect(client, "/repositories/acme", {"fields": "next,values.slug"})

    with pytest.raises(ApiFailure, match="looped"):
        asyncio.run(collect())


def test_git_http_backend_refusing_is_not_ready(start, run_pipe):
    cred = api_token(git_enabled=False)
    sim = start([cred])
    began = time.monotonic()
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    assert_clean(run, time.monotonic() - began)
    assert run.code == 1, run.output
    assert run.category("repositories")["backup"] == "missing"
    assert run.section["git"]["outcome"] == "forbidden"
    reason = "git over HTTPS answered 403: the credential lacks repository read for git"
    assert run.section["git"]["reason"] == reason
    assert reason in run.output


@pytest.mark.parametrize("credential", ["api_token", "oauth"])
def test_the_oauth_or_api_401_is_a_credential_error_not_a_retry(start, run_pipe, credential):
    cred = CREDENTIALS[credential](expired=True)
    sim = start([cred])
    began = time.monotonic()
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    assert_clean(run, time.monotonic() - began)
    assert run.code == 2, run.output
    asked = [(r.method, r.path) for r in sim.requests]
    assert asked and len(asked) == len(set(asked)), asked  # each refusing endpoint asked once: no retry
