"""The catalog's scope facts must equal Bitbucket's OpenAPI document, operation by operation.

The rows marked `outside_openapi` (Bitbucket Packages: registries, not REST operations, with scopes the
June 2026 snapshot does not list) are skipped BY DESIGN: instead, their scopes must be absent from the
document, so that a newer document listing them fails here until the rows are moved into the table."""

from __future__ import annotations

import json

import pytest

from pipe.catalog import load
from test.conftest import OPENAPI, shared_or_skip

CATALOG = load()
ALL_OPERATIONS = [(c.id, op) for c in CATALOG.categories for op in c.read + c.restore]
OPERATIONS = [(c, op) for c, op in ALL_OPERATIONS if not op.outside_openapi]
OUTSIDE = [(c, op) for c, op in ALL_OPERATIONS if op.outside_openapi]


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(shared_or_skip(OPENAPI).read_text())


def _spec_scopes(document: dict, method: str, path: str) -> tuple[list[str], list[str], bool]:
    operation = document["paths"][path][method.lower()]
    classic = next((s["oauth2"] for s in operation.get("security", []) if "oauth2" in s), [])
    api = [s for entry in operation.get("x-atlassian-oauth2-scopes", []) for s in entry["scopes"]]
    return classic, api, bool(operation.get("deprecated"))


@pytest.mark.parametrize(("category", "op"), OPERATIONS, ids=[f"{c}:{o.label}" for c, o in OPERATIONS])
def test_operation_scopes_match_the_openapi_document(document, category, op):
    assert op.path in document["paths"], f"{op.path} is not in Bitbucket's OpenAPI document"
    assert op.method.lower() in document["paths"][op.path]
    classic, api, deprecated = _spec_scopes(document, op.method, op.path)
    assert sorted(op.classic) == sorted(classic)
    assert sorted(op.api_token) == sorted(api)
    retired = CATALOG.category(category).retired is not None
    assert deprecated == retired or not deprecated, f"{op.label} is deprecated but {category} is not retired"


def _document_scopes(document: dict) -> set[str]:
    """Every scope name the document mentions anywhere: both vocabularies, every operation."""
    found: set[str] = set()
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            found |= {s for entry in operation.get("security", []) for s in entry.get("oauth2", [])}
            found |= {s for entry in operation.get("x-atlassian-oauth2-scopes", []) for s in entry["scopes"]}
    return found


def test_the_marked_rows_use_only_scopes_the_document_does_not_list(document):
    listed = _document_scopes(document)
    assert "read:repository:bitbucket" in listed and "repository:admin" in listed  # the scan reads both
    assert OUTSIDE, "the Packages rows are gone: remove this test with them"
    for category, op in OUTSIDE:
        assert not op.method and not op.probe, op  # a registry, never read by the survey
        assert set(op.api_token) <= set(CATALOG.outside_openapi), (category, op.api_token)
        assert not set(op.api_token) & listed, f"{op.api_token} are in the document now: move {category} up"
    assert set(CATALOG.outside_openapi) == {s for _, op in OUTSIDE for s in op.api_token}
    assert not set(CATALOG.outside_openapi) & listed


def test_packages_are_judged_from_the_granted_scopes_and_shown_everywhere():
    packages = CATALOG.category("packages")
    assert [op.api_token for op in packages.read] == [("read:package:bitbucket",)]
    assert [op.api_token for op in packages.restore] == [("write:package:bitbucket",)]
    assert all(op.classic is None for op in packages.read + packages.restore)  # no classic scope is documented
    assert packages.note_always and "do not cover Bitbucket Packages" in packages.note
    for profile in CATALOG.profiles.values():  # information in every built-in profile, never required
        assert "packages" not in profile.backup, profile.name


def test_every_profile_names_known_categories():
    for profile in CATALOG.profiles.values():
        assert set(profile.backup) <= set(CATALOG.ids), profile.name


def test_the_seed_profile_requires_what_xopero_lists():
    assert set(CATALOG.profiles["xopero-one"].backup) >= {
        "account",
        "repositories",
        "repository-admin",
        "projects",
        "pull-requests",
        "pipelines",
    }


def test_issues_and_wikis_are_retired_and_every_other_category_can_be_probed():
    for category in CATALOG.categories:
        if category.id in ("issues", "wikis"):
            assert category.retired == "2026-08-20"
        elif all(op.outside_openapi for op in category.read):
            assert category.id == "packages" and not category.probes  # judged from the granted scopes
        else:
            assert category.retired is None and category.probes, category.id


def test_the_known_changelog_ids_and_the_vendor_lines():
    assert set(CATALOG.changes) == {"CHANGE-2770", "CHANGE-3071", "CHANGE-3222"}
    assert "app passwords" in CATALOG.changes["CHANGE-3222"] and "Issues and Wikis" in CATALOG.changes["CHANGE-3071"]
    for profile in ("xopero-one", "gitprotect"):
        terms = CATALOG.vendor_terms[profile]
        assert [line.term for line in terms.lines][:2] == ["Account read", "Repositories read + admin"]
        assert set(CATALOG.profiles[profile].backup) == {c for line in terms.lines for c in line.categories} - {
            "workspace"
        }


def test_pull_requests_are_not_covered_by_repository_read():
    pulls = CATALOG.category("pull-requests")
    assert "read:repository:bitbucket" not in {s for op in pulls.read for s in op.api_token}
