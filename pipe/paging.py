"""Bitbucket's paged collections, read within bounds that hold whatever the server claims.

The number of pages is bounded twice: by what the first page's `size` plausibly allows (with
the page length the pipe asked for, or the one the server really used when it is smaller) and
by MAX_PAGES. The listings of a run also share a budget of bytes and JSON values read, so that
a server sending many fat pages cannot keep the run busy, and each page is reduced at once to
what its caller keeps (`keep`): the memory a listing holds grows with what the report needs,
not with what the server sent. A `next` link on another origin is never requested. Whatever
breaks a bound ends the listing as ApiFailure naming the endpoint: the check that needed it is
`unknown`, never `ready` on partial data. A `keep` that finds the server did not do what was
asked (a filtered page holding an item outside the filter) raises Distrust: its caller then
reads the collection another way.
"""

from __future__ import annotations

import asyncio
import math
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipe.client import ApiFailure, Origin, Reply

if TYPE_CHECKING:
    from pipe.client import Client

# Page-length caps, per collection (bitbucket-cloud.md section 3; research platform-2026-12.md A11,
# live probes published in 2026-10): pull request lists refuse more than 50 with 400 "Invalid
# pagelen"; the other lists take up to 100 and clamp more. No request of the pipe asks for more.
MAX_PAGELEN = 100
PAGE_CAPS: tuple[tuple[re.Pattern[str], int], ...] = ((re.compile(r"/pullrequests(/activity)?/?$"), 50),)
MAX_PAGES = 1_000  # 100,000 items per listing
# What all listings of one run may read, together. Each page is reduced to what is kept as soon
# as it arrives, so this bounds work, not memory. With `fields` an honest 50,000-repository full
# listing (repositories, role=admin and permissions) reads ~1 million values and ~15 MB, and the
# filtered way reads a few values per repository without admin; a server that ignores `fields`
# sends ~200 values and ~2.4 KB per repository, so its full listing fits up to ~12,000 of them.
RUN_VALUES = 4_000_000
RUN_BYTES = 64 * 1024 * 1024


def pagelen_cap(path: str) -> int:
    """The largest `pagelen` the collection at `path` accepts."""
    bare = path.split("?", 1)[0]
    return next((cap for pattern, cap in PAGE_CAPS if pattern.search(bare)), MAX_PAGELEN)


class Distrust(Exception):
    """A page shows the server did not do what was asked (a filter, a page length, a size)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Read:
    """The bytes and JSON values the listings of one client have read so far."""

    nbytes: int = 0
    weight: int = 0
    kept: int = 0  # the memory of the pages kept whole (no `keep`): Reply.memory, not their bytes


# What the pages kept whole (a listing without `keep`, like the workspaces of WORKSPACE '*') may
# take in memory, all listings together: one emoji makes a string 4 times its UTF-8 bytes.
RUN_KEPT = 32 * 1024 * 1024
_READ: weakref.WeakKeyDictionary[Any, _Read] = weakref.WeakKeyDictionary()
Keep = Callable[[list[Any]], list[Any]]


def _everything(items: list[Any]) -> list[Any]:
    return items


@dataclass
class _Budget:
    """What one listing costs: pages, and bytes and values against the run's budget, counted as
    each page arrives (a page over budget ends the listing before the next one is read)."""

    where: str
    pagelen: int
    keep: Keep = _everything
    read: _Read = field(default_factory=_Read)
    pages: int = 0

    def take(self, reply: Reply) -> list[Any]:
        """What the caller keeps of the page's items, after checking its shape and the budget."""
        if not reply.ok or not isinstance(reply.body, dict):
            raise ApiFailure(f"{self.where}: a page of results failed: {reply.message}")
        self.pages += 1
        self.read.nbytes += reply.memory  # what the page takes once parsed, not its UTF-8 bytes
        self.read.weight += reply.weight
        if self.read.nbytes > RUN_BYTES or self.read.weight > RUN_VALUES:
            raise ApiFailure(
                f"{self.where}: the listings are larger than the pipe keeps (it reads {RUN_VALUES:,} JSON values, "
                f"{RUN_BYTES // 2**20} MiB per run) after {self.pages} pages; not read"
            )
        if self.keep is _everything:
            self.read.kept += reply.memory
            if self.read.kept > RUN_KEPT:
                raise ApiFailure(
                    f"{self.where}: the pages would take more than {RUN_KEPT // 2**20} MiB in memory once parsed "
                    f"after {self.pages} pages; not read"
                )
        values = reply.body.get("values", [])
        if values is None:
            values = []
        if not isinstance(values, list):
            raise ApiFailure(f"{self.where}: a page's `values` is not a list")
        if len(values) > self.pagelen:
            raise ApiFailure(f"{self.where}: a page holds {len(values)} items, more than the {self.pagelen} asked for")
        return self.keep(values)


def size_of(value: Any) -> int | None:
    """A page's `size` when it is a JSON whole number >= 0 (True is an int to Python, not a size)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def collect(
    client: Client,
    path: str,
    params: Mapping[str, Any] | None = None,
    on_first: Callable[[Reply], None] | None = None,
    keep: Keep | None = None,
) -> tuple[Reply, list[Any]]:
    """Every item of a paged collection, each page reduced by `keep` as it arrives (its items
    are not kept otherwise). When the first page is full and tells the size, the other pages are
    fetched by number, side by side; otherwise `next` is followed, bounded. The first Reply is
    returned for its status and error; its body is dropped once read (`values` emptied)."""
    pagelen = pagelen_cap(path)
    query = {**(params or {}), "pagelen": pagelen}
    where = client.where("GET", client.url(path))
    first = await client.get(path, query)
    if on_first:
        on_first(first)
    if not first.ok or not isinstance(first.body, dict):
        return first, []
    budget = _Budget(where, pagelen, keep or _everything, _READ.setdefault(client, _Read()))
    sent = len(first.body["values"]) if isinstance(first.body.get("values"), list) else 0
    values = list(budget.take(first))
    link, size = first.body.get("next"), size_of(first.body.get("size"))
    first.body = {k: v for k, v in first.body.items() if k != "values"}  # the kept items are the listing
    if not link:
        return first, values
    if size is None:
        more = f"Bitbucket kept linking more pages than the {MAX_PAGES:,} the pipe reads"
        return first, values + await _follow(client, budget, link, MAX_PAGES, more)
    if size <= sent:
        return first, values  # everything is in; a `next` beyond the size is not needed
    if not sent:
        raise ApiFailure(f"{where}: the first page is empty but Bitbucket claims {size:,} items")
    # The server's real page length is what it sent, never more than what was asked.
    pages = math.ceil(size / sent)
    if pages > MAX_PAGES:
        raise ApiFailure(
            f"{where}: Bitbucket claims {size:,} items in {pages:,} pages, more than the {MAX_PAGES:,} "
            "the pipe reads; not read"
        )
    if sent == pagelen:
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
    except ExceptionGroup as group:
        # One reason is enough: the first page that failed (or was distrusted) ends the listing.
        known = group.subgroup((ApiFailure, Distrust))
        if known is None:
            raise
        first = known.exceptions[0]
        while isinstance(first, ExceptionGroup):
            first = first.exceptions[0]
        raise first from None
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
