"""Live reads: each probe operation of the catalog read once, `pagelen=1`, on the representative
repository. A result is kept under the catalog's own Operation object (see survey.Evidence).

Some reads need admin permission by Bitbucket's rule rather than by their scope (webhooks: the
scope is not an admin one). Whether the rule holds is not certain, so such a read is made once
more on a repository the credential is not admin on (`without_admin`): its answer decides."""

from __future__ import annotations

from pipe.catalog import Catalog, Operation
from pipe.client import ApiFailure, Client
from pipe.credential import Kind
from pipe.outcomes import Outcome
from pipe.survey.evidence import ProbeResult, classify
from pipe.survey.grants import ScopeEvidence, fill


def plan(catalog: Catalog, kind: Kind) -> list[Operation]:
    """The probe operations this credential kind can hold, in catalog order, each once."""
    ops: list[Operation] = []
    for category in catalog.categories:
        if category.retired:
            continue
        for op in category.probes:
            if kind is Kind.ACCESS_TOKEN and not op.available_to_access_tokens():
                continue
            if op not in ops:
                ops.append(op)
    return ops


def admin_by_rule(op: Operation) -> bool:
    """An admin read whose scopes are not admin scopes: its admin need is an assumption to test."""
    admin_scopes = [s for s in (*op.api_token, *(op.classic or ())) if s.startswith("admin:") or s.endswith(":admin")]
    return op.probe and op.admin and not admin_scopes


async def without_admin(
    client: Client,
    probes: dict[Operation, ProbeResult],
    workspace: str,
    repo: str | None,
    grants: ScopeEvidence,
) -> dict[Operation, ProbeResult]:
    """Each read admin only by rule, that answered 200 on the representative, read again on `repo`
    (one without admin): a 200 proves the rule does not hold, a 403 that it does."""
    if not repo:
        return {}
    ops = [op for op, result in probes.items() if admin_by_rule(op) and result.outcome is Outcome.OK]
    return {op: await read(client, op, workspace, repo, grants) for op in ops}


async def read(client: Client, op: Operation, workspace: str, repo: str | None, grants: ScopeEvidence) -> ProbeResult:
    if op.per_repository and not repo:
        return ProbeResult(Outcome.SKIPPED, reason="no repository to read it on")
    path = fill(op.path, workspace, repo)
    try:
        reply = await client.get(path, {"pagelen": 1})
    except ApiFailure as exc:
        return ProbeResult(Outcome.FAILED, reason=exc.reason, repository=repo)
    return classify(reply, f"GET {path}", repo, grants)
