"""The pipe's variables: declared for bitbucket-pipes-toolkit, parsed into a typed Config.

Every variable is declared as a string so that the toolkit never YAML-parses a secret
(`yes` would become True); types are checked here instead, so that a bad value ends in
one clear message per variable (exit 2) rather than the toolkit's generic failure.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from bitbucket_pipes_toolkit import ArrayVariable

from pipe import profiles as profiles_module
from pipe.errors import ConfigError, Problem
from pipe.profiles import Profile
from pipe.redaction import ATLASSIAN_TOKEN, SECRET_VARIABLES, SURROGATE

CREDENTIAL_VARIABLES = (
    "BITBUCKET_EMAIL",
    "BITBUCKET_API_TOKEN",
    "BITBUCKET_USERNAME",
    "BITBUCKET_ACCESS_TOKEN",
    "BITBUCKET_OAUTH_CLIENT_ID",
    "BITBUCKET_OAUTH_CLIENT_SECRET",
    "BITBUCKET_APP_PASSWORD",
)
SETTING_VARIABLES = (
    "WORKSPACE",
    "PROFILE",
    "PROFILE_FILE",
    "REQUIRE",
    "CHECK_RESTORE",
    "REPOSITORIES",
    "CONCURRENCY",
    "TIMEOUT",
    "CODE_INSIGHTS",
    "CODE_INSIGHTS_PROXY",
    "OUTPUT_JSON",
    "BITBUCKET_API_URL",
    "BITBUCKET_GIT_URL",
    "BITBUCKET_OAUTH_TOKEN_URL",
    "DEBUG",
    "NO_COLOR",
)
PIPELINES_VARIABLES = (
    "BITBUCKET_WORKSPACE",
    "BITBUCKET_REPO_SLUG",
    "BITBUCKET_COMMIT",
    "BITBUCKET_BUILD_NUMBER",
    "BITBUCKET_REPO_OWNER",
    "CI",
)
SCHEMA: dict[str, dict] = {
    name: {"type": "string", "required": False}
    for name in CREDENTIAL_VARIABLES + SETTING_VARIABLES + PIPELINES_VARIABLES
}

DEFAULT_API_URL = "https://api.bitbucket.org/2.0"
DEFAULT_GIT_URL = "https://bitbucket.org"
DEFAULT_TOKEN_URL = "https://bitbucket.org/site/oauth2/access_token"
DEFAULT_PROXY = "http://host.docker.internal:29418"
DEFAULT_OUTPUT = "backup-readiness/report.json"
DEFAULT_PROFILE = "xopero-one"

WORKSPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,62}$")
PLAIN_ID_RE = re.compile(r"^[a-z0-9-]{1,24}$")  # short enough to echo: not a token
# Never '.', '..' or a leading dot: httpx removes dot segments, so /repositories/acme/.. would
# read /repositories, another endpoint (the same rule as survey.inventory's SLUG).
SLUG_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
# Numbers in ASCII digits only: str.isdigit() is True for '²', which int() refuses, and int() and
# float() read '٣٠', '８' and '1_6' as numbers nobody meant.
PLAIN_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
PLAIN_COUNT = re.compile(r"[0-9]{1,5}")
MAX_LIST_ITEMS = 10_000  # NAME_COUNT of a list variable: the toolkit builds a list that long


def not_utf8(values: Mapping[str, str]) -> list[Problem]:
    """The variables holding a byte that is not UTF-8: Python sees it as a lone surrogate
    (os.environ decodes with surrogateescape), which no header, URL or file can carry. The
    value is never echoed: it may be a secret."""
    return [
        Problem(
            name,
            "holds a byte that is not UTF-8 text.",
            f"Set {name} again as plain text: an invisible byte came with the value "
            "(copied from a document, or saved in another encoding).",
        )
        for name, value in values.items()
        if isinstance(value, str) and SURROGATE.search(value)
    ]


ANY_WORKSPACE = "*"


@dataclass(frozen=True)
class Config:
    # The workspace one survey is about, and its REPOSITORIES slugs: those of the run's Config are
    # the first named workspace's; `for_workspace` gives each workspace's own (see pipe.survey).
    workspace: str
    api_url: str
    git_url: str
    oauth_token_url: str
    profile: Profile  # built in or from PROFILE_FILE (its `source` says which)
    require: tuple[str, ...]
    check_restore: bool
    repositories: tuple[str, ...]
    concurrency: int
    timeout: float
    code_insights: bool
    code_insights_proxy: str
    output_json: str
    commit: str | None
    repo_slug: str | None
    repo_workspace: str | None
    # Every workspace WORKSPACE names, in its order; empty with WORKSPACE '*' (every_workspace).
    workspaces: tuple[str, ...] = ()
    every_workspace: bool = False
    # Every REPOSITORIES entry as (workspace, slug).
    wanted: tuple[tuple[str, str], ...] = ()
    home_workspace: str | None = None  # BITBUCKET_WORKSPACE: an access token's one workspace for '*'

    @property
    def several(self) -> bool:
        """More than one workspace may be checked: each then gets its own section."""
        return self.every_workspace or len(self.workspaces) > 1

    def for_workspace(self, workspace: str) -> Config:
        """The Config of one workspace's survey: its name and its REPOSITORIES slugs."""
        slugs = tuple(slug for owner, slug in self.wanted if owner == workspace)
        return replace(self, workspace=workspace, repositories=slugs)


