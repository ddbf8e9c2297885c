"""Compares what the credential can do (Evidence) with what the chosen profile needs.

Pure logic over plain data: no I/O, so every rule can be read here in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipe import guidance, scopes
from pipe.catalog import Catalog, Category, Operation
from pipe.credential import PAIRS, Kind
from pipe.errors import ExitCode
from pipe.guidance import Guidance, Item
from pipe.outcomes import GitOutcome, Outcome, Status, Verdict
from pipe.profiles import Profile
from pipe.shapes import summary
from pipe.survey.evidence import Evidence, Inventory, Repo

# Short names for the Status members (pipe/outcomes.py), read by every rule below.
OK, MISSING, RETIRED, NOT_APPLICABLE, UNKNOWN = (
    Status.OK,
    Status.MISSING,
    Status.RETIRED,
    Status.NOT_APPLICABLE,
    Status.UNKNOWN,
)
EXAMPLES = 3
FINDINGS = (
    "no-repositories",
    "scopes-unreadable",
    "git-failing",
    "app-password-git",
    "inventory-fallback",
)  # guidance ids report.json lists as findings
HOURLY_LIMIT = 1000  # repository data, per user or token (Bitbucket's documented default)
# Bitbucket's hourly limits (bitbucket-cloud.md section 4, support.atlassian.com "API request
# limits"): counted per user for API tokens, per OAuth consumer, per access token; only access
# tokens get scaled limits (1,000 + 10 per paid seat over 100, up to 10,000) and X-RateLimit-* headers.
COUNTED_PER = {
    Kind.API_TOKEN: "the user's",
    Kind.OAUTH: "the OAuth consumer's",
    Kind.ACCESS_TOKEN: "the access token's",
}
DOCUMENTED_LIMIT = {
    Kind.API_TOKEN: "Bitbucket's documented limit for API tokens (1,000 an hour per user)",
    Kind.OAUTH: "Bitbucket's documented limit for OAuth consumers (1,000 an hour)",
    Kind.ACCESS_TOKEN: (
        "Bitbucket's documented default for access tokens (1,000 an hour; scaled limits of up to 10,000 "
        "are announced in X-RateLimit-Limit, which was not sent)"
    ),
}
FULL_LISTING = "full listing"  # Inventory.strategy when a shortcut was not trusted


@dataclass(frozen=True)
class Affected:
    """The repositories something costs: how many, and the ones the report can name (all of them
    when `count == len(named)`; for "every repository" only the first listed, as examples)."""

    count: int = 0
    named: tuple[Repo, ...] = ()

    @classmethod
    def everywhere(cls, inventory: Inventory) -> Affected:
        return cls(inventory.total, tuple(inventory.examples))

    @classmethod
    def having(cls, inventory: Inventory, *permissions: str) -> Affected:
        """The repositories with one of `permissions` (only read and write ones are kept by name)."""
        named = tuple(r for r in inventory.without_admin if r.permission in permissions)
        return cls(sum(inventory.count(p) for p in permissions), named)

    def __or__(self, other: Affected) -> Affected:
        if not other.count:
            return self
        if not self.count:
            return other
        known = {r.slug for r in self.named}
        named = self.named + tuple(r for r in other.named if r.slug not in known)
        complete = len(self.named) == self.count and len(other.named) == other.count
        return Affected(len(named) if complete else max(self.count, other.count), named)


NOWHERE = Affected()


@dataclass
class Side:
    """Backup or restore of one category."""

    status: Status = OK
    missing_scopes: list[str] = field(default_factory=list)
    affected: Affected = NOWHERE
    reasons: list[str] = field(default_factory=list)

    def lack(self, reason: str, scopes_: list[str] = (), affected: Affected = NOWHERE) -> None:
        self.status = MISSING
        self.reasons.append(reason)
        self.missing_scopes = sorted(set(self.missing_scopes) | set(scopes_))
        self.affected = self.affected | affected

    def doubt(self, reason: str) -> None:
        if self.status is OK:
            self.status = UNKNOWN
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class CategoryResult:
    category: Category
    required_backup: bool
    required_restore: bool
    backup: Side
    restore: Side


@dataclass
class Advice:
    scope: str
    label: str
    where: str
    unblocks: list[str]  # category titles, " (restore)" for a restore
    affected_repositories: int
    required: bool
    restore_only: bool
    categories: list[str] = field(default_factory=list)  # the ids of the categories it unblocks

    @property
    def name(self) -> str:
        return self.scope if self.label == self.scope else f"{self.scope} ({self.label})"


@dataclass
class Budget:
    requests_used: int
    backup_requests_per_run: int
    hourly_limit: int
    fits_in_an_hour: bool
    limit_source: str = ""  # X-RateLimit-Limit, or Bitbucket's documented default
    counted_per: str = ""  # whose hour it is: the user's, the access token's, the OAuth consumer's

    @property
    def share_of_hour(self) -> float:
        """The requests this check used, as a share of the hourly limit (0.012 = 1.2 %)."""
        return self.requests_used / self.hourly_limit if self.hourly_limit else 0.0


@dataclass(frozen=True)
class Removed:
    """A 410 that named the platform change behind it, and what that change means where known."""

    change: str  # "CHANGE-3071"
    endpoint: str  # "GET /repositories/acme/x/issues", or "git over HTTPS (acme/x)"
    meaning: str | None  # catalog.yml `changes`; None for an id the catalog does not know
    announcement_url: str | None


@dataclass
class Assessment:
    verdict: Verdict
    exit_code: ExitCode
    profile: str
    check_restore: bool
    categories: list[CategoryResult]
    advice: list[Advice]
    admin_gap: Affected
    admin_gap_loses: list[str]
    findings: list[str]
    budget: Budget
    guidance: list[Item]  # every piece of advice, chosen and filled once (pipe/guidance.yml)
    removals: list[Removed] = field(default_factory=list)  # 410s naming a changelog id


def _applicable(ops: tuple[Operation, ...], kind: Kind) -> list[Operation]:
    if kind is Kind.ACCESS_TOKEN:
        return [op for op in ops if op.available_to_access_tokens()]
    return list(ops)


def _scopes(ops: list[Operation], vocabulary: str) -> set[str]:
    return {s for op in ops for s in op.scopes_for(vocabulary)}


def _proven(catalog: Catalog, evidence: Evidence) -> set[str]:
    """Scopes a live read answered 200 for: a scope is the credential's, whichever read shows it."""
    kind = evidence.credential.kind
    ops = [op for c in catalog.categories if not c.retired for op in _applicable(c.read, kind)]
    return {
        scope
        for op in ops
        if (result := evidence.probes.get(op)) is not None and result.outcome is Outcome.OK
        for scope in op.scopes_for(kind.vocabulary)
    }


