"""The report document: one plain dict that JSON, Markdown, JUnit, Code Insights and the
console all render. Its shape is the JSON report's, fixed by schema/report.schema.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipe import __version__
from pipe.assessment import UNSEEN, Assessment, CategoryResult, Side, worst
from pipe.credential import Credential
from pipe.errors import ExitCode, Failure
from pipe.guidance import About, Item
from pipe.outcomes import Verdict
from pipe.profiles import Profile
from pipe.redaction import GRAM, Redactor, bounded
from pipe.survey.evidence import Evidence, Unseen

PERMISSIONS = ("admin", "write", "read", "unknown")
# What one string and one list of the document may hold. No honest string comes near it (a
# server's message is kept to 300 characters, a full name to a workspace ID and a slug), and no
# honest list either (a listing is read to 100,000 items at most).
TEXT_LIMIT = 2_000
ITEMS_LIMIT = 100_000
# Keys whose values are words of the report's own vocabulary (schema enums, catalog ids,
# versions): never redacted, so that a secret equal to one of them ("ready", issued by a
# hostile OAuth server) cannot change the verdict or break a renderer. Free text is redacted.
VOCABULARY = frozenset(
    {
        "verdict",
        "exit_code",
        "kind",
        "scopes_source",
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
        "strategy",
        "permission",
        "workspace_role",
        "auth_scheme",
    }
)


def finish(doc: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The document every output is rendered from: one pass that redacts the free text and
    neutralises every string (lone surrogates replaced, control, ANSI and bidi characters
    made visible), so that whatever a server sent is safe in JSON, the log, Markdown and XML.
    Strings and lists are bounded first, so that this pass and the renderers (after TIMEOUT's
    deadline) never grow with what a server sent; a little more text is kept for the redaction
    than is shown, so that a run of a secret at the first cut is masked or cut off by the second."""
    scrubbed = redactor.scrub(bounded(doc, TEXT_LIMIT + 2 * GRAM, ITEMS_LIMIT), keep=VOCABULARY)
    return bounded(scrubbed, TEXT_LIMIT, ITEMS_LIMIT)


def _text(value: Any) -> str | None:
    """A server's value where the report holds text: whatever JSON type it came as."""
    return None if value is None else str(value)


def _side(side: Side, required: bool) -> dict[str, Any]:
    return {
        "status": side.status.value,
        "required": required,
        "missing_scopes": side.missing_scopes,
        "affected_repositories": side.affected.count,
        "example_repositories": [str(r.full_name or r.slug) for r in side.affected.named[:3]],
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
        "affected_repositories": result.backup.affected.count,
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
        "auth_scheme": credential.auth_scheme,
    }


@dataclass(frozen=True)
class Section:
    """One workspace of the run: its evidence and assessment, or why it could not be seen."""

    workspace: str
    # Not in the repr: asyncio.run (3.11) formats its main task, result included, when it puts
    # back the SIGINT handler, and a whole inventory's repr is ~3 KB per repository.
    evidence: Evidence | None = field(default=None, repr=False)
    assessment: Assessment | None = field(default=None, repr=False)
    unseen: Unseen | None = None

    @property
    def verdict(self) -> Verdict:
        return self.assessment.verdict if self.assessment else UNSEEN


def _profile(profile: Profile | str) -> dict[str, Any]:
    """The profile's name and where it came from (built in, or a PROFILE_FILE and its path)."""
    if isinstance(profile, str):  # a run that ended before its profile was known
        return {"profile": profile, "profile_source": None, "profile_reference": None}
    return {"profile": profile.name, "profile_source": profile.source, "profile_reference": profile.reference}


