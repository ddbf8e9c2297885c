"""Scale and rate limits (issue 12): requests per run, the shortcuts and their checks, the
fallback, workspace administrators, page caps, 429 handling, the hourly budget, concurrency.

Not timed (bench/run.py measures speed); every assertion here is about what was sent, counted at
the simulator (sim.requests), and about what the report says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from pipe import paging
from pipe.client import Client
from test.conftest import access_token, api_token, workspace
from test.hostile import rewrite, tamper
from test.simulator import Fault, Simulator

LISTING = r"^/2\.0/repositories/acme$"
REPOS = "/2.0/repositories/acme"
PERMS = "/2.0/user/workspaces/acme/permissions/repositories"
ROLE = "/2.0/user/workspaces/acme/permission"
NOT_ADMIN = 'permission!="admin"'


def formula(m: int) -> int:
    """issue 12: at most 25 + ceil(M/100) requests, M = the repositories the report names."""
    return 25 + math.ceil(m / 100)


def api_requests(sim: Simulator) -> list:
    return [r for r in sim.requests if r.path == "/2.0" or r.path.startswith("/2.0/")]


def asked(sim: Simulator, path: str) -> list[dict[str, str]]:
    """The query of every request to `path`, as a dict."""
    return [{k: v[0] for k, v in parse_qs(r.query).items()} for r in sim.requests if r.path == path]


def listing_requests(sim: Simulator) -> list:
    return [r for r in sim.requests if r.path == REPOS]


def read_only(n: int, m: int) -> dict[str, str]:
    """m of n repositories read-only, spread evenly, never repo-0000 (the live reads' repository)."""
    step = n / m
    return {f"repo-{int(1 + k * step) % n:04d}": "read" for k in range(m)}


def section(run) -> dict[str, Any]:
    return run.section


# --- the request formula -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [250, 1001])
def test_an_all_admin_workspace_costs_the_fixed_requests_only(start, run_pipe, n):
    cred = api_token()
    sim = start([cred], [workspace(n)])
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    sent = len(api_requests(sim))
    assert sent == run.report["requests"]  # the report counts every request the server saw
    assert sent <= formula(0), f"{sent} requests for {n} repositories, all admin"
    # Two counts of the repository list (all, role=admin), one page each; of the permission list the
    # one page of repositories without admin that confirms role=admin's count (empty).
    counts = asked(sim, REPOS)
    assert len(counts) == 2 and all(int(q["pagelen"]) <= 3 and "size" in q["fields"] for q in counts), counts
    assert [q.get("role") for q in counts].count("admin") == 1
    assert [q["q"] for q in asked(sim, PERMS)] == [NOT_ADMIN]
    repos = section(run)["repositories"]
    assert (repos["total"], repos["by_permission"]["admin"], repos["strategy"]) == (n, n, "filtered")
    assert repos["sources"] == {"repository list role=admin": n}


@pytest.mark.parametrize(("n", "m"), [(1001, 150), (1001, 750), (260, 1)])
def test_repositories_without_admin_cost_one_request_per_hundred(start, run_pipe, n, m):
    cred = api_token(permissions=read_only(n, m))
    sim = start([cred], [workspace(n)])
    run = run_pipe(sim, cred)
    assert run.code == 1, run.output  # not ready: no admin on m repositories
    sent = len(api_requests(sim))
    assert sent == run.report["requests"]
    assert sent <= formula(m), f"{sent} requests for {m} of {n} repositories without admin"
    pages = asked(sim, PERMS)
    assert len(pages) == math.ceil(m / 100), pages  # each page of the filtered list once
    assert all(q["q"] == NOT_ADMIN and q["pagelen"] == "100" for q in pages), pages
    assert len({q.get("page", "1") for q in pages}) == len(pages)
    ws = section(run)
    assert ws["repositories"]["by_permission"] == {"admin": n - m, "write": 0, "read": m, "unknown": 0}
    assert ws["admin_gap"]["repositories"] == m
    named = ws["repositories"]["without_admin"]
    assert sorted(r["full_name"] for r in named) == sorted(f"acme/{slug}" for slug in read_only(n, m))
    assert {r["source"] for r in named} == {"repository permissions list"}


def test_the_fallback_lists_everything_once_and_says_why(start, run_pipe):
    n, m = 1001, 150
    cred = api_token(permissions=read_only(n, m))
    sim = start([cred], [workspace(n)], bbql=False)
    run = run_pipe(sim, cred)
    assert run.code == 1, run.output
    ws = section(run)
    assert ws["repositories"]["strategy"] == "full listing"
    assert (
        ws["repositories"]["fallback"]
        == f"GET /user/workspaces/acme/permissions/repositories answered 400 to q={NOT_ADMIN}"
    )
    assert any("surveyed by listing every one of them" in f for f in ws["findings"]), ws["findings"]
    # The full listing: every page of the repository list, of role=admin and of the permission
    # list, each once, at the largest page size; plus the one refused filter.
    pages = math.ceil(n / 100)
    plain = [q for q in asked(sim, REPOS) if "role" not in q and int(q["pagelen"]) == 100]
    admin = [q for q in asked(sim, REPOS) if q.get("role") == "admin" and int(q["pagelen"]) == 100]
    perms = [q for q in asked(sim, PERMS) if "q" not in q]
    assert len(plain) == len({q.get("page") for q in plain}) == pages
    assert len(admin) == len({q.get("page") for q in admin}) == math.ceil((n - m) / 100)
    assert len(perms) == len({q.get("page") for q in perms}) == pages
    assert len(api_requests(sim)) <= 25 + 3 * pages
    assert ws["admin_gap"]["repositories"] == m


# --- workspace administrators (issue 11, point 1) -----------------------------------------------


@pytest.mark.parametrize("listing", ["explicit", "effective"])
@pytest.mark.parametrize("bbql", [True, False])
def test_a_workspace_admin_is_never_told_it_lacks_admin(start, run_pipe, listing, bbql):
    # Explicit grants of read on some repositories: the list may name them so, but the owner of the
    # workspace administers every repository.
    n = 1500
    cred = api_token(permissions=read_only(n, 40), workspace_admin=True)
    sim = start([cred], [workspace(n)], permissions_list=listing, bbql=bbql)
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    ws = section(run)
    assert ws["admin_gap"]["repositories"] == 0 and ws["repositories"]["without_admin"] == []
    assert ws["repositories"]["workspace_role"] == "owner"
    assert ws["repositories"]["by_permission"]["admin"] == n
    assert ws["repositories"]["sources"] == {"workspace role owner": n}
    assert asked(sim, ROLE) == [{"fields": "permission"}]
    assert asked(sim, PERMS) == []  # the role settles it: no permission list at all
    assert len(api_requests(sim)) <= 20


def test_the_explicit_list_is_cross_checked_with_role_admin(start, run_pipe):
    """Admin through a group (default_permission): not in the explicit list, but role=admin has it.
    Only the explicit read grants lack admin, each named with the list as its source."""
    n = 300
    grants = read_only(n, 7)
    cred = api_token(permissions=grants)
    sim = start([cred], [workspace(n)], permissions_list="explicit")
    run = run_pipe(sim, cred)
    assert run.code == 1, run.output
    ws = section(run)
    assert ws["admin_gap"]["repositories"] == 7
    assert ws["repositories"]["strategy"] == "filtered"
    assert ws["repositories"]["sources"] == {"repository list role=admin": n - 7, "repository permissions list": 7}
    assert len(api_requests(sim)) <= formula(7)


def test_repositories_neither_admin_nor_listed_are_named_by_a_full_listing(start, run_pipe):
    """Read through a group, no grant listed (explicit list): role=admin says no admin, the list says
    nothing. The filtered counts do not add up, so everything is listed to name them."""
    n = 300
    cred = api_token(permissions={"repo-0000": "admin"}, default_permission="read")
    sim = start([cred], [workspace(n)], permissions_list="explicit")
    run = run_pipe(sim, cred)
    assert run.code == 1, run.output
    ws = section(run)
    assert ws["repositories"]["strategy"] == "full listing"
    assert "are not admin by role=admin" in ws["repositories"]["fallback"]
    assert ws["repositories"]["by_permission"] == {"admin": 1, "write": 0, "read": n - 1, "unknown": 0}
    assert ws["repositories"]["sources"] == {"repository list role=admin": 1, "visible without a listed grant": n - 1}
    assert len(api_requests(sim)) <= formula(n - 1)  # M = n - 1, all named


def test_an_access_token_never_asks_for_a_workspace_role(start, run_pipe):
    cred = access_token(["repository", "pullrequest", "pipeline", "webhook", "project"])
    sim = start([cred], [workspace(400)])
    run = run_pipe(sim, cred)
    assert run.code == 1, run.output
    assert asked(sim, ROLE) == [] and asked(sim, PERMS) == []
    ws = section(run)
    assert ws["repositories"]["workspace_role"] is None
    assert ws["admin_gap"]["repositories"] == 400  # its fix is one scope: examples only, no listing
    assert len(ws["repositories"]["without_admin"]) == 3
    assert len(api_requests(sim)) <= formula(0)


@pytest.mark.parametrize("slow", [0.0, 0.3])
def test_an_access_token_without_scope_headers_is_judged_once_its_scopes_are_revealed(start, run_pipe, slow):
    """Without x-oauth-scopes the token's scopes come from the scope-revealing read's 403; its
    permission on the repositories role=admin leaves out is judged after that read, not before it
    (then it was unknown and the verdict inconclusive, and which one depended on timing)."""
    cred = access_token(["repository", "pullrequest", "pipeline", "webhook", "project"], scope_headers=False)
    sim = start([cred], [workspace(40)])
    if slow:
        sim.add_fault(Fault(r"/pipelines-config/runners$", "slow", times=-1, delay=slow))
    run = run_pipe(sim, cred)
    ws = section(run)
    assert ws["repositories"]["by_permission"] == {"admin": 0, "write": 0, "read": 40, "unknown": 0}, ws
    assert run.code == 1 and ws["admin_gap"]["repositories"] == 40, run.output


# --- trust but verify: the shortcut and the fallback agree ----------------------------------------


def comparable(run) -> dict[str, Any]:
    ws = section(run)
    return {
        "code": run.code,
        "verdict": ws["verdict"],
        "categories": [(c["id"], c["backup"], c["restore"], c["affected_repositories"]) for c in ws["categories"]],
        "by_permission": ws["repositories"]["by_permission"],
        "without_admin": ws["repositories"]["without_admin"],
        "admin_gap": ws["admin_gap"],
    }


CREDENTIALS = {
    "read-and-write": lambda n: api_token(permissions={**read_only(n, 30), "repo-0002": "write"}),
    "workspace-admin": lambda n: api_token(permissions=read_only(n, 30), workspace_admin=True),
    "all-admin": lambda n: api_token(),
}


@pytest.mark.parametrize("forced", ["bbql", "page_size"])
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_the_shortcut_and_the_fallback_give_the_same_report(start, run_pipe, forced, credential):
    n = 450
    reports = {}
    for shortcut in (True, False):
        cred = CREDENTIALS[credential](n)
        sim = start([cred], [workspace(n)], **{forced: shortcut}, permissions_list="explicit")
        run = run_pipe(sim, cred, CHECK_RESTORE="true")
        reports[shortcut] = comparable(run)
        strategy = section(run)["repositories"]["strategy"]
        forces = forced == "page_size" or credential != "workspace-admin"  # an owner needs no q=
        assert strategy == ("filtered" if shortcut or not forces else "full listing"), section(run)["repositories"]
    assert reports[True] == reports[False]


def tampered(start, run_pipe, path: str, change, n: int = 320, m: int = 12):
    cred = api_token(permissions=read_only(n, m))
    sim = start([cred], [workspace(n)])
    rewrite(sim, path, change)
    return run_pipe(sim, cred), sim


@pytest.mark.parametrize("whole", [False, True])
def test_a_server_ignoring_role_admin_never_makes_every_repository_admin(start, run_pipe, whole):
    """role=admin answered as if role= were not there (whole: every page; else only the count's
    size): without a check every repository would be admin and the step ready. The permission
    list names the 12 without admin, so the counts disagree and the full listing decides."""
    cred = api_token(permissions=read_only(320, 12))
    sim = start([cred], [workspace(320)])
    if whole:
        ignoring_role(sim)
    else:
        rewrite(sim, LISTING, lambda body, req: {**body, "size": 320} if "role=admin" in req.query else body)
    run = run_pipe(sim, cred)
    ws = section(run)
    assert run.code != 0 and ws["verdict"] != "ready", run.output
    assert ws["repositories"]["strategy"] == "full listing", ws["repositories"]
    lacking = ws["repositories"]["sources"].get(
        "role=admin and the permission list disagree" if whole else "repository permissions list"
    )
    assert lacking == 12, ws["repositories"]["sources"]
    assert ws["repositories"]["by_permission"]["admin"] == 320 - 12


def ignoring_role(sim: Simulator):
    """The simulator answers role=admin as if role= were not there."""

    def answer(req, response):
        if "role=admin" not in req.query:
            return None
        query = "&".join(p for p in req.query.split("&") if p != "role=admin")
        return sim._route(dataclasses.replace(req, query=query))[0]

    tamper(sim, LISTING, answer)


@pytest.mark.parametrize("subset", [False, True])
def test_role_admin_ignored_and_an_explicit_only_list_is_never_ready(start, run_pipe, subset):
    """Read through a group: the explicit-only list names nothing, and role= ignored counts every
    repository admin, so the lists agree on a guess. The admin-only reads refused (403) on the
    repository they call admin show it: the permissions are not trusted, the step not ready."""
    cred = api_token(default_permission="read")
    sim = start([cred], [workspace(40)], permissions_list="explicit")
    ignoring_role(sim)
    extra = {"REPOSITORIES": " ".join(f"repo-{i:04d}" for i in range(10))} if subset else {}
    run = run_pipe(sim, cred, **extra)
    ws = section(run)
    assert run.code != 0 and ws["verdict"] != "ready", run.output
    assert "which the repository lists call admin" in run.output, run.output


@pytest.mark.parametrize("listing", ["explicit", "effective"])
def test_repositories_cross_checks_role_admin_with_the_permission_list(start, run_pipe, listing):
    """REPOSITORIES with role= ignored: the permission list names the read-only ones, which
    role=admin called admin; they are not admin, whatever role=admin said."""
    cred = api_token(permissions=read_only(40, 5))
    sim = start([cred], [workspace(40)], permissions_list=listing)
    ignoring_role(sim)
    run = run_pipe(sim, cred, REPOSITORIES=" ".join(f"repo-{i:04d}" for i in range(10)))
    ws = section(run)
    assert run.code != 0 and ws["verdict"] != "ready", run.output
    assert ws["repositories"]["by_permission"]["admin"] < 10, ws["repositories"]


def names_instead(full: str):
    """The first repository the q= permission list names is replaced by `full`."""

    def change(body, req):
        if "q=" not in req.query or not body.get("values"):
            return body
        first = {**body["values"][0], "repository": {**body["values"][0]["repository"], "full_name": full}}
        return {**body, "values": [first, *body["values"][1:]]}

    return change


@pytest.mark.parametrize("full", ["acme/repo-0000", "elsewhere/repo-0001", "acme/aaa-not-listed"])
def test_a_permission_list_naming_the_wrong_repository_is_not_trusted(start, run_pipe, full):
    """The counts add up but a name does not: role=admin's own repository, another workspace's, or
    one the workspace does not hold. Never the repository whose reads test the admin-only rule."""
    run, sim = tampered(start, run_pipe, PERMS + "$", names_instead(full))
    ws = section(run)
    assert ws["repositories"]["strategy"] == "full listing", ws["repositories"]
    assert run.code == 1 and ws["admin_gap"]["repositories"] == 12, run.output
    named = [r["full_name"] for r in ws["repositories"]["without_admin"]]
    assert full not in named and len(named) == 12, named
    assert run.category("webhooks")["backup"] == "missing"


def test_an_access_token_s_permission_is_its_scopes_and_role_admin_only_checks_them(start, run_pipe):
    """role= is documented for a user's role: a token without repository:admin whose role=admin
    claims every repository is not admin anywhere on that word; where the two disagree, unknown."""
    cred = access_token(["repository", "pullrequest", "pipeline", "webhook", "project"])
    sim = start([cred], [workspace(40)])
    first = {"slug": "repo-0000", "full_name": "acme/repo-0000"}

    def every_one(body, req):
        if "role=admin" not in req.query:
            return body
        return {**body, "size": 40, "values": [first], "next": f"{sim.api_url}/repositories/acme?role=admin&page=2"}

    rewrite(sim, LISTING, every_one)
    run = run_pipe(sim, cred)
    ws = section(run)
    assert ws["repositories"]["by_permission"]["admin"] == 0, ws["repositories"]
    assert run.code != 0 and ws["verdict"] != "ready", run.output


def test_a_filtered_page_with_an_item_outside_the_filter_is_not_trusted(start, run_pipe):
    def admin_inside(body, req):
        if "q=" not in req.query or not body.get("values"):
            return body
        return {**body, "values": [{**body["values"][0], "permission": "admin"}, *body["values"][1:]]}

    run, _ = tampered(start, run_pipe, r"/permissions/repositories$", admin_inside)
    repos = section(run)["repositories"]
    assert repos["strategy"] == "full listing"
    assert "lists 'acme/repo-0001' with admin" in repos["fallback"], repos["fallback"]


def test_a_count_without_size_is_not_trusted(start, run_pipe):
    def no_size(body, req):
        return {k: v for k, v in body.items() if k != "size"} if "pagelen=3" in req.query else body

    run, _ = tampered(start, run_pipe, LISTING, no_size)
    repos = section(run)["repositories"]
    assert repos["strategy"] == "full listing"
    assert repos["fallback"] == "GET /repositories/acme: the page does not tell its size"
    assert repos["total"] == 320 and section(run)["admin_gap"]["repositories"] == 12


def test_a_count_page_shorter_than_asked_is_not_trusted(start, run_pipe):
    def short(body, req):
        return {**body, "values": body["values"][:1]} if "pagelen=3" in req.query else body

    run, _ = tampered(start, run_pipe, LISTING, short)
    repos = section(run)["repositories"]
    assert repos["strategy"] == "full listing"
    assert "the page holds 1 items for pagelen=3 and size 320" in repos["fallback"], repos["fallback"]
    assert section(run)["admin_gap"]["repositories"] == 12


def test_a_server_ignoring_fields_changes_nothing_but_the_bytes(start, run_pipe):
    results = []
    for fields in (True, False):
        cred = api_token(permissions=read_only(700, 250))
        sim = start([cred], [workspace(700)], fields=fields)
        run = run_pipe(sim, cred)
        results.append((comparable(run), section(run)["repositories"]["strategy"], len(api_requests(sim))))
    assert results[0] == results[1]
    assert results[0][1] == "filtered"


# --- REPOSITORIES: the same filters, in batches -----------------------------------------------------


def test_repositories_uses_filters_in_batches_not_one_call_each(start, run_pipe):
    n = 400
    wanted = [f"repo-{i:04d}" for i in range(0, 240, 2)]  # 120 slugs: three batches of 50, 50, 20
    cred = api_token(permissions={"repo-0002": "read", "repo-0004": "write"})
    sim = start([cred], [workspace(n)])
    run = run_pipe(sim, cred, REPOSITORIES=",".join(wanted))
    assert run.code == 1, run.output
    ws = section(run)
    assert ws["repositories"]["total"] == 120
    assert ws["repositories"]["by_permission"] == {"admin": 118, "write": 1, "read": 1, "unknown": 0}
    filtered = [q for q in asked(sim, REPOS) if "q" in q]
    assert len(filtered) == 6  # visible, and role=admin, per batch
    assert all(q["q"].count('slug="') <= 50 for q in filtered)
    # Every visible one's word, the admin ones' too (role=admin is checked), by the same batches.
    perms = asked(sim, PERMS)
    named = [name for q in perms for name in q["q"].split(" OR ")]
    assert len(perms) == 3 and all(q["q"].count("repository.full_name=") <= 50 for q in perms), perms
    assert sorted(named) == sorted(f'repository.full_name="acme/{slug}"' for slug in wanted)
    # The live reads use one repository (and one without admin, for a read admin only by Bitbucket's
    # rule); no repository is asked for one by one otherwise.
    singles = {r.path.split("/")[4] for r in sim.requests if r.path.startswith(REPOS + "/")}
    assert singles == {"repo-0000", "repo-0002"}, singles
    assert len(api_requests(sim)) <= 25 + 3 * 3  # README: 3·⌈K/50⌉ more with REPOSITORIES


def test_repositories_falls_back_to_the_full_listing_without_bbql(start, run_pipe):
    cred = api_token(permissions={"repo-0002": "read"})
    sim = start([cred], [workspace(30)], bbql=False)
    run = run_pipe(sim, cred, REPOSITORIES="repo-0000,repo-0002,repo-0099")
    ws = section(run)
    assert ws["repositories"]["strategy"] == "full listing"
    assert ws["repositories"]["not_visible"] == ["repo-0099"]
    assert ws["repositories"]["by_permission"] == {"admin": 1, "write": 0, "read": 1, "unknown": 0}


# --- page sizes (issue 11, point 5) -----------------------------------------------------------------


def test_no_request_exceeds_its_endpoint_page_cap(start, run_pipe):
    """Pull request lists take at most 50, the others 100 (the simulator refuses more with 400)."""
    cred = api_token(permissions=read_only(1200, 300))
    sim = start([cred], [workspace(1200)], bbql=False)  # the fallback pages the most
    run_pipe(sim, cred, CHECK_RESTORE="true")
    for request in api_requests(sim):
        pagelen = parse_qs(request.query).get("pagelen")
        if pagelen:
            cap = 50 if "/pullrequests" in request.path else 100
            assert int(pagelen[0]) <= cap, (request.path, request.query)
        assert request.status != 400 or "q=" in request.query, (request.path, request.query)


def test_a_pull_request_list_is_paged_by_fifty(start):
    """paging.collect asks an endpoint's own cap: a pull request list 50 (100 would be refused)."""
    cred = api_token()
    sim = start([cred])

    async def collect():
        auth = httpx.BasicAuth(cred.email, cred.secret)
        async with Client(sim.api_url, auth, concurrency=2, deadline=time.monotonic() + 10) as client:
            return await paging.collect(client, "/repositories/acme/repo-0000/pullrequests")

    reply, values = asyncio.run(collect())
    assert reply.status == 200 and len(values) == 1
    assert asked(sim, "/2.0/repositories/acme/repo-0000/pullrequests") == [{"pagelen": "50"}]
    assert paging.pagelen_cap("/repositories/acme/x/pullrequests") == 50
    assert paging.pagelen_cap("/repositories/acme") == paging.MAX_PAGELEN == 100


# --- rate limits in the report ----------------------------------------------------------------------


def test_the_report_states_the_share_of_the_hourly_limit(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(60)])
    run = run_pipe(sim, cred)
    limit = section(run)["rate_limit"]
    used = run.report["requests"]
    assert (limit["requests_used"], limit["hourly_limit"]) == (used, 1000)
    assert limit["share_of_hourly_limit"] == round(used / 1000, 4)
    assert limit["counted_per"] == "the user's"
    assert limit["limit_source"] == "Bitbucket's documented limit for API tokens (1,000 an hour per user)"
    assert f"This check used {used} API requests, {used / 10:.2g} % of the user's 1,000 an hour." in run.output