def _backup(category: Category, evidence: Evidence, repos: Inventory, proven_anywhere: set[str]) -> Side:
    side, kind = Side(), evidence.credential.kind
    ops = _applicable(category.read, kind)
    if not ops:
        side.status = NOT_APPLICABLE
        side.reasons.append(f"{kind.title}s cannot hold this permission; it needs an API token or OAuth consumer")
        return side
    affected = Affected.everywhere(repos) if any(op.per_repository for op in ops) else NOWHERE
    for op in ops:
        if not op.probe:
            continue  # read by a backup, not by the survey: judged from the granted scopes below
        result = evidence.probes.get(op)
        if result is None:  # never passed over: a read the survey did not make proves nothing
            side.doubt(f"{op.label} has no result: the survey did not read it")
            continue
        if result.outcome is Outcome.SCOPE:
            side.lack(f"{op.label} answered 403: scope missing", list(result.required), affected)
        elif result.outcome is Outcome.PERMISSION and op.admin and _called_admin(repos, result.repository):
            # The repository lists and the server's own answer disagree: neither can be trusted.
            side.doubt(
                f"{op.label} refused repository '{result.repository}' (403), which the repository lists "
                "call admin: the permissions they give are not trusted"
            )
        elif result.outcome in (Outcome.OK, Outcome.SKIPPED) or (result.outcome is Outcome.PERMISSION and op.admin):
            pass  # a 200 proves its scopes (proven_anywhere); an admin 403 is counted from the permissions
        else:
            side.doubt(f"{op.label} could not be read: {result.reason or result.outcome}")
    _judge_scopes(side, ops, evidence, proven_anywhere, affected, BACKUP_UNREVEALED)
    if _admin_needed(ops, evidence):
        _admin(side, repos)
    return side


