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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from bitbucket_pipes_toolkit import ArrayVariable

from pipe.errors import ConfigError, Problem
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


@dataclass(frozen=True)
class Config:
    workspace: str
    api_url: str
    git_url: str
    oauth_token_url: str
    profile: str
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


def _workspace(reader: _Reader) -> str:
    workspace = (reader.raw("WORKSPACE") or reader.raw("BITBUCKET_WORKSPACE") or "").strip()
    if not workspace:
        reader.problem(
            "WORKSPACE",
            "is not set, and BITBUCKET_WORKSPACE is not available.",
            "Set WORKSPACE to the workspace ID from bitbucket.org/<workspace>/.",
        )
    elif ATLASSIAN_TOKEN.search(workspace) or _is_a_secret(reader, workspace):  # never sent or echoed
        reader.problem(
            "WORKSPACE",
            "holds a token or secret, not a workspace ID.",
            "Set WORKSPACE to the ID from bitbucket.org/<workspace>/ and move the token to its credential variable.",
        )
    elif not WORKSPACE_RE.match(workspace):
        reader.problem(
            "WORKSPACE",
            "is not a valid workspace ID (letters, digits, - and _ only).",
            "Use the ID from the workspace URL, bitbucket.org/<workspace>/.",
        )
    return workspace


def _repositories(reader: _Reader, workspace: str) -> tuple[str, ...]:
    slugs = []
    for item in reader.listing("REPOSITORIES"):
        owner, _, slug = item.rpartition("/")
        secret = bool(ATLASSIAN_TOKEN.search(item)) or _is_a_secret(reader, item)
        if (owner and owner != workspace) or not SLUG_RE.match(slug) or secret:
            shown = "an entry (a token or secret?)" if secret else f"entry {item[:80]!r}"
            reader.problem(
                "REPOSITORIES",
                f"{shown} is not a repository of {workspace}.",
                "List repository slugs (my-repo) or full names (workspace/my-repo).",
            )
            continue
        slugs.append(slug.lower())
    return tuple(dict.fromkeys(slugs))


def _profile(reader: _Reader, profiles: tuple[str, ...], categories: tuple[str, ...]):
    profile = (reader.raw("PROFILE") or DEFAULT_PROFILE).strip().lower()
    if profile not in profiles:
        shown = repr(profile) if PLAIN_ID_RE.match(profile) else "the value"  # never echo a pasted secret
        reader.problem("PROFILE", f"{shown} is not a known profile.", f"Use one of: {', '.join(profiles)}.")
    require = tuple(item.lower() for item in reader.listing("REQUIRE"))
    unknown = [item for item in require if item not in categories]
    if unknown:
        shown = ", ".join(repr(u) if PLAIN_ID_RE.match(u) else "(a value that is not an id)" for u in unknown)
        reader.problem("REQUIRE", f"unknown category {shown}.", f"Use ids from: {', '.join(categories)}.")
    return profile, tuple(r for r in require if r in categories)


OUTPUT_PROBLEM = Problem(
    "OUTPUT_JSON",
    "must be a file path inside the working directory (the clone directory in Pipelines), without '..'.",
    'Use a relative path such as OUTPUT_JSON: "backup-readiness/report.json", or remove OUTPUT_JSON.',
)


def output_path(value: str | None, root: str) -> tuple[str, Problem | None]:
    """OUTPUT_JSON as a path relative to `root` (the working directory), or the default and
    the problem. Reports go only inside the clone: an absolute path elsewhere or a `..` could
    overwrite a file an earlier step or the runner relies on. The value is never echoed (it
    may be a pasted secret); symbolic links are never followed when the files are written."""
    text = (value or "").strip() or DEFAULT_OUTPUT
    path = PurePosixPath(text)
    if path.is_absolute():
        base = PurePosixPath(posixpath.normpath(root))
        if not path.is_relative_to(base):
            return DEFAULT_OUTPUT, OUTPUT_PROBLEM
        path = path.relative_to(base)
    if ".." in path.parts or not path.parts or path.name in ("", ".") or any(ord(c) < 0x20 for c in text):
        return DEFAULT_OUTPUT, OUTPUT_PROBLEM
    return str(path), None


def _output_json(reader: _Reader) -> str:
    path, problem = output_path(reader.raw("OUTPUT_JSON"), os.getcwd())
    if problem:
        reader.problems.append(problem)
    return path


def read_config(values: Mapping[str, str], profiles: tuple[str, ...], categories: tuple[str, ...]) -> Config:
    """Parse the variables; raise ConfigError listing every problem found."""
    not_text = not_utf8(values)
    reader = _Reader({k: SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for k, v in values.items()})
    workspace = _workspace(reader)
    profile, require = _profile(reader, profiles, categories)
    in_pipelines = bool(reader.raw("BITBUCKET_BUILD_NUMBER") and reader.raw("BITBUCKET_COMMIT"))
    config = Config(
        workspace=workspace,
        api_url=reader.url("BITBUCKET_API_URL", DEFAULT_API_URL),
        git_url=reader.url("BITBUCKET_GIT_URL", DEFAULT_GIT_URL),
        oauth_token_url=reader.url("BITBUCKET_OAUTH_TOKEN_URL", DEFAULT_TOKEN_URL),
        profile=profile,
        require=require,
        check_restore=reader.boolean("CHECK_RESTORE", False),
        repositories=_repositories(reader, workspace),
        concurrency=reader.number("CONCURRENCY", 8, 1, 64),
        timeout=reader.number("TIMEOUT", 300, 5, 3600, cast=float),
        code_insights=reader.boolean("CODE_INSIGHTS", in_pipelines),
        # The Pipelines proxy is http:// by design and never receives the credential.
        code_insights_proxy=reader.url("CODE_INSIGHTS_PROXY", DEFAULT_PROXY, cleartext=True),
        output_json=_output_json(reader),
        commit=reader.raw("BITBUCKET_COMMIT"),
        repo_slug=reader.raw("BITBUCKET_REPO_SLUG"),
        repo_workspace=reader.raw("BITBUCKET_REPO_OWNER") or reader.raw("BITBUCKET_WORKSPACE"),
    )
    # DEBUG is checked with the others (a wrong value is a problem named like any), but pipe.logs
    # reads it itself: the log level is needed before the variables are checked.
    reader.boolean("DEBUG", False)
    if not_text:  # their one problem, not also what their mangled value looked like
        reader.problems = not_text + [p for p in reader.problems if p.variable not in {q.variable for q in not_text}]
    if reader.problems:
        raise ConfigError(reader.problems)
    return config