class _Reader:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, values: Mapping[str, str]):
        self.values = values
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None or value == "" else value

    def problem(self, name: str, message: str, fix: str) -> None:
        self.problems.append(Problem(name, message, fix))

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.strip().lower() in TRUE:
            return True
        if value.strip().lower() in FALSE:
            return False
        self.problem(name, "must be true or false.", f'Set {name}: "true" or {name}: "false".')
        return default

    def number(self, name: str, default: float, low: float, high: float, cast: Callable = int):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = cast(value.strip()) if PLAIN_NUMBER.fullmatch(value.strip()) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.problem(
                name,
                f"must be a number from {low:g} to {high:g}.",
                f'Set {name} to a plain number, e.g. {name}: "{default:g}".',
            )
            return default
        return number

    def url(self, name: str, default: str, cleartext: bool = False) -> str:
        """An http(s) URL; plain http:// only for a loopback host unless `cleartext` (a URL that
        never carries the credential, like the Pipelines proxy)."""
        value = self.raw(name) or default
        parts = urlsplit(value.strip())
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError:
            self.problem(
                name, "has an invalid port.", f"Use a port from 1 to 65535, or remove {name} to use {default}."
            )
            return value.strip().rstrip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(name, "must be an http:// or https:// URL.", f"Remove {name} to use {default}.")
        elif parts.username or parts.password:
            # The URL itself is never echoed: it may carry a secret.
            self.problem(
                name,
                "must not contain a user name or password.",
                "Put credentials in the credential variables, never in a URL.",
            )
        elif parts.scheme == "http" and not cleartext and not is_loopback(parts.hostname):
            self.problem(
                name,
                "uses http://, which would send the credential unencrypted; http:// is accepted only "
                "for a loopback host (127.0.0.1, ::1, localhost).",
                f"Use https:// in {name}, or remove {name} to use {default}.",
            )
        return value.strip().rstrip("/")

    def listing(self, name: str) -> tuple[str, ...]:
        """A Pipelines list variable (NAME_COUNT, NAME_0, ...) or a comma/space separated string."""
        count = self.values.get(f"{name}_COUNT")
        if count is not None:
            if not PLAIN_COUNT.fullmatch(count.strip()) or int(count) > MAX_LIST_ITEMS:
                self.problem(
                    f"{name}_COUNT",
                    f"must be a whole number from 0 to {MAX_LIST_ITEMS:,} (digits 0-9).",
                    f"Write {name} as a YAML list.",
                )
                return ()
            items = list(ArrayVariable(name, dict(self.values)))
            return tuple(str(item).strip() for item in items if item is not None and str(item).strip())
        value = self.raw(name)
        return tuple(part for part in re.split(r"[,\s]+", value) if part) if value else ()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_a_secret(reader: _Reader, value: str) -> bool:
    """A secret variable's value pasted into a setting (a prefix-less OAuth secret looks like an ID)."""
    secrets = (reader.values.get(name) for name in SECRET_VARIABLES)
    return any(secret and secret.strip() and secret.strip() in value for secret in secrets)


