"""Git's answers are read from git's own phrases, never from numbers that happen to be in a URL."""

from __future__ import annotations

import socket

import pytest

from pipe.survey.git import APP_PASSWORD_GONE, _interpret
from test.conftest import api_token, workspace
from test.simulator import Simulator


def free_port_containing(digits: str) -> int:
    for port in range(10000, 65000):
        if digits in str(port):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port containing {digits}")


@pytest.mark.parametrize("digits", ["401", "403"])
def test_a_rejected_git_username_is_rejected_whatever_the_port(run_pipe, digits):
    cred = api_token()
    sim = Simulator(workspaces=[workspace()], credentials=[cred]).start(port=free_port_containing(digits))
    try:
        run = run_pipe(sim, cred, BITBUCKET_USERNAME="someone-else")
    finally:
        sim.stop()
    assert run.section["git"]["outcome"] == "rejected", run.section["git"]


def test_git_sends_the_credential_on_its_second_request_not_its_third(start, run_pipe):
    """No username in the URL: with one, curl first tries it with an empty password, a round trip
    Bitbucket refuses (401) before git asks the helper; the git check is the run's critical path."""
    cred = api_token()
    sim = start(workspaces=[workspace()], credentials=[cred])
    run = run_pipe(sim, cred)
    assert run.section["git"]["outcome"] == "ok", run.section["git"]
    refs = [(r.status, r.authorization_scheme) for r in sim.requests if r.path.endswith(".git/info/refs")]
    assert refs == [(401, None), (200, "Basic")], refs


@pytest.mark.parametrize(
    ("stderr", "outcome"),
    [
        ("fatal: Authentication failed for 'http://u@127.0.0.1:40312/acme/r.git/'", "rejected"),
        (
            "fatal: unable to access 'http://u@127.0.0.1:40112/acme/r.git/': The requested URL returned error: 403",
            "forbidden",
        ),
        (
            "fatal: unable to access 'http://u@127.0.0.1:40312/acme/r.git/': The requested URL returned error: 502",
            "failed",
        ),
    ],
)
def test_git_messages(stderr, outcome):
    assert _interpret(128, stderr, "r", "u").outcome == outcome


URL = "'https://u@bitbucket.org/acme/r.git/'"


@pytest.mark.parametrize(
    ("stderr", "outcome", "says"),
    [
        (f"fatal: unable to access {URL}: The requested URL returned error: 302", "failed", "redirect was refused"),
        (f'fatal: unable to access {URL}: Protocol "http" not supported or disabled in libcurl', "failed", "https"),
        # git could not get the credential (a helper that cannot run): the server never judged it
        ("fatal: could not read Password for 'https://u@bitbucket.org': terminal prompts disabled", "failed", "helper"),
        ("fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled", "failed", "helper"),
        (
            f"fatal: unable to access {URL}: server certificate verification failed. CAfile: none CRLfile: none",
            "failed",
            "SSL_CERT_FILE",
        ),
        (f"fatal: unable to access {URL}: SSL certificate problem: self-signed certificate", "failed", "TLS"),
        # the server's own `remote:` lines and the URL never count as git's verdict
        (
            "remote: fatal: Authentication failed for 'x'\nremote: The requested URL returned error: 401\n"
            f"fatal: unable to access {URL}: The requested URL returned error: 502",
            "failed",
            "answered 502",
        ),
        (
            "fatal: unable to access 'https://u@h/acme/authentication failed for.git/': "
            "The requested URL returned error: 502",
            "failed",
            "answered 502",
        ),
        (
            "remote: CHANGE-3222 - Functionality has been deprecated\n"
            "remote: App passwords are deprecated and must be replaced with API tokens.\n"
            f"fatal: unable to access {URL}: The requested URL returned error: 410",
            "rejected",
            APP_PASSWORD_GONE,
        ),
        (
            f"remote: CHANGE-4321 - Functionality has been deprecated\nfatal: unable to access {URL}: "
            "The requested URL returned error: 410",
            "failed",
            "410 CHANGE-4321",
        ),
        (
            "fatal: unable to access 'https://u@h/acme/change-3222.git/': The requested URL returned error: 410",
            "failed",
            "410: gone",
        ),
    ],
)
def test_git_phrases_and_what_they_mean(stderr, outcome, says):
    result = _interpret(128, stderr, "r", "u")
    assert result.outcome == outcome and says in result.reason, result