def _called_admin(inventory: Inventory, slug: str | None) -> bool:
    """Whether the inventory says the credential is admin on `slug`: every repository without
    admin is named there, and none is unknown."""
    if not slug or not inventory.total or inventory.count("unknown"):
        return False
    lacking = inventory.count("read") + inventory.count("write")
    if lacking != len(inventory.without_admin):
        return False  # not every one is named: this one may be among the others
    return slug.lower() not in {r.slug.lower() for r in inventory.without_admin}


BACKUP_UNREVEALED = "no live read proved it, and Bitbucket did not reveal the credential's scopes"
RESTORE_UNREVEALED = (
    "Bitbucket did not reveal the credential's scopes, so write access cannot be judged without writing"
)


def _refused(evidence: Evidence) -> set[str]:
    """Scopes a live read's 403 named as required: proven absent, whatever else is known."""
    return {s for r in evidence.probes.values() if r.outcome is Outcome.SCOPE for s in r.required}


def _judge_scopes(
    side: Side, ops: list[Operation], evidence: Evidence, proven: set[str], affected: Affected, unrevealed: str
) -> None:
    """The scopes `ops` need that no live read proved (`proven`: every scope a 200 showed held).
    Missing when a live read's 403 named it, or when a source that names every granted scope left
    it out; a 403's `granted` list may name only some, so a scope absent from it is unknown, naming
    the source, never missing on a guess (issue 11)."""
    found, kind = evidence.scopes, evidence.credential.kind
    for op in ops:
        if not op.documented_for(kind.vocabulary):
            side.doubt(
                f"no {kind.title} scope is documented for {op.label}, only the API-token scope "
                f"{', '.join(op.api_token)}: this credential cannot be judged for it"
            )
    ops = [op for op in ops if op.documented_for(kind.vocabulary)]
    held = set(found.granted or ()) | proven
    lacking = [s for s in scopes.missing(_scopes(ops, kind.vocabulary), held, kind.vocabulary)]
    lacking = [s for s in lacking if s not in side.missing_scopes]  # this side's own 403 named it already
    refused = [s for s in lacking if s in _refused(evidence)]
    if refused:
        side.lack("a live read's 403 named it as required", refused, affected)
        lacking = [s for s in lacking if s not in refused]
    if not lacking:
        return
    sources = ", ".join(found.sources)
    if found.granted is not None and found.exhaustive:
        side.lack(f"the granted scopes do not include it (learnt from: {sources})", lacking, affected)
    elif found.granted is not None:
        side.doubt(
            f"{', '.join(lacking)}: not proven; no live read proved it, and the granted scopes were learnt "
            f"only from the {sources}, which may not name every scope"
        )
    else:
        side.doubt(f"{', '.join(lacking)}: not proven; {unrevealed}")
    if found.problems:
        side.doubt(f"the granted scopes could not be learnt: {summary(found.problems)}")


def _admin_needed(ops: list[Operation], evidence: Evidence) -> bool:
    """Whether the admin permission of these reads counts: not when every one of them was read on a
    repository without admin and answered 200 (Bitbucket's webhooks may be readable with the scope
    alone: the live read decides, never the assumption)."""
    admin = [op for op in ops if op.admin]
    if not admin:
        return False
    return not all(_read_without_admin(op, evidence) for op in admin)


def _read_without_admin(op: Operation, evidence: Evidence) -> bool:
    result = evidence.read_without_admin.get(op)
    return result is not None and result.outcome is Outcome.OK


def _admin(side: Side, inventory: Inventory) -> None:
    lacking = Affected.having(inventory, "read", "write")
    if lacking.count:
        side.lack(f"no admin permission on {lacking.count} of {inventory.total} repositories", [], lacking)
    _unknown_permissions(side, inventory.count("unknown"), inventory)


def _unknown_permissions(side: Side, unknown: int, inventory: Inventory) -> None:
    # A broken entry of the permission list may have been about any repository: doubt, never a guess.
    if not unknown and not inventory.problems:
        return
    reason = f"the permission on {unknown} repositories could not be learnt"
    if not unknown:
        reason = "the repository permissions could not all be read"
    side.doubt(reason + (f": {summary(inventory.problems)}" if inventory.problems else ""))


