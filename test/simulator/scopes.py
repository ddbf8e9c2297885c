"""Scope facts: which scopes each served operation requires, as Bitbucket's OpenAPI states them.

Keys are (METHOD, OpenAPI path template). Values are (classic scopes, API-token scopes); all
listed scopes are required. test/test_simulator_scopes.py compares every row with the OpenAPI
document so this table cannot drift from Bitbucket's.
"""

from __future__ import annotations

from typing import NamedTuple


class Requirement(NamedTuple):
    classic: tuple[str, ...]
    api_token: tuple[str, ...]


def _r(classic: str, api: str) -> Requirement:
    return Requirement(tuple(classic.split()), tuple(api.split()))


_REPO = "/repositories/{workspace}/{repo_slug}"

SCOPE_TABLE: dict[tuple[str, str], Requirement] = {
    ("GET", "/user"): _r("account", "read:user:bitbucket"),
    ("GET", "/user/workspaces"): _r("account", "read:workspace:bitbucket"),
    ("GET", "/user/workspaces/{workspace}/permission"): _r("account", "read:workspace:bitbucket"),
    ("GET", "/user/workspaces/{workspace}/permissions/repositories"): _r(
        "account repository", "read:repository:bitbucket"
    ),
    ("GET", "/workspaces/{workspace}"): _r("", "read:workspace:bitbucket"),
    ("GET", "/workspaces/{workspace}/members"): _r("account", "read:workspace:bitbucket"),
    ("GET", "/workspaces/{workspace}/projects"): _r("project", "read:project:bitbucket"),
    ("GET", "/workspaces/{workspace}/hooks"): _r("webhook", "read:webhook:bitbucket"),
    ("GET", "/workspaces/{workspace}/pipelines-config/variables"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", "/repositories/{workspace}"): _r("repository", "read:repository:bitbucket"),
    ("GET", _REPO): _r("repository", "read:repository:bitbucket"),
    ("GET", _REPO + "/refs/branches"): _r("repository", "read:repository:bitbucket"),
    ("GET", _REPO + "/refs/tags"): _r("repository", "read:repository:bitbucket"),
    ("GET", _REPO + "/downloads"): _r("repository", "read:repository:bitbucket"),
    ("GET", _REPO + "/pullrequests"): _r("pullrequest", "read:pullrequest:bitbucket"),
    ("GET", _REPO + "/pullrequests/activity"): _r("pullrequest", "read:pullrequest:bitbucket"),
    ("GET", _REPO + "/default-reviewers"): _r("pullrequest", "read:pullrequest:bitbucket"),
    ("GET", _REPO + "/pipelines"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/pipelines_config"): _r("repository:admin", "admin:repository:bitbucket"),
    ("GET", _REPO + "/pipelines_config/variables"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/pipelines_config/schedules"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/pipelines_config/ssh/known_hosts"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/pipelines_config/ssh/key_pair"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/environments"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/deployments"): _r("pipeline", "read:pipeline:bitbucket"),
    ("GET", _REPO + "/hooks"): _r("webhook", "read:webhook:bitbucket"),
    ("GET", _REPO + "/branch-restrictions"): _r("repository:admin", "admin:repository:bitbucket"),
    ("GET", _REPO + "/deploy-keys"): _r("repository repository:admin", "admin:repository:bitbucket"),
    ("GET", _REPO + "/permissions-config/users"): _r("repository:admin", "read:repository:bitbucket"),
    ("GET", _REPO + "/override-settings"): _r("repository:admin", "admin:repository:bitbucket"),
    ("GET", _REPO + "/pipelines-config/runners"): _r("runner", "read:runner:bitbucket"),
    ("GET", _REPO + "/issues"): _r("issue", "read:issue:bitbucket"),
    ("PUT", _REPO + "/commit/{commit}/reports/{reportId}"): _r("repository", "read:repository:bitbucket"),
    ("GET", "/snippets/{workspace}"): _r("snippet", "read:snippet:bitbucket"),
    # Removed endpoints (deprecated in the document, 410 CHANGE-2770 on Bitbucket).
    ("GET", "/repositories"): _r("repository", "read:repository:bitbucket"),
    ("GET", "/workspaces"): _r("account", "read:user:bitbucket read:workspace:bitbucket"),
    ("GET", "/user/permissions/workspaces"): _r("account", "read:workspace:bitbucket read:user:bitbucket"),
    ("GET", "/user/permissions/repositories"): _r("account repository", "read:repository:bitbucket"),
}

# API-token scopes that exist on Bitbucket but not in the June 2026 OpenAPI snapshot (so no row of
# SCOPE_TABLE can carry them): known from Atlassian's documentation. Nothing here serves them; a
# credential may hold them like any other name. test_simulator_scopes.py checks they are still
# absent from the document (if a newer document lists them, move them into the table).
KNOWN_OUTSIDE_OPENAPI: dict[str, str] = {
    "read:package:bitbucket": "Bitbucket Packages: read container, npm and Maven packages",
    "write:package:bitbucket": "Bitbucket Packages: publish packages",
}

# Classic scopes imply others (trufflehog scopes.go); API-token scopes imply nothing.
CLASSIC_IMPLIES: dict[str, tuple[str, ...]] = {
    "repository:write": ("repository",),
    "pullrequest": ("repository",),
    "pullrequest:write": ("pullrequest", "repository", "repository:write"),
    "project": ("repository",),
    "pipeline:write": ("pipeline",),
    "pipeline:variable": ("pipeline", "pipeline:write"),
    "snippet:write": ("snippet",),
    "issue:write": ("issue",),
    "account:write": ("account",),
    "runner:write": ("runner",),
}

# What git over HTTPS needs to read a repository.
GIT_READ = Requirement(("repository",), ("read:repository:bitbucket",))

# Every read scope a backup touches (used by the bench scenario).
BACKUP_READ_API_SCOPES: tuple[str, ...] = tuple(
    sorted(
        {
            s
            for (method, path), req in SCOPE_TABLE.items()
            if method == "GET" and "issue" not in path
            for s in req.api_token
            if s.startswith("read:")
        }
        | {"admin:repository:bitbucket"}
    )
)


def expand_classic(granted: list[str] | tuple[str, ...]) -> set[str]:
    """Close a classic scope set under the implication table (transitively)."""
    result: set[str] = set()
    todo = list(granted)
    while todo:
        scope = todo.pop()
        if scope not in result:
            result.add(scope)
            todo.extend(CLASSIC_IMPLIES.get(scope, ()))
    return result


def missing_scopes(kind: str, granted: list[str], req: Requirement) -> list[str]:
    """Scopes of `req` the credential lacks, in the credential's own vocabulary."""
    if kind == "api_token":
        have = set(granted)
        return [s for s in req.api_token if s not in have]
    have = expand_classic(granted)
    return [s for s in req.classic if s not in have]