def test_an_access_token_s_scaled_limit_comes_from_its_header(start, run_pipe):
    cred = access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"])
    sim = start([cred], [workspace(60)])

    def scaled(req, response):
        if "X-RateLimit-Limit" in response.headers:
            response.headers["X-RateLimit-Limit"] = "4200"  # 1,000 + 10 per seat over 100
        return response

    sim.tampers.append(scaled)
    run = run_pipe(sim, cred)
    limit = section(run)["rate_limit"]
    assert (limit["hourly_limit"], limit["limit_source"], limit["counted_per"]) == (
        4200,
        "X-RateLimit-Limit header",
        "the access token's",
    )
    assert limit["share_of_hourly_limit"] == round(run.report["requests"] / 4200, 4)
    assert "of the access token's 4,200 an hour" in run.output


# --- 429 and the budget (kept from 0.1.0) ------------------------------------------------------------


def retried(sim: Simulator) -> tuple[Any, Any]:
    """The first refused request to the repository list and the same request asked again."""
    first = next(r for r in listing_requests(sim) if r.status == 429)
    again = next(r for r in listing_requests(sim) if r.query == first.query and r.at > first.at)
    return first, again


def test_429_with_retry_after_waits_that_long_then_succeeds(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(6)])
    sim.add_fault(Fault(LISTING, "status", status=429, retry_after=1, times=1))
    run = run_pipe(sim, cred)
    first, second = retried(sim)
    assert second.status == 200
    assert second.at - first.at >= 0.9, f"retried after {second.at - first.at:.2f} s, Retry-After was 1"
    assert second.at - first.at < 5
    assert run.code == 0 and run.report["verdict"] == "ready", run.output
    assert section(run)["rate_limit"]["throttled"] == 1
    assert run.report["requests"] == len(api_requests(sim))


