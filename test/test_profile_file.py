"""Issue 13, point 3: a backup tool's needs as a file (PROFILE_FILE), end to end against the simulator.

The file has the form of the built-in profiles (pipe/catalog.yml) and goes through the same checker
(pipe/profiles.py): a problem names its line (exit 2, nothing sent to Bitbucket); PROFILE may name
any built-in or file profile; the report says where the profile came from; CHECK_RESTORE judges the
profile's own restore list.
"""

from __future__ import annotations

import os

import pytest

from test.conftest import ALL_READ, api_token

OURS = """\
# Our nightly mirror: repositories and pull requests; a restore only pushes git data back.
profiles:
  our-backup:
    description: our nightly mirror script
    reference: https://wiki.acme.example/backup
    backup: [repositories, pull-requests]
    restore: [repositories]
"""
NO_PIPELINES = [s for s in ALL_READ if s != "read:pipeline:bitbucket"]


def write(run_dir, name: str, text: str) -> None:
    path = run_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_file_profile_decides_what_is_required(start, run_pipe, tmp_path):
    cred = api_token(NO_PIPELINES)
    sim = start([cred])
    write(tmp_path, "backup-profiles.yml", OURS)
    run = run_pipe(sim, cred, PROFILE_FILE="backup-profiles.yml", PROFILE="our-backup")
    assert run.code == 0, run.output  # pipelines are not this tool's: information only
    report = run.report
    assert report["profile"] == "our-backup"
    assert report["profile_source"] == "PROFILE_FILE backup-profiles.yml"
    assert report["profile_reference"] == "https://wiki.acme.example/backup"
    assert run.category("pipelines")["backup"] == "missing" and run.category("pipelines")["needed"] == "info"
    assert run.category("pull-requests")["needed"] == "required"
    assert run.category("account")["needed"] == "info"
    assert "INFO: Profile: our-backup (backup) from PROFILE_FILE backup-profiles.yml" in run.err.splitlines()
    # The control: the default profile needs pipelines, so the same credential is not ready for it.
    run = run_pipe(sim, cred, PROFILE_FILE="backup-profiles.yml")
    assert run.code == 1 and run.report["profile_source"] == "built-in"
    assert run.report["profile_reference"].startswith("https://helpcenter.xopero.com/")


def test_a_file_profile_restore_list_is_what_check_restore_judges(start, run_pipe, tmp_path):
    cred = api_token(ALL_READ + ["write:repository:bitbucket"], scope_headers=True)
    sim = start([cred])
    write(tmp_path, "profiles/ours.yml", OURS)
    run = run_pipe(sim, cred, PROFILE_FILE="profiles/ours.yml", PROFILE="our-backup", CHECK_RESTORE="true")
    assert run.code == 0, run.output
    assert run.category("repositories")["required"] == {"backup": True, "restore": True}
    # Pull requests are backed up, not restored by this tool: their missing write scope is information.
    pulls = run.category("pull-requests")
    assert pulls["required"] == {"backup": True, "restore": False} and pulls["restore"] == "missing"


def test_built_in_restore_lists(start, run_pipe):
    cred = api_token(ALL_READ + ["write:repository:bitbucket"], scope_headers=True)
    sim = start([cred])
    run = run_pipe(sim, cred, PROFILE="gitsec", CHECK_RESTORE="true")  # a read-only backup app, a restore app
    assert run.code == 0, run.output
    assert run.category("pull-requests")["required"] == {"backup": True, "restore": False}
    assert run.category("repositories")["required"] == {"backup": True, "restore": True}
    assert run.report["profile_reference"] == "https://dev.docs.gitsec.io/docs/getting-started/connecting-bitbucket"
    run = run_pipe(sim, api_token(ALL_READ, scope_headers=True), PROFILE="ghorg", CHECK_RESTORE="true")
    assert run.code == 0, run.output  # ghorg restores nothing through the API
    assert not any(c["required"]["restore"] for c in run.section["categories"])


INVALID = {
    # An unknown category, on line 4 of the file.
    "unknown-category": (
        "profiles:\n  ours:\n    description: ours\n    backup: [repositories, pullrequests]\n",
        "PROFILE_FILE: line 4: 'pullrequests' in ours.backup is not a category.",
    ),
    # A built-in profile's name: PROFILE must say which one it means.
    "built-in-name": (
        "# ours\nprofiles:\n  xopero-one:\n    backup: [repositories]\n",
        "PROFILE_FILE: line 3: profile 'xopero-one' is a built-in profile's name; give yours another name.",
    ),
    # A misspelt key.
    "unknown-key": (
        "profiles:\n  ours:\n    backup: [repositories]\n    restor: [repositories]\n",
        "PROFILE_FILE: line 4: unknown key 'restor' in profile 'ours'",
    ),
    "not-yaml": ("profiles:\n  ours:\n    backup: [repositories\n", "PROFILE_FILE: line 4: is not valid YAML."),
}


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_file_names_the_line_and_sends_nothing(start, run_pipe, tmp_path, name):
    text, says = INVALID[name]
    cred = api_token()
    sim = start([cred])
    write(tmp_path, "backup-profiles.yml", text)
    run = run_pipe(sim, cred, PROFILE_FILE="backup-profiles.yml", PROFILE="ours")
    assert run.code == 2, run.output
    assert says in run.output
    problem = next(p for p in run.report["error"]["problems"] if p["variable"] == "PROFILE_FILE")
    assert problem["fix"].startswith("Write it as the built-in profiles are written")
    assert f"Fix: {problem['fix']}" in run.output
    assert sim.requests == []
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("../outside.yml", "must be a file path inside the working directory"),
        ("/etc/passwd", "must be a file path inside the working directory"),
        ("missing.yml", "missing.yml was not found or cannot be read."),
        ("link.yml", "is a symbolic link out of the working directory."),
        ("folder", "folder is not a file."),
    ],
)
def test_the_file_must_be_a_file_inside_the_clone(start, run_pipe, tmp_path, value, says):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yml"
    outside.write_text(OURS, encoding="utf-8")
    os.symlink(outside, tmp_path / "link.yml")
    (tmp_path / "folder").mkdir()
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred, PROFILE_FILE=value, PROFILE="our-backup")
    assert run.code == 2, run.output
    assert f"PROFILE_FILE: {says}" in run.output or says in run.output
    assert sim.requests == []


def test_a_file_profile_needs_its_file(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, PROFILE="our-backup")
    assert run.code == 2
    assert "PROFILE: 'our-backup' is not a known profile." in run.output
    assert "xopero-one" in run.report["error"]["problems"][0]["fix"]


def test_a_secret_as_the_path_is_never_echoed(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, PROFILE_FILE=cred.secret)
    assert run.code == 2
    assert cred.secret[:8] not in run.output
    assert "PROFILE_FILE: must be a file path inside the working directory" in run.output
