"""Who the credential is: the OAuth grant (for a consumer), authentication and identity.

A 401 on GET /user or on the workspace, or a 404 on the workspace, ends the run with a
CredentialError naming the fix; any other answer is judged like a live read (`classify`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx

from pipe import scopes
from pipe.catalog import Operation
from pipe.client import ApiFailure, BearerAuth, Client, Reply
from pipe.credential import Credential, Kind
from pipe.errors import ApiUnavailable, CredentialError
from pipe.shapes import ShapeError, expect_dict, expect_scope_text, expect_str, optional, short
from pipe.survey.evidence import Identity, ProbeResult, classify, json_body
from pipe.survey.grants import TOKEN_RESPONSE, ScopeEvidence, fill
from pipe.variables import Config

TOKEN_TEXT = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII, no spaces: a header value
TOKEN_WORD = re.compile(r"[a-z_]{1,40}")  # an OAuth error code: invalid_client, ...
# The two reads authentication makes; the catalog's operations on these paths are answered by them.
USER = "/user"
WORKSPACE = "/workspaces/{workspace}"


@dataclass(frozen=True)
class SignedIn:
    """The credential was accepted: who it is, and what its two reads proved."""

    identity: Identity
    user: ProbeResult  # GET /user
    workspace: ProbeResult  # GET /workspaces/{workspace}

    def answer(self, op: Operation) -> ProbeResult | None:
        """The result for a catalog operation that authentication already read, else None."""
        if op.method != "GET":
            return None
        return {USER: self.user, WORKSPACE: self.workspace}.get(op.path)


def credentials(credential: Credential, token: str | None) -> httpx.Auth:
    """The Authorization every API request carries (the OAuth grant's token, for a consumer). An
    API token goes as Basic email:token, or as Bearer when no email was given (credential.py)."""
    if credential.auth_scheme == "basic":
        return httpx.BasicAuth(credential.email or "", credential.secret)
    return BearerAuth(token or credential.secret)


def _oauth_error(reply: Reply) -> str:
    """The grant's error code ('invalid_client') when it is a short word, else the status."""
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    return error if isinstance(error, str) and TOKEN_WORD.fullmatch(error) else str(reply.status)


def _access_token(body: Any, endpoint: str) -> str:
    token = expect_str(expect_dict(body, endpoint).get("access_token"), endpoint, "access_token", empty=False)
    if not TOKEN_TEXT.fullmatch(token):  # it goes into a header: no spaces, no control characters
        raise ShapeError(endpoint, "'access_token' holds spaces or characters a token cannot hold")
    return token


async def oauth_token(config: Config, credential: Credential, grants: ScopeEvidence, client: Client) -> str:
    """Client-credentials grant: the consumer's key and secret buy a Bearer token."""
    auth = httpx.BasicAuth(credential.client_id or "", credential.secret)
    endpoint = f"POST {httpx.URL(config.oauth_token_url).path or '/'}"
    try:
        reply = await client.post_form(config.oauth_token_url, {"grant_type": "client_credentials"}, auth)
    except ApiFailure as exc:
        raise ApiUnavailable(f"The OAuth token endpoint could not be reached: {exc.reason}.") from None
    if reply.status in (400, 401):  # the status is the refusal, whatever the body says
        raise CredentialError(
            f"Bitbucket refused the OAuth consumer's client credentials ({_oauth_error(reply)}).",
            "Check BITBUCKET_OAUTH_CLIENT_ID (the consumer's Key) and BITBUCKET_OAUTH_CLIENT_SECRET; the "
            "consumer must be private ('This is a private consumer') to allow the client-credentials grant.",
        )
    if not reply.ok:
        raise ApiUnavailable(f"The OAuth token endpoint answered {reply.status}.")
    try:
        token = _access_token(json_body(reply, endpoint), endpoint)
    except ShapeError as exc:
        raise ApiUnavailable(f"The OAuth token endpoint's answer cannot be used: {exc}.") from None
    for key in ("scope", "scopes"):  # `scope` since 2026-05-04, `scopes` before: both are read
        try:
            grants.learn(scopes.parse_list(optional(reply.body, key, expect_scope_text, endpoint)), TOKEN_RESPONSE)
        except ShapeError as exc:
            grants.doubt(exc)
    return token


class NotVisible(CredentialError):
    """The workspace was not found or the credential cannot see it: with several workspaces this
    is that workspace's section of the report (pipe.survey), not the end of the run."""


def rejected(credential: Credential) -> CredentialError:
    """A 401: the credential itself was refused (also when listing the workspaces of WORKSPACE '*')."""
    return _rejected(credential)


def _rejected(credential: Credential) -> CredentialError:
    if credential.kind is Kind.API_TOKEN and credential.auth_scheme == "bearer":
        return CredentialError(
            "Bitbucket rejected the API token sent as Bearer, without an email (401).",
            "Set BITBUCKET_EMAIL to the Atlassian account email of the token's owner: the REST API "
            "takes an API token as Basic email:token (Bearer is not accepted for API tokens everywhere). "
            "If it is still rejected then, the token is invalid, expired or revoked, or was created "
            "without Bitbucket scopes.",
        )
    if credential.kind is Kind.API_TOKEN:
        return CredentialError(
            "Bitbucket rejected the API token (401).",
            "The token is invalid, expired or revoked, was created without Bitbucket scopes, or "
            "BITBUCKET_EMAIL is not the Atlassian account email of its owner (a Bitbucket username "
            "does not work there). Create a new API token with scopes and update BITBUCKET_API_TOKEN.",
        )
    if credential.kind is Kind.ACCESS_TOKEN:
        return CredentialError(
            "Bitbucket rejected the access token (401).",
            "The token is invalid, expired or revoked. Create a new one in the repository, project or "
            "workspace settings (Security > Access tokens) and update BITBUCKET_ACCESS_TOKEN.",
        )
    return CredentialError(
        "Bitbucket rejected the OAuth access token (401).",
        "Check the OAuth consumer's permissions and that it is still enabled.",
    )


async def _required(client: Client, path: str, what: str) -> Reply:
    try:
        return await client.get(path)
    except ApiFailure as exc:
        raise ApiUnavailable(f"Could not {what}: {exc.reason}.") from None


def _identity(reply: Reply) -> Identity:
    """Display text only: a name of any other type is not used, and never fails the run (GET /user
    itself is judged by `classify`). Strings stay strings; the reports neutralise them."""
    body = reply.body if reply.ok and isinstance(reply.body, dict) else {}
    names = (body.get(key) for key in ("display_name", "username", "nickname"))
    user = next((short(name) for name in names if isinstance(name, str) and name.strip()), None)
    account = body.get("account_id")
    return Identity(user, short(account) if isinstance(account, str) and account.strip() else None)


def sign_in(client: Client) -> asyncio.Task[Reply]:
    """GET /user, asked once per run however many workspaces share its answer."""
    return asyncio.create_task(_required(client, USER, "authenticate"))


async def authenticate(
    client: Client, credential: Credential, workspace: str, grants: ScopeEvidence, asked: asyncio.Task[Reply]
) -> SignedIn:
    """`asked`: sign_in's GET /user, shared by the workspaces (shielded: one ending early must not
    cancel it for the others)."""
    # Side by side: the two answers are independent, and a round trip saved is ~5% of a large run.
    space_path = fill(WORKSPACE, workspace, None)
    user, space = await asyncio.gather(asyncio.shield(asked), _required(client, space_path, "read the workspace"))
    if user.status == 401:
        raise _rejected(credential)
    if space.status == 401:
        raise _rejected(credential)
    if space.status == 404:
        raise NotVisible(
            f"Workspace '{workspace}' was not found, or this credential cannot see it.",
            "Check WORKSPACE (the ID in bitbucket.org/<workspace>/). An access token only sees the "
            "workspace it was created in; a user must be a member of the workspace.",
        )
    return SignedIn(
        _identity(user),
        classify(user, f"GET {USER}", grants=grants),
        classify(space, f"GET {space_path}", grants=grants),
    )
