"""Issue 13.3: profiles as data. The built-in ones come from pipe/catalog.yml through the same
checker as a team's PROFILE_FILE, and every problem in a file names its line."""

from __future__ import annotations

import pytest

from pipe import profiles
from pipe.catalog import CATALOG_FILE, load

IDS = load().ids


def test_built_in_profiles_pass_the_file_checker_and_cite_their_source():
    built_in = profiles.parse(CATALOG_FILE.read_text(encoding="utf-8"), IDS)
    assert {"xopero-one", "gitprotect", "gitsec", "minimal", "git-only", "ghorg", "gitbackup", "scm-backup"} <= set(
        built_in
    )
    for name in ("xopero-one", "gitprotect", "gitsec", "ghorg", "gitbackup", "scm-backup"):
        assert built_in[name].reference, f"{name} names no published document"
    gitsec = built_in["gitsec"]
    assert gitsec.backup == ("repositories", "pull-requests")
    assert gitsec.restore == ("repositories",)
    assert built_in["ghorg"].restore == ()
    assert built_in["xopero-one"].restore == built_in["xopero-one"].backup  # restore defaults to backup


def test_a_valid_file_gives_typed_profiles_with_their_source():
    text = (
        "profiles:\n"
        "  our-backup:\n"
        "    description: our nightly script\n"
        "    backup: [repositories, pull-requests, webhooks]\n"
        "    restore: [repositories]\n"
    )
    found = profiles.parse(text, IDS, source="PROFILE_FILE backup-profiles.yml")
    assert found == {
        "our-backup": profiles.Profile(
            "our-backup",
            "our nightly script",
            ("repositories", "pull-requests", "webhooks"),
            ("repositories",),
            "PROFILE_FILE backup-profiles.yml",
        )
    }


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("profiles:\n  ours:\n    backup: [repositories, pullrequests]\n", 3, "'pullrequests' in ours.backup"),
        ("profiles:\n  ours:\n    backup: [repositories]\n    restor: [repositories]\n", 4, "unknown key 'restor'"),
        ("profiles:\n  ours:\n    description: x\n", 3, "has no backup: list"),
        ("profiles:\n  ours:\n    backup: repositories\n", 3, "must be a list"),
        ("profiles:\n  Ours Team:\n    backup: [repositories]\n", 2, "lower-case letters"),
        ("profiles:\n  ours:\n    backup: [repositories\n", 4, "not valid YAML"),
        ("profiles:\n  ours:\n    backup: [yes]\n", 3, "must be a text"),
        ("profiles:\n  a:\n    backup: [repositories]\n  a:\n    backup: [projects]\n", 4, "defined twice"),
        ("categories: []\n", 1, "needs a top-level profiles: mapping"),
    ],
)
def test_every_problem_names_its_line(text, line, words):
    with pytest.raises(profiles.ProfileError) as caught:
        profiles.parse(text, IDS, source="PROFILE_FILE p.yml")
    assert caught.value.line == line
    assert words in caught.value.message


def test_an_empty_file_is_an_error_not_an_empty_profile():
    with pytest.raises(profiles.ProfileError, match="is empty"):
        profiles.parse("", IDS)
