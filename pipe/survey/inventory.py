"""Repositories and permissions, frugally: counts from Bitbucket's `size`, and only the
repositories the report names (those without admin) read one by one.

The filtered way (issue 12), side by side first:

    GET /repositories/{ws}?pagelen=3&fields=size,...               N, and the first repositories
    GET /repositories/{ws}?role=admin&pagelen=1&fields=size,...    A, and one admin repository
    GET /user/workspaces/{ws}/permission                           the role (users only; role.py)

then, only when the credential is not a workspace owner and A < N, every page of
`GET /user/workspaces/{ws}/permissions/repositories?q=permission!="admin"` (users: the M
repositories without admin, with their permission). A + M must equal N: the permission list is
ambiguous (explicit grants only, or effective permissions?), so no repository is declared
non-admin on its word alone; role=admin is the cross-check. An access token's permission is its
scopes', the same on every repository it reaches. With REPOSITORIES the same filters are asked in
batches (`q=slug="a" OR slug="b"`), never one request per repository.

Trust but verify: a count without `size`, a page that holds fewer or more items than asked,
an item outside the filter, a `q=` answered 400, or counts that do not add up make the survey
list everything instead (the full listing: the repository list, role=admin and the permission
list, every page) and say why (Inventory.strategy and .fallback). Both ways give the same
permissions. Each page is reduced to what is kept as it arrives (paging's `keep`), so memory
does not depend on whether the server honours `fields=`.

The live reads need one representative repository and should not wait for the rest:
`Lister.first_pages()` is ready as soon as the two first counts are in (FirstPages).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipe import paging, scopes
from pipe.client import ApiFailure, Client, Reply
from pipe.credential import Kind
from pipe.outcomes import Outcome
from pipe.paging import Distrust
from pipe.shapes import ShapeError, expect_dict, expect_one_of, expect_str, page, place_of, summary
from pipe.survey import role
from pipe.survey.evidence import PERMISSIONS, Inventory, ProbeResult, Repo, classify, json_body
from pipe.survey.grants import ScopeEvidence
from pipe.variables import Config

WORDS = ("admin", "write", "read")
# Bitbucket's repository slugs: they go into API paths and git URLs, so nothing else is used.
# Never '.', '..' or a leading dot: httpx removes dot segments, so /repositories/acme/../hooks would
# read /repositories/hooks, another endpoint, whose answer would count as the repository's.
SLUG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
REPO_FIELDS = "size,page,pagelen,next,values.slug,values.full_name"
FULL_NAME_LIMIT = 2 * 128 + 1  # workspace/slug
PERM_FIELDS = "size,page,pagelen,next,values.permission,values.repository.full_name"
EXAMPLES = 3  # repositories the report names as examples
BATCH = 50  # names per BBQL OR-filter: ~3 KB of query, one page of answers
NOT_ADMIN = 'permission!="admin"'
# Where a permission came from (report.json repositories.sources, and each named repository's source).
FROM_ROLE = "workspace role owner"
FROM_ROLE_ADMIN = "repository list role=admin"
FROM_PERMISSIONS = "repository permissions list"
FROM_UNLISTED = "visible without a listed grant"
FROM_TOKEN = "access token scopes"
FROM_NOTHING = "not learnt"
FROM_DISAGREEMENT = "role=admin and the permission list disagree"
FILTERED, FULL = "filtered", "full listing"


def _repository(item: Any, endpoint: str, place: str) -> tuple[str, str]:
    """(slug, full_name) of one item of the repository list; the slug goes into URLs."""
    item = expect_dict(item, endpoint, place)
    slug = expect_str(item.get("slug"), endpoint, place_of(place, "slug"), empty=False)
    if not SLUG.fullmatch(slug):
        raise ShapeError(endpoint, f"'{place_of(place, 'slug')}' is not a repository slug")
    return slug, _full_name(item.get("full_name"), endpoint, place_of(place, "full_name"))


def _slug(item: Any) -> str | None:
    """An item's slug when it is one (checked as the repository list's are), else None."""
    slug = item.get("slug") if isinstance(item, dict) else None
    return slug if isinstance(slug, str) and SLUG.fullmatch(slug) else None


def _full_name(value: Any, endpoint: str, place: str) -> str:
    """Display text (the slug goes into URLs), at most a workspace ID and a slug long: a longer one
    is not Bitbucket's, and would be carried into every report."""
    full = expect_str(value, endpoint, place, empty=False)
    if len(full) > FULL_NAME_LIMIT:
        raise ShapeError(endpoint, f"'{place}' is longer than a repository's full name can be")
    return full