def _repositories(side: Side, evidence: Evidence, repos: Inventory) -> None:
    inventory, git = evidence.inventory, evidence.git
    if inventory.listing.outcome is Outcome.FAILED:
        side.doubt(f"the repository list could not be read: {inventory.listing.reason}")
    elif inventory.listing.outcome is Outcome.SCOPE:
        side.lack(
            "the repository list answered 403: scope missing",
            list(inventory.listing.required),
            Affected.everywhere(repos),
        )
    elif inventory.listing.outcome is not Outcome.OK:  # 403, 404, 410...: no list, so nothing is proven
        side.doubt(
            f"the repository list could not be read: HTTP {inventory.listing.status} "
            f"({inventory.listing.reason or inventory.listing.outcome})"
        )
    elif not repos.total:
        side.lack("the credential sees no repositories in the workspace")
    for slug in inventory.not_visible:
        side.lack(f"repository '{slug}' (REPOSITORIES) is not visible to the credential")
    if git.outcome.refused:
        side.lack(git.reason, [], Affected.everywhere(repos))
    elif git.outcome is GitOutcome.FAILED:
        side.doubt(git.reason)


def _restore(category: Category, evidence: Evidence, repos: Inventory, proven_anywhere: set[str]) -> Side:
    side, kind = Side(), evidence.credential.kind
    if not category.restore:
        side.status = NOT_APPLICABLE
        side.reasons.append("nothing to write back through the API")
        return side
    ops = _applicable(category.restore, kind)
    if not ops:
        side.status = NOT_APPLICABLE
        side.reasons.append(f"{kind.title}s cannot hold this permission")
        return side
    per_repo = any(op.per_repository for op in ops)
    affected = Affected.everywhere(repos) if per_repo else NOWHERE
    _judge_scopes(side, ops, evidence, proven_anywhere, affected, RESTORE_UNREVEALED)
    if any(op.admin for op in ops):
        _admin(side, repos)
    if any(op.permission == "write" for op in ops):
        readers = Affected.having(repos, "read")
        if readers.count:
            side.lack(f"read-only permission on {readers.count} repositories", [], readers)
        _unknown_permissions(side, repos.count("unknown"), repos)
    return side


def _where(guide: Guidance, evidence: Evidence) -> str:
    kind = evidence.credential.kind
    owner, variable = evidence.credential.owner_hint, PAIRS[kind][-1]
    return guide.where_to_tick(kind.value, evidence.scopes.credential_type, owner, variable)


def _advice(results: list[CategoryResult], evidence: Evidence, check_restore: bool, where: str) -> list[Advice]:
    kind = evidence.credential.kind
    found: dict[str, Advice] = {}
    for result in results:
        sides = [(result.backup, result.required_backup, False)]
        if check_restore:
            sides.append((result.restore, result.required_restore, True))
        for side, required, restore in sides:
            for scope in side.missing_scopes:
                advice = found.setdefault(
                    scope, Advice(scope, scopes.label(scope, kind.vocabulary), where, [], 0, False, True)
                )
                title = result.category.title + (" (restore)" if restore else "")
                if title not in advice.unblocks:
                    advice.unblocks.append(title)
                if result.category.id not in advice.categories:
                    advice.categories.append(result.category.id)
                advice.affected_repositories = max(advice.affected_repositories, side.affected.count)
                advice.required = advice.required or required
                advice.restore_only = advice.restore_only and restore
    return sorted(found.values(), key=lambda a: (not a.required, a.scope))


