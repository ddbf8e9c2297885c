"""Bitbucket-style pagination and `fields=` trimming."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100  # most collections clamp a larger pagelen to this
PULL_REQUEST_MAX_PAGELEN = 50  # pull request lists refuse more with 400 "Invalid pagelen" (research A11)


@dataclass
class Page:
    """One page of a collection; items carry pre-serialised JSON so a page is a slice, not a rebuild."""

    meta: dict[str, Any]
    items: list[dict[str, Any]] | None  # None: only items_json is known (parsed on demand)
    items_json: list[str] | None = None

    def to_obj(self) -> dict[str, Any]:
        # Parsing is left to the rare callers that need objects (fields=): it costs ~40x the join.
        items = self.items if self.items is not None else [json.loads(s) for s in self.items_json or []]
        return {**self.meta, "values": items}

    def to_bytes(self) -> bytes:
        if self.items_json is None:
            return json.dumps(self.to_obj()).encode()
        head = json.dumps(self.meta)
        joined = ",".join(self.items_json)
        sep = ", " if self.meta else ""
        return f'{head[:-1]}{sep}"values": [{joined}]}}'.encode()


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def page_url(base: str, path: str, query: str, page: int) -> str:
    """Same query, page replaced: what Bitbucket puts in next/previous."""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
    params.append(("page", str(page)))
    return f"{base}{path}?{urlencode(params)}"


def requested_pagelen(params: dict[str, str]) -> int:
    return _int(params.get("pagelen"), DEFAULT_PAGELEN)


def paginate(
    total: int, params: dict[str, str], base: str, path: str, query: str, with_size: bool = True
) -> tuple[slice, dict[str, Any]]:
    """The window of a collection of `total` items a request asks for, and the page's metadata.

    Callers slice their (cached) item list with it, so only one page is ever built. `size` is
    optional in Bitbucket's pages ("can be expensive to compute"): with_size=False leaves it out.
    """
    pagelen = max(1, min(requested_pagelen(params), MAX_PAGELEN))
    page = max(1, _int(params.get("page"), 1))
    start = (page - 1) * pagelen
    meta: dict[str, Any] = {"pagelen": pagelen, "size": total, "page": page}
    if not with_size:
        del meta["size"]
    if start + pagelen < total:
        meta["next"] = page_url(base, path, query, page + 1)
    if page > 1:
        meta["previous"] = page_url(base, path, query, page - 1)
    return slice(start, start + pagelen), meta


# --- fields= ---------------------------------------------------------------------------


def _select(obj: Any, paths: list[list[str]]) -> Any:
    """Keep only the given dotted paths (lists are traversed element-wise)."""
    if isinstance(obj, list):
        return [_select(item, paths) for item in obj]
    if not isinstance(obj, dict):
        return obj
    if any(not p for p in paths):
        return obj  # a path ended here: keep the whole sub-object
    out: dict[str, Any] = {}
    keys = list(obj) if any(p[0] == "*" for p in paths) else []
    for key in dict.fromkeys([p[0] for p in paths if p[0] != "*"] + keys):
        if key not in obj:
            continue  # unknown paths are ignored, as Bitbucket does
        sub = [p[1:] for p in paths if p[0] in (key, "*")]
        out[key] = _select(obj[key], sub)
    return out


def _remove(obj: Any, path: list[str]) -> Any:
    if isinstance(obj, list):
        return [_remove(item, path) for item in obj]
    if not isinstance(obj, dict) or path[0] not in obj:
        return obj
    out = dict(obj)
    if len(path) == 1:
        del out[path[0]]
    else:
        out[path[0]] = _remove(obj[path[0]], path[1:])
    return out


def apply_fields(obj: Any, spec: str) -> Any:
    """`fields=a,b.c` keeps only those; `+x` adds to the default (everything here); `-x` removes."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    keep = [p.split(".") for p in parts if p[0] not in "+-"]
    add = [p[1:].split(".") for p in parts if p[0] == "+"]
    drop = [p[1:].split(".") for p in parts if p[0] == "-"]
    result = _select(obj, keep + add) if keep else obj
    for path in drop:
        result = _remove(result, path)
    return result
