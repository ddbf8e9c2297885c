"""Plain data the simulator is configured with, and what it records."""

from __future__ import annotations

from dataclasses import dataclass, field

CREDENTIAL_KINDS = ("api_token", "access_token", "oauth", "app_password")
USER_KINDS = ("api_token", "oauth")  # credentials that act as a Bitbucket user


@dataclass
class Repository:
    slug: str
    project: str = "PROJ"
    is_private: bool = True
    # git=True: a real bare repository (one commit on main) is served by `git http-backend`.
    git: bool = False
    has_issues: bool = False
    has_wiki: bool = False


@dataclass
class Workspace:
    slug: str
    name: str | None = None
    repositories: list[Repository] = field(default_factory=list)
    projects: list[str] = field(default_factory=lambda: ["PROJ"])

    @property
    def display_name(self) -> str:
        return self.name or self.slug.replace("-", " ").title()


@dataclass
class Credential:
    kind: str  # "api_token" | "access_token" | "oauth" | "app_password"
    secret: str  # the token; for oauth the client secret
    scopes: list[str]  # api_token: granular names; others: classic names
    email: str | None = None
    username: str | None = None
    client_id: str | None = None
    workspace: str | None = None  # access tokens (and, optionally, users: restrict to one)
    level: str = "repository"  # access tokens: repository | project | workspace
    target: str | None = None  # access tokens: repo slug or project key
    permissions: dict[str, str] = field(default_factory=dict)  # explicit grants: slug or full name -> permission
    default_permission: str = "admin"  # on every repository without an explicit grant (groups, projects)
    # A workspace administrator has admin on every repository of the workspaces it sees, whatever
    # `permissions` says; its role is "owner" and /user/workspaces flags it `administrator`.
    workspace_admin: bool = False
    # The role GET /user/workspaces/{ws}/permission reports: owner | create-project | collaborator |
    # member. None: "owner" for a workspace administrator, else "member". "owner" makes one.
    workspace_role: str | None = None
    git_enabled: bool = True
    scope_headers: bool | None = None
    # What a 403's `granted` list shows when the simulator runs with granted_in_403="partial"
    # (None: only the read scopes, write and admin ones left out).
    granted_shown: list[str] | None = None
    expired: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CREDENTIAL_KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r}")

    @property
    def is_user(self) -> bool:
        return self.kind in USER_KINDS

    @property
    def is_workspace_admin(self) -> bool:
        return self.is_user and (self.workspace_admin or self.workspace_role == "owner")

    @property
    def role(self) -> str:
        if not self.is_user:
            return "member"
        return self.workspace_role or ("owner" if self.workspace_admin else "member")

    def sends_scope_headers(self) -> bool:
        # Documented for access tokens; OAuth assumed; API tokens undocumented, so off by default.
        if self.scope_headers is not None:
            return self.scope_headers
        return self.kind in ("access_token", "oauth")

    def credential_type(self) -> str:
        if self.kind == "access_token":
            return {
                "repository": "repo_access_token",
                "project": "project_access_token",
            }.get(self.level, "workspace_access_token")
        return "oauth2" if self.kind == "oauth" else self.kind


@dataclass
class Fault:
    path: str  # regex, re.search against the request path without query
    kind: str  # status | reset | slow | html | truncated | loop_next | redirect
    status: int = 500
    times: int = 1  # -1: every matching request
    method: str = "GET"
    retry_after: float | None = None
    delay: float = 0.0
    location: str | None = None


@dataclass
class Deprecation:
    """Announced-removal headers on successful answers to matching requests (RFC 9745 / 8594 style),
    as Bitbucket sent them on the Issues endpoints before CHANGE-3071."""

    path: str  # regex, re.search against the request path (with /2.0) without query
    deprecation: str | None = "@1771545600"  # 2026-02-20
    sunset: str | None = "Fri, 21 Aug 2026 00:00:00 UTC"
    link: str | None = "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3071"
    method: str = "GET"


GRANTED_IN_403 = ("full", "partial", "missing")
PERMISSIONS_LISTS = ("effective", "explicit")
OAUTH_RESPONSES = ("2026", "legacy")
APP_PASSWORD_GIT = ("401", "410")


@dataclass
class Behaviour:
    """Switches for the ways real Bitbucket may differ from the simulator's default (see __init__.py)."""

    granted_in_403: str = "full"
    scope_headers: bool | None = None
    webhooks_need_admin: bool = True
    permissions_list: str = "effective"
    page_size: bool = True
    fields: bool = True
    bbql: bool = True
    api_token_bearer: bool = False
    oauth_response: str = "2026"  # the rule since 2026-05-04; "legacy" is the earlier answer
    deprecations: list[Deprecation] = field(default_factory=list)
    app_password_git: str = "401"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("granted_in_403", GRANTED_IN_403),
            ("permissions_list", PERMISSIONS_LISTS),
            ("oauth_response", OAUTH_RESPONSES),
            ("app_password_git", APP_PASSWORD_GIT),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int  # 0 when the connection was reset without an answer
    credential_kind: str | None
    authorization_scheme: str | None
    body: bytes
    headers: dict[str, str]
    at: float = 0.0  # time.time() when the request arrived
