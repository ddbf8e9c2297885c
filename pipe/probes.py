"""What the credential can really do: authentication, scopes, repositories, live reads, git.

Everything here only reads. Results are plain data (Evidence) for the assessment.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
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
from pipe.shapes import (
    ErrorPayload,
    ShapeError,
    error_payload,
    expect_dict,
    expect_list,
    expect_one_of,
    expect_str,
    optional,
    page,
    place_of,
    short,
    summary,
)
from pipe.variables import Config

PERMISSIONS = ("admin", "write", "read")
# Bitbucket's repository slugs: they go into API paths and git URLs, so nothing else is used.
SLUG = re.compile(r"[A-Za-z0-9._-]{1,128}")
TOKEN_TEXT = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII, no spaces: a header value
TOKEN_WORD = re.compile(r"[a-z_]{1,40}")  # an OAuth error code: invalid_client, ...
REPO_FIELDS = "size,page,pagelen,next,values.slug,values.full_name,values.project.key"
PERM_FIELDS = "size,page,pagelen,next,values.permission,values.repository.full_name"
# An operation whose scope a backup credential rarely holds: its 403 lists every granted scope.
SCOPE_REVEAL = "/repositories/{workspace}/{repo_slug}/pipelines-config/runners"


@dataclass
class ScopeEvidence:
    granted: set[str] | None = None
    sources: list[str] = field(default_factory=list)
    credential_type: str | None = None
    # Answers that would have named granted scopes but were not in Bitbucket's shape: not
    # used, and named wherever the granted scopes were needed.
    problems: list[str] = field(default_factory=list)

    def learn(self, found: list[str] | tuple[str, ...], source: str) -> None:
        found = [s for s in found if s.strip()]
        if not found:
            return
        self.granted = (self.granted or set()) | set(found)
        if source not in self.sources:
            self.sources.append(source)

    def doubt(self, problem: ShapeError) -> None:
        if str(problem) not in self.problems:
            self.problems.append(str(problem))

    def observe(self, response: httpx.Response) -> None:
        """Client hook, headers only: every answer may name the granted scopes. Header values are
        always text; unknown scope names are kept and shown (new families appear every year).
        A 403's detail is read from its Reply, where its shape is checked (see `learn_from`)."""
        self.credential_type = short(response.headers.get("x-credential-type", "")) or self.credential_type
        self.learn(scopes.parse_list(response.headers.get("x-oauth-scopes")), "x-oauth-scopes header")

    def learn_from(self, payload: ErrorPayload) -> None:
        if payload.granted is not None:
            self.learn(payload.granted, "403 error detail")


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
    # Entries of the permission list that were not in Bitbucket's shape: the permissions
    # learnt are then not trusted to be complete (see assessment._admin).
    problems: list[str] = field(default_factory=list)

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


def _json(reply: Reply, endpoint: str) -> Any:
    """The parsed body, or ShapeError when there is none to read (the client never keeps a body
    that is not JSON: only its media type is named)."""
    if reply.body is None:
        media, nbytes = getattr(reply, "content_type", ""), getattr(reply, "nbytes", 0)
        kind = "empty" if not nbytes else "null" if "json" in media else f"{media}, not JSON"
        raise ShapeError(endpoint, f"the answer is {kind}, expected a JSON object")
    return reply.body


def _message(reply: Reply, payload: ErrorPayload) -> str:
    """Bitbucket's message, else the status (and the media type of a body that was not JSON)."""
    if payload.message:
        return payload.message
    media = getattr(reply, "content_type", "")
    not_json = reply.body is None and getattr(reply, "nbytes", 0) and "json" not in media
    return f"HTTP {reply.status}" + (f" ({media}, not JSON)" if not_json else "")