def test_429_without_retry_after_backs_off_and_retries(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(6)])
    sim.add_fault(Fault(LISTING, "status", status=429, times=1))
    run = run_pipe(sim, cred)
    first, second = retried(sim)
    assert second.status == 200
    assert second.at - first.at >= 0.9, "retried without backing off"
    assert run.code == 0 and run.report["verdict"] == "ready", run.output
    assert section(run)["rate_limit"]["throttled"] == 1


def test_exhausted_rate_limit_is_inconclusive_and_says_why(start, run_pipe):
    cred = api_token()
    sim = start([cred], [workspace(250)], rate_limit=6)
    run = run_pipe(sim, cred, TIMEOUT="6")
    assert run.code == 3, run.output
    assert run.report["verdict"] == "inconclusive"
    assert section(run)["rate_limit"]["throttled"] > 0
    assert sum(1 for r in api_requests(sim) if r.status == 429) == section(run)["rate_limit"]["throttled"]
    assert "rate limit was reached (429)" in json.dumps(run.report)
    assert "rate limit was reached (429)" in run.output


def test_backup_budget_grows_with_the_workspace_and_warns_when_over_an_hour(start, run_pipe):
    cred = api_token()
    budgets, outputs = {}, {}
    for n in (10, 60, 500):
        sim = start([cred], [workspace(n)])
        run = run_pipe(sim, cred)
        assert run.code == 0, run.output
        budgets[n], outputs[n] = section(run)["rate_limit"], run.output
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
    cred = api_token(permissions=read_only(250, 120))
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
                sorted((c["id"], c["backup"]) for c in section(run)["categories"]),
            )
        )
    assert results[0] == results[1]
    assert results[0][:2] == (1, "not-ready")


def test_a_section_s_repr_never_holds_its_evidence():
    """asyncio.run (3.11) formats its main task's result when it puts the SIGINT handler back: a
    Section whose repr held the inventory made an 80 MB string for 25,000 repositories (bench row 3)."""
    from pipe.reports.document import Section

    class Huge:
        def __repr__(self) -> str:
            return "x" * 1_000_000

    assert len(repr(Section("acme", evidence=Huge(), assessment=Huge()))) < 200
