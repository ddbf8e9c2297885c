"""What the credential can really do: authentication, scopes, repositories, live reads, git.

Everything here only reads. Results are plain data (Evidence) for the assessment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipe import scopes
from pipe.catalog import Catalog, Operation
from pipe.client import ApiFailure, BearerAuth, Client, Reply, Traffic
from pipe.credential import Credential, Kind
from pipe.errors import ApiUnavailable, CredentialError
from pipe.gitcheck import GitResult, ls_remote
from pipe.variables import Config

PERMISSIONS = ("admin", "write", "read")
REPO_FIELDS = "size,page,pagelen,next,values.slug,values.full_name,values.project.key"
PERM_FIELDS = "size,page,pagelen,next,values.permission,values.repository.full_name"
# An operation whose scope a backup credential rarely holds: its 403 lists every granted scope.
SCOPE_REVEAL = "/repositories/{workspace}/{repo_slug}/pipelines-config/runners"


@dataclass
class ScopeEvidence:
    granted: set[str] | None = None
    sources: list[str] = field(default_factory=list)
    credential_type: str | None = None

    def learn(self, found: list[str], source: str) -> None:
        if not found:
            return
        self.granted = (self.granted or set()) | set(found)
        if source not in self.sources:
            self.sources.append(source)

    def observe(self, response: httpx.Response) -> None:
        """Client hook: every answer may reveal scopes (headers, 403 details)."""
        self.credential_type = response.headers.get("x-credential-type") or self.credential_type
        self.learn(scopes.parse_list(response.headers.get("x-oauth-scopes")), "x-oauth-scopes header")
        if response.status_code == 403:
            try:
                detail = (response.json().get("error") or {}).get("detail") or {}
            except ValueError:
                return
            if isinstance(detail, dict) and isinstance(detail.get("granted"), list):
                self.learn([str(s) for s in detail["granted"]], "403 error detail")


@dataclass(frozen=True)
class ProbeResult:
    operation: str
    outcome: str  # ok | scope | permission | failed | not-found | gone | skipped
    status: int | None = None
    required: tuple[str, ...] = ()
    reason: str = ""
    repository: str | None = None


@dataclass(frozen=True)
class Repo:
    slug: str
    full_name: str
    permission: str  # admin | write | read | unknown


@dataclass
class Inventory:
    listing: ProbeResult
    repositories: list[Repo] = field(default_factory=list)
    permissions_source: str = "unknown"
    not_visible: list[str] = field(default_factory=list)

    def count(self, permission: str) -> int:
        return sum(1 for r in self.repositories if r.permission == permission)


@dataclass(frozen=True)
class Identity:
    user: str | None
    account_id: str | None


@dataclass
class Evidence:
    credential: Credential
    workspace: str
    identity: Identity
    scopes: ScopeEvidence
    inventory: Inventory
    probes: dict[str, ProbeResult]
    git: GitResult
    traffic: Traffic
    elapsed: float = 0.0


def classify(operation: str, reply: Reply, repository: str | None = None) -> ProbeResult:
    detail = reply.error.get("detail")
    if reply.ok:
        return ProbeResult(operation, "ok", reply.status, repository=repository)
    if reply.status == 403 and isinstance(detail, dict) and detail.get("required"):
        required = tuple(str(s) for s in detail["required"])
        return ProbeResult(operation, "scope", 403, required, reply.message, repository)
    outcome = {403: "permission", 404: "not-found", 410: "gone"}.get(reply.status, "failed")
    return ProbeResult(operation, outcome, reply.status, reason=reply.message, repository=repository)


def _fill(path: str, workspace: str, repo: str | None) -> str:
    return path.replace("{workspace}", workspace).replace("{repo_slug}", repo or "")


async def _probe(client: Client, op: Operation, workspace: str, repo: str | None) -> ProbeResult:
    if op.per_repository and not repo:
        return ProbeResult(op.label, "skipped", reason="no repository to read it on")
    try:
        reply = await client.get(_fill(op.path, workspace, repo), {"pagelen": 1})
    except ApiFailure as exc:
        return ProbeResult(op.label, "failed", reason=exc.reason, repository=repo)
    return classify(op.label, reply, repo)


def _auth(credential: Credential, token: str | None) -> httpx.Auth:
    if credential.kind is Kind.API_TOKEN:
        return httpx.BasicAuth(credential.email or "", credential.secret)
    return BearerAuth(token or credential.secret)


async def oauth_token(config: Config, credential: Credential, evidence: ScopeEvidence, client: Client) -> str:
    """Client-credentials grant: the consumer's key and secret buy a Bearer token."""
    auth = httpx.BasicAuth(credential.client_id or "", credential.secret)
    try:
        reply = await client.post_form(config.oauth_token_url, {"grant_type": "client_credentials"}, auth)
    except ApiFailure as exc:
        raise ApiUnavailable(f"The OAuth token endpoint could not be reached: {exc.reason}.") from None
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status in (400, 401) or (reply.ok and not body.get("access_token")):
        raise CredentialError(
            f"Bitbucket refused the OAuth consumer's client credentials ({body.get('error', reply.status)}).",
            "Check BITBUCKET_OAUTH_CLIENT_ID (the consumer's Key) and BITBUCKET_OAUTH_CLIENT_SECRET; the "
            "consumer must be private ('This is a private consumer') to allow the client-credentials grant.",
        )
    if not reply.ok:
        raise ApiUnavailable(f"The OAuth token endpoint answered {reply.status}.")
    evidence.learn(scopes.parse_list(body.get("scopes")), "OAuth token response")
    return str(body["access_token"])


