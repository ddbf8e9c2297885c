"""Scale and rate limits: requests per run, 429 handling, the hourly budget, concurrency.

Not timed (bench/run.py measures speed); every assertion here is about what was sent.
"""

from __future__ import annotations

import json
import math

import pytest

from test.conftest import api_token, workspace
from test.simulator import Fault, Simulator

LISTING = r"^/2\.0/repositories/acme$"


def request_limit(n: int) -> int:
    """Two paged listings (repositories, permissions) plus a fixed number of live reads."""
    return 2 * math.ceil(n / 100) + 25


def api_requests(sim: Simulator) -> list:
    return [r for r in sim.requests if r.path == "/2.0" or r.path.startswith("/2.0/")]


def listing_requests(sim: Simulator) -> list:
    return [r for r in sim.requests if r.path == "/2.0/repositories/acme"]


@pytest.mark.parametrize("n", [250, 1001])
def test_requests_per_run_stay_within_two_per_hundred_repositories(start, run_pipe, n):
    cred = api_token()
    sim = start([cred], [workspace(n)])
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    assert run.report["verdict"] == "ready"
    sent = len(api_requests(sim))
    assert sent == run.report["requests"]  # the report counts every request the server saw
    assert sent <= request_limit(n), f"{sent} requests for {n} repositories (limit {request_limit(n)})"
    # Every page of both listings was read at the largest page size, each exactly once.
    pages = sorted(r.query for r in listing_requests(sim))
    assert len(pages) == len(set(pages)) == math.ceil(n / 100)
    assert all("pagelen=100" in q for q in pages)
    assert f"Repositories: {n} " in run.output


def test_429_with_retry_after_waits_that_long_then_succeeds(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(6)])
    sim.add_fault(Fault(LISTING, "status", status=429, retry_after=1, times=1))
    run = run_pipe(sim, cred)
    first, second = listing_requests(sim)[:2]
    assert (first.status, second.status) == (429, 200)
    assert second.query == first.query  # the same page, asked again
    assert second.at - first.at >= 0.9, f"retried after {second.at - first.at:.2f} s, Retry-After was 1"
    assert second.at - first.at < 5
    assert run.code == 0 and run.report["verdict"] == "ready", run.output
    assert run.section["rate_limit"]["throttled"] == 1
    assert run.report["requests"] == len(api_requests(sim))


def test_429_without_retry_after_backs_off_and_retries(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(6)])
    sim.add_fault(Fault(LISTING, "status", status=429, times=1))
    run = run_pipe(sim, cred)
    first, second = listing_requests(sim)[:2]
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.9, "retried without backing off"
    assert run.code == 0 and run.report["verdict"] == "ready", run.output
    assert run.section["rate_limit"]["throttled"] == 1


def test_exhausted_rate_limit_is_inconclusive_and_says_why(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(250)], rate_limit=6)
    run = run_pipe(sim, cred, TIMEOUT="6")
    assert run.code == 3, run.output
    assert run.report["verdict"] == "inconclusive"
    assert run.section["rate_limit"]["throttled"] > 0
    assert sum(1 for r in api_requests(sim) if r.status == 429) == run.section["rate_limit"]["throttled"]
    assert "rate limit was reached (429)" in json.dumps(run.report)
    assert "rate limit was reached (429)" in run.output


def test_backup_budget_grows_with_the_workspace_and_warns_when_over_an_hour(start, run_pipe):
    cred = api_token()
    budgets, outputs = {}, {}
    for n in (10, 60, 500):
        sim = start([cred], [workspace(n)])
        run = run_pipe(sim, cred)
        assert run.code == 0, run.output
        budgets[n], outputs[n] = run.section["rate_limit"], run.output
    per_run = [budgets[n]["backup_requests_per_run"] for n in (10, 60, 500)]
    assert per_run == sorted(per_run) and len(set(per_run)) == 3, per_run
    assert per_run[2] > 500  # at least one request per repository
    assert budgets[10]["fits_in_an_hour"] is True
    assert budgets[500]["fits_in_an_hour"] is False
    assert budgets[500]["backup_requests_per_run"] > budgets[500]["hourly_limit"]
    warning = "cannot fit in one hour of Bitbucket's rate limit"
    assert warning in outputs[500]
    assert warning not in outputs[10]


def test_concurrency_one_gives_the_same_answer_and_request_count(start, run_pipe):
    cred = api_token()
    results = []
    for concurrency in (None, "1"):
        sim = start([cred], [workspace(250)])
        run = run_pipe(sim, cred, **({"CONCURRENCY": concurrency} if concurrency else {}))
        results.append(
            (
                run.code,
                run.report["verdict"],
                run.report["requests"],
                len(api_requests(sim)),
                sorted((c["id"], c["backup"]) for c in run.section["categories"]),
            )
        )
    assert results[0] == results[1]
    assert results[0][:2] == (0, "ready")