def classify(
    operation: str,
    reply: Reply,
    repository: str | None = None,
    endpoint: str | None = None,
    evidence: ScopeEvidence | None = None,
) -> ProbeResult:
    """What one answer proves. A 2xx proves the read only when it is a JSON object (every
    endpoint read answers one); an error is judged by its status and Bitbucket's error payload.
    An answer in another shape proves nothing: outcome `failed`, naming the endpoint."""
    endpoint = endpoint or operation
    try:
        if reply.ok:
            optional(expect_dict(_json(reply, endpoint), endpoint), "values", expect_list, endpoint)
            return ProbeResult(operation, "ok", reply.status, repository=repository)
        payload = error_payload(reply.body, endpoint)
    except ShapeError as exc:
        return ProbeResult(operation, "failed", reply.status, reason=str(exc), repository=repository)
    if evidence is not None and reply.status == 403:
        evidence.learn_from(payload)
    if reply.status == 403 and payload.required:
        return ProbeResult(operation, "scope", 403, payload.required, _message(reply, payload), repository)
    outcome = {403: "permission", 404: "not-found", 410: "gone"}.get(reply.status, "failed")
    return ProbeResult(operation, outcome, reply.status, reason=_message(reply, payload), repository=repository)


def _fill(path: str, workspace: str, repo: str | None) -> str:
    return path.replace("{workspace}", workspace).replace("{repo_slug}", repo or "")


async def _probe(
    client: Client, op: Operation, workspace: str, repo: str | None, evidence: ScopeEvidence | None = None
) -> ProbeResult:
    if op.per_repository and not repo:
        return ProbeResult(op.label, "skipped", reason="no repository to read it on")
    path = _fill(op.path, workspace, repo)
    try:
        reply = await client.get(path, {"pagelen": 1})
    except ApiFailure as exc:
        return ProbeResult(op.label, "failed", reason=exc.reason, repository=repo)
    return classify(op.label, reply, repo, f"GET {path}", evidence)


def _auth(credential: Credential, token: str | None) -> httpx.Auth:
    if credential.kind is Kind.API_TOKEN:
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


async def oauth_token(config: Config, credential: Credential, evidence: ScopeEvidence, client: Client) -> str:
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
        token = _access_token(_json(reply, endpoint), endpoint)
    except ShapeError as exc:
        raise ApiUnavailable(f"The OAuth token endpoint's answer cannot be used: {exc}.") from None
    for key in ("scope", "scopes"):  # `scope` since 2026-05-04, `scopes` before: both are read
        try:
            evidence.learn(scopes.parse_list(optional(reply.body, key, expect_str, endpoint)), "OAuth token response")
        except ShapeError as exc:
            evidence.doubt(exc)
    return token


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


def _identity(reply: Reply) -> Identity:
    """Display text only: a name of any other type is not used, and never fails the run (GET /user
    itself is judged by `classify`). Strings stay strings; the reports neutralise them."""
    body = reply.body if reply.ok and isinstance(reply.body, dict) else {}
    names = (body.get(key) for key in ("display_name", "username", "nickname"))
    user = next((short(name) for name in names if isinstance(name, str) and name.strip()), None)
    account = body.get("account_id")
    return Identity(user, short(account) if isinstance(account, str) and account.strip() else None)


async def authenticate(
    client: Client, credential: Credential, workspace: str, evidence: ScopeEvidence | None = None
) -> tuple[Identity, list[ProbeResult]]:
    # Side by side: the two answers are independent, and a round trip saved is ~5% of a large run.
    space_path = f"/workspaces/{workspace}"
    user, space = await asyncio.gather(
        _required(client, "/user", "authenticate"), _required(client, space_path, "read the workspace")
    )
    if user.status == 401:
        raise _rejected(credential)
    if space.status == 401:
        raise _rejected(credential)
    if space.status == 404:
        raise CredentialError(
            f"Workspace '{workspace}' was not found, or this credential cannot see it.",
            "Check WORKSPACE (the ID in bitbucket.org/<workspace>/). An access token only sees the "
            "workspace it was created in; a user must be a member of the workspace.",
        )
    return _identity(user), [
        classify("GET /user", user, endpoint="GET /user", evidence=evidence),
        classify("GET /workspaces/{workspace}", space, endpoint=f"GET {space_path}", evidence=evidence),
    ]