def _rejected(credential: Credential) -> CredentialError:
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


async def authenticate(client: Client, credential: Credential, workspace: str) -> tuple[Identity, list[ProbeResult]]:
    # Side by side: the two answers are independent, and a round trip saved is ~5% of a large run.
    user, space = await asyncio.gather(
        _required(client, "/user", "authenticate"), _required(client, f"/workspaces/{workspace}", "read the workspace")
    )
    if user.status == 401:
        raise _rejected(credential)
    identity = Identity(None, None)
    if user.ok and isinstance(user.body, dict):
        identity = Identity(
            user.body.get("display_name") or user.body.get("username") or user.body.get("nickname"),
            user.body.get("account_id"),
        )
    if space.status == 401:
        raise _rejected(credential)
    if space.status == 404:
        raise CredentialError(
            f"Workspace '{workspace}' was not found, or this credential cannot see it.",
            "Check WORKSPACE (the ID in bitbucket.org/<workspace>/). An access token only sees the "
            "workspace it was created in; a user must be a member of the workspace.",
        )
    return identity, [classify("GET /user", user), classify("GET /workspaces/{workspace}", space)]


def _permissions(values: list[dict]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in values:
        name = ((item.get("repository") or {}).get("full_name") or "").lower()
        if name and item.get("permission") in PERMISSIONS:
            found[name] = item["permission"]
    return found


def _token_permission(granted: set[str] | None) -> str:
    held = scopes.expand(granted or (), scopes.CLASSIC)
    if "repository:admin" in held:
        return "admin"
    if "repository:write" in held:
        return "write"
    return "read" if granted is not None else "unknown"


class InventoryTask:
    """Lists repositories and permissions side by side and names a representative repository
    as soon as the first pages are in, so that the live reads need not wait for the rest."""

    def __init__(self, client: Client, config: Config, evidence: ScopeEvidence, kind: Kind):
        self.client, self.config, self.evidence, self.kind = client, config, evidence, kind
        self.representative: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._first: dict[str, Reply] = {}

    def _first_page(self, which: str, reply: Reply) -> None:
        self._first[which] = reply
        if len(self._first) == 2 and not self.representative.done():
            self.representative.set_result(self._pick())

    def _pick(self) -> str | None:
        if self.config.repositories:
            return self.config.repositories[0]
        repos = [v.get("slug") for v in self._values("repos") if v.get("slug")]
        admin = [
            ((v.get("repository") or {}).get("full_name") or "").rpartition("/")[2]
            for v in self._values("perms")
            if v.get("permission") == "admin"
        ]
        for slug in admin:
            if slug in repos:
                return slug
        return repos[0] if repos else (admin[0] if admin else None)

    def _values(self, which: str) -> list[dict]:
        reply = self._first.get(which)
        return list(reply.body.get("values") or []) if reply and reply.ok and isinstance(reply.body, dict) else []

    async def run(self) -> Inventory:
        ws = self.config.workspace
        try:
            (listing, repos), (perm_reply, perms) = await asyncio.gather(
                self.client.collect(
                    f"/repositories/{ws}", {"fields": REPO_FIELDS}, lambda r: self._first_page("repos", r)
                ),
                self.client.collect(
                    f"/user/workspaces/{ws}/permissions/repositories",
                    {"fields": PERM_FIELDS},
                    lambda r: self._first_page("perms", r),
                ),
            )
        except ApiFailure as exc:
            return Inventory(ProbeResult("GET /repositories/{workspace}", "failed", reason=exc.reason))
        finally:
            self._settle()
        return self._build(classify("GET /repositories/{workspace}", listing), repos, perm_reply, perms)

    def _settle(self) -> None:
        if not self.representative.done():
            self.representative.set_result(self._pick())

    def _build(self, listing: ProbeResult, repos: list[dict], perm_reply: Reply, perms: list[dict]) -> Inventory:
        known, default, source = _permissions(perms), "read", "repository permissions API"
        if not perm_reply.ok and self.kind is Kind.ACCESS_TOKEN:  # a token has no user to list them for
            known, default, source = {}, _token_permission(self.evidence.granted), "access token scopes"
        elif not perm_reply.ok:
            known, default, source = {}, "unknown", f"not readable: {perm_reply.message}"
        inventory = Inventory(listing, permissions_source=source)
        wanted = set(self.config.repositories)
        for item in repos:
            slug, full = item.get("slug") or "", (item.get("full_name") or "")
            if wanted and slug.lower() not in wanted:
                continue
            inventory.repositories.append(Repo(slug, full, known.get(full.lower(), default)))
        seen = {r.slug.lower() for r in inventory.repositories}
        inventory.not_visible = (
            [s for s in self.config.repositories if s not in seen] if listing.outcome == "ok" else []
        )
        return inventory


def _probe_operations(catalog: Catalog, credential: Credential) -> list[Operation]:
    done = {"GET /user", "GET /workspaces/{workspace}"}
    ops = []
    for category in catalog.categories:
        if category.retired:
            continue
        for op in category.probes:
            if op.label in done:
                continue
            if credential.kind is Kind.ACCESS_TOKEN and not op.available_to_access_tokens():
                continue
            done.add(op.label)
            ops.append(op)
    return ops


async def _scope_reveal(client: Client, evidence: ScopeEvidence, workspace: str, repo: str | None) -> None:
    if evidence.granted is not None or not repo:
        return
    with contextlib.suppress(ApiFailure):  # only a chance to learn more; the live reads stand alone
        await client.get(_fill(SCOPE_REVEAL, workspace, repo), {"pagelen": 1})


async def gather_evidence(
    config: Config, credential: Credential, catalog: Catalog, started: float, on_secret: Callable[[str], None]
) -> Evidence:
    evidence = ScopeEvidence()
    client = Client(
        config.api_url,
        None,
        concurrency=config.concurrency,
        deadline=started + config.timeout,
        observer=evidence.observe,
        # One slow answer must not eat the whole TIMEOUT: each attempt gets a share of it.
        request_timeout=min(30.0, max(2.0, config.timeout / 4)),
    )
    async with client:
        token = await oauth_token(config, credential, evidence, client) if credential.kind is Kind.OAUTH else None
        if token:
            on_secret(token)
        client.authorize(_auth(credential, token))
        return await _survey(client, config, credential, catalog, evidence, token, started)


async def _survey(
    client: Client,
    config: Config,
    credential: Credential,
    catalog: Catalog,
    evidence: ScopeEvidence,
    token: str | None,
    started: float,
) -> Evidence:
    ws = config.workspace
    identity, first_probes = await authenticate(client, credential, ws)
    inventory_task = InventoryTask(client, config, evidence, credential.kind)
    inventory_job = asyncio.create_task(inventory_task.run())
    repo = await inventory_task.representative
    ops = _probe_operations(catalog, credential)
    results = await asyncio.gather(
        *(_probe(client, op, ws, repo) for op in ops),
        ls_remote(
            config.git_url,
            ws,
            repo,
            credential.git_username,
            token or credential.secret,
            limit=max(1.0, min(60.0, client.remaining())),
        ),
        _scope_reveal(client, evidence, ws, repo),
    )
    inventory = await inventory_job
    probes: dict[str, Any] = {p.operation: p for p in first_probes}
    probes.update({p.operation: p for p in results[: len(ops)]})
    return Evidence(
        credential,
        ws,
        identity,
        evidence,
        inventory,
        probes,
        results[len(ops)],
        client.traffic,
        time.monotonic() - started,
    )
