"""Issue: secrets never shown. A canary test: the known token values from conftest, and the
OAuth access tokens the simulator issued, appear in no output, no written file, no Code
Insights payload and no log record, in any encoding, whatever the run hits."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote

import pytest

from pipe import logs
from pipe.redaction import Redactor
from test.conftest import ACCESS_TOKEN, API_TOKEN, EMAIL, OAUTH_ID, OAUTH_SECRET, access_token, api_token, oauth
from test.simulator import Fault

APP_PASSWORD = "ATBB3xFfGF0canaryAppPasswordValue12345678"
CANARIES = (API_TOKEN, ACCESS_TOKEN, OAUTH_SECRET, APP_PASSWORD)
USERS = (EMAIL, OAUTH_ID, "acme-backup", "x-token-auth", "x-bitbucket-api-token-auth")
AUTH_HEADER = re.compile(r"(?i)authorization['\"]?\s*[:=]\s*['\"]?(basic|bearer)\s+(?!\*{8})\S")
FULL_ACCESS = ["repository", "repository:admin", "pullrequest", "pipeline", "project"]
PULLS, TOKEN, GIT = r"/pullrequests$", r"^/site/oauth2/access_token$", r"\.git/"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forbidden_forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), b64(secret), f"Bearer {secret}"}
    forms |= {secret[i : i + 8] for i in range(len(secret) - 7)}
    forms |= {b64(f"{user}:{secret}") for user in USERS}
    forms |= {f"Basic {b64(f'{user}:{secret}')}" for user in USERS}
    return forms


def insights(sim) -> dict[str, str]:
    return {
        "CODE_INSIGHTS": "true",
        "CODE_INSIGHTS_PROXY": sim.base_url,
        "BITBUCKET_COMMIT": "a" * 40,
        "BITBUCKET_REPO_SLUG": "repo-0000",
        "BITBUCKET_WORKSPACE": "acme",
    }


# id: (credential factory, faults, variables; a callable gets the simulator, for its URL)
SCENARIOS = {
    "api-token": (api_token, [], {}),
    "api-token-with-username": (api_token, [], {"BITBUCKET_USERNAME": "acme-backup", "DEBUG": "true"}),
    "access-token": (lambda: access_token(FULL_ACCESS), [], {}),
    "oauth": (oauth, [], {}),
    "api-token-debug-restore": (api_token, [], {"DEBUG": "true", "CHECK_RESTORE": "true"}),
    "access-token-debug-restore": (lambda: access_token(FULL_ACCESS), [], {"DEBUG": "true", "CHECK_RESTORE": "true"}),
    "oauth-debug-restore": (oauth, [], {"DEBUG": "true", "CHECK_RESTORE": "true"}),
    "api-token-401": (lambda: api_token(expired=True), [], {"DEBUG": "true"}),
    "access-token-401": (lambda: access_token(FULL_ACCESS, expired=True), [], {"DEBUG": "true"}),
    "oauth-consumer-refused": (lambda: oauth(expired=True), [], {"DEBUG": "true"}),
    "oauth-token-500": (oauth, [Fault(TOKEN, "status", times=-1, method="POST")], {"DEBUG": "true", "TIMEOUT": "8"}),
    "oauth-token-reset": (oauth, [Fault(TOKEN, "reset", times=-1, method="POST")], {"DEBUG": "true", "TIMEOUT": "8"}),
    "api-token-500": (api_token, [Fault(PULLS, "status", times=-1)], {"DEBUG": "true", "TIMEOUT": "8"}),
    "oauth-500": (oauth, [Fault(PULLS, "status", times=-1)], {"DEBUG": "true", "TIMEOUT": "8"}),
    "api-token-redirect-loop": (api_token, [Fault(r"^/2\.0/user$", "redirect", times=-1)], {"DEBUG": "true"}),
    "api-token-html": (api_token, [Fault(PULLS, "html", times=-1)], {"DEBUG": "true"}),
    "api-token-truncated": (api_token, [Fault(PULLS, "truncated", times=-1)], {"DEBUG": "true"}),
    "api-token-slow": (api_token, [Fault(PULLS, "slow", delay=12, times=-1)], {"DEBUG": "true", "TIMEOUT": "5"}),
    "api-token-git-reset": (api_token, [Fault(GIT, "reset", times=-1)], {"DEBUG": "true"}),
    "access-token-git-500": (lambda: access_token(FULL_ACCESS), [Fault(GIT, "status", times=-1)], {"DEBUG": "true"}),
    "oauth-git-refused": (lambda: oauth(git_enabled=False), [], {"DEBUG": "true"}),
    "api-token-insights": (api_token, [], insights),
    "access-token-insights": (lambda: access_token(FULL_ACCESS), [], insights),
    "oauth-insights-debug": (oauth, [], lambda sim: {**insights(sim), "DEBUG": "true", "CHECK_RESTORE": "true"}),
    "api-token-401-insights": (lambda: api_token(expired=True), [], insights),
    "bad-token-whitespace": (
        api_token,
        [],
        {"BITBUCKET_API_TOKEN": API_TOKEN[:30] + "\n" + API_TOKEN[30:], "DEBUG": "true"},
    ),
    "bad-token-trailing-newline": (api_token, [], {"BITBUCKET_API_TOKEN": API_TOKEN + "\n", "DEBUG": "true"}),
    "bad-access-token-in-api-token": (api_token, [], {"BITBUCKET_API_TOKEN": ACCESS_TOKEN, "DEBUG": "true"}),
    "bad-api-token-in-access-token": (
        api_token,
        [],
        {"BITBUCKET_API_TOKEN": None, "BITBUCKET_EMAIL": None, "BITBUCKET_ACCESS_TOKEN": API_TOKEN, "DEBUG": "true"},
    ),
    "bad-app-password-in-oauth-secret": (oauth, [], {"BITBUCKET_OAUTH_CLIENT_SECRET": APP_PASSWORD, "DEBUG": "true"}),
    "bad-app-password-variable": (api_token, [], {"BITBUCKET_APP_PASSWORD": APP_PASSWORD, "DEBUG": "true"}),
    "bad-two-credentials": (
        api_token,
        [],
        {"BITBUCKET_ACCESS_TOKEN": ACCESS_TOKEN, "BITBUCKET_OAUTH_CLIENT_SECRET": OAUTH_SECRET, "DEBUG": "true"},
    ),
    "bad-settings-and-token": (api_token, [], {"TIMEOUT": API_TOKEN, "PROFILE": OAUTH_SECRET, "DEBUG": "true"}),
    "bad-require-secret": (api_token, [], {"REQUIRE": OAUTH_SECRET, "REPOSITORIES": f"acme/{API_TOKEN}!"}),
    "token-in-repositories": (api_token, [], {"REPOSITORIES": ACCESS_TOKEN, "DEBUG": "true"}),
    "token-in-workspace": (api_token, [], {"WORKSPACE": API_TOKEN, "DEBUG": "true"}),
}


@pytest.fixture
def loud_http_logs(monkeypatch):
    """Whatever the pipe sets, let httpx and httpcore log at DEBUG, as a debugging user might."""
    original = logs.configure

    def configure(*args, **kwargs):
        color = original(*args, **kwargs)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        return color

    monkeypatch.setattr(logs, "configure", configure)


def leaks(text: str, forms: set[str]) -> list[str]:
    found = sorted(form for form in forms if form in text)
    lower = text.lower()  # a value lowercased on its way out (slugs, ids) is still the secret
    found += sorted({s[i : i + 16] for s in CANARIES for i in range(len(s) - 15) if s[i : i + 16].lower() in lower})
    if AUTH_HEADER.search(text):
        found.append("an Authorization header value")
    return found


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_secret_is_ever_shown(start, run_pipe, caplog, loud_http_logs, name):
    factory, faults, variables = SCENARIOS[name]
    cred = factory()
    sim = start([cred], faults=[Fault(**vars(f)) for f in faults])
    variables = variables(sim) if callable(variables) else variables
    caplog.set_level(logging.DEBUG)
    run = run_pipe(sim, cred, **variables)
    assert "Traceback" not in run.output

    issued = list(sim.world.oauth_tokens)
    if cred.kind == "oauth" and run.code != 2 and not faults:
        assert issued, "the simulator issued no OAuth token: the canary would test nothing"
    forms = set().union(*(forbidden_forms(s) for s in CANARIES + tuple(issued)))

    places = {
        "stdout": run.out,
        "stderr": run.err,
        "log records": "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records),
    }
    for path in run.cwd.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(run.cwd))] = path.read_text(errors="replace")
    assert (run.cwd / "backup-readiness" / "report.json").exists()
    places["Code Insights reports"] = json.dumps(sim.reports) + json.dumps(sim.annotations)
    for i, req in enumerate(sim.requests):
        places[f"request {i} {req.method} {req.path}"] = (
            f"{req.path}?{req.query}\n{req.body.decode(errors='replace')}\n{json.dumps(req.headers)}"
        )
    for place, text in places.items():
        assert not leaks(text, forms), (place, leaks(text, forms))
    if "insights" in name and run.code != 2:
        assert sim.reports, "no Code Insights report reached the simulator: the canary would test nothing"
    if variables.get("DEBUG") == "true" and run.code != 2:
        assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)


def test_the_redactor_hides_every_form():
    redactor = Redactor.for_variables({"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_API_TOKEN": API_TOKEN})
    for form in (
        API_TOKEN,
        quote(API_TOKEN, safe=""),
        b64(API_TOKEN),
        b64(f"{EMAIL}:{API_TOKEN}"),
        f"Authorization: Basic {b64(f'{EMAIL}:{API_TOKEN}')}",
    ):
        assert not leaks(redactor(f"before {form} after"), forbidden_forms(API_TOKEN)), form
