"""Every piece of advice (pipe/guidance.yml) as typed records, filled once into Items.

The assessment picks an entry and fills it (`Guidance.item`); the report document carries the
Items; renderers lay them out by `layout` and decide nothing. Templates are checked when the file
loads (known layout and severity, plain named placeholders only) and when filled (every
placeholder given, none extra), so a typo in the file is an error, never a sentence with a hole.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipe.profiles import SAFE_LOADER

GUIDANCE_FILE = Path(__file__).with_name("guidance.yml")
ENTRY_KEYS = frozenset({"layout", "severity", "text", "about"})
SINGLE = ""  # the variant key of an entry with one text
WHERE_VALUES = frozenset({"owner", "variable"})  # what a `where` text may name


class GuidanceError(ValueError):
    """guidance.yml is malformed, or an entry was filled with the wrong placeholders (a bug)."""


class Severity(StrEnum):
    ERROR = "error"  # a required category depends on it
    WARNING = "warning"
    INFO = "info"


class Layout(StrEnum):
    NOTE = "note"  # under the category table
    PARAGRAPH = "paragraph"  # a paragraph of the advice block
    ITEM = "item"  # a bullet under the paragraph before it
    STEP = "step"  # an indented line under the paragraph before it
    CATEGORY = "category"  # only in its categories' guidance


class About(StrEnum):
    WORKSPACE = "workspace"  # the workspace's own advice
    RUN = "run"  # about the credential and the profile: the same for every workspace, shown once


@dataclass(frozen=True)
class Template:
    text: str
    placeholders: frozenset[str]

    @classmethod
    def parse(cls, text: Any, where: str) -> Template:
        if not isinstance(text, str) or not text.strip():
            raise GuidanceError(f"{where}: the text must be a non-empty string")
        names = set()
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise GuidanceError(f"{where}: a brace without its pair ({exc})") from None
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                raise GuidanceError(f"{where}: placeholder {{{name}}} must be a plain name, like {{count}}")
            names.add(name)
        return cls(" ".join(text.split()), frozenset(names))

    def fill(self, values: Mapping[str, Any], where: str) -> str:
        given = set(values)
        if given != self.placeholders:
            missing, extra = sorted(self.placeholders - given), sorted(given - self.placeholders)
            raise GuidanceError(f"{where}: filled with missing {missing} and extra {extra}")
        return self.text.format_map({name: str(value) for name, value in values.items()})


@dataclass(frozen=True)
class Entry:
    id: str
    layout: Layout
    severity: Severity
    texts: dict[str, Template]  # variant -> template; SINGLE for an entry with one text
    about: About = About.WORKSPACE

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(v for v in self.texts if v != SINGLE)


@dataclass(frozen=True)
class Item:
    """One filled piece of advice, as the report document carries it."""

    id: str
    variant: str | None
    severity: Severity
    layout: Layout
    text: str
    categories: tuple[str, ...]
    about: About = About.WORKSPACE


@dataclass(frozen=True)
class Guidance:
    entries: dict[str, Entry]
    where: dict[str, Template]  # where to tick a scope, per credential kind or access token type

    def item(
        self,
        entry_id: str,
        categories: Iterable[str] = (),
        *,
        variant: str | None = None,
        blocking: bool = True,
        **values: Any,
    ) -> Item:
        """The entry filled with `values`. `blocking=False`: no required category depends on it, so
        an error is only a warning."""
        entry = self.entries.get(entry_id)
        if entry is None:
            raise GuidanceError(f"guidance.yml has no entry '{entry_id}'")
        key = SINGLE if variant is None else variant
        if key not in entry.texts:
            raise GuidanceError(f"guidance.yml entry '{entry_id}' has no variant '{key}'")
        severity = entry.severity
        if not blocking and severity is Severity.ERROR:
            severity = Severity.WARNING
        text = entry.texts[key].fill(values, f"entry '{entry_id}'")
        return Item(entry_id, variant, severity, entry.layout, text, tuple(dict.fromkeys(categories)), entry.about)

    def where_to_tick(self, kind: str, credential_type: str | None, owner: str, variable: str) -> str:
        """Where this credential's scopes are chosen: an access token by its x-credential-type
        when that is one the file knows (it is the server's word), else by its kind. A text names
        the owner (an OAuth consumer's key) and the secret's variable only if it needs them."""
        key = credential_type if kind == "access_token" and credential_type in self.where else kind
        if key not in self.where:
            raise GuidanceError(f"guidance.yml has no `where` for '{key}'")
        template = self.where[key]
        values = {"owner": owner, "variable": variable}
        return template.fill({k: v for k, v in values.items() if k in template.placeholders}, f"where '{key}'")


def _entry(entry_id: Any, raw: Any) -> Entry:
    where = f"entry '{entry_id}'"
    if not isinstance(raw, dict) or not {"layout", "severity", "text"} <= set(raw) <= ENTRY_KEYS:
        raise GuidanceError(f"{where}: needs layout, severity and text, and may have about")
    try:
        layout, severity = Layout(raw["layout"]), Severity(raw["severity"])
        about = About(raw.get("about", About.WORKSPACE))
    except ValueError as exc:
        raise GuidanceError(f"{where}: {exc}") from None
    if about is About.RUN and severity is not Severity.INFO:
        # Said once after the workspaces, at no workspace's level: what blocks one belongs to it.
        raise GuidanceError(f"{where}: advice about the run is information (severity info)")
    text = raw["text"]
    if isinstance(text, dict):
        if not text:
            raise GuidanceError(f"{where}: no variants")
        texts = {str(v): Template.parse(t, f"{where} variant '{v}'") for v, t in text.items()}
    else:
        texts = {SINGLE: Template.parse(text, where)}
    return Entry(str(entry_id), layout, severity, texts, about)


def parse(raw: Any, source: str = "guidance.yml") -> Guidance:
    if not isinstance(raw, dict) or set(raw) != {"entries", "where"}:
        raise GuidanceError(f"{source}: needs exactly `entries` and `where`")
    if not isinstance(raw["entries"], dict) or not isinstance(raw["where"], dict):
        raise GuidanceError(f"{source}: `entries` and `where` are mappings")
    entries = {str(k): _entry(k, v) for k, v in raw["entries"].items()}
    where = {str(k): Template.parse(v, f"where '{k}'") for k, v in raw["where"].items()}
    for key, template in where.items():
        if template.placeholders - WHERE_VALUES:
            unknown = sorted(template.placeholders - WHERE_VALUES)
            raise GuidanceError(f"where '{key}': unknown placeholders {unknown} (only {sorted(WHERE_VALUES)})")
    return Guidance(entries, where)


@cache
def load(path: Path = GUIDANCE_FILE) -> Guidance:
    return parse(yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER), path.name)
