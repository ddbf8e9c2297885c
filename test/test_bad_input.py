"""Issue: bad input refused. Every wrong configuration ends in exit 2 before any request, with
a message that names the variable and says how to fix it, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from pipe.redaction import Redactor
from test.conftest import ACCESS_TOKEN, API_TOKEN, EMAIL, OAUTH_ID, OAUTH_SECRET, api_token

ROOT = Path(__file__).resolve().parents[1]
API = {"BITBUCKET_EMAIL": EMAIL, "BITBUCKET_API_TOKEN": API_TOKEN}
ACCESS = {"BITBUCKET_ACCESS_TOKEN": ACCESS_TOKEN}
OAUTH = {"BITBUCKET_OAUTH_CLIENT_ID": OAUTH_ID, "BITBUCKET_OAUTH_CLIENT_SECRET": OAUTH_SECRET}
APP_PASSWORD = "ATBB3xFfGF0canaryAppPasswordValue12345678"
URL_PASSWORD = "hunter2urlpassword"

# id: (variables, the variable(s) the message must name)
CASES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "no-credential": ({}, ("BITBUCKET_API_TOKEN",)),
    "api-and-access": ({**API, **ACCESS}, ("BITBUCKET_API_TOKEN", "BITBUCKET_ACCESS_TOKEN")),
    "api-and-oauth": ({**API, **OAUTH}, ("BITBUCKET_API_TOKEN", "BITBUCKET_OAUTH_CLIENT_SECRET")),
    "access-and-oauth": ({**ACCESS, **OAUTH}, ("BITBUCKET_ACCESS_TOKEN", "BITBUCKET_OAUTH_CLIENT_SECRET")),
    "all-three": ({**API, **ACCESS, **OAUTH}, ("BITBUCKET_API_TOKEN", "BITBUCKET_ACCESS_TOKEN")),
    "email-without-token": ({"BITBUCKET_EMAIL": EMAIL}, ("BITBUCKET_API_TOKEN",)),
    "token-with-username-only": (
        {"BITBUCKET_API_TOKEN": API_TOKEN, "BITBUCKET_USERNAME": "acme-backup"},
        ("BITBUCKET_EMAIL",),
    ),
    "client-id-without-secret": ({"BITBUCKET_OAUTH_CLIENT_ID": OAUTH_ID}, ("BITBUCKET_OAUTH_CLIENT_SECRET",)),
    "secret-without-client-id": ({"BITBUCKET_OAUTH_CLIENT_SECRET": OAUTH_SECRET}, ("BITBUCKET_OAUTH_CLIENT_ID",)),
    "username-without-token": ({"BITBUCKET_USERNAME": "acme-backup"}, ("BITBUCKET_USERNAME",)),
    "empty-api-token": ({**API, "BITBUCKET_API_TOKEN": ""}, ("BITBUCKET_API_TOKEN",)),
    "empty-email": ({**API, "BITBUCKET_EMAIL": ""}, ("BITBUCKET_EMAIL",)),
    "blank-api-token": ({**API, "BITBUCKET_API_TOKEN": "   "}, ("BITBUCKET_API_TOKEN",)),
    "empty-access-token": ({"BITBUCKET_ACCESS_TOKEN": ""}, ("BITBUCKET_ACCESS_TOKEN",)),
    "empty-oauth-secret": ({**OAUTH, "BITBUCKET_OAUTH_CLIENT_SECRET": ""}, ("BITBUCKET_OAUTH_CLIENT_SECRET",)),
    "token-leading-space": ({**API, "BITBUCKET_API_TOKEN": " " + API_TOKEN}, ("BITBUCKET_API_TOKEN",)),
    "token-trailing-newline": ({**API, "BITBUCKET_API_TOKEN": API_TOKEN + "\n"}, ("BITBUCKET_API_TOKEN",)),
    "token-inner-space": (
        {**API, "BITBUCKET_API_TOKEN": API_TOKEN[:20] + " " + API_TOKEN[20:]},
        ("BITBUCKET_API_TOKEN",),
    ),
    "token-inner-newline": (
        {**API, "BITBUCKET_API_TOKEN": API_TOKEN[:20] + "\n" + API_TOKEN[20:]},
        ("BITBUCKET_API_TOKEN",),
    ),
    "access-token-trailing-crlf": ({"BITBUCKET_ACCESS_TOKEN": ACCESS_TOKEN + "\r\n"}, ("BITBUCKET_ACCESS_TOKEN",)),
    "oauth-secret-inner-tab": (
        {**OAUTH, "BITBUCKET_OAUTH_CLIENT_SECRET": OAUTH_SECRET[:9] + "\t" + OAUTH_SECRET[9:]},
        ("BITBUCKET_OAUTH_CLIENT_SECRET",),
    ),
    "email-trailing-space": ({**API, "BITBUCKET_EMAIL": EMAIL + " "}, ("BITBUCKET_EMAIL",)),
    "username-as-email": ({**API, "BITBUCKET_EMAIL": "acme-backup"}, ("BITBUCKET_EMAIL",)),
    "email-as-username": ({**API, "BITBUCKET_USERNAME": EMAIL}, ("BITBUCKET_USERNAME",)),
    "app-password-variable": (
        {"BITBUCKET_USERNAME": "acme-backup", "BITBUCKET_APP_PASSWORD": APP_PASSWORD},
        ("BITBUCKET_APP_PASSWORD",),
    ),
    "app-password-beside-api-token": ({**API, "BITBUCKET_APP_PASSWORD": APP_PASSWORD}, ("BITBUCKET_APP_PASSWORD",)),
    "app-password-in-api-token": ({**API, "BITBUCKET_API_TOKEN": APP_PASSWORD}, ("BITBUCKET_API_TOKEN",)),
    "app-password-in-access-token": ({"BITBUCKET_ACCESS_TOKEN": APP_PASSWORD}, ("BITBUCKET_ACCESS_TOKEN",)),
    "app-password-in-oauth-secret": (
        {**OAUTH, "BITBUCKET_OAUTH_CLIENT_SECRET": APP_PASSWORD},
        ("BITBUCKET_OAUTH_CLIENT_SECRET",),
    ),
    "access-token-in-api-token": ({**API, "BITBUCKET_API_TOKEN": ACCESS_TOKEN}, ("BITBUCKET_API_TOKEN",)),
    "api-token-in-access-token": ({"BITBUCKET_ACCESS_TOKEN": API_TOKEN}, ("BITBUCKET_ACCESS_TOKEN",)),
    "unknown-profile": ({**API, "PROFILE": "nightly-backup"}, ("PROFILE",)),
    "yaml-looking-profile": ({**API, "PROFILE": "[abc"}, ("PROFILE",)),
    "unknown-require": ({**API, "REQUIRE": "issues-and-stuff"}, ("REQUIRE",)),
    "unknown-require-list": (
        {**API, "REQUIRE_COUNT": "2", "REQUIRE_0": "pull-requests", "REQUIRE_1": "wikis2"},
        ("REQUIRE",),
    ),
    "require-count-not-a-number": ({**API, "REQUIRE_COUNT": "two"}, ("REQUIRE_COUNT",)),
    "repository-of-other-workspace": ({**API, "REPOSITORIES": "other/repo-0001"}, ("REPOSITORIES",)),
    "repository-illegal-characters": ({**API, "REPOSITORIES": "repo$0001"}, ("REPOSITORIES",)),
    "repository-too-many-slashes": ({**API, "REPOSITORIES": "acme/repo-0001/extra"}, ("REPOSITORIES",)),
    "repository-list-bad-item": (
        {**API, "REPOSITORIES_COUNT": "2", "REPOSITORIES_0": "repo-0001", "REPOSITORIES_1": "x/y/z"},
        ("REPOSITORIES",),
    ),
    "repositories-count-not-a-number": ({**API, "REPOSITORIES_COUNT": "many"}, ("REPOSITORIES_COUNT",)),
    # str.isdigit() is True for these, int() fails on the first and reads the others as numbers.
    "repositories-count-superscript": (
        {**API, "REPOSITORIES_COUNT": "²", "REPOSITORIES_0": "repo-0000"},
        ("REPOSITORIES_COUNT",),
    ),
    "require-count-superscript": ({**API, "REQUIRE_COUNT": "²", "REQUIRE_0": "wikis"}, ("REQUIRE_COUNT",)),
    "repositories-count-arabic-digit": (
        {**API, "REPOSITORIES_COUNT": "١", "REPOSITORIES_0": "repo-0000"},
        ("REPOSITORIES_COUNT",),
    ),
    "repositories-count-huge": ({**API, "REPOSITORIES_COUNT": "999999999999"}, ("REPOSITORIES_COUNT",)),
    "timeout-arabic-digits": ({**API, "TIMEOUT": "٣٠"}, ("TIMEOUT",)),
    "concurrency-fullwidth-digit": ({**API, "CONCURRENCY": "８"}, ("CONCURRENCY",)),
    "concurrency-underscore": ({**API, "CONCURRENCY": "1_6"}, ("CONCURRENCY",)),
    # httpx removes dot segments: /repositories/acme/.. is /repositories, another endpoint.
    "repository-dot": ({**API, "REPOSITORIES": "."}, ("REPOSITORIES",)),
    "repository-dot-dot": ({**API, "REPOSITORIES": "acme/.."}, ("REPOSITORIES",)),
    "repository-leading-dot": ({**API, "REPOSITORIES": ".hidden"}, ("REPOSITORIES",)),
    "concurrency-not-a-number": ({**API, "CONCURRENCY": "fast"}, ("CONCURRENCY",)),
    "concurrency-zero": ({**API, "CONCURRENCY": "0"}, ("CONCURRENCY",)),
    "concurrency-too-high": ({**API, "CONCURRENCY": "1000"}, ("CONCURRENCY",)),
    "concurrency-fraction": ({**API, "CONCURRENCY": "2.5"}, ("CONCURRENCY",)),
    "timeout-not-a-number": ({**API, "TIMEOUT": "5m"}, ("TIMEOUT",)),
    "timeout-too-low": ({**API, "TIMEOUT": "1"}, ("TIMEOUT",)),
    "timeout-too-high": ({**API, "TIMEOUT": "99999"}, ("TIMEOUT",)),
    "timeout-negative": ({**API, "TIMEOUT": "-30"}, ("TIMEOUT",)),
    "timeout-nan": ({**API, "TIMEOUT": "nan"}, ("TIMEOUT",)),
    "api-url-ftp": ({**API, "BITBUCKET_API_URL": "ftp://api.bitbucket.org/2.0"}, ("BITBUCKET_API_URL",)),
    "api-url-bare-host": ({**API, "BITBUCKET_API_URL": "api.bitbucket.org"}, ("BITBUCKET_API_URL",)),
    "api-url-with-password": (
        {**API, "BITBUCKET_API_URL": f"https://me:{URL_PASSWORD}@api.bitbucket.org/2.0"},
        ("BITBUCKET_API_URL",),
    ),
    "git-url-ftp": ({**API, "BITBUCKET_GIT_URL": "ftp://bitbucket.org"}, ("BITBUCKET_GIT_URL",)),
    "token-url-with-password": (
        {**OAUTH, "BITBUCKET_OAUTH_TOKEN_URL": f"https://me:{URL_PASSWORD}@bitbucket.org/site/oauth2/access_token"},
        ("BITBUCKET_OAUTH_TOKEN_URL",),
    ),
    "workspace-illegal-characters": ({**API, "WORKSPACE": "acme corp!"}, ("WORKSPACE",)),
    "workspace-with-slash": ({**API, "WORKSPACE": "acme/repo"}, ("WORKSPACE",)),
    "workspace-is-the-oauth-secret": ({**OAUTH, "WORKSPACE": OAUTH_SECRET}, ("WORKSPACE",)),
    "repositories-hold-the-oauth-secret": ({**OAUTH, "REPOSITORIES": f"repo-0001,{OAUTH_SECRET}"}, ("REPOSITORIES",)),
    "check-restore-not-boolean": ({**API, "CHECK_RESTORE": "maybe"}, ("CHECK_RESTORE",)),
    "code-insights-not-boolean": ({**API, "CODE_INSIGHTS": "sometimes"}, ("CODE_INSIGHTS",)),
}


@pytest.fixture
def sim(start):
    return start([api_token()])


def assert_refused(run, sim, names):
    assert run.code == 2, run.output
    assert "Traceback" not in run.output and "Internal error" not in run.output, run.output
    assert run.out == "✖ ERROR: the configuration or the credential is wrong (see above). (exit 2)\n"
    for name in names:
        assert name in run.output, (name, run.output)
    assert sim.requests == [], [r.path for r in sim.requests]
    report = run.report
    assert report["verdict"] == "error" and report["exit_code"] == 2
    problems = report["error"]["problems"]
    listed = {p["variable"] for p in problems}
    assert listed & set(names), (listed, names)
    for p in problems:  # each problem is shown with its own fix, not just some "Fix:" somewhere
        assert p["message"] and p["fix"], p
        assert f"{p['variable']}: {p['message']}" in run.output, (p, run.output)
        assert f"Fix: {p['fix']}" in run.output, (p, run.output)


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_bad_configuration_is_refused_before_any_request(sim, run_pipe, name):
    variables, names = CASES[name]
    run = run_pipe(sim, None, **variables)
    assert_refused(run, sim, names)


@pytest.mark.parametrize("name", ["api-url-with-password", "token-url-with-password"])
def test_a_url_with_a_password_is_never_echoed(sim, run_pipe, name):
    variables, names = CASES[name]
    run = run_pipe(sim, None, **variables)
    assert_refused(run, sim, names)
    written = "".join(p.read_text(errors="replace") for p in run.cwd.rglob("*") if p.is_file())
    for text in (run.out, run.err, written):
        assert URL_PASSWORD not in text
        assert f"me:{URL_PASSWORD}" not in text


def test_several_problems_are_listed_in_one_run(sim, run_pipe):
    run = run_pipe(
        sim,
        None,
        **{
            **API,
            "BITBUCKET_ACCESS_TOKEN": API_TOKEN,
            "PROFILE": "[abc",
            "TIMEOUT": "soon",
            "CONCURRENCY": "0",
            "CHECK_RESTORE": "maybe",
            "REPOSITORIES": "other/repo",
            "WORKSPACE": "acme",
        },
    )
    names = ("BITBUCKET_ACCESS_TOKEN", "PROFILE", "TIMEOUT", "CONCURRENCY", "CHECK_RESTORE", "REPOSITORIES")
    assert_refused(run, sim, names)
    listed = {p["variable"] for p in run.report["error"]["problems"]}
    assert set(names) <= listed, listed
    assert run.output.count("Fix:") >= len(names)


def test_the_secret_in_a_whitespace_token_is_not_echoed(sim, run_pipe):
    run = run_pipe(sim, None, **{**API, "BITBUCKET_API_TOKEN": API_TOKEN[:20] + "\n" + API_TOKEN[20:]})
    assert_refused(run, sim, ("BITBUCKET_API_TOKEN",))
    for part in (API_TOKEN[:20], API_TOKEN[20:]):
        assert part not in run.out + run.err


NOT_UTF8 = {  # variable: the credential it belongs to
    "BITBUCKET_API_TOKEN": API,
    "BITBUCKET_EMAIL": API,
    "BITBUCKET_ACCESS_TOKEN": ACCESS,
    "BITBUCKET_OAUTH_CLIENT_SECRET": OAUTH,
    "BITBUCKET_OAUTH_CLIENT_ID": OAUTH,
    "WORKSPACE": API,
    "REPOSITORIES": API,
}


@pytest.mark.parametrize("name", NOT_UTF8)
def test_a_variable_that_is_not_utf8_is_named_with_reports(sim, tmp_path, name):
    """A byte that is not UTF-8 reaches Python as a lone surrogate (os.environ decodes with
    surrogateescape), which no encoder takes: exit 2 naming the variable, never a traceback, and
    report.json and the JUnit file still written. The pipe runs as a process: only a real
    environment holds bytes."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "WORKSPACE": "acme",
        "CODE_INSIGHTS": "false",
        "NO_COLOR": "1",
        "BITBUCKET_API_URL": sim.api_url,
        "BITBUCKET_GIT_URL": sim.git_url,
        "BITBUCKET_OAUTH_TOKEN_URL": sim.oauth_token_url,
        **NOT_UTF8[name],
    }
    raw = {k.encode(): v.encode() for k, v in env.items()}
    raw[name.encode()] = env.get(name, "repo-0000").encode()[:30] + b"\xff" + env.get(name, "").encode()[30:]
    done = subprocess.run([sys.executable, "-m", "pipe"], cwd=tmp_path, env=raw, capture_output=True, timeout=60)
    out = (done.stdout + done.stderr).decode("utf-8")  # strict: the log is UTF-8 whatever came in
    assert "Traceback" not in out and "Internal error" not in out, out
    assert done.returncode == 2, out
    assert f"{name}: " in out and "not UTF-8" in out, out
    report = json.loads((tmp_path / "backup-readiness" / "report.json").read_text(encoding="utf-8"))
    assert report["exit_code"] == 2 and name in {p["variable"] for p in report["error"]["problems"]}, report
    ET.parse(tmp_path / "test-results" / "backup-readiness.xml")
    assert sim.requests == [], [r.path for r in sim.requests]
    for secret in (API_TOKEN, ACCESS_TOKEN, OAUTH_SECRET):
        assert not any(secret[i : i + 8] in out for i in range(len(secret) - 7)), "a part of a secret was shown"


def test_the_redactor_takes_a_secret_with_any_lone_surrogate():
    """Built before the variables are checked, it must take them as they came: a byte that is not
    UTF-8 (surrogateescape) or a lone surrogate of any other kind, and still mask the rest."""
    token = API_TOKEN[:30] + "\udcff" + API_TOKEN[30:]
    redactor = Redactor.for_variables({"BITBUCKET_API_TOKEN": token, "BITBUCKET_EMAIL": EMAIL + "\ud800"})
    raw = API_TOKEN[:30].encode() + b"\xff" + API_TOKEN[30:].encode()
    shown = redactor(f"{API_TOKEN[2:14]} {API_TOKEN[31:45]} {base64.b64encode(raw).decode()} {token}")
    assert len(shown.split()) == 4 and set(shown.replace(" ", "")) == {"*"}, shown  # masks only