def build(
    profile: Profile | str,
    credential: Credential | None,
    sections: list[Section],
    error: Failure | None = None,
) -> dict[str, Any]:
    """The document for a finished run (one section per workspace, the step's verdict the worst
    of theirs), or for one ended early by `error`."""
    if error:
        verdict = Verdict.ERROR if error.exit_code == ExitCode.CONFIGURATION else Verdict.INCONCLUSIVE
    else:
        verdict = worst(section.verdict for section in sections)
    checked = [s.evidence for s in sections if s.evidence]
    doc: dict[str, Any] = {
        "verdict": verdict.value,
        "exit_code": int(error.exit_code if error else verdict.exit_code),
        **_profile(profile),
        "credential": _credential(credential, checked[0] if checked else None) if credential else None,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipe_version": __version__,
        "error": {"message": error.message, "fix": error.fix, "problems": [vars(p) for p in error.problems]}
        if error
        else None,
    }
    if checked:
        # One client served every workspace: its requests and the run's time are the run's.
        doc["requests"] = checked[0].traffic.requests
        # Endpoints that still answered but are announced to go (Deprecation / Sunset headers).
        doc["deprecations"] = [vars(d) for d in checked[0].traffic.deprecations]
        doc["duration_seconds"] = round(max(e.elapsed for e in checked), 3)
    assessed = [s.assessment for s in sections if s.assessment]
    if assessed:
        doc["check_restore"] = assessed[0].check_restore
    # Advice about the credential and the profile is the same in every workspace: said once.
    about_run = (item for a in assessed for item in a.guidance if item.about is About.RUN)
    doc["guidance"] = [] if error else [_item(i) for i in dict.fromkeys(about_run)]
    doc["workspaces"] = [] if error else [_section(section) for section in sections]
    return doc


def _section(section: Section) -> dict[str, Any]:
    """A workspace's part of the report: the same fields whether the run checked one or many."""
    evidence, assessment, unseen = section.evidence, section.assessment, section.unseen
    doc: dict[str, Any] = {
        "workspace": section.workspace,
        "verdict": section.verdict.value,
        "exit_code": int(section.verdict.exit_code),
        "error": {"message": unseen.message, "fix": unseen.fix} if unseen else None,
    }
    if evidence:
        inventory = evidence.inventory
        doc["repositories"] = {
            "total": inventory.total,
            "by_permission": {p: inventory.count(p) for p in PERMISSIONS},
            "permissions_source": inventory.permissions_source,
            "sources": dict(inventory.sources),
            "workspace_role": inventory.workspace_role,
            "strategy": inventory.strategy,
            "fallback": inventory.fallback or None,
            "without_admin": [
                {"full_name": r.full_name, "permission": r.permission, "source": r.source}
                for r in inventory.without_admin
            ],
            "not_visible": inventory.not_visible,
        }
        doc["git"] = {
            "outcome": evidence.git.outcome.value,
            "repository": evidence.git.repository,
            "username": evidence.git.username,
            "reason": evidence.git.reason,
        }
    if assessment:
        doc["categories"] = [_category(r, assessment.guidance) for r in assessment.categories]
        doc["guidance"] = [_item(i) for i in assessment.guidance if i.about is About.WORKSPACE]
        doc["missing_scopes"] = [vars(a) for a in assessment.advice]
        doc["admin_gap"] = {
            "repositories": assessment.admin_gap.count,
            "examples": [str(r.full_name or r.slug) for r in assessment.admin_gap.named[:3]],
            "loses": assessment.admin_gap_loses,
        }
        doc["findings"] = assessment.findings
        doc["removals"] = [vars(r) for r in assessment.removals]
        budget = assessment.budget
        doc["rate_limit"] = {
            "requests_used": budget.requests_used,
            "hourly_limit": budget.hourly_limit,
            "share_of_hourly_limit": round(budget.share_of_hour, 4),
            "limit_source": budget.limit_source,
            "counted_per": budget.counted_per,
            "backup_requests_per_run": budget.backup_requests_per_run,
            "fits_in_an_hour": budget.fits_in_an_hour,
            "throttled": evidence.traffic.rate.throttled if evidence else 0,
        }
    return doc
