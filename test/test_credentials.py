"""Issue 2: each credential kind and each trap, end to end against the simulator."""

from __future__ import annotations

import pytest

from test.conftest import ACCESS_TOKEN, ALL_READ, API_TOKEN, EMAIL, access_token, api_token, oauth, workspace
from test.simulator import Credential


def test_complete_api_token_is_ready(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    assert run.report["verdict"] == "ready"
    assert run.report["credential"]["kind"] == "api_token"
    assert run.out == "✔ READY: the credential can back up everything the profile needs. (exit 0)\n"
    requests = [r for r in sim.requests if r.path.startswith("/2.0")]
    assert requests and all(r.authorization_scheme == "Basic" for r in requests)


def test_api_token_with_username_instead_of_email_is_refused_before_any_request(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred, BITBUCKET_EMAIL="acme-backup")
    assert run.code == 2
    (problem,) = run.report["error"]["problems"]
    assert problem["variable"] == "BITBUCKET_EMAIL"
    assert problem["message"] == "does not look like an email address (a Bitbucket username?)."
    assert f"BITBUCKET_EMAIL: {problem['message']}" in run.output
    assert sim.requests == []


def test_api_token_rejected_by_bitbucket_is_a_credential_error(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred, BITBUCKET_EMAIL="someone.else@acme.example")
    assert run.code == 2
    assert "rejected the API token (401)" in run.output
    assert run.report["verdict"] == "error"


def test_expired_token_is_a_credential_error(start, run_pipe):
    cred = api_token(expired=True)
    run = run_pipe(start([cred]), cred)
    assert run.code == 2
    assert run.report["verdict"] == "error"
    assert run.report["error"]["message"] == "Bitbucket rejected the API token (401)."
    assert "Bitbucket rejected the API token (401)." in run.output


def test_missing_read_user_scope_is_named_from_the_403(start, run_pipe):
    cred = api_token([s for s in ALL_READ if s != "read:user:bitbucket"])
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    assert run.scopes_to_add == ["read:user:bitbucket"]
    assert run.category("account")["backup"] == "missing"


def test_access_token_uses_bearer_and_classic_scopes(start, run_pipe):
    cred = access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"])
    sim = start([cred])
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    report = run.report
    assert report["credential"]["type"] == "workspace_access_token"
    assert "x-oauth-scopes header" in report["credential"]["scopes_source"]
    assert run.category("account")["backup"] == "not-applicable"
    assert all(r.authorization_scheme == "Bearer" for r in sim.requests if r.path.startswith("/2.0"))


def test_oauth_consumer_gets_a_token_then_uses_bearer(start, run_pipe):
    cred = oauth()
    sim = start([cred])
    run = run_pipe(sim, cred)
    assert run.code == 0, run.output
    assert sim.requests[0].path == "/site/oauth2/access_token"
    assert sim.requests[0].method == "POST"
    assert "OAuth token response" in run.report["credential"]["scopes_source"]


def test_oauth_consumer_with_wrong_secret_is_a_credential_error(start, run_pipe):
    cred = oauth()
    sim = start([cred])
    run = run_pipe(sim, cred, BITBUCKET_OAUTH_CLIENT_SECRET="wrongSecretValue123")
    assert run.code == 2
    message = "Bitbucket refused the OAuth consumer's client credentials (invalid_client)."
    assert run.report["error"]["message"] == message
    assert message in run.output


@pytest.mark.parametrize("variable", ["BITBUCKET_APP_PASSWORD", "BITBUCKET_API_TOKEN"])
def test_app_password_is_recognised_and_never_sent(start, run_pipe, variable):
    sim = start([Credential("app_password", "ATBBfakeAppPassword1234567890", ["repository"], username="u")])
    variables = {variable: "ATBBfakeAppPassword1234567890", "BITBUCKET_USERNAME": "acme-backup"}
    if variable == "BITBUCKET_API_TOKEN":
        variables["BITBUCKET_EMAIL"] = EMAIL
    run = run_pipe(sim, None, **variables)
    assert run.code == 2
    assert "2026-07-28" in run.output and "id.atlassian.com" in run.output
    assert sim.requests == []


def test_whitespace_pasted_into_a_token_is_caught(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred, BITBUCKET_API_TOKEN=API_TOKEN + "\n")
    assert run.code == 2 and "BITBUCKET_API_TOKEN" in run.output and "whitespace" in run.output
    assert sim.requests == []


def test_access_token_in_api_token_variable_is_caught(start, run_pipe):
    sim = start([api_token()])
    run = run_pipe(sim, None, BITBUCKET_EMAIL=EMAIL, BITBUCKET_API_TOKEN=ACCESS_TOKEN)
    assert run.code == 2
    (problem,) = run.report["error"]["problems"]
    assert problem["variable"] == "BITBUCKET_API_TOKEN"
    assert problem["message"] == "holds an access token, not an API token."
    assert "BITBUCKET_ACCESS_TOKEN" in problem["fix"]  # says where it belongs
    assert f"Fix: {problem['fix']}" in run.output
    assert sim.requests == []


def test_two_credential_kinds_is_a_configuration_error(run_pipe):
    run = run_pipe(None, api_token(), BITBUCKET_ACCESS_TOKEN=ACCESS_TOKEN)
    assert run.code == 2 and "more than one credential" in run.output


def test_unknown_workspace_is_named(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, WORKSPACE="nowhere")
    assert run.code == 2 and "'nowhere' was not found" in run.output


def test_access_token_of_another_workspace_does_not_see_it(start, run_pipe):
    cred = access_token(workspace="other")
    sim = start([cred], [workspace(), workspace(slug="other")])
    run = run_pipe(sim, cred)
    assert run.code == 2
    message = "Workspace 'acme' was not found, or this credential cannot see it."
    assert run.report["verdict"] == "error"
    assert run.report["error"]["message"] == message
    assert message in run.output  # the header always names the workspace: the refusal must too


def test_unreachable_api_is_inconclusive(run_pipe):
    run = run_pipe(None, api_token(), BITBUCKET_API_URL="http://127.0.0.1:9/2.0", TIMEOUT="10")
    assert run.code == 3
    assert run.report["verdict"] == "inconclusive"
    assert "could not connect" in run.output


@pytest.mark.parametrize("headers", [True, False])
def test_scopes_are_learnt_with_or_without_scope_headers(start, run_pipe, headers):
    cred = api_token(scope_headers=headers)
    run = run_pipe(start([cred]), cred)
    assert run.code == 0
    assert set(run.report["credential"]["scopes"]) >= set(ALL_READ)
    assert ("x-oauth-scopes header" in run.report["credential"]["scopes_source"]) is headers
