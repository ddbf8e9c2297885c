"""Live reads: each probe operation of the catalog read once, `pagelen=1`, on the representative
repository. A result is kept under the catalog's own Operation object (see survey.Evidence)."""

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


async def read(client: Client, op: Operation, workspace: str, repo: str | None, grants: ScopeEvidence) -> ProbeResult:
    if op.per_repository and not repo:
        return ProbeResult(Outcome.SKIPPED, reason="no repository to read it on")
    path = fill(op.path, workspace, repo)
    try:
        reply = await client.get(path, {"pagelen": 1})
    except ApiFailure as exc:
        return ProbeResult(Outcome.FAILED, reason=exc.reason, repository=repo)
    return classify(reply, f"GET {path}", repo, grants)