def _repository(item: Any, endpoint: str, place: str) -> tuple[str, str]:
    """(slug, full_name) of one item of the repository list; the slug goes into URLs."""
    item = expect_dict(item, endpoint, place)
    slug = expect_str(item.get("slug"), endpoint, place_of(place, "slug"), empty=False)
    if not SLUG.fullmatch(slug):
        raise ShapeError(endpoint, f"'{place_of(place, 'slug')}' is not a repository slug")
    return slug, expect_str(item.get("full_name"), endpoint, place_of(place, "full_name"), empty=False)


def _permission_of(item: Any, endpoint: str, place: str) -> str:
    """The full_name one item of the permission list is about."""
    repository = expect_dict(
        expect_dict(item, endpoint, place).get("repository"), endpoint, place_of(place, "repository")
    )
    return expect_str(repository.get("full_name"), endpoint, place_of(place, "repository.full_name"), empty=False)


def _readable(items: list[Any], parse: Callable[[Any, str, str], Any], endpoint: str) -> tuple[list[Any], list[str]]:
    """The items `parse` accepts, and what was wrong with the others."""
    found, problems = [], []
    for index, item in enumerate(items):
        try:
            found.append(parse(item, endpoint, place_of("values", index)))
        except ShapeError as exc:
            problems.append(str(exc))
    return found, problems


