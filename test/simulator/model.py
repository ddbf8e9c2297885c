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
    permissions: dict[str, str] = field(default_factory=dict)
    default_permission: str = "admin"
    workspace_role: str = "owner"
    git_enabled: bool = True
    scope_headers: bool | None = None
    expired: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CREDENTIAL_KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r}")

    @property
    def is_user(self) -> bool:
        return self.kind in USER_KINDS

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
