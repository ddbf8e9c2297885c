"""Issue: secrets never shown. A canary test: the known token values from conftest, and the
OAuth access tokens the simulator issued, appear in no output, no written file, no Code
Insights payload and no log record, in any encoding, whatever the run hits: faults, and a
hostile server (test/hostile.py) that echoes pieces of the token, redirects to a witness on
another port, sends lone surrogates, or a bug that ends in an internal error."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote

import pytest

from pipe import logs
from pipe import pipe as pipe_module
from pipe.redaction import Redactor
from pipe.reports import files
from test.conftest import ACCESS_TOKEN, API_TOKEN, EMAIL, OAUTH_ID, OAUTH_SECRET, access_token, api_token, oauth
from test.hostile import Witness, rewrite, tamper
from test.simulator import Fault
from test.simulator.server import Response

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
    forms |= {quote(secret[i : i + 8], safe="") for i in range(len(secret) - 7)}
    for start in range(3):  # the base64 of any slice of 9+ bytes holds 12 characters of one of these
        chunk = secret[start:]
        encoded = b64(chunk[: len(chunk) // 3 * 3])
        forms |= {encoded[i : i + 12] for i in range(0, len(encoded) - 11)}
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


def echoes(secret: str) -> str:
    """What a server that has seen the secret might send back: its head, its tail, its
    middle lower-cased, the base64 of slices at each offset mod 3, and the Basic pair."""
    middle = secret[len(secret) // 4 : len(secret) * 3 // 4]
    pieces = [secret[:20], secret[-20:], middle.lower(), middle.upper(), b64(f"{EMAIL}:{secret}")]
    pieces += [b64(secret[start : start + 24]) for start in (3, 4, 5)]
    return " ".join(pieces)


def echo_everywhere(sim, text) -> None:
    """`text(sim)` in the display name, the workspace's name, the repositories' full names and
    the pull requests' error message (computed per request: an OAuth token is issued late)."""
    rewrite(sim, r"^/2\.0/user$", lambda body, req: {**body, "display_name": text(sim)})
    rewrite(sim, r"^/2\.0/workspaces/acme$", lambda body, req: {**body, "name": text(sim)})
    rewrite(
        sim,
        r"^/2\.0/repositories/acme$",
        lambda body, req: {**body, "values": [{**v, "full_name": v["full_name"] + text(sim)} for v in body["values"]]},
    )

    def error(req, response):
        body = json.dumps({"type": "error", "error": {"message": "echo " + text(sim)}}).encode()
        return Response(400, body, "application/json")

    tamper(sim, PULLS, error)


def issued_and(secret: str):
    return lambda sim: " ".join(echoes(s) for s in [secret, *sim.world.oauth_tokens])


def boom_with(secret: str):
    def boom(*args, **kwargs):
        raise RuntimeError(f"a bug quoting {echoes(secret)}")

    return boom