def _permission(item: Any, endpoint: str, place: str) -> tuple[str, str]:
    """(full_name, admin | write | read) of one item of the permission list."""
    item = expect_dict(item, endpoint, place)
    repository = expect_dict(item.get("repository"), endpoint, place_of(place, "repository"))
    full = _full_name(repository.get("full_name"), endpoint, place_of(place, "repository.full_name"))
    return full, expect_one_of(item.get("permission"), WORDS, endpoint, place_of(place, "permission"))


def _token_permission(granted: set[str] | None) -> str:
    held = scopes.expand(granted or (), scopes.CLASSIC)
    if "repository:admin" in held:
        return "admin"
    if "repository:write" in held:
        return "write"
    return "read" if granted is not None else "unknown"


def _slug_of(full: str) -> str:
    return full.rpartition("/")[2]


def _either(*names: str) -> str:
    """A BBQL OR-filter: `slug="a" OR slug="b"` (a name never holds a quote: slugs are checked)."""
    return " OR ".join(names)


def _batches(items: list[str], size: int = BATCH) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _Keep:
    """paging's `keep` for one listing: each page reduced to what is kept, what was wrong with
    the other items remembered. `check` raises Distrust for an item outside the filter. Items of
    the permission list (full_name, word) are kept once per repository: one named twice with two
    words is `unknown` (never read, never admin)."""

    def __init__(
        self, endpoint: str, parse: Callable[[Any, str, str], Any], check: Callable[[Any], None] | None = None
    ):
        self.endpoint, self.parse, self.check = endpoint, parse, check
        self.problems: list[str] = []
        self.items = 0
        self.words: dict[str, str] = {}  # permission list: full_name (lower case) -> word

    def __call__(self, items: list[Any]) -> list[Any]:
        kept = []
        for item in items:
            place = place_of("values", self.items)
            self.items += 1
            try:
                found = self.parse(item, self.endpoint, place)
            except ShapeError as exc:
                self.problems.append(str(exc))
                continue
            if self.check:
                self.check(found)
            if self.parse is _permission and not self._first_time(found, place):
                continue
            kept.append(found)
        return kept

    def _first_time(self, found: tuple[str, str], place: str) -> bool:
        name, word = found[0].lower(), found[1]
        if name not in self.words:
            self.words[name] = word
            return True
        if self.words[name] != word:
            self.problems.append(
                f"{self.endpoint}: '{place}' names a repository already listed with another permission"
            )
            self.words[name] = "unknown"
        return False

    def permissions(self, kept: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The kept (full_name, word) items with a repeated repository's word made `unknown`."""
        return [(full, self.words.get(full.lower(), word)) for full, word in kept]


@dataclass
class Listing:
    """One paged collection as read: its first answer and what was kept, or why it could not be read."""

    endpoint: str
    reply: Reply | None = None
    values: list[Any] = field(default_factory=list)
    failure: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.reply is not None and self.reply.ok


@dataclass
class Count:
    """One page asked for its `size`: the total, and the items it holds."""

    endpoint: str
    asked: int
    reply: Reply | None = None
    failure: str | None = None
    size: int | None = None
    items: list[tuple[str, str]] = field(default_factory=list)
    sent: int = 0  # items on the page, readable or not
    problems: list[str] = field(default_factory=list)
    # The first usable slug on the page, even when its item is broken elsewhere (a full name): the
    # live reads can still use the repository, while the broken list is judged unknown.
    slug: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.reply is not None and self.reply.ok

    def total(self) -> int:
        """The `size`, once checked against the page: Distrust when it cannot be trusted."""
        if not self.ok:
            status = self.reply.status if self.reply is not None else None
            raise Distrust(f"{self.endpoint}: {self.failure or f'answered {status}'}")
        if self.size is None:
            raise Distrust(f"{self.endpoint}: the page does not tell its size")
        if self.sent != min(self.asked, self.size):
            raise Distrust(
                f"{self.endpoint}: the page holds {self.sent} items for pagelen={self.asked} and size {self.size:,}"
            )
        return self.size


@dataclass(frozen=True)
class FirstPages:
    """What the first answers proved of two repositories: one the credential is admin on, and the
    first one listed."""

    admin: str | None = None
    listed: str | None = None

    def representative(self, wanted: tuple[str, ...]) -> str | None:
        """The repository the live reads and git use: the first of REPOSITORIES, else one the
        credential is admin on (its admin reads can then succeed), else the first listed."""
        if wanted:
            return wanted[0]
        return self.admin or self.listed


@dataclass
class _Tally:
    """Permissions being counted: counts, the repositories kept by name, where each came from."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PERMISSIONS, 0))
    sources: dict[str, int] = field(default_factory=dict)
    named: list[Repo] = field(default_factory=list)

    def add(self, permission: str, source: str, count: int = 1, repos: Iterable[Repo] = ()) -> None:
        if count <= 0:
            return
        self.counts[permission] += count
        self.sources[source] = self.sources.get(source, 0) + count
        self.named += [r for r in repos if r.permission in ("read", "write")]


class Lister:
    """The inventory (`run`); `first_pages` is ready as soon as the representative is known, so that
    the live reads need not wait for the rest."""

    def __init__(
        self,
        client: Client,
        config: Config,
        grants: ScopeEvidence,
        kind: Kind,
        scopes_settled: asyncio.Event | None = None,
    ):
        self.client, self.config, self.grants, self.kind = client, config, grants, kind
        # An access token's permission is its scopes': judged once the scope-revealing read is done.
        self.scopes_settled = scopes_settled
        ws = config.workspace
        self.repos_path = f"/repositories/{ws}"
        self.perms_path = f"/user/workspaces/{ws}/permissions/repositories"
        self._first = FirstPages()
        self._first_in = asyncio.Event()

    async def first_pages(self) -> FirstPages:
        await self._first_in.wait()
        return self._first

    async def run(self) -> Inventory:
        try:
            learning = asyncio.create_task(role.learn(self.client, self.config.workspace, self.kind))
            if self.config.repositories:
                self._first_in.set()  # the representative is the first of REPOSITORIES
            return await self._survey(learning)
        finally:
            self._first_in.set()  # a listing that ended without a first page: the reads go on

    async def _survey(self, learning: asyncio.Task[role.WorkspaceRole]) -> Inventory:
        wanted = list(self.config.repositories)
        if wanted:  # the whole list's count is asked only for its status: the batches name the rest
            listed, admin = await self._count({}, 1), Count("", 1)
        else:
            listed, admin = await asyncio.gather(self._count({}, EXAMPLES), self._count({"role": "admin"}, 1))
        self._first = FirstPages(admin.slug if admin.ok else None, listed.slug if listed.ok else None)
        self._first_in.set()
        who = await learning
        if self.kind is Kind.ACCESS_TOKEN and self.scopes_settled is not None:
            await self.scopes_settled.wait()
        if listed.failure is not None or listed.reply is None:
            return Inventory(ProbeResult(Outcome.FAILED, reason=listed.failure or "no answer"))
        result = classify(listed.reply, listed.endpoint, grants=self.grants)
        if listed.problems:  # the list is not whole: what it proves is not trusted either
            result = ProbeResult(Outcome.FAILED, listed.reply.status, reason=summary(listed.problems))
        if result.outcome is not Outcome.OK:
            return Inventory(result)
        try:
            inventory = await (self._subset(wanted, who) if wanted else self._filtered(listed, admin, who))
        except Distrust as doubt:
            inventory = await self._full(wanted, who, doubt.reason)
        if inventory.listing.outcome is Outcome.OK:  # a full listing that failed keeps its reason
            inventory.listing = result
        inventory.workspace_role = who.role
        return inventory

    # --- the filtered way --------------------------------------------------------------------

    async def _count(self, params: dict[str, str], pagelen: int) -> Count:
        endpoint = f"GET {self.repos_path}" + ("?role=admin" if params.get("role") else "")
        count = Count(endpoint, pagelen)
        try:
            count.reply = await self.client.get(self.repos_path, {**params, "fields": REPO_FIELDS, "pagelen": pagelen})
        except ApiFailure as exc:
            count.failure = exc.reason
            return count
        if not count.reply.ok:
            return count
        try:
            shown = page(json_body(count.reply, endpoint), endpoint)
        except ShapeError as exc:
            count.failure = str(exc)
            return count
        keep = _Keep(endpoint, _repository)
        count.size, count.sent = shown.size, len(shown.values)
        count.items, count.problems = keep(shown.values), keep.problems
        count.slug = next((slug for item in shown.values if (slug := _slug(item)) is not None), None)
        count.reply.body = {k: v for k, v in count.reply.body.items() if k != "values"}  # kept above
        return count

    async def _filtered(self, listed: Count, admin: Count, who: role.WorkspaceRole) -> Inventory:
        total = listed.total()
        examples = [Repo(slug, full, "unknown") for slug, full in listed.items[:EXAMPLES]]
        tally = _Tally()
        if who.admin:
            tally.add("admin", FROM_ROLE, total)
            return self._inventory(FILTERED, total, tally, examples)
        admins = admin.total()
        if admins > total or (admins and not admin.items):
            raise Distrust(f"{admin.endpoint}: {admins:,} admin repositories of {total:,} listed")
        others = total - admins
        if self.kind is Kind.ACCESS_TOKEN:
            return self._token_filtered(total, admins, tally, examples)
        tally.add("admin", FROM_ROLE_ADMIN, admins)
        # Asked even when role=admin counts every repository: a server that ignores role= would
        # otherwise make every repository admin. Then it is one page, empty.
        perms = await self._collect(self.perms_path, {"q": NOT_ADMIN, "fields": PERM_FIELDS}, _permission, _not_admin)
        if perms.reply is not None and perms.reply.status == 400:
            raise Distrust(f"{perms.endpoint} answered 400 to q={NOT_ADMIN}")
        if not perms.ok:
            why = perms.failure or classify(perms.reply, perms.endpoint).reason
            if not others:
                raise Distrust(
                    f"role=admin counts every repository admin, and {perms.endpoint} cannot confirm it: {why}"
                )
            tally.add("unknown", FROM_NOTHING, others)
            inventory = self._inventory(FILTERED, total, tally, examples)
            inventory.problems = [f"the repository permissions could not be read: {why}"]
            return inventory
        if len(perms.values) + len(perms.problems) != others:
            raise Distrust(
                f"{others:,} repositories are not admin by role=admin, and the permission list names "
                f"{len(perms.values) + len(perms.problems):,} without admin"
            )
        self._check_names([full for full, _ in perms.values], admin, perms.endpoint)
        repos = [Repo(_slug_of(full), full, word, FROM_PERMISSIONS) for full, word in perms.values]
        for word in ("write", "read"):
            group = [r for r in repos if r.permission == word]
            tally.add(word, FROM_PERMISSIONS, len(group), group)
        unknown = sum(1 for r in repos if r.permission == "unknown") + len(perms.problems)
        tally.add("unknown", FROM_NOTHING, unknown)
        inventory = self._inventory(FILTERED, total, tally, examples)
        inventory.problems = perms.problems
        await self._confirm_first(inventory)
        return inventory

    def _token_filtered(self, total: int, admins: int, tally: _Tally, examples: list[Repo]) -> Inventory:
        """An access token by counts: its scopes' word for every repository, role=admin as a check."""
        for count, in_role_admin in ((admins, True), (total - admins, False)):
            word, source = self._token_says(in_role_admin)
            shown = examples if word in ("read", "write") and admins == 0 else []
            tally.add(word, source, count, [Repo(r.slug, r.full_name, word, source) for r in shown])
        return self._inventory(FILTERED, total, tally, examples)

    def _check_names(self, names: list[str], admin: Count, endpoint: str) -> None:
        """The counts add up; the names must too: each in this workspace, none that role=admin showed."""
        prefix = f"{self.config.workspace.lower()}/"
        shown_admin = {full.lower() for _, full in admin.items}
        for full in names:
            if not full.lower().startswith(prefix) or full.lower() in shown_admin:
                raise Distrust(
                    f"{endpoint}: '{full}' is named without admin, which role=admin or the workspace contradicts"
                )

    async def _confirm_first(self, inventory: Inventory) -> None:
        """The first repository without admin is the one whose reads test the admin-only rule
        (reads.without_admin): the list filtered by its slug must show it, and role=admin filtered
        so must not (two requests, side by side)."""
        first = next((r for r in inventory.without_admin if r.source == FROM_PERMISSIONS), None)
        if first is None:
            return
        shown, admin = await asyncio.gather(
            self._named(self.repos_path, {}, [first.slug]),
            self._named(self.repos_path, {"role": "admin"}, [first.slug]),
        )
        if [full.lower() for _, full in shown] != [first.full_name.lower()] or admin:
            raise Distrust(
                f"the permission list names '{first.full_name}' without admin; the repository list disagrees"
            )

    async def _subset(self, wanted: list[str], who: role.WorkspaceRole) -> Inventory:
        """REPOSITORIES: which of them are visible, which admin, the others' permission, by batches."""
        batches = _batches(wanted)
        asks = [self._named(self.repos_path, {}, batch) for batch in batches]
        if not who.admin:
            asks += [self._named(self.repos_path, {"role": "admin"}, batch) for batch in batches]
        answers = await asyncio.gather(*asks)
        visible = [repo for found in answers[: len(batches)] for repo in found]
        admins = {full.lower() for found in answers[len(batches) :] for _, full in found}
        tally, order = _Tally(), {slug: i for i, slug in enumerate(wanted)}
        visible.sort(key=lambda repo: order.get(repo[0].lower(), len(order)))
        words: dict[str, str] = {}
        problems: list[str] = []
        if self.kind is not Kind.ACCESS_TOKEN and not who.admin and visible:
            # Every one's word, the admin ones' too: role=admin is checked, never trusted alone.
            words, problems = await self._words([full for _, full in visible])
        self._decide_each(tally, visible, who, admins, words, "unknown" if problems else "read")
        examples = [Repo(slug, full, "unknown") for slug, full in visible[:EXAMPLES]]
        inventory = self._inventory(FILTERED, len(visible), tally, examples)
        seen = {slug.lower() for slug, _ in visible}
        inventory.not_visible = [slug for slug in wanted if slug not in seen]
        inventory.problems = problems
        return inventory

    async def _named(self, path: str, params: dict[str, str], batch: list[str]) -> list[tuple[str, str]]:
        """The repositories of one batch of slugs the list shows (with `role=`, those it shows for it)."""
        asked = {slug.lower() for slug in batch}

        def inside(found: tuple[str, str]) -> None:
            if found[0].lower() not in asked:
                raise Distrust(f"GET {path}: a page filtered by slug holds '{found[0]}', which was not asked for")

        query = {**params, "q": _either(*(f'slug="{slug}"' for slug in batch)), "fields": REPO_FIELDS}
        listing = await self._collect(path, query, _repository, inside)
        return self._only_page(listing, len(batch))

    async def _words(self, names: list[str]) -> tuple[dict[str, str], list[str]]:
        """The permission list's word for each of `names` (lower case), by batches of BBQL."""

        async def one(batch: list[str]) -> Listing:
            asked = {name.lower() for name in batch}

            def inside(found: tuple[str, str]) -> None:
                if found[0].lower() not in asked:
                    raise Distrust(f"GET {self.perms_path}: a page filtered by repository holds another one")

            q = _either(*(f'repository.full_name="{name}"' for name in batch))
            return await self._collect(self.perms_path, {"q": q, "fields": PERM_FIELDS}, _permission, inside)

        words: dict[str, str] = {}
        problems: list[str] = []
        batches = _batches(names)
        for batch, listing in zip(batches, await asyncio.gather(*(one(batch) for batch in batches)), strict=True):
            for full, word in self._only_page(listing, len(batch)):
                words[full.lower()] = word
            problems += listing.problems
        return words, problems

    def _only_page(self, listing: Listing, most: int) -> list[Any]:
        """A filtered batch's items: one page of at most `most`; anything else is not trusted."""
        if listing.reply is not None and listing.reply.status == 400:
            raise Distrust(f"{listing.endpoint} answered 400 to a q= filter")
        if not listing.ok:
            raise Distrust(f"{listing.endpoint}: {listing.failure or f'answered {listing.reply.status}'}")
        if len(listing.values) + len(listing.problems) > most:
            raise Distrust(f"{listing.endpoint}: a filter for {most} repositories answered more")
        return listing.values

    # --- the full listing ---------------------------------------------------------------------

    async def _collect(
        self,
        path: str,
        params: dict[str, str],
        parse: Callable[[Any, str, str], Any],
        check: Callable[[Any], None] | None = None,
    ) -> Listing:
        endpoint = f"GET {path}"
        keep = _Keep(endpoint, parse, check)

        def first(reply: Reply) -> None:
            # The first page's shape is checked before paging reads `size` or `next` from it.
            if reply.ok:
                page(json_body(reply, endpoint), endpoint)

        try:
            reply, values = await paging.collect(self.client, path, params, first, keep)
        except ApiFailure as exc:
            return Listing(endpoint, failure=exc.reason)
        except ShapeError as exc:
            return Listing(endpoint, failure=str(exc))
        if parse is _permission:
            values = keep.permissions(values)
        return Listing(endpoint, reply, values, problems=keep.problems)

    async def _full(self, wanted: list[str], who: role.WorkspaceRole, why: str) -> Inventory:
        """Everything listed, every page: the way to the same answer when a shortcut was not trusted."""
        user = self.kind is not Kind.ACCESS_TOKEN
        repos, admin, perms = await asyncio.gather(
            self._collect(self.repos_path, {"fields": REPO_FIELDS}, _repository),
            self._none()
            if who.admin
            else self._collect(self.repos_path, {"role": "admin", "fields": REPO_FIELDS}, _repository),
            self._collect(self.perms_path, {"fields": PERM_FIELDS}, _permission)
            if user and not who.admin
            else self._none(),
        )
        if not repos.ok or repos.problems:
            inventory = Inventory(self._listing_result(repos))
            inventory.strategy, inventory.fallback = FULL, why
            return inventory
        wanted_set = set(wanted)
        visible = [(s, f) for s, f in repos.values if not wanted or s.lower() in wanted_set]
        admins = {full.lower() for _, full in admin.values} if admin.ok else None
        words, unlisted, problems = self._known(perms) if user and not who.admin else ({}, "read", [])
        tally = _Tally()
        self._decide_each(tally, visible, who, admins, words, unlisted)
        examples = [Repo(slug, full, "unknown") for slug, full in visible[:EXAMPLES]]
        inventory = self._inventory(FULL, len(visible), tally, examples)
        inventory.fallback, inventory.problems = why, problems
        if admins is None and not who.admin:
            inventory.problems = problems + [f"role=admin could not be read: {admin.failure or 'no answer'}"]
        seen = {slug.lower() for slug, _ in visible}
        inventory.not_visible = [slug for slug in wanted if slug not in seen]
        return inventory

    async def _none(self) -> Listing:
        return Listing("", failure="not asked")

    def _listing_result(self, repos: Listing) -> ProbeResult:
        if repos.failure is not None or repos.reply is None:
            return ProbeResult(Outcome.FAILED, reason=repos.failure or "no answer")
        if repos.problems:
            return ProbeResult(Outcome.FAILED, repos.reply.status, reason=summary(repos.problems))
        return classify(repos.reply, repos.endpoint, grants=self.grants)

    def _known(self, perms: Listing) -> tuple[dict[str, str], str, list[str]]:
        """(word by full_name, the word of a visible repository the list does not name, problems)."""
        if not perms.ok:
            why = perms.failure or classify(perms.reply, perms.endpoint).reason
            return {}, "unknown", [f"the repository permissions could not be read: {why}"]
        words = {full.lower(): word for full, word in perms.values}
        problems = list(perms.problems)
        # A broken entry may have been any repository's: the unlisted ones are then not assumed read.
        return words, "unknown" if problems else "read", problems

    def _decide_each(
        self,
        tally: _Tally,
        visible: list[tuple[str, str]],
        who: role.WorkspaceRole,
        admins: set[str] | None,
        words: dict[str, str],
        unlisted: str,
    ) -> None:
        for slug, full in visible:
            permission, source = self._decide(full.lower(), who, admins, words, unlisted)
            tally.add(permission, source, 1, [Repo(slug, full, permission, source)])

    def _decide(
        self, name: str, who: role.WorkspaceRole, admins: set[str] | None, words: dict[str, str], unlisted: str
    ) -> tuple[str, str]:
        """One repository's permission and its source. Admin from any source is admin; no admin
        only when role=admin agrees, never from the permission list alone."""
        if who.admin:
            return "admin", FROM_ROLE
        if self.kind is Kind.ACCESS_TOKEN:
            return self._token_says(None if admins is None else name in admins)
        listed = words.get(name)
        if admins is None:
            return ("admin", FROM_PERMISSIONS) if listed == "admin" else ("unknown", FROM_NOTHING)
        if (name in admins) != (listed == "admin") and listed is not None:
            # One says admin, the other not: a server ignoring role= and an explicit-only list look
            # alike here, and admin on a guess would make a backup look complete.
            return "unknown", FROM_DISAGREEMENT
        if name in admins:
            return "admin", FROM_ROLE_ADMIN
        if listed is not None:
            return listed, FROM_PERMISSIONS
        return unlisted, FROM_UNLISTED if unlisted != "unknown" else FROM_NOTHING

    def _token_says(self, in_role_admin: bool | None) -> tuple[str, str]:
        """An access token's permission on one repository is its scopes' (role= is documented for
        a user's role); role=admin only checks them, and where it disagrees the answer is unknown."""
        word = _token_permission(self.grants.granted)
        if word == "unknown":
            return word, FROM_NOTHING
        if in_role_admin is not None and in_role_admin != (word == "admin"):
            return "unknown", FROM_DISAGREEMENT
        return word, FROM_TOKEN

    # --- the result ---------------------------------------------------------------------------

    def _inventory(self, strategy: str, total: int, tally: _Tally, examples: list[Repo]) -> Inventory:
        named = sorted(tally.named, key=lambda r: r.full_name.lower())
        by_name = {r.full_name.lower(): r for r in named}
        # Examples are names for "every repository": a named one carries its permission, the others
        # are admin when every repository is, else `unknown` (only their names are shown).
        everyone = tally.counts["admin"] == total
        examples = [
            by_name.get(r.full_name.lower()) or (Repo(r.slug, r.full_name, "admin") if everyone else r)
            for r in examples
        ]
        source = "; ".join(f"{where} ({count:,})" for where, count in tally.sources.items()) or "none listed"
        return Inventory(
            ProbeResult(Outcome.OK),
            total=total,
            counts=tally.counts,
            without_admin=named,
            examples=examples,
            permissions_source=source,
            sources=dict(tally.sources),
            strategy=strategy,
        )


def _not_admin(found: tuple[str, str]) -> None:
    if found[1] == "admin":
        raise Distrust(f"a page filtered by q={NOT_ADMIN} lists '{found[0]}' with admin")
