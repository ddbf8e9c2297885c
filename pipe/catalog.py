"""The catalog of data categories (pipe/catalog.yml) as typed objects."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from pipe import profiles as profiles_module
from pipe import scopes

CATALOG_FILE = Path(__file__).with_name("catalog.yml")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    classic: tuple[str, ...]
    api_token: tuple[str, ...]
    probe: bool = False
    admin: bool = False  # also needs admin permission on the repository
    permission: str | None = None  # least repository permission a write needs ("write")

    def scopes_for(self, vocabulary: str) -> tuple[str, ...]:
        return self.api_token if vocabulary == scopes.API_TOKEN else self.classic

    @property
    def per_repository(self) -> bool:
        return "{repo_slug}" in self.path

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def available_to_access_tokens(self) -> bool:
        return set(self.classic) <= scopes.ACCESS_TOKEN_GRANTABLE


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

    @property
    def needs_admin(self) -> bool:
        return any(op.admin for op in self.read)

    @property
    def probes(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.read if op.probe)


# One Profile type and one checker for the built-in profiles and a team's PROFILE_FILE.
Profile = profiles_module.Profile


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Category, ...]
    profiles: dict[str, Profile]

    def category(self, category_id: str) -> Category:
        return next(c for c in self.categories if c.id == category_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)


def _operation(raw: dict) -> Operation:
    return Operation(
        method=raw["method"],
        path=raw["path"],
        classic=tuple(raw["classic"]),
        api_token=tuple(raw["api_token"]),
        probe=raw.get("probe", False),
        admin=raw.get("admin", False),
        permission=raw.get("permission"),
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
    )


@cache
def load(path: Path = CATALOG_FILE) -> Catalog:
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    categories = tuple(_category(c) for c in raw["categories"])
    # The built-in profiles go through the checker a PROFILE_FILE does: one form, one set of rules.
    profiles = profiles_module.parse(text, tuple(c.id for c in categories))
    return Catalog(categories=categories, profiles=profiles)
