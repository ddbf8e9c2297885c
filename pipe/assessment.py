"""Compares what the credential can do (Evidence) with what the chosen profile needs.

Pure logic over plain data: no I/O, so every rule can be read here in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipe import scopes
from pipe.catalog import Catalog, Category, Operation
from pipe.credential import Kind
from pipe.errors import ExitCode
from pipe.probes import Evidence, Inventory, Repo
from pipe.shapes import summary

OK, MISSING, RETIRED, NOT_APPLICABLE, UNKNOWN = "ok", "missing", "retired", "not-applicable", "unknown"
EXAMPLES = 3
HOURLY_LIMIT = 1000  # repository data, per user or token (Bitbucket's documented default)


@dataclass
class Side:
    """Backup or restore of one category."""

    status: str = OK
    missing_scopes: list[str] = field(default_factory=list)
    affected: list[Repo] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def lack(self, reason: str, scopes_: list[str] = (), affected: list[Repo] = ()) -> None:
        self.status = MISSING
        self.reasons.append(reason)
        self.missing_scopes = sorted(set(self.missing_scopes) | set(scopes_))
        known = {r.slug for r in self.affected}
        self.affected += [r for r in affected if r.slug not in known]

    def doubt(self, reason: str) -> None:
        if self.status == OK:
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
    unblocks: list[str]
    affected_repositories: int
    required: bool
    restore_only: bool


@dataclass
class Budget:
    requests_used: int
    backup_requests_per_run: int
    hourly_limit: int
    fits_in_an_hour: bool


@dataclass
class Assessment:
    verdict: str
    exit_code: ExitCode
    profile: str
    check_restore: bool
    categories: list[CategoryResult]
    advice: list[Advice]
    admin_gap: list[Repo]
    admin_gap_loses: list[str]
    findings: list[str]
    budget: Budget


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
        if (result := evidence.probes.get(op.label)) is not None and result.outcome == "ok"
        for scope in op.scopes_for(kind.vocabulary)
    }


def _backup(category: Category, evidence: Evidence, repos: list[Repo], proven_anywhere: set[str]) -> Side:
    side, kind = Side(), evidence.credential.kind
    ops = _applicable(category.read, kind)
    if not ops:
        side.status = NOT_APPLICABLE
        side.reasons.append(f"{kind.title}s cannot hold this permission; it needs an API token or OAuth consumer")
        return side
    affected = repos if any(op.per_repository for op in ops) else []
    proven = set()
    for op in ops:
        result = evidence.probes.get(op.label)
        if result is None:
            continue
        if result.outcome == "ok":
            proven |= set(op.scopes_for(kind.vocabulary))
        elif result.outcome == "scope":
            side.lack(f"{op.label} answered 403: scope missing", list(result.required), affected)
        elif result.outcome == "permission" and op.admin:
            pass  # counted below from the permission of every repository
        elif result.outcome != "skipped" or repos:
            side.doubt(f"{op.label} could not be read: {result.reason or result.outcome}")
    if evidence.scopes.granted is not None:
        lacking = set(scopes.missing(_scopes(ops, kind.vocabulary), evidence.scopes.granted, kind.vocabulary))
        if lacking - proven:
            side.lack("the granted scopes do not include it", sorted(lacking - proven), affected)
    elif evidence.scopes.problems and set(_scopes(ops, kind.vocabulary)) - proven_anywhere:
        # No live read proved these scopes, and the answer that would have named them was broken.
        side.doubt(f"the granted scopes could not be learnt: {summary(evidence.scopes.problems)}")
    if any(op.admin for op in ops):
        _admin(side, repos, evidence.inventory)
    return side


def _admin(side: Side, repos: list[Repo], inventory: Inventory) -> None:
    unknown = [r for r in repos if r.permission == "unknown"]
    lacking = [r for r in repos if r.permission in ("read", "write")]
    if lacking:
        side.lack(f"no admin permission on {len(lacking)} of {len(repos)} repositories", [], lacking)
    _unknown_permissions(side, unknown, inventory)


def _unknown_permissions(side: Side, unknown: list[Repo], inventory: Inventory) -> None:
    # A broken entry of the permission list may have been about any repository: doubt, never a guess.
    if not unknown and not inventory.problems:
        return
    reason = f"the permission on {len(unknown)} repositories could not be learnt"
    if not unknown:
        reason = "the repository permissions could not all be read"
    side.doubt(reason + (f": {summary(inventory.problems)}" if inventory.problems else ""))


def _repositories(side: Side, evidence: Evidence, repos: list[Repo]) -> None:
    inventory, git = evidence.inventory, evidence.git
    if inventory.listing.outcome == "failed":
        side.doubt(f"the repository list could not be read: {inventory.listing.reason}")
    elif inventory.listing.outcome == "scope":
        side.lack("the repository list answered 403: scope missing", list(inventory.listing.required), repos)
    elif inventory.listing.outcome != "ok":  # 403, 404, 410...: no list, so nothing is proven
        side.doubt(
            f"the repository list could not be read: HTTP {inventory.listing.status} "
            f"({inventory.listing.reason or inventory.listing.outcome})"
        )
    elif not repos:
        side.lack("the credential sees no repositories in the workspace")
    for slug in inventory.not_visible:
        side.lack(f"repository '{slug}' (REPOSITORIES) is not visible to the credential")
    if git.outcome in ("rejected", "forbidden"):
        side.lack(git.reason, [], repos)
    elif git.outcome == "failed":
        side.doubt(git.reason)


def _restore(category: Category, evidence: Evidence, repos: list[Repo]) -> Side:
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
    if evidence.scopes.granted is None:
        side.doubt("Bitbucket did not reveal the credential's scopes, so write access cannot be judged without writing")
        if evidence.scopes.problems:
            side.doubt(f"the granted scopes could not be learnt: {summary(evidence.scopes.problems)}")
    else:
        lacking = scopes.missing(_scopes(ops, kind.vocabulary), evidence.scopes.granted, kind.vocabulary)
        if lacking:
            # A 403's granted list is not documented to be complete; a partial one can only make
            # this stricter, never a false "ok", so it is used, and its source is named.
            source = ", ".join(evidence.scopes.sources)
            side.lack(
                f"write scopes missing (granted scopes learnt from: {source})", lacking, repos if per_repo else []
            )
    if any(op.admin for op in ops):
        _admin(side, repos, evidence.inventory)
    if any(op.permission == "write" for op in ops):
        readers = [r for r in repos if r.permission == "read"]
        if readers:
            side.lack(f"read-only permission on {len(readers)} repositories", [], readers)
        _unknown_permissions(side, [r for r in repos if r.permission == "unknown"], evidence.inventory)
    return side


def _where(kind: Kind, credential_type: str | None, owner: str) -> str:
    if kind is Kind.API_TOKEN:
        return (
            "id.atlassian.com > Security > API tokens > Create API token with scopes > app Bitbucket. "
            "Scopes of an existing token cannot be changed: create a new token with every scope listed "
            "here and update BITBUCKET_API_TOKEN (and your backup product)."
        )
    if kind is Kind.OAUTH:
        return (
            f"Workspace settings > Apps and features > OAuth consumers > Edit '{owner}' > Permissions; "
            "save, and the next token has the new scopes."
        )
    place = {
        "repo_access_token": "Repository settings",
        "project_access_token": "Project settings",
        "workspace_access_token": "Workspace settings",
    }.get(credential_type or "", "Repository, project or workspace settings")
    return (
        f"{place} > Security > Access tokens > Create access token. Access token scopes cannot be "
        "edited: create a new token with every scope listed here and update BITBUCKET_ACCESS_TOKEN."
    )


def _advice(results: list[CategoryResult], evidence: Evidence, check_restore: bool) -> list[Advice]:
    kind = evidence.credential.kind
    where = _where(kind, evidence.scopes.credential_type, evidence.credential.owner_hint)
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
                advice.affected_repositories = max(advice.affected_repositories, len(side.affected))
                advice.required = advice.required or required
                advice.restore_only = advice.restore_only and restore
    return sorted(found.values(), key=lambda a: (not a.required, a.scope))


def _budget(catalog: Catalog, evidence: Evidence, profile_ids: set[str]) -> Budget:
    repos = len(evidence.inventory.repositories)
    reads = [
        op
        for c in catalog.categories
        if c.id in profile_ids and not c.retired
        for op in _applicable(c.read, evidence.credential.kind)
    ]
    per_repo = sum(1 for op in reads if op.per_repository)
    per_run = per_repo * repos + (len(reads) - per_repo) + 2 * (repos // 100 + 1)
    limit = evidence.traffic.rate.limit or HOURLY_LIMIT
    return Budget(evidence.traffic.requests, per_run, limit, per_run <= limit)


def _verdict(results: list[CategoryResult], check_restore: bool) -> tuple[str, ExitCode]:
    sides = [r.backup for r in results if r.required_backup]
    sides += [r.restore for r in results if r.required_restore and check_restore]
    if any(s.status == MISSING for s in sides):
        return "not-ready", ExitCode.NOT_READY
    if any(s.status == UNKNOWN for s in sides):
        return "inconclusive", ExitCode.INCONCLUSIVE
    return "ready", ExitCode.READY


def _findings(evidence: Evidence, repos: list[Repo], workspace: str) -> list[str]:
    findings = []
    if evidence.inventory.listing.outcome == "ok" and not repos:
        findings.append(
            f"The credential sees no repositories in '{workspace}'. A backup with it would be empty. "
            "Check WORKSPACE, that the account is a member with access to the repositories, that an "
            "access token belongs to this workspace, and REPOSITORIES if set."
        )
    if evidence.scopes.problems:
        findings.append(
            "An answer that would have named the credential's granted scopes was not in Bitbucket's "
            f"shape and was not used: {summary(evidence.scopes.problems)}."
        )
    if evidence.git.outcome in ("rejected", "forbidden"):
        findings.append(
            f"Git over HTTPS failed while the REST API worked: {evidence.git.reason}. "
            "Git username used: " + evidence.git.username + ". For API tokens git takes your "
            "Bitbucket username or x-bitbucket-api-token-auth, never the email."
        )
    return findings


def assess(
    catalog: Catalog, evidence: Evidence, profile: str, require: tuple[str, ...], check_restore: bool
) -> Assessment:
    required = set(catalog.profiles[profile].backup) | set(require)
    repos = evidence.inventory.repositories
    proven_anywhere = _proven(catalog, evidence)
    results = []
    for category in catalog.categories:
        is_required = category.id in required
        if category.retired:
            backup = Side(RETIRED, reasons=[f"retired by Bitbucket on {category.retired}"])
            restore = Side(RETIRED, reasons=backup.reasons)
        else:
            backup = _backup(category, evidence, repos, proven_anywhere)
            restore = _restore(category, evidence, repos)
            if category.git:
                _repositories(backup, evidence, repos)
        results.append(CategoryResult(category, is_required, is_required and check_restore, backup, restore))
    verdict, code = _verdict(results, check_restore)
    admin = next(r for r in results if r.category.id == "repository-admin")
    loses = [r.category.title for r in results if r.category.needs_admin and r.category.id != "repository-admin"]
    return Assessment(
        verdict,
        code,
        profile,
        check_restore,
        results,
        _advice(results, evidence, check_restore),
        [r for r in admin.backup.affected],
        loses,
        _findings(evidence, repos, evidence.workspace),
        _budget(catalog, evidence, required),
    )