def _permissions(items: list[Any], endpoint: str) -> tuple[dict[str, str], list[str]]:
    """full_name (lower case) -> admin | write | read | unknown. An unknown permission word, or
    two different words for one repository, is `unknown` for it: never read, never admin."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for index, item in enumerate(items):
        place = place_of("values", index)
        try:
            name = _permission_of(item, endpoint, place).lower()
        except ShapeError as exc:
            problems.append(str(exc))
            continue
        try:
            word = expect_one_of(item.get("permission"), PERMISSIONS, endpoint, place_of(place, "permission"))
        except ShapeError as exc:
            problems.append(str(exc))
            word = "unknown"
        if found.get(name, word) != word:
            problems.append(f"{endpoint}: '{place}' names a repository already listed with another permission")
            word = "unknown"
        found[name] = word
    return found, problems


def _token_permission(granted: set[str] | None) -> str:
    held = scopes.expand(granted or (), scopes.CLASSIC)
    if "repository:admin" in held:
        return "admin"
    if "repository:write" in held:
        return "write"
    return "read" if granted is not None else "unknown"


@dataclass
class Listing:
    """One paged collection as read: its first answer and every item, or why it could not be read."""

    endpoint: str
    reply: Reply | None = None
    values: list[Any] = field(default_factory=list)
    failure: str | None = None


class InventoryTask:
    """Lists repositories and permissions side by side and names a representative repository
    as soon as the first pages are in, so that the live reads need not wait for the rest."""

    def __init__(self, client: Client, config: Config, evidence: ScopeEvidence, kind: Kind):
        self.client, self.config, self.evidence, self.kind = client, config, evidence, kind
        self.representative: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._first: dict[str, tuple[str, list[Any]]] = {}  # which -> (endpoint, first page's items)

    def _first_page(self, which: str, endpoint: str, reply: Reply) -> None:
        """The client's on_first hook. The page's shape is checked here, before the client reads
        `size` or `next` from it: a ShapeError ends the listing (see _collect)."""
        items: list[Any] = []
        try:
            if reply.ok:
                items = page(_json(reply, endpoint), endpoint).values
        finally:
            self._first[which] = (endpoint, items)
            if len(self._first) == 2 and not self.representative.done():
                self.representative.set_result(self._pick())

    def _pick(self) -> str | None:
        if self.config.repositories:
            return self.config.repositories[0]
        repos = [slug for slug, _ in self._parsed("repos", _repository)]
        endpoint, items = self._first.get("perms", ("", []))
        names, _ = _permissions(items, endpoint)
        admin = [n.rpartition("/")[2] for n, word in names.items() if word == "admin"]
        for slug in admin:
            if slug in repos:
                return slug
        admin = [slug for slug in admin if SLUG.fullmatch(slug)]
        return repos[0] if repos else (admin[0] if admin else None)

    def _parsed(self, which: str, parse: Callable[[Any, str, str], Any]) -> list[Any]:
        endpoint, items = self._first.get(which, ("", []))
        return _readable(items, parse, endpoint)[0]

    async def _collect(self, which: str, path: str, fields: str) -> Listing:
        endpoint = f"GET {path}"
        try:
            reply, values = await self.client.collect(
                path, {"fields": fields}, lambda r: self._first_page(which, endpoint, r)
            )
        except ApiFailure as exc:
            return Listing(endpoint, failure=exc.reason)
        except ShapeError as exc:
            return Listing(endpoint, failure=str(exc))
        return Listing(endpoint, reply, list(values))

    async def run(self) -> Inventory:
        ws = self.config.workspace
        try:
            repos, perms = await asyncio.gather(
                self._collect("repos", f"/repositories/{ws}", REPO_FIELDS),
                self._collect("perms", f"/user/workspaces/{ws}/permissions/repositories", PERM_FIELDS),
            )
        finally:
            self._settle()
        return self._build(repos, perms)

    def _settle(self) -> None:
        if not self.representative.done():
            self.representative.set_result(self._pick())

    def _known(self, perms: Listing) -> tuple[dict[str, str], str, str, list[str]]:
        """(permission by full_name, the permission of repositories not listed, source, problems)."""
        if perms.failure is not None or perms.reply is None:
            failure = perms.failure or "no answer"
            return {}, "unknown", f"not readable: {failure}", [failure]
        reply = perms.reply
        if not reply.ok and self.kind is Kind.ACCESS_TOKEN:  # a token has no user to list them for
            return {}, _token_permission(self.evidence.granted), "access token scopes", []
        if not reply.ok:
            why = classify("", reply, endpoint=perms.endpoint).reason
            return {}, "unknown", f"not readable: {why}", []
        known, problems = _permissions(perms.values, perms.endpoint)
        # A broken entry may have been any repository's: the unlisted ones are then not assumed read.
        return known, "unknown" if problems else "read", "repository permissions API", problems

    def _build(self, repos: Listing, perms: Listing) -> Inventory:
        label = "GET /repositories/{workspace}"
        if repos.failure is not None or repos.reply is None:
            return Inventory(ProbeResult(label, "failed", reason=repos.failure or "no answer"))
        listing = classify(label, repos.reply, endpoint=repos.endpoint, evidence=self.evidence)
        found, problems = _readable(repos.values, _repository, repos.endpoint)
        if problems:  # the list is not whole: what it proves is not trusted either
            listing = ProbeResult(label, "failed", repos.reply.status, reason=summary(problems))
        known, default, source, trouble = self._known(perms)
        inventory = Inventory(listing, permissions_source=source, problems=trouble)
        wanted = set(self.config.repositories)
        for slug, full in found:
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
    path = _fill(SCOPE_REVEAL, workspace, repo)
    with contextlib.suppress(ApiFailure):  # only a chance to learn more; the live reads stand alone
        reply = await client.get(path, {"pagelen": 1})
        if reply.status == 403:
            try:
                evidence.learn_from(error_payload(reply.body, f"GET {path}"))
            except ShapeError as exc:
                evidence.doubt(exc)


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
    identity, first_probes = await authenticate(client, credential, ws, evidence)
    inventory_task = InventoryTask(client, config, evidence, credential.kind)
    inventory_job = asyncio.create_task(inventory_task.run())
    repo = await inventory_task.representative
    ops = _probe_operations(catalog, credential)
    results = await asyncio.gather(
        *(_probe(client, op, ws, repo, evidence) for op in ops),
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
