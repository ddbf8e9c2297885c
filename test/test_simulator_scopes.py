"""The simulator's scope table must equal Bitbucket's OpenAPI document, row by row.

The document lives outside the repository (../shared/bitbucket-openapi/swagger.v3.json); CI
always has it. Without it these tests skip.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from test.simulator import Simulator
from test.simulator.api import RETIRED_PRODUCTS
from test.simulator.scopes import CLASSIC_IMPLIES, KNOWN_OUTSIDE_OPENAPI, SCOPE_TABLE, expand_classic, missing_scopes

OPENAPI = Path(__file__).resolve().parents[1] / "../shared/bitbucket-openapi/swagger.v3.json"
needs_openapi = pytest.mark.skipif(
    not OPENAPI.is_file(), reason="../shared/bitbucket-openapi/swagger.v3.json is not present"
)


@cache
def openapi() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text())


def operation(method: str, path: str) -> dict[str, Any] | None:
    return openapi()["paths"].get(path, {}).get(method.lower())


def classic_scopes(op: dict[str, Any]) -> list[str]:
    for requirement in op.get("security", []):
        if "oauth2" in requirement:
            return requirement["oauth2"]
    return []


def api_token_scopes(op: dict[str, Any]) -> list[str]:
    return [s for entry in op.get("x-atlassian-oauth2-scopes", []) for s in entry["scopes"]]


ROWS = sorted(SCOPE_TABLE)


@needs_openapi
@pytest.mark.parametrize(("method", "path"), ROWS, ids=[f"{m} {p}" for m, p in ROWS])
def test_table_row_equals_the_openapi_document(method: str, path: str) -> None:
    op = operation(method, path)
    assert op is not None, f"{method} {path} is not in the OpenAPI document"
    row = SCOPE_TABLE[(method, path)]
    assert list(row.classic) == classic_scopes(op)
    assert list(row.api_token) == api_token_scopes(op)


@needs_openapi
def test_removed_endpoints_are_deprecated_in_the_document() -> None:
    for path in (
        "/repositories",
        "/workspaces",
        "/user/permissions/workspaces",
        "/user/permissions/repositories",
        "/repositories/{workspace}/{repo_slug}/issues",
    ):
        assert operation("GET", path)["deprecated"] is True, path


def test_every_routed_path_is_in_the_table() -> None:
    routes = Simulator().api.routes
    assert routes, "the simulator routes nothing"
    missing = [(r.method, r.template) for r in routes if (r.method, r.template) not in SCOPE_TABLE]
    assert missing == []
    # And the table has no row the simulator does not serve.
    assert {(r.method, r.template) for r in routes} == set(SCOPE_TABLE)


def test_wiki_is_answered_as_retired_without_a_table_row() -> None:
    # The wiki was never part of the REST document; it is the one path served outside the table.
    assert RETIRED_PRODUCTS.match("/repositories/ws/repo/wiki/Home")
    assert not any("wiki" in path for _, path in SCOPE_TABLE)


def test_classic_implications() -> None:
    assert expand_classic(["pullrequest:write"]) == {
        "pullrequest:write",
        "pullrequest",
        "repository",
        "repository:write",
    }
    assert expand_classic(["pipeline:variable"]) == {"pipeline:variable", "pipeline", "pipeline:write"}
    assert expand_classic(["repository:admin"]) == {"repository:admin"}
    assert expand_classic(["project"]) == {"project", "repository"}
    for scope, implied in CLASSIC_IMPLIES.items():
        assert set(implied) <= expand_classic([scope])


def test_api_token_scopes_imply_nothing() -> None:
    req = SCOPE_TABLE[("GET", "/repositories/{workspace}/{repo_slug}/pullrequests")]
    assert missing_scopes("api_token", ["write:pullrequest:bitbucket"], req) == ["read:pullrequest:bitbucket"]
    assert missing_scopes("access_token", ["pullrequest:write"], req) == []
    both = SCOPE_TABLE[("GET", "/repositories/{workspace}/{repo_slug}/deploy-keys")]
    assert missing_scopes("access_token", ["repository:admin"], both) == ["repository"]


@needs_openapi
def test_scopes_known_outside_the_document_are_really_not_in_it() -> None:
    listed = {
        scope
        for item in openapi()["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
        for scope in api_token_scopes(op)
    }
    assert listed, "the document lists no API-token scope at all"
    assert set(KNOWN_OUTSIDE_OPENAPI) & listed == set()
    assert all(s.endswith(":bitbucket") for s in KNOWN_OUTSIDE_OPENAPI)
