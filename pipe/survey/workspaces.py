"""Which workspaces to check with WORKSPACE: '*': every workspace the credential is a member of.

A user (API token, OAuth consumer) lists them with GET /user/workspaces, paged, in the
`workspace_access` shape (`{"administrator": bool, "workspace": {"slug": ...}}`). An access token
belongs to exactly one workspace and is never sent there (every /user endpoint answers it 403):
its workspace is the one Pipelines names (BITBUCKET_WORKSPACE), checked like any other.

Every slug listed goes into API paths, so only a workspace ID is used; an answer in another shape
ends the run as inconclusive naming the endpoint and the place, never as a guess.
"""

from __future__ import annotations

import re
from typing import Any

from pipe import paging
from pipe.client import ApiFailure, Client
from pipe.credential import Credential, Kind
from pipe.errors import ApiUnavailable, ConfigError, CredentialError, Problem
from pipe.shapes import ShapeError, error_payload, expect_dict, expect_str, place_of
from pipe.survey.evidence import json_body
from pipe.variables import WORKSPACE_RE, Config

PATH = "/user/workspaces"
ENDPOINT = f"GET {PATH}"
FIELDS = "size,page,pagelen,next,values.workspace.slug"
SCOPE_WORD = re.compile(r"[a-z][a-z:_-]{0,59}")  # a scope name is shown; anything else is not
NAME_THEM = "or name the workspaces in WORKSPACE (e.g. WORKSPACE: 'acme,acme-labs')"


def _slug(item: Any, place: str) -> str:
    workspace = expect_dict(expect_dict(item, ENDPOINT, place).get("workspace"), ENDPOINT, place_of(place, "workspace"))
    slug = expect_str(workspace.get("slug"), ENDPOINT, place_of(place, "workspace.slug"), empty=False)
    if not WORKSPACE_RE.match(slug):
        raise ShapeError(ENDPOINT, f"'{place_of(place, 'workspace.slug')}' is not a workspace ID")
    return slug


class Unauthorized(Exception):
    """GET /user/workspaces answered 401: the credential itself was refused (pipe.survey names
    the fix for its kind, as for any other 401)."""


def _refused(status: int, body: Any, credential: Credential) -> Exception:
    if status == 401:
        return Unauthorized()
    try:
        required = ", ".join(r for r in error_payload(body, ENDPOINT).required if SCOPE_WORD.fullmatch(r))
    except ShapeError:
        required = ""
    scope = "read:workspace:bitbucket" if credential.kind is Kind.API_TOKEN else "account"
    return CredentialError(
        f"WORKSPACE '*' lists the credential's workspaces, and {ENDPOINT} answered {status}"
        + (f" (it requires {required})." if required else "."),
        f"Give the credential the {scope} scope, {NAME_THEM}.",
    )


async def member_of(client: Client, credential: Credential) -> list[str]:
    """The slugs of every workspace the user is a member of, in Bitbucket's order."""
    try:
        first, values = await paging.collect(client, PATH, {"fields": FIELDS})
    except ApiFailure as exc:
        raise ApiUnavailable(f"Could not list the credential's workspaces (WORKSPACE '*'): {exc.reason}.") from None
    if first.status in (401, 403):
        raise _refused(first.status, first.body, credential)
    try:
        if not first.ok:
            raise ShapeError(ENDPOINT, f"answered {first.status}")
        expect_dict(json_body(first, ENDPOINT), ENDPOINT)
        slugs = [_slug(item, place_of("values", index)) for index, item in enumerate(values)]
    except ShapeError as exc:
        raise ApiUnavailable(f"Could not list the credential's workspaces (WORKSPACE '*'): {exc}.") from None
    if not slugs:
        raise CredentialError(
            f"WORKSPACE '*': the credential is a member of no workspace ({ENDPOINT} listed none).",
            f"Add the credential's account to the workspaces its backup covers, {NAME_THEM}.",
        )
    return list(dict.fromkeys(slugs))


def of_access_token(config: Config) -> list[str]:
    """An access token's one workspace, for WORKSPACE '*': the one Pipelines runs in."""
    if config.home_workspace:
        return [config.home_workspace]
    raise ConfigError(
        [
            Problem(
                "WORKSPACE",
                "is '*' (every workspace of the credential), but an access token belongs to exactly one "
                "workspace and cannot list it, and BITBUCKET_WORKSPACE is not set.",
                "Set WORKSPACE to the workspace the access token was created in.",
            )
        ]
    )