def _budget(catalog: Catalog, evidence: Evidence, profile_ids: set[str]) -> Budget:
    repos = evidence.inventory.total
    reads = [
        op
        for c in catalog.categories
        if c.id in profile_ids and not c.retired
        for op in _applicable(c.read, evidence.credential.kind)
        if op.method  # a registry (Packages) is not read through the REST API's hourly limit
    ]
    per_repo = sum(1 for op in reads if op.per_repository)
    per_run = per_repo * repos + (len(reads) - per_repo) + 2 * (repos // 100 + 1)
    kind, sent = evidence.credential.kind, evidence.traffic.rate.limit
    limit = sent or HOURLY_LIMIT
    source = "X-RateLimit-Limit header" if sent else DOCUMENTED_LIMIT[kind]
    return Budget(evidence.traffic.requests, per_run, limit, per_run <= limit, source, COUNTED_PER[kind])


def _verdict(results: list[CategoryResult], check_restore: bool) -> tuple[Verdict, ExitCode]:
    sides = [r.backup for r in results if r.required_backup]
    sides += [r.restore for r in results if r.required_restore and check_restore]
    if any(s.status is MISSING for s in sides):
        verdict = Verdict.NOT_READY
    elif any(s.status is UNKNOWN for s in sides):
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.READY
    return verdict, verdict.exit_code


def _findings(guide: Guidance, evidence: Evidence, repos: Inventory, git_categories: list[str]) -> list[Item]:
    findings = []
    if repos.strategy == FULL_LISTING:
        findings.append(guide.item("inventory-fallback", reason=repos.fallback))
    if evidence.inventory.listing.outcome == "ok" and not repos.total:
        findings.append(guide.item("no-repositories", git_categories, workspace=evidence.workspace))
    if evidence.scopes.problems:
        findings.append(guide.item("scopes-unreadable", problems=summary(evidence.scopes.problems)))
    if evidence.git.app_password:
        findings.append(guide.item("app-password-git", git_categories, username=evidence.git.username))
    elif evidence.git.outcome in ("rejected", "forbidden"):
        findings.append(
            guide.item(
                "git-failing",
                git_categories,
                variant=evidence.credential.kind.value,
                reason=evidence.git.reason,
                username=evidence.git.username,
            )
        )
    return findings


def _admin_gap(results: list[CategoryResult], inventory: Inventory) -> Affected:
    """Repositories the credential lacks admin permission on. A repository the admin reads were
    refused on for want of a scope is not one: its fix is the scope, named with the others."""
    admin = next(r for r in results if r.category.id == "repository-admin")
    if admin.backup.status in (NOT_APPLICABLE, RETIRED):
        return NOWHERE
    return Affected.having(inventory, "read", "write")


def _loses(results: list[CategoryResult], evidence: Evidence) -> list[str]:
    """What a backup without admin permission loses: every category that needs it (not one whose
    reads a live read on a repository without admin proved possible)."""
    return [
        r.category.title
        for r in results
        if r.category.needs_admin
        and r.category.id != "repository-admin"
        and _admin_needed(_applicable(r.category.read, evidence.credential.kind), evidence)
    ]


def _scope_items(guide: Guidance, advice: list[Advice]) -> list[Item]:
    required = [a for a in advice if a.required]
    if not required:
        return []
    items = [guide.item("scopes-to-add", count=len(required))]
    for a in required:
        values = {"scope": a.name, "unblocks": ", ".join(a.unblocks)}
        if a.affected_repositories:
            items.append(
                guide.item(
                    "missing-scope", a.categories, variant="on-repositories", count=a.affected_repositories, **values
                )
            )
        else:
            items.append(guide.item("missing-scope", a.categories, variant="everywhere", **values))
    unblocked = [c for a in required for c in a.categories]
    return items + [guide.item("where-to-tick", unblocked, where=required[0].where)]


def _admin_items(guide: Guidance, results: list[CategoryResult], gap: Affected, evidence: Evidence) -> list[Item]:
    kind = evidence.credential.kind
    if not gap.count:
        return []
    lacking = [r for r in results if r.category.needs_admin and r.backup.status == MISSING]
    ids = [r.category.id for r in lacking]
    blocking = any(r.required_backup or r.required_restore for r in lacking)
    loses = ", ".join(title.lower() for title in _loses(results, evidence))
    examples = ", ".join(str(r.full_name or r.slug) for r in gap.named[:EXAMPLES])
    return [
        guide.item("admin-gap", ids, blocking=blocking, count=gap.count, examples=examples, loses=loses),
        guide.item("admin-fix", ids, variant=kind.value, blocking=blocking),
    ]


def _unknown_items(guide: Guidance, results: list[CategoryResult]) -> list[Item]:
    items = []
    for r in results:
        for name, side, required in (
            ("backup", r.backup, r.required_backup),
            ("restore", r.restore, r.required_restore),
        ):
            if required and side.status == UNKNOWN:
                items.append(
                    guide.item(
                        "unknown", [r.category.id], title=r.category.title, side=name, reasons="; ".join(side.reasons)
                    )
                )
    return items


def _percent(share: float) -> str:
    """1.2 %, 0.05 %: two significant digits, so that a small share does not read as zero."""
    return f"{share * 100:.2g} %" if share < 0.1 else f"{share * 100:.0f} %"


def _budget_items(guide: Guidance, budget: Budget) -> list[Item]:
    items = [
        guide.item(
            "budget",
            requests=budget.requests_used,
            per_run=budget.backup_requests_per_run,
            limit=f"{budget.hourly_limit:,}",
            share=_percent(budget.share_of_hour),
            per=budget.counted_per,
        )
    ]
    if not budget.fits_in_an_hour:
        items.append(guide.item("rate-limit-warning"))
    return items


def _category_items(guide: Guidance, results: list[CategoryResult]) -> list[Item]:
    """What the catalog says of a category and no credential can change: notes, retirements."""
    items = []
    for r in results:
        category = r.category
        if category.retired:
            items.append(guide.item("retired", [category.id], title=category.title, date=category.retired))
        elif category.note and (r.required_backup or category.note_always):
            items.append(guide.item("note", [category.id], title=category.title, note=category.note))
    return items


def _guidance(
    guide: Guidance,
    results: list[CategoryResult],
    evidence: Evidence,
    advice: list[Advice],
    budget: Budget,
    platform: list[Item],
) -> list[Item]:
    """Every piece of advice, in the order a reader acts on it: scopes, admin, what could not be
    checked, findings, what is optional, what the platform announced (`platform`), the cost;
    then what no credential changes."""
    repos = evidence.inventory
    git_categories = [r.category.id for r in results if r.category.git]
    optional = [a for a in advice if not a.required]
    items = _scope_items(guide, advice)
    items += _admin_items(guide, results, _admin_gap(results, repos), evidence)
    items += _unknown_items(guide, results)
    items += _findings(guide, evidence, repos, git_categories)
    if optional:
        labels = ", ".join(a.label for a in optional)
        items.append(guide.item("optional-scopes", [c for a in optional for c in a.categories], labels=labels))
    return items + platform + _budget_items(guide, budget) + _category_items(guide, results)


def _concerns(endpoint: str, workspace: str) -> bool:
    """Whether an announcement is about this workspace's reads: its endpoint names the workspace, or
    no workspace at all (GET /user, the OAuth grant: every workspace's backup reads those)."""
    path = endpoint.partition(" ")[2]
    parts = path.split("/")
    scoped = (
        len(parts) > 2
        and parts[1] in ("repositories", "workspaces", "snippets")
        or path.startswith("/user/workspaces/")
    )
    return not scoped or workspace in parts


def removals(catalog: Catalog, evidence: Evidence) -> list[Removed]:
    """Every 410 of this workspace's reads that named a changelog id (the REST answers the client
    noted, and git's), with what the change means where the catalog knows the id."""
    found = [
        Removed(r.change, r.endpoint, catalog.changes.get(r.change), r.announcement_url)
        for r in evidence.traffic.removals
        if _concerns(r.endpoint, evidence.workspace)
    ]
    git = evidence.git
    if git.change:
        where = f"git over HTTPS ({evidence.workspace}/{git.repository})"
        found.append(Removed(git.change, where, catalog.changes.get(git.change), git.announcement_url))
    return found


def _removal_items(guide: Guidance, found: list[Removed]) -> list[Item]:
    items = []
    for removed in found:
        if removed.meaning:
            values = {"endpoint": removed.endpoint, "change": removed.change, "meaning": removed.meaning}
            items.append(guide.item("removed", variant="known", **values))
        else:
            items.append(guide.item("removed", variant="other", endpoint=removed.endpoint, change=removed.change))
        if removed.announcement_url:
            items.append(guide.item("announcement", link=removed.announcement_url))
    return items


def _deprecation_items(guide: Guidance, evidence: Evidence) -> list[Item]:
    """A warning per endpoint announced to go: the backup reading it breaks on that date."""
    items = []
    for found in evidence.traffic.deprecations:
        if not _concerns(found.endpoint, evidence.workspace):
            continue
        values = {
            "endpoint": found.endpoint,
            "deprecation": found.deprecation[:10] if found.deprecation else "no date given",
            "link": found.link or "no link given",
        }
        if found.sunset:
            items.append(guide.item("deprecated", variant="sunset", sunset=found.sunset[:10], **values))
        else:
            items.append(guide.item("deprecated", variant="no-sunset", **values))
    return items


def _vendor_items(guide: Guidance, catalog: Catalog, evidence: Evidence, profile: str) -> list[Item]:
    """A vendor's page (still written for app passwords) line by line in this credential's scopes,
    computed from the catalog's own operations, so the two cannot disagree."""
    terms = catalog.vendor_terms.get(profile)
    if terms is None:
        return []
    kind = evidence.credential.kind
    items = [guide.item("vendor-terms", vendor=terms.vendor, kind=kind.title)]
    for line in terms.lines:
        categories = [catalog.category(c) for c in line.categories]
        retired = next((c.retired for c in categories if c.retired), None)
        ops = [op for c in categories for op in _applicable(c.read, kind)]
        names = list(dict.fromkeys(s for op in ops for s in op.scopes_for(kind.vocabulary)))
        if retired:
            items.append(guide.item("vendor-term", variant="retired", term=line.term, date=retired))
        elif names:
            shown = " + ".join(_scope_name(s, kind) for s in names)
            items.append(guide.item("vendor-term", variant="scopes", term=line.term, scopes=shown))
        else:
            items.append(guide.item("vendor-term", variant="none", term=line.term, kind=kind.title))
    return items + [guide.item("app-password-gone", variant=kind.value)]


def _scope_name(scope: str, kind: Kind) -> str:
    label = scopes.label(scope, kind.vocabulary)
    return scope if label == scope else f"{scope} ({label})"


def _credential_notes(guide: Guidance, evidence: Evidence) -> list[Item]:
    """What expires without any endpoint saying so, said once per workspace's report."""
    credential = evidence.credential
    if credential.kind is Kind.API_TOKEN:
        notes = [guide.item("token-lifetime")]
        if credential.auth_scheme == "bearer":
            notes.append(guide.item("api-token-bearer"))
        return notes
    if credential.kind is Kind.OAUTH:
        return [guide.item("oauth-refresh")]
    return []


def _platform_guidance(
    guide: Guidance, catalog: Catalog, evidence: Evidence, profile: str, found: list[Removed]
) -> list[Item]:
    """What the platform says of itself (removals, announced removals) and a vendor's page in today's
    scopes: after the advice on the credential, before the cost."""
    return (
        _removal_items(guide, found)
        + _deprecation_items(guide, evidence)
        + _vendor_items(guide, catalog, evidence, profile)
    )


def assess(
    catalog: Catalog, evidence: Evidence, profile: Profile | str, require: tuple[str, ...], check_restore: bool
) -> Assessment:
    """`profile` is a Profile (built in or from PROFILE_FILE), or a built-in profile's name."""
    if isinstance(profile, str):
        profile = catalog.profiles[profile]
    required = set(profile.backup) | set(require)
    # What a restore needs is the profile's own list (a backup app and a restore app may differ).
    restored = set(profile.restore) | set(require)
    repos = evidence.inventory
    proven_anywhere = _proven(catalog, evidence)
    results = []
    for category in catalog.categories:
        is_required = category.id in required
        if category.retired:
            backup = Side(RETIRED, reasons=[f"retired by Bitbucket on {category.retired}"])
            restore = Side(RETIRED, reasons=backup.reasons)
        else:
            backup = _backup(category, evidence, repos, proven_anywhere)
            restore = _restore(category, evidence, repos, proven_anywhere)
            if category.git:
                _repositories(backup, evidence, repos)
        restore_required = check_restore and category.id in restored
        results.append(CategoryResult(category, is_required, restore_required, backup, restore))
    verdict, code = _verdict(results, check_restore)
    guide = guidance.load()
    advice = _advice(results, evidence, check_restore, _where(guide, evidence))
    budget = _budget(catalog, evidence, required)
    found = removals(catalog, evidence)
    platform = _platform_guidance(guide, catalog, evidence, profile.name, found)
    items = _guidance(guide, results, evidence, advice, budget, platform)
    items += _credential_notes(guide, evidence)  # under the table, after the categories' notes
    findings = [i.text for i in items if i.id in FINDINGS]
    return Assessment(
        verdict,
        code,
        profile.name,
        check_restore,
        results,
        advice,
        _admin_gap(results, repos),
        _loses(results, evidence),
        findings,
        budget,
        items,
        found,
    )


# A workspace of several that the credential cannot see: a backup with it would miss all of it.
UNSEEN = Verdict.NOT_READY
# The step's verdict over its workspaces is the worst of theirs; `error` is the configuration's alone.
SEVERITY = (Verdict.READY, Verdict.INCONCLUSIVE, Verdict.NOT_READY)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """not-ready > inconclusive > ready; no workspace at all proves nothing (inconclusive)."""
    return max(verdicts, key=SEVERITY.index, default=Verdict.INCONCLUSIVE)