def _workspace_problem(reader: _Reader, workspace: str) -> bool:
    """Whether one WORKSPACE entry is wrong (the problem is then recorded, never echoing it)."""
    if ATLASSIAN_TOKEN.search(workspace) or _is_a_secret(reader, workspace):  # never sent or echoed
        reader.problem(
            "WORKSPACE",
            "holds a token or secret, not a workspace ID.",
            "Set WORKSPACE to the ID from bitbucket.org/<workspace>/ and move the token to its credential variable.",
        )
    elif not WORKSPACE_RE.match(workspace):
        reader.problem(
            "WORKSPACE",
            "is not a valid workspace ID (letters, digits, - and _ only), a list of them, or '*'.",
            "Use the ID from the workspace URL, bitbucket.org/<workspace>/; several as 'acme,acme-labs' "
            "or a YAML list; '*' for every workspace the credential is a member of.",
        )
    else:
        return False
    return True


def _workspaces(reader: _Reader) -> tuple[tuple[str, ...], bool]:
    """(the workspaces named, whether WORKSPACE is '*'): one ID, a list ('acme,acme-labs' or a
    YAML list), or '*' for every workspace the credential is a member of."""
    pipelines = (reader.raw("BITBUCKET_WORKSPACE") or "").strip()
    named = reader.listing("WORKSPACE") or ((pipelines,) if pipelines else ())
    if not named:
        reader.problem(
            "WORKSPACE",
            "is not set, and BITBUCKET_WORKSPACE is not available.",
            "Set WORKSPACE to the workspace ID from bitbucket.org/<workspace>/.",
        )
        return (), False
    whole = " ".join(named)
    if ATLASSIAN_TOKEN.search(whole) or _is_a_secret(reader, whole):  # split or not, never sent or echoed
        _workspace_problem(reader, whole)
        return (), False
    if ANY_WORKSPACE in named:
        if len(named) > 1:
            reader.problem(
                "WORKSPACE", "mixes '*' with workspace IDs.", "Use '*' alone, or list the workspaces without it."
            )
        return (), True
    if any(_workspace_problem(reader, workspace) for workspace in named):
        return (), False
    return tuple(dict.fromkeys(named)), False


def _repositories(reader: _Reader, workspaces: tuple[str, ...], every: bool) -> tuple[tuple[str, str], ...]:
    """REPOSITORIES as (workspace, slug). With one workspace a slug alone is enough; with several
    (or '*') every entry names its workspace, workspace/slug, so that none is checked in the wrong one."""
    several = every or len(workspaces) > 1
    shown_names = ", ".join(workspaces) if workspaces else "the credential's workspaces"
    wanted = []
    for item in reader.listing("REPOSITORIES"):
        owner, _, slug = item.rpartition("/")
        secret = bool(ATLASSIAN_TOKEN.search(item)) or _is_a_secret(reader, item)
        shown = "an entry (a token or secret?)" if secret else f"entry {item[:80]!r}"
        if several and not owner and not secret and SLUG_RE.match(slug):
            reader.problem(
                "REPOSITORIES",
                f"{shown} names no workspace; with several workspaces each entry is workspace/slug.",
                f"Write it as workspace/{slug[:80]}, e.g. {(workspaces or ('acme',))[0]}/{slug[:80]}.",
            )
            continue
        owner = owner or (workspaces[0] if workspaces else "")
        known = (every and WORKSPACE_RE.match(owner)) or owner in workspaces
        if not known or not SLUG_RE.match(slug) or secret:
            reader.problem(
                "REPOSITORIES",
                f"{shown} is not a repository of {shown_names}.",
                "List repository slugs (my-repo) or full names (workspace/my-repo) of the workspaces in WORKSPACE.",
            )
            continue
        wanted.append((owner, slug.lower()))
    return tuple(dict.fromkeys(wanted))


def _profile(
    reader: _Reader, profiles: Mapping[str, Profile], categories: tuple[str, ...]
) -> tuple[Profile | None, tuple[str, ...]]:
    name = (reader.raw("PROFILE") or DEFAULT_PROFILE).strip().lower()
    profile = profiles.get(name)
    if profile is None:
        shown = repr(name) if PLAIN_ID_RE.match(name) else "the value"  # never echo a pasted secret
        reader.problem("PROFILE", f"{shown} is not a known profile.", f"Use one of: {', '.join(profiles)}.")
    require = tuple(item.lower() for item in reader.listing("REQUIRE"))
    unknown = [item for item in require if item not in categories]
    if unknown:
        shown = ", ".join(repr(u) if PLAIN_ID_RE.match(u) else "(a value that is not an id)" for u in unknown)
        reader.problem("REQUIRE", f"unknown category {shown}.", f"Use ids from: {', '.join(categories)}.")
    return profile, tuple(r for r in require if r in categories)


