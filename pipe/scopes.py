"""Scope vocabularies of Bitbucket Cloud credentials: facts, not logic.

Two vocabularies exist. Access tokens and OAuth consumers use the classic names
(`repository`, `pullrequest:write`, ...), and a classic scope implies others. Atlassian API
tokens use `{action}:{resource}:bitbucket` names, each independent of the others
(`write:repository:bitbucket` does not even imply read).
"""

from __future__ import annotations

from collections.abc import Iterable

CLASSIC = "classic"
API_TOKEN = "api_token"

# Source: developer.atlassian.com "Bitbucket Cloud REST API scopes"; trufflehog scopes.go.
CLASSIC_IMPLIES: dict[str, frozenset[str]] = {
    "repository:write": frozenset({"repository"}),
    "pullrequest": frozenset({"repository"}),
    "pullrequest:write": frozenset({"pullrequest", "repository", "repository:write"}),
    "project": frozenset({"repository"}),
    "pipeline:write": frozenset({"pipeline"}),
    "pipeline:variable": frozenset({"pipeline", "pipeline:write"}),
    "snippet:write": frozenset({"snippet"}),
    "issue:write": frozenset({"issue"}),
    "account:write": frozenset({"account"}),
    "team:write": frozenset({"team"}),
    "runner:write": frozenset({"runner"}),
}

# Classic scopes an access token can hold at all (repository, project and workspace tokens).
# Account, email, snippet, issue and wiki scopes do not exist for them.
ACCESS_TOKEN_GRANTABLE: frozenset[str] = frozenset(
    {
        "repository",
        "repository:write",
        "repository:admin",
        "repository:delete",
        "pullrequest",
        "pullrequest:write",
        "webhook",
        "pipeline",
        "pipeline:write",
        "pipeline:variable",
        "runner",
        "runner:write",
        "project",
        "project:admin",
    }
)

# What the person sees next to the checkbox, so guidance names the box to tick.
CLASSIC_LABELS: dict[str, str] = {
    "account": "Account: Read",
    "repository": "Repositories: Read",
    "repository:write": "Repositories: Write",
    "repository:admin": "Repositories: Admin",
    "repository:delete": "Repositories: Delete",
    "pullrequest": "Pull requests: Read",
    "pullrequest:write": "Pull requests: Write",
    "webhook": "Webhooks: Read and write",
    "pipeline": "Pipelines: Read",
    "pipeline:write": "Pipelines: Write",
    "pipeline:variable": "Pipelines: Edit variables",
    "project": "Projects: Read",
    "project:admin": "Projects: Admin",
    "snippet": "Snippets: Read",
    "snippet:write": "Snippets: Write",
    "runner": "Runners: Read",
    "runner:write": "Runners: Write",
}


def expand(scopes: Iterable[str], vocabulary: str) -> frozenset[str]:
    """Every scope the given ones grant, implications included (classic names only)."""
    granted = {s.strip() for s in scopes if s.strip()}
    if vocabulary != CLASSIC:
        return frozenset(granted)
    pending = list(granted)
    while pending:
        for implied in CLASSIC_IMPLIES.get(pending.pop(), ()):
            if implied not in granted:
                granted.add(implied)
                pending.append(implied)
    return frozenset(granted)


def missing(required: Iterable[str], granted: Iterable[str], vocabulary: str) -> list[str]:
    held = expand(granted, vocabulary)
    return sorted({s for s in required if s not in held})


def parse_list(value: str | None) -> list[str]:
    """`x-oauth-scopes: a, b` and OAuth's space-separated `scopes` both become a list. Every
    word is kept, known or not (read:package:bitbucket is newer than any table here)."""
    if not isinstance(value, str) or not value:
        return []
    return sorted({part for part in value.replace(",", " ").split() if part})


def label(scope: str, vocabulary: str) -> str:
    if vocabulary == CLASSIC:
        return CLASSIC_LABELS.get(scope, scope)
    return scope
