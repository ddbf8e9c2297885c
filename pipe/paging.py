"""Bitbucket's paged collections, read within bounds that hold whatever the server claims.

The number of pages is bounded twice: by what the first page's `size` plausibly allows (with
the page length the pipe asked for, or the one the server really used when it is smaller) and
by MAX_PAGES. A listing also has a budget of bytes and JSON values, so that a server sending
many fat pages cannot grow the run beyond its memory bound. A `next` link on another origin is
never requested. Whatever breaks a bound ends the listing as ApiFailure naming the endpoint:
the check that needed it is `unknown`, never `ready` on partial data.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipe.client import ApiFailure, Origin, Reply

if TYPE_CHECKING:
    from pipe.client import Client

MAX_PAGELEN = 100
MAX_PAGES = 1_000  # 100,000 items per listing
# What all listings of one run may keep, together: the parsed pages stay in memory until the
# assessment. An honest repository with `fields` weighs ~9 JSON values and ~80 bytes in the
# repository list and ~7 values in the permission list, so 50,000 repositories (bench/) weigh
# ~800,000 values and ~8 MB; the budget keeps a hostile server's listings near that size too.
RUN_VALUES = 1_000_000
RUN_BYTES = 32 * 1024 * 1024


@dataclass
class _Kept:
    """The bytes and JSON values the listings of one client have kept so far."""

    nbytes: int = 0
    weight: int = 0


_KEPT: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()


@dataclass
class _Budget:
    """What one listing costs: pages, and bytes and values against the run's budget, counted as
    each page arrives (a page over budget ends the listing before the next one is read)."""

    where: str
    kept: _Kept = field(default_factory=_Kept)
    pages: int = 0

    def take(self, reply: Reply) -> list[Any]:
        """The page's items, after checking its shape and the budget."""
        if not reply.ok or not isinstance(reply.body, dict):
            raise ApiFailure(f"{self.where}: a page of results failed: {reply.message}")
        self.pages += 1
        self.kept.nbytes += reply.memory  # what the kept page takes once parsed, not its UTF-8 bytes
        self.kept.weight += reply.weight
        if self.kept.nbytes > RUN_BYTES or self.kept.weight > RUN_VALUES:
            raise ApiFailure(
                f"{self.where}: the listings are larger than the pipe keeps ({RUN_VALUES:,} JSON values, "
                f"{RUN_BYTES // 2**20} MiB) after {self.pages} pages; not read"
            )
        values = reply.body.get("values", [])
        if values is None:
            values = []
        if not isinstance(values, list):
            raise ApiFailure(f"{self.where}: a page's `values` is not a list")
        if len(values) > MAX_PAGELEN:
            raise ApiFailure(f"{self.where}: a page holds {len(values)} items, more than the {MAX_PAGELEN} asked for")
        return values


def _count(value: Any) -> int | None:
    """A JSON whole number >= 0 (True is an int to Python, not a size)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def collect(
    client: Client,
    path: str,
    params: Mapping[str, Any] | None = None,
    on_first: Callable[[Reply], None] | None = None,
) -> tuple[Reply, list[Any]]:
    """Every item of a paged collection. When the first page is full and tells the size, the
    other pages are fetched by number, side by side; otherwise `next` is followed, bounded."""
    query = {**(params or {}), "pagelen": MAX_PAGELEN}
    where = client.where("GET", client.url(path))
    first = await client.get(path, query)
    if on_first:
        on_first(first)
    if not first.ok or not isinstance(first.body, dict):
        return first, []
    budget = _Budget(where, _KEPT.setdefault(client, _Kept()))
    values = list(budget.take(first))
    link = first.body.get("next")
    if not link:
        return first, values
    size = _count(first.body.get("size"))
    if size is None:
        more = f"Bitbucket kept linking more pages than the {MAX_PAGES:,} the pipe reads"
        return first, values + await _follow(client, budget, link, MAX_PAGES, more)
    if size <= len(values):
        return first, values  # everything is in; a `next` beyond the size is not needed
    if not values:
        raise ApiFailure(f"{where}: the first page is empty but Bitbucket claims {size:,} items")
    # The server's real page length is what it sent, never more than what was asked.
    pages = math.ceil(size / len(values))
    if pages > MAX_PAGES:
        raise ApiFailure(
            f"{where}: Bitbucket claims {size:,} items in {pages:,} pages, more than the {MAX_PAGES:,} "
            "the pipe reads; not read"
        )
    if len(values) == MAX_PAGELEN:
        return first, values + await _numbered(client, budget, path, query, pages)
    # A server that pages by less than asked: follow `next`, one page of slack for new items.
    more = f"Bitbucket linked more pages than its size ({size:,} items) allows"
    return first, values + await _follow(client, budget, link, pages + 1, more)


async def _numbered(client: Client, budget: _Budget, path: str, query: dict[str, Any], pages: int) -> list[Any]:
    async def page(number: int) -> list[Any]:
        return budget.take(await client.get(path, {**query, "page": number}))

    try:
        async with asyncio.TaskGroup() as group:  # the first failure cancels the other pages
            tasks = [group.create_task(page(n)) for n in range(2, pages + 1)]
    except* ApiFailure as failures:
        raise failures.exceptions[0] from None
    return [item for task in tasks for item in task.result()]


async def _follow(client: Client, budget: _Budget, link: Any, pages: int, more: str) -> list[Any]:
    """`next` links one by one, never off the API's origin, never more than `pages` in all."""
    seen: set[str] = set()
    values: list[Any] = []
    while link:
        if not isinstance(link, str) or not link[:8].lower().startswith(("http://", "https://")):
            raise ApiFailure(f"{budget.where}: a page's `next` is not an absolute http(s) link")
        if link in seen:
            raise ApiFailure(f"{budget.where}: Bitbucket's pagination looped back to a page already read")
        if not client.is_home(link):
            raise ApiFailure(
                f"{budget.where}: a page links its next page on another origin ({_origin(link)}); "
                "not followed with the credential"
            )
        if budget.pages >= pages:
            raise ApiFailure(f"{budget.where}: {more}; not all read")
        seen.add(link)
        reply = await client.get(link)
        values.extend(budget.take(reply))
        link = reply.body.get("next")
    return values


def _origin(link: str) -> str:
    try:
        return str(Origin.of(link))
    except Exception:  # noqa: BLE001 - only for the message; the link was refused already
        return "an unreadable URL"
