"""What the survey found, as plain data for the assessment and the report: Evidence and its parts.

`classify` is here too: it is the one place an answer of Bitbucket's becomes a ProbeResult.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipe.catalog import Operation
from pipe.client import Reply, Traffic
from pipe.credential import Credential
from pipe.outcomes import Outcome
from pipe.shapes import ErrorPayload, ShapeError, error_payload, expect_dict, expect_list, optional
from pipe.survey.git import GitResult
from pipe.survey.grants import ScopeEvidence


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    status: int | None = None
    required: tuple[str, ...] = ()
    reason: str = ""
    repository: str | None = None


@dataclass(frozen=True)
class Repo:
    slug: str
    full_name: str
    permission: str  # admin | write | read | unknown
    source: str = ""  # where the permission came from (see Inventory.permissions_source)


PERMISSIONS = ("admin", "write", "read", "unknown")


@dataclass
class Inventory:
    """The repositories the credential sees (those of REPOSITORIES when set) and its permission on
    them, as counts; only the repositories the report names are kept one by one (memory grows with
    them, not with the workspace)."""

    listing: ProbeResult  # the repository list itself
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PERMISSIONS, 0))
    # Every repository without admin (write or read), in full_name order. For an access token, whose
    # permission is the same on every repository it reaches, only examples (its fix is one scope).
    without_admin: list[Repo] = field(default_factory=list)
    examples: list[Repo] = field(default_factory=list)  # the first repositories listed
    permissions_source: str = "unknown"
    sources: dict[str, int] = field(default_factory=dict)  # where each permission came from -> how many
    workspace_role: str | None = None  # owner | create-project | collaborator | member, when learnt
    strategy: str = "filtered"  # filtered | full listing
    fallback: str = ""  # why the filtered shortcut was not trusted (strategy "full listing")
    not_visible: list[str] = field(default_factory=list)
    # Entries of the permission list that were not in Bitbucket's shape: the permissions
    # learnt are then not trusted to be complete (see assessment._admin).
    problems: list[str] = field(default_factory=list)

    def count(self, permission: str) -> int:
        return self.counts.get(permission, 0)


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
    # One result per live read, keyed by the catalog's own Operation. An operation the assessment
    # needs and finds no result for is `unknown`, naming it.
    probes: dict[Operation, ProbeResult]
    git: GitResult
    traffic: Traffic
    elapsed: float = 0.0
    # Reads whose admin permission is Bitbucket's rule rather than their scope's (webhooks), read
    # again on a repository the credential is not admin on: a 200 there proves admin is not needed.
    read_without_admin: dict[Operation, ProbeResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Unseen:
    """A workspace of several that the credential cannot see (404): its section of the report names
    it with the fix, and the other workspaces are still checked."""

    workspace: str
    message: str
    fix: str


def json_body(reply: Reply, endpoint: str) -> Any:
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


ERROR_OUTCOMES = {403: Outcome.PERMISSION, 404: Outcome.NOT_FOUND, 410: Outcome.GONE}


def classify(
    reply: Reply, endpoint: str, repository: str | None = None, grants: ScopeEvidence | None = None
) -> ProbeResult:
    """What one answer proves. A 2xx proves the read only when it is a JSON object (every
    endpoint read answers one); an error is judged by its status and Bitbucket's error payload.
    An answer in another shape proves nothing: outcome `failed`, naming the endpoint. A 403's
    granted scopes are learnt into `grants`."""
    try:
        if reply.ok:
            optional(expect_dict(json_body(reply, endpoint), endpoint), "values", expect_list, endpoint)
            return ProbeResult(Outcome.OK, reply.status, repository=repository)
        payload = error_payload(reply.body, endpoint)
    except ShapeError as exc:
        return ProbeResult(Outcome.FAILED, reply.status, reason=str(exc), repository=repository)
    if grants is not None and reply.status == 403:
        grants.learn_from(payload)
    if reply.status == 403 and payload.required:
        return ProbeResult(Outcome.SCOPE, 403, payload.required, _message(reply, payload), repository)
    outcome = ERROR_OUTCOMES.get(reply.status, Outcome.FAILED)
    return ProbeResult(outcome, reply.status, reason=_message(reply, payload), repository=repository)
