"""The catalog of data categories (pipe/catalog.yml) as typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from pipe import profiles as profiles_module
from pipe import scopes

CATALOG_FILE = Path(__file__).with_name("catalog.yml")


@dataclass(frozen=True)
class Operation:
    method: str  # "" for a registry row (outside_openapi): not a REST operation
    path: str  # the document's path template, or the registry's name
    classic: tuple[str, ...] | None  # None: no classic scope is documented for it
    api_token: tuple[str, ...]
    probe: bool = False
    admin: bool = False  # also needs admin permission on the repository
    permission: str | None = None  # least repository permission a write needs ("write")
    outside_openapi: bool = False  # scopes known from Atlassian's pages, not from the OpenAPI document

    def scopes_for(self, vocabulary: str) -> tuple[str, ...]:
        return self.api_token if vocabulary == scopes.API_TOKEN else self.classic or ()

    def documented_for(self, vocabulary: str) -> bool:
        """Whether a scope of this vocabulary is known to grant it (no classic scope for Packages)."""
        return vocabulary == scopes.API_TOKEN or self.classic is not None

    @property
    def per_repository(self) -> bool:
        return "{repo_slug}" in self.path

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" if self.method else self.path

    def available_to_access_tokens(self) -> bool:
        return set(self.classic or ()) <= scopes.ACCESS_TOKEN_GRANTABLE


@dataclass(frozen=True)
class Category:
    id: str
    title: str
    covers: str
    read: tuple[Operation, ...]
    restore: tuple[Operation, ...]
    retired: str | None = None
    note: str | None = None
    git: bool = False
    note_always: bool = False  # the note is shown in every profile, not only where it is required

    @property
    def needs_admin(self) -> bool:
        return any(op.admin for op in self.read)

    @property
    def probes(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.read if op.probe)


# One Profile type and one checker for the built-in profiles and a team's PROFILE_FILE.
Profile = profiles_module.Profile


@dataclass(frozen=True)
class VendorTerm:
    """One line of a vendor's permission page ("Account read") and the categories it means."""

    term: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class VendorTerms:
    vendor: str  # "Xopero ONE"
    lines: tuple[VendorTerm, ...]


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Category, ...]
    profiles: dict[str, Profile]
    # Scopes known from Atlassian's documentation but absent from the OpenAPI document: name -> source.
    outside_openapi: dict[str, str] = field(default_factory=dict)
    # What a changelog id in a 410 means ("CHANGE-3071" -> a sentence).
    changes: dict[str, str] = field(default_factory=dict)
    # A built-in profile's vendor page in today's scopes (profile name -> its lines).
    vendor_terms: dict[str, VendorTerms] = field(default_factory=dict)

    def category(self, category_id: str) -> Category:
        return next(c for c in self.categories if c.id == category_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)


def _operation(raw: dict) -> Operation:
    outside = raw.get("outside_openapi", False)
    rest = "method" in raw and "path" in raw
    if outside == rest or outside != ("registry" in raw):
        raise ValueError(f"catalog.yml: {raw}: a REST row has method and path, an outside_openapi row a registry")
    return Operation(
        method=raw.get("method", ""),
        path=raw.get("path") or raw["registry"],
        classic=None if raw["classic"] is None else tuple(raw["classic"]),
        api_token=tuple(raw["api_token"]),
        probe=raw.get("probe", False),
        admin=raw.get("admin", False),
        permission=raw.get("permission"),
        outside_openapi=outside,
    )


def _category(raw: dict) -> Category:
    return Category(
        id=raw["id"],
        title=raw["title"],
        covers=raw["covers"],
        read=tuple(_operation(op) for op in raw.get("read", [])),
        restore=tuple(_operation(op) for op in raw.get("restore", [])),
        retired=raw.get("retired"),
        note=raw.get("note"),
        git=raw.get("git", False),
        note_always=raw.get("note_always", False),
    )


def _vendor_terms(raw: dict, ids: tuple[str, ...]) -> dict[str, VendorTerms]:
    terms = {}
    for profile, entry in raw.items():
        lines = tuple(VendorTerm(line["term"], tuple(line["categories"])) for line in entry["lines"])
        unknown = {c for line in lines for c in line.categories} - set(ids)
        if unknown:
            raise ValueError(f"catalog.yml: vendor_terms.{profile} names unknown categories {sorted(unknown)}")
        terms[profile] = VendorTerms(entry["vendor"], lines)
    return terms


def _check_outside(categories: tuple[Category, ...], outside: dict[str, str]) -> None:
    """Only rows marked outside_openapi may use the scopes of that section, and they only those."""
    for category in categories:
        for op in category.read + category.restore:
            unlisted = set(op.api_token) - set(outside) if op.outside_openapi else set(op.api_token) & set(outside)
            if unlisted:
                raise ValueError(f"catalog.yml: {category.id}: {op.label} and outside_openapi disagree on {unlisted}")


@cache
def load(path: Path = CATALOG_FILE) -> Catalog:
    text = path.read_text(encoding="utf-8")
    raw = yaml.load(text, Loader=profiles_module.SAFE_LOADER)
    categories = tuple(_category(c) for c in raw["categories"])
    # The built-in profiles go through the checker a PROFILE_FILE does: one form, one set of rules.
    profiles = profiles_module.parse(text, tuple(c.id for c in categories))
    outside = {str(k): str(v) for k, v in (raw.get("outside_openapi") or {}).items()}
    _check_outside(categories, outside)
    return Catalog(
        categories=categories,
        profiles=profiles,
        outside_openapi=outside,
        changes={str(k): " ".join(str(v).split()) for k, v in (raw.get("changes") or {}).items()},
        vendor_terms=_vendor_terms(raw.get("vendor_terms") or {}, tuple(c.id for c in categories)),
    )
