"""Repositories and permissions: the workspace's repository list and the credential's permission
on each, both read as whole paged collections, side by side.

The live reads need one representative repository, and should not wait for every page: the
first page of each listing is enough to choose it. `Lister.first_pages()` returns those first
pages (FirstPages) as soon as both are in, or as soon as a listing ended without one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipe import paging, scopes
from pipe.client import ApiFailure, Client, Reply
from pipe.credential import Kind
from pipe.outcomes import Outcome
from pipe.shapes import ShapeError, expect_dict, expect_one_of, expect_str, page, place_of, summary
from pipe.survey.evidence import Inventory, ProbeResult, Repo, classify, json_body
from pipe.survey.grants import ScopeEvidence
from pipe.variables import Config

PERMISSIONS = ("admin", "write", "read")
# Bitbucket's repository slugs: they go into API paths and git URLs, so nothing else is used.
# Never '.', '..' or a leading dot: httpx removes dot segments, so /repositories/acme/../hooks would
# read /repositories/hooks, another endpoint, whose answer would count as the repository's.
SLUG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
REPO_FIELDS = "size,page,pagelen,next,values.slug,values.full_name,values.project.key"
PERM_FIELDS = "size,page,pagelen,next,values.permission,values.repository.full_name"


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


@dataclass(frozen=True)
class FirstPage:
    """The items of a listing's first page (none when it could not be read)."""

    endpoint: str = ""
    items: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FirstPages:
    repositories: FirstPage
    permissions: FirstPage

    def representative(self, wanted: tuple[str, ...]) -> str | None:
        """The repository the live reads and git use: the first of REPOSITORIES, else one the
        credential is admin on (its admin reads can then succeed), else the first listed."""
        if wanted:
            return wanted[0]
        listed = self.repositories
        repos = [slug for slug, _ in _readable(list(listed.items), _repository, listed.endpoint)[0]]
        names, _ = _permissions(list(self.permissions.items), self.permissions.endpoint)
        admin = [n.rpartition("/")[2] for n, word in names.items() if word == "admin"]
        for slug in admin:
            if slug in repos:
                return slug
        admin = [slug for slug in admin if SLUG.fullmatch(slug)]
        return repos[0] if repos else (admin[0] if admin else None)


@dataclass
class Listing:
    """One paged collection as read: its first answer and every item, or why it could not be read."""

    endpoint: str
    reply: Reply | None = None
    values: list[Any] = field(default_factory=list)
    failure: str | None = None


REPOS, PERMS = "repositories", "permissions"


class Lister:
    """Lists repositories and permissions side by side (`run`); `first_pages` is ready as soon as
    the first page of each is in, so that the live reads need not wait for the rest."""

    def __init__(self, client: Client, config: Config, grants: ScopeEvidence, kind: Kind):
        self.client, self.config, self.grants, self.kind = client, config, grants, kind
        self._first: dict[str, FirstPage] = {}
        self._first_in = asyncio.Event()

    async def first_pages(self) -> FirstPages:
        await self._first_in.wait()
        return FirstPages(self._first.get(REPOS, FirstPage()), self._first.get(PERMS, FirstPage()))

    def _first_page(self, which: str, endpoint: str, reply: Reply) -> None:
        """paging's on_first hook. The page's shape is checked here, before paging reads `size`
        or `next` from it: a ShapeError ends the listing (see _collect)."""
        items: list[Any] = []
        try:
            if reply.ok:
                items = page(json_body(reply, endpoint), endpoint).values
        finally:
            self._first[which] = FirstPage(endpoint, tuple(items))
            if len(self._first) == 2:
                self._first_in.set()

    async def _collect(self, which: str, path: str, fields: str) -> Listing:
        endpoint = f"GET {path}"
        try:
            reply, values = await paging.collect(
                self.client, path, {"fields": fields}, lambda r: self._first_page(which, endpoint, r)
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
                self._collect(REPOS, f"/repositories/{ws}", REPO_FIELDS),
                self._collect(PERMS, f"/user/workspaces/{ws}/permissions/repositories", PERM_FIELDS),
            )
        finally:
            self._first_in.set()  # a listing that ended without a first page: the reads go on
        return self._build(repos, perms)

    def _known(self, perms: Listing) -> tuple[dict[str, str], str, str, list[str]]:
        """(permission by full_name, the permission of repositories not listed, source, problems)."""
        if perms.failure is not None or perms.reply is None:
            failure = perms.failure or "no answer"
            return {}, "unknown", f"not readable: {failure}", [failure]
        reply = perms.reply
        if not reply.ok and self.kind is Kind.ACCESS_TOKEN:  # a token has no user to list them for
            return {}, _token_permission(self.grants.granted), "access token scopes", []
        if not reply.ok:
            why = classify(reply, perms.endpoint).reason
            return {}, "unknown", f"not readable: {why}", []
        known, problems = _permissions(perms.values, perms.endpoint)
        # A broken entry may have been any repository's: the unlisted ones are then not assumed read.
        return known, "unknown" if problems else "read", "repository permissions API", problems

    def _build(self, repos: Listing, perms: Listing) -> Inventory:
        if repos.failure is not None or repos.reply is None:
            return Inventory(ProbeResult(Outcome.FAILED, reason=repos.failure or "no answer"))
        listing = classify(repos.reply, repos.endpoint, grants=self.grants)
        found, problems = _readable(repos.values, _repository, repos.endpoint)
        if problems:  # the list is not whole: what it proves is not trusted either
            listing = ProbeResult(Outcome.FAILED, repos.reply.status, reason=summary(problems))
        known, default, source, trouble = self._known(perms)
        inventory = Inventory(listing, permissions_source=source, problems=trouble)
        wanted = set(self.config.repositories)
        for slug, full in found:
            if wanted and slug.lower() not in wanted:
                continue
            inventory.repositories.append(Repo(slug, full, known.get(full.lower(), default)))
        seen = {r.slug.lower() for r in inventory.repositories}
        inventory.not_visible = (
            [s for s in self.config.repositories if s not in seen] if listing.outcome is Outcome.OK else []
        )
        return inventory