PROFILE_FORM = (
    "Write it as the built-in profiles are written (pipe/catalog.yml): profiles:, then per profile a "
    "lower-case name with description:, backup: [category ids], and optionally restore: [...] and reference:."
)


def _profile_text(reader: _Reader, root: str) -> tuple[str, str] | None:
    """(the relative path, the text) of PROFILE_FILE, or None with the problem recorded. Like
    OUTPUT_JSON it must lie inside the working directory (output_path's rule), and its real
    location too: a symbolic link out of the clone is not read."""
    value = reader.raw("PROFILE_FILE")
    if value is None:
        return None
    relative, problem = output_path(value, root)
    if problem or ATLASSIAN_TOKEN.search(value) or _is_a_secret(reader, value):
        reader.problem(
            "PROFILE_FILE",
            "must be a file path inside the working directory (the clone directory in Pipelines), without '..'.",
            'Use a path relative to the repository root, e.g. PROFILE_FILE: "backup-profiles.yml".',
        )
        return None
    base = os.path.realpath(root)
    real = os.path.realpath(os.path.join(base, relative))
    fix = f"Commit the file at {relative} (relative to the repository root), or correct PROFILE_FILE."
    if os.path.commonpath([base, real]) != base:
        reader.problem("PROFILE_FILE", "is a symbolic link out of the working directory.", fix)
        return None
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):  # a folder, a device, a pipe: never read
            reader.problem("PROFILE_FILE", f"{relative} is not a file.", fix)
            return None
        with open(real, "rb") as stream:
            data = stream.read(profiles_module.MAX_FILE_BYTES + 1)
    except OSError:
        reader.problem("PROFILE_FILE", f"{relative} was not found or cannot be read.", fix)
        return None
    if len(data) > profiles_module.MAX_FILE_BYTES:
        limit = profiles_module.MAX_FILE_BYTES // 1024
        reader.problem("PROFILE_FILE", f"{relative} is larger than {limit} KiB.", PROFILE_FORM)
        return None
    try:
        return relative, data.decode("utf-8")
    except UnicodeDecodeError:
        reader.problem("PROFILE_FILE", f"{relative} is not UTF-8 text.", "Save the file as UTF-8.")
        return None


def _file_profiles(reader: _Reader, built_in: Mapping[str, Profile], categories: tuple[str, ...]) -> dict[str, Profile]:
    """The built-in profiles and those of PROFILE_FILE; a problem in the file names its line."""
    found = _profile_text(reader, os.getcwd())
    if found is None:
        return dict(built_in)
    relative, text = found
    try:
        own = profiles_module.parse(text, categories, source=f"PROFILE_FILE {relative}", reserved=built_in)
    except profiles_module.ProfileError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        reader.problem("PROFILE_FILE", f"{where}{exc.message}", PROFILE_FORM)
        return dict(built_in)
    return {**built_in, **own}


OUTPUT_PROBLEM = Problem(
    "OUTPUT_JSON",
    "must be a file path inside the working directory (the clone directory in Pipelines), without '..'.",
    'Use a relative path such as OUTPUT_JSON: "backup-readiness/report.json", or remove OUTPUT_JSON.',
)


def _below(path: PurePosixPath, root: str) -> PurePosixPath | None:
    """The part of absolute `path` below the directory `root`, or None when it is not inside.
    The clone directory as the user wrote it may pass through a symbolic link (root is the real
    path), so the shortest ancestor of `path` that resolves to `root` is where it enters; what
    lies below stays as written (the writer refuses a link there)."""
    base = PurePosixPath(posixpath.normpath(root))
    if path.is_relative_to(base):
        return path.relative_to(base)
    real = os.path.realpath(root)
    for depth in range(2, len(path.parts)):  # never the file itself: its parent at most
        ancestor = PurePosixPath(*path.parts[:depth])
        if ".." not in ancestor.parts and os.path.realpath(ancestor) == real:
            return path.relative_to(ancestor)
    return None


