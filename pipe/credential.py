"""Which credential the variables hold, and the traps caught before any request.

Token prefixes (Atlassian's, stable since 2024): ATATT = API token, ATBB = app password,
ATCTT = access token (shared with organisation admin keys, so a hint, never proof).

An API token without BITBUCKET_EMAIL is not an error (since issue 11): Atlassian may accept API
tokens as Bearer (reported in 2026, uncertain), so the pipe tries Bearer once and a 401 then asks
for the email. With BITBUCKET_USERNAME but no email it stays the username trap: the username is
what people put where the email belongs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pipe import scopes
from pipe.errors import ConfigError, Problem
from pipe.redaction import SECRET_VARIABLES, USER_VARIABLES

API_TOKEN_GIT_USER = "x-bitbucket-api-token-auth"
ACCESS_TOKEN_GIT_USER = "x-token-auth"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")

CREATE_API_TOKEN = (
    "Create an API token with scopes: id.atlassian.com > Security > API tokens > "
    "Create API token with scopes > app Bitbucket; then set BITBUCKET_EMAIL to your Atlassian "
    "account email and BITBUCKET_API_TOKEN to the token (as a secured variable)."
)
APP_PASSWORD_GONE = "App passwords were removed from Bitbucket Cloud on 2026-07-28 and no longer authenticate."


class Kind(StrEnum):
    API_TOKEN = "api_token"
    ACCESS_TOKEN = "access_token"
    OAUTH = "oauth"

    @property
    def vocabulary(self) -> str:
        return scopes.API_TOKEN if self is Kind.API_TOKEN else scopes.CLASSIC

    @property
    def title(self) -> str:
        return {"api_token": "API token", "access_token": "access token", "oauth": "OAuth consumer"}[self.value]


@dataclass(frozen=True)
class Credential:
    kind: Kind
    secret: str = field(repr=False)
    email: str | None = None
    username: str | None = None
    client_id: str | None = None

    @property
    def auth_scheme(self) -> str:
        """How the REST API is asked: "basic" (email:token, an API token's documented way) or
        "bearer" (access tokens, OAuth, and an API token given without an email)."""
        return "basic" if self.kind is Kind.API_TOKEN and self.email else "bearer"

    @property
    def git_username(self) -> str:
        if self.kind is Kind.API_TOKEN:
            return self.username or API_TOKEN_GIT_USER
        return ACCESS_TOKEN_GIT_USER

    @property
    def owner_hint(self) -> str:
        """Who the credential belongs to, as far as the variables say (never the secret)."""
        return self.email or self.client_id or "access token"


PAIRS = {
    Kind.API_TOKEN: ("BITBUCKET_EMAIL", "BITBUCKET_API_TOKEN"),
    Kind.ACCESS_TOKEN: ("BITBUCKET_ACCESS_TOKEN",),
    Kind.OAUTH: ("BITBUCKET_OAUTH_CLIENT_ID", "BITBUCKET_OAUTH_CLIENT_SECRET"),
}


def _shape_problems(values: Mapping[str, str]) -> list[Problem]:
    problems = []
    for name in SECRET_VARIABLES + USER_VARIABLES:
        value = values.get(name)
        if value is None:
            continue
        if value.strip() == "":
            problems.append(
                Problem(
                    name,
                    "is set but empty.",
                    f"Check the repository or workspace variable that feeds {name}, or remove {name}.",
                )
            )
        elif re.search(r"\s", value):
            problems.append(
                Problem(
                    name,
                    "contains whitespace or a line break (pasted with the value?).",
                    f"Paste the value of {name} again, without spaces or newlines.",
                )
            )
    return problems


def _prefix_problems(values: Mapping[str, str]) -> list[Problem]:
    problems = []
    for name in SECRET_VARIABLES:
        value = (values.get(name) or "").strip()
        if name != "BITBUCKET_APP_PASSWORD" and value.startswith("ATBB"):
            problems.append(Problem(name, f"holds an app password. {APP_PASSWORD_GONE}", CREATE_API_TOKEN))
    token = (values.get("BITBUCKET_API_TOKEN") or "").strip()
    if token.startswith("ATCTT"):
        problems.append(
            Problem(
                "BITBUCKET_API_TOKEN",
                "holds an access token, not an API token.",
                "Move it to BITBUCKET_ACCESS_TOKEN and remove BITBUCKET_EMAIL.",
            )
        )
    access = (values.get("BITBUCKET_ACCESS_TOKEN") or "").strip()
    if access.startswith("ATATT"):
        problems.append(
            Problem(
                "BITBUCKET_ACCESS_TOKEN",
                "holds an Atlassian API token, not an access token.",
                "Move it to BITBUCKET_API_TOKEN and set BITBUCKET_EMAIL to your Atlassian account email.",
            )
        )
    return problems


def _identity_problems(values: Mapping[str, str]) -> list[Problem]:
    problems = []
    email, username = values.get("BITBUCKET_EMAIL"), values.get("BITBUCKET_USERNAME")
    if email and email.strip() and not EMAIL_RE.match(email.strip()):
        problems.append(
            Problem(
                "BITBUCKET_EMAIL",
                "does not look like an email address (a Bitbucket username?).",
                "API tokens authenticate the REST API with your Atlassian account email; "
                "put the username in BITBUCKET_USERNAME if git needs it.",
            )
        )
    if username and "@" in username:
        problems.append(
            Problem(
                "BITBUCKET_USERNAME",
                "is an email address; git over HTTPS rejects emails.",
                "Set BITBUCKET_USERNAME to your Bitbucket username (bitbucket.org > Personal "
                "settings) or remove it to use x-bitbucket-api-token-auth; the email belongs "
                "in BITBUCKET_EMAIL.",
            )
        )
    elif username and username.strip() and not USERNAME_RE.match(username.strip()):
        problems.append(
            Problem(
                "BITBUCKET_USERNAME",
                "is not a valid Bitbucket username.",
                "Use the username shown in bitbucket.org > Personal settings, or remove it.",
            )
        )
    return problems


def _kinds_given(values: Mapping[str, str]) -> list[Kind]:
    return [kind for kind, names in PAIRS.items() if any(values.get(n) for n in names)]


def _selection_problems(values: Mapping[str, str]) -> list[Problem]:
    if values.get("BITBUCKET_APP_PASSWORD") is not None:
        return [Problem("BITBUCKET_APP_PASSWORD", APP_PASSWORD_GONE, CREATE_API_TOKEN)]
    kinds = _kinds_given(values)
    if not kinds:
        if values.get("BITBUCKET_USERNAME"):
            return [Problem("BITBUCKET_USERNAME", "is set, but no token is.", CREATE_API_TOKEN)]
        return [
            Problem(
                "BITBUCKET_API_TOKEN",
                "no credential is set.",
                "Set BITBUCKET_EMAIL + BITBUCKET_API_TOKEN, or BITBUCKET_ACCESS_TOKEN, or "
                "BITBUCKET_OAUTH_CLIENT_ID + BITBUCKET_OAUTH_CLIENT_SECRET, passing each from a "
                "secured variable in the pipe's variables block.",
            )
        ]
    if len(kinds) > 1:
        names = " and ".join("+".join(PAIRS[k]) for k in kinds)
        return [
            Problem(
                PAIRS[kinds[0]][-1],
                f"more than one credential is set ({names}).",
                "Keep exactly one: the credential your backup product uses.",
            )
        ]
    kind = kinds[0]
    missing = [n for n in PAIRS[kind] if not values.get(n)]
    if kind is Kind.API_TOKEN and missing == ["BITBUCKET_EMAIL"] and values.get("BITBUCKET_USERNAME"):
        return [
            Problem(
                "BITBUCKET_EMAIL",
                "is not set; an API token does not authenticate with a username.",
                "Set BITBUCKET_EMAIL to your Atlassian account email (the REST API rejects the "
                "Bitbucket username with 401).",
            )
        ]
    if kind is Kind.API_TOKEN and missing == ["BITBUCKET_EMAIL"]:
        return []  # tried as Bearer; a 401 then names BITBUCKET_EMAIL (survey.auth)
    return [
        Problem(name, f"is required with {' + '.join(n for n in PAIRS[kind] if n != name)}.", f"Set {name} as well.")
        for name in missing
    ]


def detect(values: Mapping[str, str]) -> Credential:
    """The one credential given, or ConfigError naming every variable that is wrong."""
    problems = _shape_problems(values) + _prefix_problems(values) + _identity_problems(values)
    problems += [p for p in _selection_problems(values) if p.variable not in {q.variable for q in problems}]
    if problems:
        raise ConfigError(problems)
    kind = _kinds_given(values)[0]
    if kind is Kind.API_TOKEN:
        return Credential(
            kind,
            values["BITBUCKET_API_TOKEN"],
            email=values.get("BITBUCKET_EMAIL") or None,
            username=values.get("BITBUCKET_USERNAME") or None,
        )
    if kind is Kind.ACCESS_TOKEN:
        return Credential(kind, values["BITBUCKET_ACCESS_TOKEN"])
    return Credential(kind, values["BITBUCKET_OAUTH_CLIENT_SECRET"], client_id=values["BITBUCKET_OAUTH_CLIENT_ID"])
