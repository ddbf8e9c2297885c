"""The report document: one plain dict that JSON, Markdown, JUnit, Code Insights and the
console all render. Its shape is the JSON report's, fixed by schema/report.schema.json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipe import __version__
from pipe.assessment import Assessment, CategoryResult, Side
from pipe.credential import Credential
from pipe.errors import ExitCode, Failure
from pipe.guidance import Item
from pipe.outcomes import Verdict
from pipe.redaction import Redactor
from pipe.survey.evidence import Evidence

PERMISSIONS = ("admin", "write", "read", "unknown")
# Keys whose values are words of the report's own vocabulary (schema enums, catalog ids,
# versions): never redacted, so that a secret equal to one of them ("ready", issued by a
# hostile OAuth server) cannot change the verdict or break a renderer. Free text is redacted.
VOCABULARY = frozenset(
    {
        "verdict",
        "exit_code",
        "kind",
        "backup",
        "restore",
        "status",
        "outcome",
        "id",
        "generated_at",
        "pipe_version",
        "needed",
        "variant",
        "severity",
        "layout",
    }
)


def finish(doc: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The document every output is rendered from: one pass that redacts the free text and
    neutralises every string (lone surrogates replaced, control, ANSI and bidi characters
    made visible), so that whatever a server sent is safe in JSON, the log, Markdown and XML."""
    return redactor.scrub(doc, keep=VOCABULARY)


def _text(value: Any) -> str | None:
    """A server's value where the report holds text: whatever JSON type it came as."""
    return None if value is None else str(value)


def _side(side: Side, required: bool) -> dict[str, Any]:
    return {
        "status": side.status.value,
        "required": required,
        "missing_scopes": side.missing_scopes,
        "affected_repositories": len(side.affected),
        "example_repositories": [str(r.full_name or r.slug) for r in side.affected[:3]],
        "reasons": side.reasons,
    }


def _needed(result: CategoryResult) -> str:
    """The table's one word for a category, the same in every format."""
    if result.category.retired:
        return "retired"
    return "required" if result.required_backup else "info"


def _category(result: CategoryResult, guidance: list[Item]) -> dict[str, Any]:
    category = result.category
    return {
        "id": category.id,
        "title": category.title,
        "covers": category.covers,
        "backup": result.backup.status.value,
        "restore": result.restore.status.value,
        "required": {"backup": result.required_backup, "restore": result.required_restore},
        "needed": _needed(result),
        "missing_scopes": result.backup.missing_scopes,
        "affected_repositories": len(result.backup.affected),
        "details": {
            "backup": _side(result.backup, result.required_backup),
            "restore": _side(result.restore, result.required_restore),
        },
        "retired": category.retired,
        "note": category.note,
        # The assessment's guidance items that name this category, in their order.
        "guidance": [item.text for item in guidance if category.id in item.categories],
    }


def _item(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "variant": item.variant,
        "severity": item.severity.value,
        "layout": item.layout.value,
        "text": item.text,
        "categories": list(item.categories),
    }


def _credential(credential: Credential, evidence: Evidence | None) -> dict[str, Any]:
    found = evidence.scopes if evidence else None
    return {
        "kind": credential.kind.value,
        "type": _text(found.credential_type) if found else None,
        "owner": (_text(evidence.identity.user) if evidence and evidence.identity.user else None),
        "scopes": sorted(str(s) for s in found.granted) if found and found.granted is not None else None,
        "scopes_source": list(found.sources) if found else [],
        "git_username": credential.git_username,
    }


def build(
    config_workspace: str,
    profile: str,
    credential: Credential | None,
    evidence: Evidence | None,
    assessment: Assessment | None,
    error: Failure | None = None,
) -> dict[str, Any]:
    """The document for a finished run, or for one ended early by `error`."""
    doc: dict[str, Any] = {
        "verdict": assessment.verdict.value
        if assessment
        else (Verdict.ERROR if error.exit_code == ExitCode.CONFIGURATION else Verdict.INCONCLUSIVE).value,
        "exit_code": int(assessment.exit_code if assessment else error.exit_code),
        "profile": profile,
        "workspace": config_workspace,
        "credential": _credential(credential, evidence) if credential else None,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipe_version": __version__,
        "error": {"message": error.message, "fix": error.fix, "problems": [vars(p) for p in error.problems]}
        if error
        else None,
    }
    if evidence:
        inventory = evidence.inventory
        doc["repositories"] = {
            "total": len(inventory.repositories),
            "by_permission": {p: inventory.count(p) for p in PERMISSIONS},
            "permissions_source": inventory.permissions_source,
            "not_visible": inventory.not_visible,
        }
        doc["git"] = {
            "outcome": evidence.git.outcome.value,
            "repository": evidence.git.repository,
            "username": evidence.git.username,
            "reason": evidence.git.reason,
        }
        doc["requests"] = evidence.traffic.requests
        doc["duration_seconds"] = round(evidence.elapsed, 3)
    if assessment:
        doc["check_restore"] = assessment.check_restore
        doc["categories"] = [_category(r, assessment.guidance) for r in assessment.categories]
        doc["guidance"] = [_item(i) for i in assessment.guidance]
        doc["missing_scopes"] = [vars(a) for a in assessment.advice]
        doc["admin_gap"] = {
            "repositories": len(assessment.admin_gap),
            "examples": [str(r.full_name or r.slug) for r in assessment.admin_gap[:3]],
            "loses": assessment.admin_gap_loses,
        }
        doc["findings"] = assessment.findings
        budget = assessment.budget
        doc["rate_limit"] = {
            "requests_used": budget.requests_used,
            "hourly_limit": budget.hourly_limit,
            "backup_requests_per_run": budget.backup_requests_per_run,
            "fits_in_an_hour": budget.fits_in_an_hour,
            "throttled": evidence.traffic.rate.throttled if evidence else 0,
        }
    return doc