def output_path(value: str | None, root: str) -> tuple[str, Problem | None]:
    """OUTPUT_JSON as a path relative to `root` (the working directory), or the default and
    the problem. Reports go only inside the clone: an absolute path elsewhere or a `..` could
    overwrite a file an earlier step or the runner relies on. The value is never echoed (it
    may be a pasted secret); symbolic links are never followed when the files are written."""
    text = (value or "").strip() or DEFAULT_OUTPUT
    path = PurePosixPath(text)
    if path.is_absolute():
        below = _below(path, root)
        if below is None:
            return DEFAULT_OUTPUT, OUTPUT_PROBLEM
        path = below
    if ".." in path.parts or not path.parts or path.name in ("", ".") or any(ord(c) < 0x20 for c in text):
        return DEFAULT_OUTPUT, OUTPUT_PROBLEM
    return str(path), None


def _output_json(reader: _Reader) -> str:
    path, problem = output_path(reader.raw("OUTPUT_JSON"), os.getcwd())
    if problem:
        reader.problems.append(problem)
    return path


def _home(reader: _Reader) -> str | None:
    """BITBUCKET_WORKSPACE when it is a workspace ID (Pipelines sets it; anything else is not used)."""
    home = (reader.raw("BITBUCKET_WORKSPACE") or "").strip()
    return home if WORKSPACE_RE.match(home) and not _is_a_secret(reader, home) else None


def read_config(values: Mapping[str, str], profiles: Mapping[str, Profile], categories: tuple[str, ...]) -> Config:
    """Parse the variables; raise ConfigError listing every problem found. `profiles` are the
    built-in ones; PROFILE may also name one of PROFILE_FILE's."""
    not_text = not_utf8(values)
    reader = _Reader({k: SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for k, v in values.items()})
    workspaces, every = _workspaces(reader)
    wanted = _repositories(reader, workspaces, every)
    workspace = workspaces[0] if workspaces else ""
    profile, require = _profile(reader, _file_profiles(reader, profiles, categories), categories)
    in_pipelines = bool(reader.raw("BITBUCKET_BUILD_NUMBER") and reader.raw("BITBUCKET_COMMIT"))
    config = Config(
        workspace=workspace,
        api_url=reader.url("BITBUCKET_API_URL", DEFAULT_API_URL),
        git_url=reader.url("BITBUCKET_GIT_URL", DEFAULT_GIT_URL),
        oauth_token_url=reader.url("BITBUCKET_OAUTH_TOKEN_URL", DEFAULT_TOKEN_URL),
        profile=profile or profiles[DEFAULT_PROFILE],  # a problem is recorded when it is None
        require=require,
        check_restore=reader.boolean("CHECK_RESTORE", False),
        repositories=tuple(slug for owner, slug in wanted if owner == workspace),
        concurrency=reader.number("CONCURRENCY", 8, 1, 64),
        timeout=reader.number("TIMEOUT", 300, 5, 3600, cast=float),
        code_insights=reader.boolean("CODE_INSIGHTS", in_pipelines),
        # The Pipelines proxy is http:// by design and never receives the credential.
        code_insights_proxy=reader.url("CODE_INSIGHTS_PROXY", DEFAULT_PROXY, cleartext=True),
        output_json=_output_json(reader),
        commit=reader.raw("BITBUCKET_COMMIT"),
        repo_slug=reader.raw("BITBUCKET_REPO_SLUG"),
        repo_workspace=reader.raw("BITBUCKET_REPO_OWNER") or reader.raw("BITBUCKET_WORKSPACE"),
        workspaces=workspaces,
        every_workspace=every,
        wanted=wanted,
        home_workspace=_home(reader),
    )
    # DEBUG is checked with the others (a wrong value is a problem named like any), but pipe.logs
    # reads it itself: the log level is needed before the variables are checked.
    reader.boolean("DEBUG", False)
    if not_text:  # their one problem, not also what their mangled value looked like
        reader.problems = not_text + [p for p in reader.problems if p.variable not in {q.variable for q in not_text}]
    if reader.problems:
        raise ConfigError(reader.problems)
    return config