# id: (credential factory, variables, set-up(sim, witness, monkeypatch), a traceback may show (DEBUG))
HOSTILE = {
    "echo-api-token": (api_token, {"DEBUG": "true"}, lambda s, w, m: echo_everywhere(s, issued_and(API_TOKEN)), False),
    "echo-access-token": (
        lambda: access_token(FULL_ACCESS),
        {"DEBUG": "true"},
        lambda s, w, m: echo_everywhere(s, issued_and(ACCESS_TOKEN)),
        False,
    ),
    "echo-oauth": (oauth, {"DEBUG": "true"}, lambda s, w, m: echo_everywhere(s, issued_and(OAUTH_SECRET)), False),
    "echo-insights": (
        api_token,
        insights,
        lambda s, w, m: echo_everywhere(s, issued_and(API_TOKEN)),
        False,
    ),
    "lone-surrogates": (
        oauth,
        {"DEBUG": "true"},
        lambda s, w, m: echo_everywhere(s, lambda sim: "\ud800" + issued_and(OAUTH_SECRET)(sim) + "\udfff"),
        False,
    ),
    "redirect-api-to-witness": (
        api_token,
        {"DEBUG": "true"},
        lambda s, w, m: s.add_fault(Fault(PULLS, "redirect", times=-1, location=w.url + "/2.0/pullrequests")),
        False,
    ),
    "redirect-oauth-to-witness": (
        oauth,
        {"DEBUG": "true"},
        lambda s, w, m: s.add_fault(Fault(PULLS, "redirect", times=-1, location=w.url + "/2.0/pullrequests")),
        False,
    ),
    "redirect-git-to-witness": (
        api_token,
        {"DEBUG": "true"},
        lambda s, w, m: s.add_fault(Fault(GIT, "redirect", times=-1, location=w.url + "/acme/repo-0000.git/info/refs")),
        False,
    ),
    "internal-error": (api_token, {}, lambda s, w, m: m.setattr(pipe_module, "assess", boom_with(API_TOKEN)), False),
    "internal-error-debug": (
        oauth,
        {"DEBUG": "true"},
        lambda s, w, m: m.setattr(pipe_module, "assess", boom_with(OAUTH_SECRET)),
        True,
    ),
    "renderer-error-debug": (
        api_token,
        {"DEBUG": "true"},
        lambda s, w, m: m.setattr(files, "markdown", boom_with(API_TOKEN)),
        True,
    ),
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
    if cred.kind == "oauth" and run.code != 2 and not faults:
        assert sim.world.oauth_tokens, "the simulator issued no OAuth token: the canary would test nothing"
    assert_nothing_leaks(run, sim, caplog)
    if "insights" in name and run.code != 2:
        assert sim.reports, "no Code Insights report reached the simulator: the canary would test nothing"
    if variables.get("DEBUG") == "true" and run.code != 2:
        assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)


@pytest.mark.parametrize("name", HOSTILE)
def test_no_secret_is_shown_whatever_a_hostile_server_sends(start, run_pipe, caplog, loud_http_logs, monkeypatch, name):
    factory, variables, setup, traceback_allowed = HOSTILE[name]
    cred = factory()
    sim = start([cred])
    witness = Witness().start()
    try:
        setup(sim, witness, monkeypatch)
        variables = variables(sim) if callable(variables) else variables
        caplog.set_level(logging.DEBUG)
        run = run_pipe(sim, cred, **variables)
    finally:
        witness.stop()
    assert traceback_allowed or "Traceback" not in run.output, run.output
    if traceback_allowed:
        assert "Traceback" in run.err, "no traceback in the DEBUG log: its redaction would go untested"
    if cred.kind == "oauth":
        assert sim.world.oauth_tokens, "the simulator issued no OAuth token: the canary would test nothing"
    if name.startswith("echo") or name == "lone-surrogates":
        assert "echo " in run.output, "the echo never reached the output: the canary would test nothing"
    if "witness" in name:
        assert witness.connections or "redirect" in run.output, "the redirect was not taken up: nothing tested"
    witnessed = {
        f"witness request {i} {seen.method}": f"{seen.path}\n{json.dumps(seen.headers)}"
        for i, seen in enumerate(witness.requests)
    }
    assert_nothing_leaks(run, sim, caplog, witnessed)
    if "insights" in name:
        assert sim.reports, "no Code Insights report reached the simulator: the canary would test nothing"


def assert_nothing_leaks(run, sim, caplog, extra: dict[str, str] | None = None) -> None:
    """Every stream, log record, file, Code Insights payload and request the simulator saw
    (and any `extra` place) is searched for every form of every canary and issued token."""
    forms = set().union(*(forbidden_forms(s) for s in CANARIES + tuple(sim.world.oauth_tokens)))
    places = {
        "stdout": run.out,
        "stderr": run.err,
        "log records": "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records),
        **(extra or {}),
    }
    for path in run.cwd.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(run.cwd))] = path.read_text(errors="replace")
    assert (run.cwd / "backup-readiness" / "report.json").exists()
    json.loads((run.cwd / "backup-readiness" / "report.json").read_bytes().decode("utf-8"))
    places["Code Insights reports"] = json.dumps(sim.reports) + json.dumps(sim.annotations)
    for i, req in enumerate(sim.requests):
        places[f"request {i} {req.method} {req.path}"] = (
            f"{req.path}?{req.query}\n{req.body.decode(errors='replace')}\n{json.dumps(req.headers)}"
        )
    for place, text in places.items():
        assert not leaks(text, forms), (place, leaks(text, forms))


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
