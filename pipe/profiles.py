"""Profiles: which categories a backup (and a restore) needs, built in or from PROFILE_FILE.

A profile file has the form of the built-in `profiles:` section of pipe/catalog.yml. It is
checked node by node, so every problem names its line: a typo in a team's own file must end in
a clear configuration error (exit 2), never in a traceback or in a silently empty profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml's loader when PyYAML was built with it (its wheels are): the pure-Python one takes a
# third of the pipe's start-up on the catalog alone. Both keep line marks and refuse the same input.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
KEYS = {"description", "backup", "restore", "reference"}
BUILT_IN = "built-in"
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    backup: tuple[str, ...]
    restore: tuple[str, ...]
    source: str = BUILT_IN  # "built-in" or "PROFILE_FILE <path>"
    reference: str | None = None  # the published document the profile follows


class ProfileError(ValueError):
    """A profile file that cannot be used; `line` is 1-based, 0 when the file has none."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(f"line {line}: {message}" if line else message)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: Node, what: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value.strip():
        raise ProfileError(_line(node), f"{what} must be a text.")
    return node.value.strip()


def _ids(node: Node, what: str, categories: Iterable[str]) -> tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        raise ProfileError(_line(node), f"{what} must be a list of category ids, e.g. [repositories, projects].")
    known = tuple(categories)
    ids = []
    for item in node.value:
        value = _scalar(item, f"each entry of {what}")
        if value not in known:
            shown = repr(value) if NAME_RE.match(value) else "an entry"
            raise ProfileError(_line(item), f"{shown} in {what} is not a category. Known: {', '.join(known)}.")
        ids.append(value)
    return tuple(dict.fromkeys(ids))


def _profile(name: str, node: Node, categories: tuple[str, ...], source: str) -> Profile:
    if not isinstance(node, MappingNode):
        raise ProfileError(_line(node), f"profile '{name}' must be a mapping with backup: and restore: lists.")
    fields: dict[str, Node] = {}
    for key_node, value in node.value:
        key = _scalar(key_node, "a key")
        if key not in KEYS:
            raise ProfileError(_line(key_node), f"unknown key '{key[:40]}' in profile '{name}' (use {sorted(KEYS)}).")
        if key in fields:
            raise ProfileError(_line(key_node), f"'{key}' appears twice in profile '{name}'.")
        fields[key] = value
    if "backup" not in fields:
        raise ProfileError(_line(node), f"profile '{name}' has no backup: list.")
    backup = _ids(fields["backup"], f"{name}.backup", categories)
    restore = _ids(fields["restore"], f"{name}.restore", categories) if "restore" in fields else backup
    description = _scalar(fields["description"], f"{name}.description") if "description" in fields else name
    reference = _scalar(fields["reference"], f"{name}.reference") if "reference" in fields else None
    return Profile(name, description, backup, restore, source, reference)


def parse(
    text: str, categories: Iterable[str], source: str = BUILT_IN, reserved: Iterable[str] = ()
) -> dict[str, Profile]:
    """The profiles of a YAML document with a top-level `profiles:` mapping. A name in `reserved`
    (the built-in profiles, for a PROFILE_FILE) is refused at its line: PROFILE must name one."""
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(mark.line + 1 if mark else 0, "is not valid YAML.") from None
    if root is None:
        raise ProfileError(0, "is empty; it needs a profiles: mapping.")
    section = None
    if isinstance(root, MappingNode):
        section = next((v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "profiles"), None)
    if not isinstance(section, MappingNode) or not section.value:
        raise ProfileError(_line(root), "needs a top-level profiles: mapping with at least one profile.")
    known, taken = tuple(categories), set(reserved)
    profiles: dict[str, Profile] = {}
    for key_node, value in section.value:
        name = _scalar(key_node, "a profile name")
        if not NAME_RE.match(name):
            raise ProfileError(_line(key_node), "a profile name must be lower-case letters, digits and -.")
        if name in profiles:
            raise ProfileError(_line(key_node), f"profile '{name}' is defined twice.")
        if name in taken:
            raise ProfileError(
                _line(key_node), f"profile '{name}' is a built-in profile's name; give yours another name."
            )
        profiles[name] = _profile(name, value, known, source)
    return profiles
