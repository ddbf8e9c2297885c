"""Tests of the Bitbucket Cloud simulator: it must behave like Bitbucket where the pipe relies on it.

Each test names the Bitbucket rule it checks; a simulator that drifted from the rule fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from test.simulator import Credential, Deprecation, Fault, Repository, Simulator, Workspace
from test.simulator.scopes import KNOWN_OUTSIDE_OPENAPI

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT / "../shared"
FIXTURES = SHARED / "fixtures/bitbucket-cloud/go-scm"

EMAIL = "dev@acme.example"
API_SECRET = "ATATT3xTESTapiTokenForSimulatorTests000000000001"
NOPR_SECRET = "ATATT3xTESTnoPullRequestScope00000000000000002"
NOGIT_SECRET = "ATATT3xTESTgitDisabled0000000000000000000000003"
EXPIRED_SECRET = "ATATT3xTESTexpired000000000000000000000000000004"
RAT_SECRET = "ATCTT3xTESTrepoAccessToken000000000000000000005"
PAT_SECRET = "ATCTT3xTESTprojectAccessToken0000000000000000006"
WAT_SECRET = "ATCTT3xTESTworkspaceAccessToken00000000000000007"
APP_PASSWORD = "ATBBtestAppPassword000000000008"
OAUTH_ID, OAUTH_SECRET = "consumer-key-1", "consumer-secret-1"

READ_SCOPES = [
    "read:user:bitbucket",
    "read:workspace:bitbucket",
    "read:repository:bitbucket",
    "read:pullrequest:bitbucket",
    "read:pipeline:bitbucket",
    "admin:repository:bitbucket",
]


def make_credentials() -> dict[str, Credential]:
    return {
        "api": Credential(
            "api_token",
            API_SECRET,
            READ_SCOPES,
            email=EMAIL,
            username="dev",
            permissions={"readonly": "read", "hidden": "none"},
        ),
        "nopr": Credential(
            "api_token",
            NOPR_SECRET,
            ["read:repository:bitbucket", "read:user:bitbucket"],
            email="nopr@acme.example",
            username="nopr",
        ),
        "nogit": Credential("api_token", NOGIT_SECRET, READ_SCOPES, email="nogit@acme.example", git_enabled=False),
        "expired": Credential("api_token", EXPIRED_SECRET, READ_SCOPES, email="old@acme.example", expired=True),
        "rat": Credential("access_token", RAT_SECRET, ["repository"], workspace="acme", target="alpha"),
        "pat": Credential(
            "access_token",
            PAT_SECRET,
            ["pullrequest"],
            workspace="acme",
            level="project",
            target="OPS",
        ),
        "wat": Credential(
            "access_token",
            WAT_SECRET,
            ["pullrequest:write", "repository:admin"],
            workspace="acme",
            level="workspace",
        ),
        "oauth": Credential(
            "oauth",
            OAUTH_SECRET,
            ["account", "repository"],
            client_id=OAUTH_ID,
            username="oauth-owner",
            workspace_role="member",
        ),
        "app": Credential("app_password", APP_PASSWORD, ["repository"], username="dev"),
    }


def make_workspaces(git: bool = True) -> list[Workspace]:
    acme = Workspace(
        "acme",
        "Acme",
        [
            Repository("alpha", project="WEB", git=git),
            Repository("beta", project="OPS", git=git),
            Repository("readonly", project="WEB"),
            Repository("hidden", project="WEB"),
        ],
        projects=["WEB", "OPS"],
    )
    big = Workspace("big", repositories=[Repository(f"repo-{i:03d}") for i in range(250)])
    return [acme, big]


CREDS = make_credentials()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(make_workspaces(), list(CREDS.values())) as running:
        yield running


@pytest.fixture
def fresh() -> Iterator[Simulator]:
    """A simulator of its own, for tests that add faults or count requests."""
    with Simulator(make_workspaces(), list(make_credentials().values())) as running:
        yield running


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": httpx.BasicAuth(user, secret)._auth_header}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


API = basic(EMAIL, API_SECRET)


def get(sim: Simulator, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return httpx.get(sim.api_url + path, headers=headers or {}, params=params or None)


def error_message(resp: httpx.Response) -> str:
    body = resp.json()
    assert body["type"] == "error"
    return body["error"]["message"]


def oauth_token(sim: Simulator) -> str:
    resp = httpx.post(
        sim.oauth_token_url,
        auth=(OAUTH_ID, OAUTH_SECRET),
        data={"grant_type": "client_credentials"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


# --- authentication -----------------------------------------------------------------------


def test_api_token_basic_with_email_is_accepted(sim: Simulator) -> None:
    resp = get(sim, "/user", API)
    assert resp.status_code == 200
    assert resp.json()["username"] == "dev"
    assert resp.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "headers",
    [
        basic("dev", API_SECRET),  # Bitbucket username instead of the Atlassian email
        bearer(API_SECRET),  # API tokens are not bearer tokens
        basic(EMAIL, "ATATT3xWRONG"),  # unknown token
        basic("dev", APP_PASSWORD),  # app passwords were removed on 2026-07-28
        basic("x-token-auth", RAT_SECRET),  # access tokens need Bearer
        basic("old@acme.example", EXPIRED_SECRET),  # expired
        {},  # anonymous
    ],
    ids=["username", "bearer-api-token", "unknown", "app-password", "basic-access", "expired", "none"],
)
def test_wrong_authentication_is_401(sim: Simulator, headers: dict[str, str]) -> None:
    resp = get(sim, "/repositories/acme", headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Basic realm="Bitbucket.org HTTP"'
    assert error_message(resp) == "Token is invalid, expired, or not supported for this endpoint."


def test_access_token_bearer_sees_only_its_repository(sim: Simulator) -> None:
    resp = get(sim, "/repositories/acme", bearer(RAT_SECRET))
    assert resp.status_code == 200
    assert [r["slug"] for r in resp.json()["values"]] == ["alpha"]
    assert resp.headers["x-credential-type"] == "repo_access_token"
    assert resp.headers["x-oauth-scopes"] == "repository"
    assert resp.headers["x-accepted-oauth-scopes"] == "repository"
    assert resp.headers["x-ratelimit-limit"] == "1000"
    assert get(sim, "/repositories/acme/beta", bearer(RAT_SECRET)).status_code == 404


def test_project_and_workspace_tokens_see_their_repositories(sim: Simulator) -> None:
    project = get(sim, "/repositories/acme", bearer(PAT_SECRET))
    assert [r["slug"] for r in project.json()["values"]] == ["beta"]
    assert project.headers["x-credential-type"] == "project_access_token"
    workspace = get(sim, "/repositories/acme", bearer(WAT_SECRET))
    assert workspace.json()["size"] == 4
    assert workspace.headers["x-credential-type"] == "workspace_access_token"
    other = get(sim, "/workspaces/big", bearer(WAT_SECRET))
    assert other.status_code == 404
    assert error_message(other) == "No workspace with identifier 'big'."


def test_user_endpoints_refuse_access_tokens_but_send_scope_headers(sim: Simulator) -> None:
    for path in ("/user", "/user/workspaces/acme/permissions/repositories"):
        resp = get(sim, path, bearer(WAT_SECRET))
        assert resp.status_code == 403
        assert error_message(resp).startswith("This API is only accessible with the following")
        assert resp.headers["x-credential-type"] == "workspace_access_token"
        assert resp.headers["x-oauth-scopes"] == "pullrequest:write, repository:admin"


def test_api_tokens_send_no_scope_headers_unless_asked(sim: Simulator) -> None:
    assert "x-oauth-scopes" not in get(sim, "/user", API).headers
    loud = Credential("api_token", API_SECRET, READ_SCOPES, email=EMAIL, scope_headers=True)
    with Simulator(make_workspaces(), [loud]) as other:
        resp = get(other, "/user", API)
    assert resp.headers["x-credential-type"] == "api_token"
    assert resp.headers["x-accepted-oauth-scopes"] == "account"
    assert resp.headers["x-oauth-scopes"] == ", ".join(READ_SCOPES)


def test_oauth_client_credentials_flow(sim: Simulator) -> None:
    resp = httpx.post(sim.oauth_token_url, auth=(OAUTH_ID, OAUTH_SECRET), data={"grant_type": "client_credentials"})
    body = resp.json()
    assert resp.status_code == 200
    assert body["scope"] == "account repository"  # the default answer is 2026's (see the switch)
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200
    assert body["access_token"] and "refresh_token" not in body
    user = get(sim, "/user", bearer(body["access_token"]))
    assert user.status_code == 200 and user.json()["username"] == "oauth-owner"
    assert user.headers["x-credential-type"] == "oauth2"
    assert get(sim, "/user", basic(OAUTH_ID, body["access_token"])).status_code == 401
    assert get(sim, "/user", bearer(OAUTH_SECRET)).status_code == 401


def test_oauth_token_endpoint_errors(sim: Simulator) -> None:
    bad = httpx.post(sim.oauth_token_url, auth=(OAUTH_ID, "nope"), data={"grant_type": "client_credentials"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    grant = httpx.post(sim.oauth_token_url, auth=(OAUTH_ID, OAUTH_SECRET), data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


# --- scopes and permissions -----------------------------------------------------------------


def test_missing_scope_403_names_required_and_granted(sim: Simulator) -> None:
    resp = get(sim, "/repositories/acme/alpha/pullrequests", basic("nopr@acme.example", NOPR_SECRET))
    assert resp.status_code == 403
    assert resp.json() == {
        "type": "error",
        "error": {
            "message": "Your credentials lack one or more required privilege scopes.",
            "detail": {
                "required": ["read:pullrequest:bitbucket"],
                "granted": ["read:repository:bitbucket", "read:user:bitbucket"],
            },
        },
    }


def test_classic_scopes_are_expanded_by_implication(sim: Simulator) -> None:
    # pullrequest => repository: a project token with only `pullrequest` lists branches.
    assert get(sim, "/repositories/acme/beta/refs/branches", bearer(PAT_SECRET)).status_code == 200
    # pullrequest:write => pullrequest, repository; deploy-keys needs repository + repository:admin.
    for path in ("pullrequests", "deploy-keys", "refs/tags"):
        assert get(sim, f"/repositories/acme/alpha/{path}", bearer(WAT_SECRET)).status_code == 200
    # repository does not imply pullrequest, and nothing implies repository:admin.
    pr = get(sim, "/repositories/acme/alpha/pullrequests", bearer(RAT_SECRET))
    assert pr.status_code == 403
    assert pr.json()["error"]["detail"] == {"required": ["pullrequest"], "granted": ["repository"]}
    admin = get(sim, "/repositories/acme/alpha/branch-restrictions", bearer(RAT_SECRET))
    assert admin.json()["error"]["detail"]["required"] == ["repository:admin"]
    # A classic operation with an empty scope list needs none.
    assert get(sim, "/workspaces/acme", bearer(RAT_SECRET)).status_code == 200


def test_admin_endpoints_need_admin_permission_on_the_repository(sim: Simulator) -> None:
    ok = get(sim, "/repositories/acme/alpha/branch-restrictions", API)
    assert ok.status_code == 200
    denied = get(sim, "/repositories/acme/readonly/pipelines_config", API)
    assert denied.status_code == 403
    assert denied.json() == {
        "type": "error",
        "error": {"message": "You must be an administrator of this repository to access this resource."},
    }


def test_user_visibility_and_repository_permissions(sim: Simulator) -> None:
    repos = get(sim, "/repositories/acme", API).json()
    assert [r["slug"] for r in repos["values"]] == ["alpha", "beta", "readonly"]
    perms = get(sim, "/user/workspaces/acme/permissions/repositories", API).json()
    assert {v["repository"]["full_name"]: v["permission"] for v in perms["values"]} == {
        "acme/alpha": "admin",
        "acme/beta": "admin",
        "acme/readonly": "read",
    }
    one = get(sim, "/user/workspaces/acme/permissions/repositories", API, q='repository.full_name="acme/readonly"')
    assert [v["permission"] for v in one.json()["values"]] == ["read"]
    assert get(sim, "/repositories/acme/hidden", API).status_code == 404


def test_user_workspaces_entries_are_workspace_access(sim: Simulator) -> None:
    # The OpenAPI document's shape: an administrator flag and a sparse workspace_base, no role string.
    values = get(sim, "/user/workspaces", API).json()["values"]
    assert {v["workspace"]["slug"] for v in values} == {"acme", "big"}
    acme = next(v for v in values if v["workspace"]["slug"] == "acme")
    assert acme == {
        "type": "workspace_access",
        "administrator": False,
        "workspace": {
            "type": "workspace_base",
            "slug": "acme",
            "uuid": acme["workspace"]["uuid"],
            "links": {
                "avatar": {"href": "https://bitbucket.org/workspaces/acme/avatar/"},
                "self": {"href": "https://api.bitbucket.org/2.0/workspaces/acme"},
            },
        },
    }
    member = get(sim, "/user/workspaces", bearer(oauth_token(sim))).json()["values"][0]
    assert member["administrator"] is False and "permission" not in member


def test_user_workspaces_of_an_administrator_and_the_administrator_filter() -> None:
    admin = Credential("api_token", API_SECRET, READ_SCOPES, email=EMAIL, username="dev", workspace_admin=True)
    with Simulator(make_workspaces(git=False), [admin]) as sim:
        values = get(sim, "/user/workspaces", API).json()["values"]
        assert [v["administrator"] for v in values] == [True, True]
        assert get(sim, "/user/workspaces", API, administrator="false").json()["values"] == []
        assert len(get(sim, "/user/workspaces", API, administrator="true").json()["values"]) == 2


@pytest.mark.parametrize(
    ("fields", "role"),
    [({}, "member"), ({"workspace_admin": True}, "owner"), ({"workspace_role": "collaborator"}, "collaborator")],
)
def test_workspace_permission_names_the_role(fields: dict[str, Any], role: str) -> None:
    cred = Credential("api_token", API_SECRET, READ_SCOPES, email=EMAIL, username="dev", **fields)
    with Simulator(make_workspaces(git=False), [cred]) as sim:
        body = get(sim, "/user/workspaces/acme/permission", API).json()
    assert body["type"] == "workspace_membership" and body["permission"] == role
    assert body["workspace"]["slug"] == "acme" and body["user"]["display_name"] == "Dev"


@pytest.mark.parametrize(
    "path", ["/repositories", "/workspaces", "/user/permissions/workspaces", "/user/permissions/repositories"]
)
def test_cross_workspace_endpoints_are_gone(sim: Simulator, path: str) -> None:
    resp = get(sim, path, API)
    assert resp.status_code == 410
    error = resp.json()["error"]
    assert error["message"] == "CHANGE-2770 - Functionality has been deprecated"
    assert error["data"]["announcement_url"].endswith("#CHANGE-2770")


@pytest.mark.parametrize(
    "path", ["/repositories/acme/alpha/issues", "/repositories/acme/alpha/issues/1", "/repositories/acme/alpha/wiki"]
)
def test_issues_and_wikis_are_retired(sim: Simulator, path: str) -> None:
    resp = get(sim, path, API)
    assert resp.status_code == 410
    assert resp.json() == {
        "type": "error",
        "error": {
            "message": "CHANGE-3071 - Functionality has been deprecated",
            "detail": "Please read the changelog entry for more details.",
            "data": {"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3071"},
        },
    }


def test_unknown_route_is_404_json(sim: Simulator) -> None:
    resp = get(sim, "/nothing/here", API)
    assert resp.status_code == 404 and resp.headers["content-type"] == "application/json"
    assert get(sim, "/workspaces/nope", API).json()["error"]["message"] == "No workspace with identifier 'nope'."


# --- pagination and fields ------------------------------------------------------------------


def test_pagination_follows_next_over_250_repositories(sim: Simulator) -> None:
    url: str | None = sim.api_url + "/repositories/big?pagelen=100"
    pages = []
    while url:
        body = httpx.get(url, headers=API).json()
        pages.append(body)
        url = body.get("next")
    assert [len(p["values"]) for p in pages] == [100, 100, 50]
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert all(p["size"] == 250 and p["pagelen"] == 100 for p in pages)
    assert pages[0]["next"].startswith(sim.api_url + "/repositories/big?")
    assert "pagelen=100" in pages[0]["next"] and "page=2" in pages[0]["next"]
    assert "previous" not in pages[0] and "page=1" in pages[1]["previous"]
    slugs = [r["slug"] for p in pages for r in p["values"]]
    assert slugs == [f"repo-{i:03d}" for i in range(250)]


def test_pagelen_default_and_clamp(sim: Simulator) -> None:
    assert len(get(sim, "/repositories/big", API).json()["values"]) == 10
    clamped = get(sim, "/repositories/big", API, pagelen=500).json()
    assert clamped["pagelen"] == 100 and len(clamped["values"]) == 100


def test_fields_trimming(sim: Simulator) -> None:
    fields = "size,page,next,values.full_name,values.slug,values.project.key,values.nope"
    body = get(sim, "/repositories/big", API, pagelen=2, fields=fields).json()
    assert set(body) == {"size", "page", "next", "values"}
    assert body["values"][0] == {"full_name": "big/repo-000", "slug": "repo-000", "project": {"key": "PROJ"}}
    assert "fields=" in body["next"]
    minus = get(sim, "/repositories/acme/alpha", API, fields="-links,-owner.links").json()
    assert "links" not in minus and "links" not in minus["owner"] and "slug" in minus
    plus = get(sim, "/repositories/acme/alpha", API, fields="+size").json()
    assert "links" in plus


# --- faults and rate limits -----------------------------------------------------------------


def test_fault_status_is_observable_once(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/user$", "status", status=503))
    assert get(fresh, "/user", API).status_code == 503
    assert get(fresh, "/user", API).status_code == 200
    assert [r.status for r in fresh.requests] == [503, 200]


def test_fault_429_with_retry_after(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/repositories/acme$", "status", status=429, retry_after=2))
    resp = get(fresh, "/repositories/acme", API)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "2"
    assert resp.headers["content-type"] == "text/plain"
    assert resp.text == "Rate limit for this resource has been exceeded"


def test_fault_reset_breaks_the_connection(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/user$", "reset"))
    with pytest.raises(httpx.TransportError):
        get(fresh, "/user", API)
    assert fresh.requests[-1].status == 0
    assert get(fresh, "/user", API).status_code == 200


def test_fault_slow_html_truncated(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/user$", "slow", delay=0.3))
    start = time.monotonic()
    assert get(fresh, "/user", API).status_code == 200
    assert time.monotonic() - start >= 0.3
    fresh.add_fault(Fault(r"/workspaces/acme$", "html"))
    html = get(fresh, "/workspaces/acme", API)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    fresh.add_fault(Fault(r"/repositories/acme$", "truncated"))
    cut = get(fresh, "/repositories/acme", API)
    assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content)
    with pytest.raises(json.JSONDecodeError):
        cut.json()


def test_fault_loop_next_and_redirect(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/repositories/big$", "loop_next"))
    last = get(fresh, "/repositories/big", API, pagelen=100, page=3).json()
    assert "page=1" in last["next"]
    assert "next" not in get(fresh, "/repositories/big", API, pagelen=100, page=3).json()
    fresh.add_fault(Fault(r"/repositories/big$", "loop_next", times=-1))
    for _ in range(3):
        assert "page=1" in get(fresh, "/repositories/big", API, pagelen=100, page=2).json()["next"]
    fresh.add_fault(Fault(r"/workspaces/acme$", "redirect"))
    moved = get(fresh, "/workspaces/acme", API)
    assert moved.status_code == 302
    assert moved.headers["location"] == fresh.api_url + "/workspaces/acme"
    followed = httpx.get(fresh.api_url + "/workspaces/acme", headers=API, follow_redirects=True)
    assert followed.status_code == 200


def test_fault_method_must_match(fresh: Simulator) -> None:
    fresh.add_fault(Fault(r"/reports/", "status", status=500, method="PUT", times=-1))
    assert get(fresh, "/user", API).status_code == 200
    put = httpx.put(fresh.api_url + "/repositories/acme/alpha/commit/abc/reports/r1", headers=API, json={})
    assert put.status_code == 500


def test_rate_limit_429_without_retry_after() -> None:
    with Simulator(make_workspaces(), list(make_credentials().values()), rate_limit=3) as sim:
        statuses = [get(sim, "/user", API).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        resp = get(sim, "/user", API)
        assert "retry-after" not in resp.headers
        assert resp.headers["content-type"] == "text/plain"
        # Counted per credential: another credential is not limited yet.
        assert get(sim, "/repositories/acme", bearer(RAT_SECRET)).status_code == 200


def test_latency_is_added_per_response() -> None:
    with Simulator(make_workspaces(), list(make_credentials().values()), latency=0.2) as sim:
        start = time.monotonic()
        get(sim, "/user", API)
        assert time.monotonic() - start >= 0.2


# --- Code Insights --------------------------------------------------------------------------


REPORT = {"title": "Backup readiness", "report_type": "SECURITY", "result": "FAILED"}


def test_code_insights_through_the_pipelines_proxy(fresh: Simulator) -> None:
    url = "http://api.bitbucket.org/2.0/repositories/acme/alpha/commit/abc123/reports/backup-readiness"
    with httpx.Client(proxy=fresh.base_url) as client:
        resp = client.put(url, json=REPORT)
    assert resp.status_code == 200
    assert resp.json()["uuid"] and resp.json()["title"] == "Backup readiness"
    assert fresh.reports == {"acme/alpha/abc123/backup-readiness": REPORT}
    record = fresh.requests[-1]
    assert (record.method, record.path, record.credential_kind) == ("PUT", url[24:], None)
    assert json.loads(record.body) == REPORT


def test_code_insights_direct_needs_auth_and_scope(fresh: Simulator) -> None:
    url = fresh.api_url + "/repositories/acme/alpha/commit/abc123/reports/r1"
    assert httpx.put(url, json=REPORT).status_code == 401
    assert httpx.put(url, json=REPORT, headers=bearer(PAT_SECRET)).status_code == 404  # not its repo
    assert httpx.put(url, json=REPORT, headers=API).status_code == 200
    assert "acme/alpha/abc123/r1" in fresh.reports


def test_recorded_requests_redact_authorization(fresh: Simulator) -> None:
    get(fresh, "/user", API)
    record = fresh.requests[-1]
    assert record.headers["Authorization"] == "<redacted>"
    assert record.authorization_scheme == "Basic" and record.credential_kind == "api_token"
    assert API_SECRET not in repr(record)


# --- git over HTTPS --------------------------------------------------------------------------


def ls_remote(sim: Simulator, user: str, secret: str, slug: str = "alpha") -> subprocess.CompletedProcess[str]:
    host = sim.base_url.removeprefix("http://")
    url = f"http://{user}:{secret}@{host}/acme/{slug}.git"
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    return subprocess.run(
        ["git", "-c", "credential.helper=", "ls-remote", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
@pytest.mark.parametrize(
    ("user", "secret", "slug"),
    [
        ("x-bitbucket-api-token-auth", API_SECRET, "alpha"),
        ("dev", API_SECRET, "alpha"),
        ("x-token-auth", RAT_SECRET, "alpha"),
        ("x-token-auth", WAT_SECRET, "beta"),
    ],
)
def test_git_ls_remote_succeeds(sim: Simulator, user: str, secret: str, slug: str) -> None:
    result = ls_remote(sim, user, secret, slug)
    assert result.returncode == 0, result.stderr
    assert "refs/heads/main" in result.stdout


@needs_git
@pytest.mark.parametrize(
    ("user", "secret", "slug", "status"),
    [
        ("dev%40acme.example", API_SECRET, "alpha", "401"),  # the email is the REST user, not git's
        ("x-token-auth", API_SECRET, "alpha", "401"),
        ("x-bitbucket-api-token-auth", RAT_SECRET, "alpha", "401"),
        ("x-token-auth", RAT_SECRET, "beta", "403"),  # not its repository
        ("x-bitbucket-api-token-auth", NOGIT_SECRET, "alpha", "403"),  # git disabled
        ("x-token-auth", PAT_SECRET, "alpha", "403"),  # project OPS token, alpha is WEB
    ],
)
def test_git_ls_remote_fails(sim: Simulator, user: str, secret: str, slug: str, status: str) -> None:
    result = ls_remote(sim, user, secret, slug)
    assert result.returncode != 0
    assert [r.status for r in sim.requests if r.path.startswith(f"/acme/{slug}.git")][-1] == int(status)


@needs_git
def test_git_needs_the_repository_read_scope() -> None:
    nope = Credential("api_token", "ATATT3xNOREAD", ["read:user:bitbucket"], email="n@x.example", username="n")
    with Simulator(make_workspaces(), [nope]) as sim:
        result = ls_remote(sim, "n", "ATATT3xNOREAD")
        assert result.returncode != 0
        assert "403" in result.stderr


# --- shapes compared with real Bitbucket responses ------------------------------------------


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared (go-scm fixtures) is not present")
def test_response_shapes_match_go_scm_fixtures(sim: Simulator) -> None:
    assert set(get(sim, "/user", API).json()) == set(fixture("user.json"))
    assert set(get(sim, "/repositories/acme", API).json()["values"][0]) == set(fixture("repos.json")["values"][0])
    perm = get(sim, "/user/workspaces/acme/permissions/repositories", API).json()["values"][0]
    assert set(perm) == set(fixture("user_repo_perm_admin.json")["values"][0])
    ws_entry = get(sim, "/user/workspaces", API).json()["values"][0]
    # go-scm's user_workspaces.json has the shape of the REMOVED /user/permissions/workspaces
    # (`permission`, `last_accessed`; bitbucket-cloud.md section 3, research A9), not of
    # /user/workspaces: the simulator must not agree with it. The removed endpoint answers 410.
    removed_shape = set(fixture("user_workspaces.json")["values"][0])
    assert removed_shape - set(ws_entry) == {"permission", "last_accessed"}
    assert set(ws_entry) == {"type", "administrator", "workspace"}
    assert get(sim, "/user/permissions/workspaces", API).status_code == 410
    error = get(sim, "/repositories/acme/nope", API).json()
    assert set(error) == set(fixture("error.json")) and set(error["error"]) == {"message"}
    hooks = get(sim, "/repositories/acme/alpha/hooks", bearer(WAT_SECRET))
    assert hooks.status_code == 403  # webhook scope is not implied by anything the token holds


# --- fixed answers Bitbucket gives (issue 11) ------------------------------------------------


def test_override_settings_is_a_repository_inheritance_state(sim: Simulator) -> None:
    body = get(sim, "/repositories/acme/alpha/override-settings", API).json()
    assert body == {
        "type": "repository_inheritance_state",
        "override_settings": {"default_merge_strategy": True, "branching_model": True},
    }


@pytest.mark.parametrize("fields", ["values.slug", "size", "-error", "type"])
def test_fields_never_trims_an_error_body(sim: Simulator, fields: str) -> None:
    denied = get(sim, "/repositories/acme/alpha/pullrequests", basic("nopr@acme.example", NOPR_SECRET), fields=fields)
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "message": "Your credentials lack one or more required privilege scopes.",
        "detail": {
            "required": ["read:pullrequest:bitbucket"],
            "granted": ["read:repository:bitbucket", "read:user:bitbucket"],
        },
    }
    missing = get(sim, "/repositories/acme/nope", API, fields=fields)
    assert missing.status_code == 404 and error_message(missing) == "Repository acme/nope not found"


@pytest.mark.parametrize(
    "path", ["/repositories/acme/alpha/pullrequests", "/repositories/acme/alpha/pullrequests/activity"]
)
def test_pull_request_lists_refuse_pagelen_over_50(sim: Simulator, path: str) -> None:
    for pagelen in (51, 100):
        resp = get(sim, path, API, pagelen=pagelen)
        assert resp.status_code == 400
        assert resp.json() == {"type": "error", "error": {"message": "Invalid pagelen"}}
    ok = get(sim, path, API, pagelen=50)
    assert ok.status_code == 200 and ok.json()["pagelen"] == 50
    # Other lists take 100 and clamp more (test_pagelen_default_and_clamp).
    assert get(sim, "/repositories/acme/alpha/pipelines", API, pagelen=100).status_code == 200


# --- switches: the simulator as an adversary -------------------------------------------------


def switched(creds: list[Credential] | None = None, **switches: Any) -> Simulator:
    """A simulator of its own (no git repositories: fast) with the given switches."""
    return Simulator(make_workspaces(git=False), creds or list(make_credentials().values()), **switches)


NOPR = basic("nopr@acme.example", NOPR_SECRET)


def scope_403(sim: Simulator, headers: dict[str, str] = NOPR) -> dict[str, Any]:
    resp = get(sim, "/repositories/acme/alpha/pullrequests", headers)
    assert (
        resp.status_code == 403
        and error_message(resp) == "Your credentials lack one or more required privilege scopes."
    )
    return resp.json()["error"]["detail"]


def test_switch_granted_in_403_partial_and_missing() -> None:
    writer = Credential(
        "api_token",
        "ATATT3xTESTwriter",
        ["read:repository:bitbucket", "write:repository:bitbucket"],
        email="w@x.example",
    )
    shown = Credential(
        "api_token",
        "ATATT3xTESTshown",
        ["read:user:bitbucket", "read:repository:bitbucket"],
        email="s@x.example",
        granted_shown=["read:user:bitbucket"],
    )
    with switched([writer, shown]) as full:
        assert scope_403(full, basic("w@x.example", "ATATT3xTESTwriter"))["granted"] == [
            "read:repository:bitbucket",
            "write:repository:bitbucket",
        ]
    with switched([writer, shown], granted_in_403="partial") as partial:
        assert scope_403(partial, basic("w@x.example", "ATATT3xTESTwriter")) == {
            "required": ["read:pullrequest:bitbucket"],
            "granted": ["read:repository:bitbucket"],
        }
        assert scope_403(partial, basic("s@x.example", "ATATT3xTESTshown"))["granted"] == ["read:user:bitbucket"]
    with switched(granted_in_403="missing") as missing:
        assert scope_403(missing) == {"required": ["read:pullrequest:bitbucket"]}
        classic = get(missing, "/repositories/acme/alpha/pullrequests", bearer(RAT_SECRET)).json()["error"]["detail"]
        assert classic == {"required": ["pullrequest"]}
    with pytest.raises(ValueError, match="granted_in_403"):
        Simulator(granted_in_403="some")


SCOPE_HEADERS = ("x-oauth-scopes", "x-credential-type", "x-accepted-oauth-scopes")


def test_switch_scope_headers_off_for_every_credential() -> None:
    with switched(scope_headers=False) as sim:
        answers = [
            get(sim, "/repositories/acme", bearer(WAT_SECRET)),
            get(sim, "/user", bearer(WAT_SECRET)),  # a 403 too
            get(sim, "/user", bearer(oauth_token(sim))),
            get(sim, "/user", API),
        ]
        assert [r.status_code for r in answers] == [200, 403, 200, 200]
        assert all(name not in r.headers for r in answers for name in SCOPE_HEADERS)


def test_switch_scope_headers_on_for_api_tokens() -> None:
    with switched(scope_headers=True) as sim:
        resp = get(sim, "/repositories/acme/alpha/pullrequests", API)
        denied = get(sim, "/repositories/acme/alpha/pullrequests", NOPR)
        wat = get(sim, "/repositories/acme", bearer(WAT_SECRET))
    assert resp.headers["x-credential-type"] == "api_token"
    assert resp.headers["x-oauth-scopes"] == ", ".join(READ_SCOPES)  # *:bitbucket names
    assert resp.headers["x-accepted-oauth-scopes"] == "pullrequest"  # always classic names
    assert denied.status_code == 403
    assert denied.headers["x-oauth-scopes"] == "read:repository:bitbucket, read:user:bitbucket"
    assert wat.headers["x-credential-type"] == "workspace_access_token"


def test_switch_webhooks_readable_without_admin() -> None:
    hooks = "/repositories/acme/readonly/hooks"
    reader = Credential(
        "api_token", API_SECRET, [*READ_SCOPES, "read:webhook:bitbucket"], email=EMAIL, permissions={"readonly": "read"}
    )
    with switched([reader]) as strict:
        denied = get(strict, hooks, API)
        assert denied.status_code == 403 and error_message(denied) == MSG_ADMIN
    with switched([reader], webhooks_need_admin=False) as lax:
        ok = get(lax, hooks, API)
        assert ok.status_code == 200 and ok.json()["values"][0]["type"] == "webhook_subscription"
        # The scope is still needed, and admin endpoints still need admin.
        assert get(lax, "/repositories/acme/readonly/branch-restrictions", API).status_code == 403


MSG_ADMIN = "You must be an administrator of this repository to access this resource."
PERMS = "/user/workspaces/acme/permissions/repositories"


def permissions_of(sim: Simulator, headers: dict[str, str] = API, **params: Any) -> dict[str, str]:
    resp = get(sim, PERMS, headers, pagelen=100, **params)
    assert resp.status_code == 200, resp.text
    return {v["repository"]["full_name"]: v["permission"] for v in resp.json()["values"]}


def test_switch_permissions_list_explicit_grants_only() -> None:
    granted = Credential(
        "api_token", API_SECRET, READ_SCOPES, email=EMAIL, permissions={"readonly": "read", "hidden": "none"}
    )
    with switched([granted]) as effective:
        assert permissions_of(effective) == {"acme/alpha": "admin", "acme/beta": "admin", "acme/readonly": "read"}
    with switched([granted], permissions_list="explicit") as explicit:
        # alpha and beta come from default_permission (groups, projects): not explicit, not listed.
        assert permissions_of(explicit) == {"acme/readonly": "read"}
        # The repositories themselves are still there with their effective permission.
        assert get(explicit, "/repositories/acme/alpha/branch-restrictions", API).status_code == 200


@pytest.mark.parametrize("admin_fields", [{"workspace_admin": True}, {"workspace_role": "owner"}])
def test_workspace_admin_has_admin_everywhere_but_explicit_list_omits_it(admin_fields: dict[str, Any]) -> None:
    admin = Credential(
        "api_token",
        API_SECRET,
        READ_SCOPES,
        email=EMAIL,
        permissions={"readonly": "read"},
        default_permission="none",
        **admin_fields,
    )
    with switched([admin]) as effective:
        assert permissions_of(effective) == {f"acme/{s}": "admin" for s in ("alpha", "beta", "readonly", "hidden")}
        assert get(effective, "/repositories/acme/readonly/pipelines_config", API).status_code == 200
        assert get(effective, "/user/workspaces/acme/permission", API).json()["permission"] == "owner"
    with switched([admin], permissions_list="explicit") as explicit:
        # Only the explicit grant, with the effective permission (the list does not tell them apart).
        assert permissions_of(explicit) == {"acme/readonly": "admin"}
        admins = get(explicit, "/repositories/acme", API, role="admin", pagelen=100).json()
        assert admins["size"] == 4  # the cross-check a pipe can make


def test_switch_page_size_missing() -> None:
    with switched(page_size=False) as sim:
        for path in ("/repositories/big", PERMS, "/repositories/acme/alpha/refs/branches", "/user/workspaces"):
            body = get(sim, path, API).json()
            assert "size" not in body and body["values"], path
        first = get(sim, "/repositories/big", API, pagelen=100).json()
        assert "page=2" in first["next"] and first["pagelen"] == 100


def test_switch_fields_ignored() -> None:
    with switched(fields=False) as sim:
        body = get(sim, "/repositories/big", API, pagelen=2, fields="values.slug").json()
        assert set(body) >= {"size", "page", "pagelen", "values"}
        assert "links" in body["values"][0] and "project" in body["values"][0]
        assert "links" in get(sim, "/repositories/acme/alpha", API, fields="-links").json()


# BBQL on the two lists a backup check filters.
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('permission="admin"', {"alpha", "beta"}),
        ('permission!="admin"', {"readonly", "writer"}),
        ('permission>"read"', {"alpha", "beta", "writer"}),
        ('permission>="write" AND permission<"admin"', {"writer"}),
        ('repository.full_name="acme/readonly"', {"readonly"}),
        ('repository.name="alpha" OR repository.name="writer"', {"alpha", "writer"}),
        ('(repository.name="alpha" OR repository.name="readonly") AND permission="read"', {"readonly"}),
        ('repository.name~"ETA"', {"beta"}),
    ],
)
def test_bbql_on_the_permissions_list(query: str, expected: set[str]) -> None:
    grants = {"readonly": "read", "writer": "write", "hidden": "none"}
    cred = Credential("api_token", API_SECRET, READ_SCOPES, email=EMAIL, permissions=grants)
    workspaces = make_workspaces(git=False)
    workspaces[0].repositories.append(Repository("writer"))
    with Simulator(workspaces, [cred]) as sim:
        assert set(permissions_of(sim, q=query)) == {f"acme/{s}" for s in expected}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": 'full_name="acme/beta"'}, {"beta"}),
        ({"q": 'full_name="acme/beta" OR slug="readonly"'}, {"beta", "readonly"}),
        ({"q": 'project.key="WEB" AND is_private=true'}, {"alpha", "readonly", "hidden"}),
        ({"role": "member"}, {"alpha", "beta", "readonly", "writer"}),
        ({"role": "contributor"}, {"alpha", "beta", "writer"}),
        ({"role": "admin"}, {"alpha", "beta"}),
        ({"role": "contributor", "q": 'full_name="acme/readonly"'}, set()),
        ({"role": "admin", "q": 'name="beta"'}, {"beta"}),
    ],
)
def test_bbql_and_role_on_the_repository_list(params: dict[str, str], expected: set[str]) -> None:
    cred = Credential(
        "api_token",
        API_SECRET,
        READ_SCOPES,
        email=EMAIL,
        permissions={"readonly": "read", "writer": "write", "hidden": "none"},
    )
    workspaces = make_workspaces(git=False)
    workspaces[0].repositories.append(Repository("writer"))
    with Simulator(workspaces, [cred]) as sim:
        body = get(sim, "/repositories/acme", API, pagelen=100, **params).json()
        if "hidden" in expected:  # hidden is not visible to this credential at all
            expected = expected - {"hidden"}
        assert {r["slug"] for r in body["values"]} == expected
        assert body["size"] == len(expected)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (PERMS, 'full_name="acme/alpha"'),  # the permissions list names it repository.full_name
        ("/repositories/acme", 'permission="admin"'),  # a repository has no permission field
        (PERMS, 'permission="admin" AND'),
        (PERMS, "permission=admin"),
        ("/repositories/acme", '(full_name="acme/alpha"'),
    ],
)
def test_bbql_refuses_what_bitbucket_would(sim: Simulator, path: str, query: str) -> None:
    resp = get(sim, path, API, q=query)
    assert resp.status_code == 400
    assert error_message(resp).startswith(("Invalid field name", "Invalid query"))


def test_switch_bbql_unsupported_answers_400() -> None:
    with switched(bbql=False) as sim:
        for path in (PERMS, "/repositories/acme", "/repositories/acme/alpha/refs/branches"):
            resp = get(sim, path, API, q='permission="admin"')
            assert resp.status_code == 400 and "not supported" in error_message(resp)
        assert get(sim, "/repositories/acme", API, role="admin").status_code == 200  # role= is not BBQL


def test_filtered_lists_of_a_big_workspace_page_consistently() -> None:
    cred = Credential(
        "api_token",
        API_SECRET,
        READ_SCOPES,
        email=EMAIL,
        permissions={f"repo-{i:03d}": "read" for i in range(0, 250, 5)},
    )
    with switched([cred]) as sim:
        url: str | None = sim.api_url + "/repositories/big?role=admin&pagelen=100"
        slugs = []
        while url:
            body = httpx.get(url, headers=API).json()
            assert body["size"] == 200
            slugs += [r["slug"] for r in body["values"]]
            url = body.get("next")
    assert len(slugs) == 200 and "repo-000" not in slugs and "repo-001" in slugs


def test_switch_api_token_over_bearer() -> None:
    assert get_once(bearer(API_SECRET)) == 401
    with switched(api_token_bearer=True) as sim:
        resp = get(sim, "/user", bearer(API_SECRET))
        assert resp.status_code == 200 and resp.json()["username"] == "dev"
        assert sim.requests[-1].authorization_scheme == "Bearer"
        assert get(sim, "/user", basic(EMAIL, API_SECRET)).status_code == 200  # Basic still works
        assert get(sim, "/user", bearer(APP_PASSWORD)).status_code == 401


def get_once(headers: dict[str, str], path: str = "/user", **switches: Any) -> int:
    with switched(**switches) as sim:
        return get(sim, path, headers).status_code


def test_switch_oauth_response_legacy() -> None:
    with switched(oauth_response="legacy") as sim:
        resp = httpx.post(sim.oauth_token_url, auth=(OAUTH_ID, OAUTH_SECRET), data={"grant_type": "client_credentials"})
        body = resp.json()
        assert resp.status_code == 200
        assert body["scopes"] == "account repository"
        assert "scope" not in body and body["refresh_token"]
        assert get(sim, "/user", bearer(body["access_token"])).status_code == 200


def test_switch_deprecation_headers_on_successful_answers() -> None:
    deps = [
        Deprecation(r"/refs/tags$"),
        Deprecation(r"/downloads$", deprecation="@1790000000", sunset=None, link="https://example.invalid/notice"),
    ]
    with switched(deprecations=deps) as sim:
        tags = get(sim, "/repositories/acme/alpha/refs/tags", API)
        assert tags.status_code == 200
        assert tags.headers["deprecation"] == "@1771545600"
        assert tags.headers["sunset"] == "Fri, 21 Aug 2026 00:00:00 UTC"
        assert tags.headers["link"] == (
            '<https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3071>; rel="deprecation"; type="text/html"'
        )
        downloads = get(sim, "/repositories/acme/alpha/downloads", API)
        assert downloads.headers["deprecation"] == "@1790000000" and "sunset" not in downloads.headers
        assert downloads.headers["link"].startswith("<https://example.invalid/notice>;")
        # Not on failures, not on other paths.
        assert "deprecation" not in get(sim, "/repositories/acme/nope/refs/tags", API).headers
        assert "deprecation" not in get(sim, "/repositories/acme/alpha/refs/branches", API).headers


@needs_git
def test_switch_app_password_over_git_answers_410_with_remote_lines() -> None:
    creds = list(make_credentials().values())
    with Simulator(make_workspaces(), creds) as default:
        refused = ls_remote(default, "dev", APP_PASSWORD)
        assert refused.returncode != 0 and "CHANGE-3222" not in refused.stderr
        assert default.requests[-1].status == 401
    with Simulator(make_workspaces(), creds, app_password_git="410") as sim:
        result = ls_remote(sim, "dev", APP_PASSWORD)
        assert result.returncode != 0
        remote = [line for line in result.stderr.splitlines() if line.startswith("remote: ")]
        assert remote == [
            "remote: CHANGE-3222 - Functionality has been deprecated",
            "remote: App passwords are deprecated and must be replaced with API tokens.",
            "remote: https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3222",
        ]
        assert "410" in result.stderr and sim.requests[-1].credential_kind == "app_password"
        # REST still refuses app passwords with 401, and API tokens still clone.
        assert get(sim, "/user", basic("dev", APP_PASSWORD)).status_code == 401
        assert ls_remote(sim, "dev", API_SECRET).returncode == 0


PACKAGES = sorted(KNOWN_OUTSIDE_OPENAPI)  # Bitbucket Packages


def test_package_scopes_are_granted_names_like_any_other() -> None:
    cred = Credential(
        "api_token", API_SECRET, ["read:repository:bitbucket", *PACKAGES], email=EMAIL, scope_headers=True
    )
    with switched([cred]) as sim:
        ok = get(sim, "/repositories/acme", API)
        assert ok.status_code == 200
        assert (
            ok.headers["x-oauth-scopes"] == "read:repository:bitbucket, read:package:bitbucket, write:package:bitbucket"
        )
        assert scope_403(sim, API)["granted"] == [
            "read:package:bitbucket",
            "read:repository:bitbucket",
            "write:package:bitbucket",
        ]


# --- CLI ------------------------------------------------------------------------------------


def test_cli_demo_scenario_prints_its_json_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "test.simulator", "--port", "0", "--scenario", "demo"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        cred = info["credentials"]["backup"]
        assert cred["email"] == "backup@acme.example" and cred["secret"].startswith("ATATT3xDEMO")
        assert "read:pullrequest:bitbucket" not in cred["scopes"]
        auth = basic(cred["email"], cred["secret"])
        repos = httpx.get(info["api_url"] + "/repositories/acme?pagelen=100", headers=auth).json()
        assert repos["size"] == 12
        perms = httpx.get(info["api_url"] + "/user/workspaces/acme/permissions/repositories?pagelen=100", headers=auth)
        assert sorted(v["permission"] for v in perms.json()["values"]).count("read") == 3
        assert info["oauth_token_url"].endswith("/site/oauth2/access_token")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
