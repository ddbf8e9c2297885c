"""Git's answers are read from git's own phrases, never from numbers that happen to be in a URL."""

from __future__ import annotations

import socket

import pytest

from pipe.gitcheck import _interpret
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
    assert run.report["git"]["outcome"] == "rejected", run.report["git"]


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
