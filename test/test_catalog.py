"""The catalog's scope facts must equal Bitbucket's OpenAPI document, operation by operation."""

from __future__ import annotations

import json

import pytest

from pipe.catalog import load
from test.conftest import OPENAPI, shared_or_skip

CATALOG = load()
OPERATIONS = [(c.id, op) for c in CATALOG.categories for op in c.read + c.restore]


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
        else:
            assert category.retired is None and category.probes, category.id


def test_pull_requests_are_not_covered_by_repository_read():
    pulls = CATALOG.category("pull-requests")
    assert "read:repository:bitbucket" not in {s for op in pulls.read for s in op.api_token}
