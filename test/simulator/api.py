"""The /2.0 REST API: routing, scope enforcement and handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from . import shapes
from .bbql import BbqlError, compile_query
from .model import Credential
from .paging import PULL_REQUEST_MAX_PAGELEN, Page, paginate, requested_pagelen
from .scopes import SCOPE_TABLE, Requirement, missing_scopes
from .world import PERMISSION_RANK, RepoEntry, World

MSG_UNAUTHORIZED = "Token is invalid, expired, or not supported for this endpoint."
MSG_SCOPES = "Your credentials lack one or more required privilege scopes."
MSG_AUTH_TYPE = (
    "This API is only accessible with the following authentication types: "
    "session, password, apppassword, api_token, oauth"
)
MSG_ADMIN = "You must be an administrator of this repository to access this resource."
MSG_INVALID_PAGELEN = "Invalid pagelen"
MSG_NO_QUERY = "Filtering with q= is not supported by this server."
# The answer of every Issues and Wiki endpoint since 2026-08-20 (bitbucket-cloud.md section 1).
GONE_3071 = shapes.error(
    "CHANGE-3071 - Functionality has been deprecated",
    detail="Please read the changelog entry for more details.",
    data={"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3071"},
)
GONE_2770 = shapes.error(
    "CHANGE-2770 - Functionality has been deprecated",
    detail="Please read the changelog entry for more details.",
    data={"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770"},
)
REMOVED_2770 = {
    "/repositories",
    "/workspaces",
    "/user/permissions/workspaces",
    "/user/permissions/repositories",
}
# Issues and wikis are gone (2026-08-20); the wiki was never in the OpenAPI document.
RETIRED_PRODUCTS = re.compile(r"^/repositories/[^/]+/[^/]+/(issues|wiki)(/.*)?/?$")

_REPO = "/repositories/{workspace}/{repo_slug}"
# Per-repository collections answered with one plausible item.
REPO_COLLECTIONS = (
    "refs/branches",
    "refs/tags",
    "downloads",
    "pullrequests",
    "pullrequests/activity",
    "default-reviewers",
    "pipelines",
    "pipelines_config/variables",
    "pipelines_config/schedules",
    "pipelines_config/ssh/known_hosts",
    "environments",
    "deployments",
    "hooks",
    "branch-restrictions",
    "deploy-keys",
    "permissions-config/users",
    "pipelines-config/runners",
)
# Bitbucket lets only repository admins manage webhooks, though the hooks scope is not an admin one
# (switch webhooks_need_admin=False: readable with the scope alone).
HOOKS = _REPO + "/hooks"
# Pull request lists refuse pagelen > 50; the research names /pullrequests, and the activity list
# is served by the same pull request service, so it gets the same cap here.
PULL_REQUEST_LISTS = frozenset({_REPO + "/pullrequests", _REPO + "/pullrequests/activity"})
ROLE_MINIMUM = {"member": "read", "contributor": "write", "admin": "admin", "owner": "admin"}
# Repository permissions compare by level in BBQL: permission>"read" means write or admin.
RANKS = {"permission": PERMISSION_RANK}


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def not_found(message: str) -> ApiError:
    return ApiError(404, shapes.error(message))


@dataclass
class Call:
    """One authenticated API request as the handlers see it."""

    method: str
    path: str  # without the /2.0 prefix
    full_path: str  # as requested, for next/previous links
    query: str
    body: bytes
    cred: Credential
    base_url: str
    args: dict[str, str] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass
class Result:
    status: int
    payload: dict[str, Any] | Page
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    method: str
    template: str
    handler: Callable[[Api, Call], Result]
    regex: re.Pattern[str]


def compile_template(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}/?$")


class Api:
    def __init__(self, world: World, reports: dict[str, Any]) -> None:
        self.world = world
        self.behaviour = world.behaviour
        self.reports = reports
        self.routes = [Route(m, t, h, compile_template(t)) for m, t, h in self._route_list()]
        # Filtered lists (role=, q=) of big workspaces, per credential: a paged walk asks each page.
        self._filtered: dict[tuple[Any, ...], list[RepoEntry]] = {}

    def _route_list(self) -> list[tuple[str, str, Callable[[Api, Call], Result]]]:
        cls = type(self)
        routes: list[tuple[str, str, Callable[[Api, Call], Result]]] = [
            ("GET", "/user", cls.get_user),
            ("GET", "/user/workspaces", cls.user_workspaces),
            (
                "GET",
                "/user/workspaces/{workspace}/permission",
                cls.user_workspace_permission,
            ),
            (
                "GET",
                "/user/workspaces/{workspace}/permissions/repositories",
                cls.user_repo_permissions,
            ),
            ("GET", "/workspaces/{workspace}", cls.get_workspace),
            ("GET", "/workspaces/{workspace}/members", cls.workspace_members),
            ("GET", "/workspaces/{workspace}/projects", cls.workspace_projects),
            ("GET", "/workspaces/{workspace}/hooks", cls.workspace_hooks),
            (
                "GET",
                "/workspaces/{workspace}/pipelines-config/variables",
                cls.workspace_variables,
            ),
            ("GET", "/repositories/{workspace}", cls.list_repositories),
            ("GET", _REPO, cls.get_repository),
            ("GET", _REPO + "/pipelines_config", cls.pipelines_config),
            ("GET", _REPO + "/pipelines_config/ssh/key_pair", cls.key_pair),
            ("GET", _REPO + "/override-settings", cls.override_settings),
            ("GET", _REPO + "/issues", cls.retired),
            ("PUT", _REPO + "/commit/{commit}/reports/{reportId}", cls.put_report),
            ("GET", "/snippets/{workspace}", cls.snippets),
        ]
        routes += [("GET", f"{_REPO}/{kind}", cls.repo_collection) for kind in REPO_COLLECTIONS]
        routes += [("GET", path, cls.gone) for path in sorted(REMOVED_2770)]
        return routes

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                m = route.regex.match(path)
                if m:
                    return route, m.groupdict()
        return None

    # --- the pipeline every request goes through ---------------------------------------

    def handle(self, call: Call) -> tuple[Result, Requirement | None]:
        if RETIRED_PRODUCTS.match(call.path):
            return Result(410, GONE_3071), None
        found = self.match(call.method, call.path)
        if found is None:
            return Result(404, shapes.error(f"Resource not found: {call.path}")), None
        route, call.args = found
        req = SCOPE_TABLE[(route.method, route.template)]
        try:
            self._authorize(call, route, req)
            self._check_query(call, route)
            return route.handler(self, call), req
        except ApiError as err:
            return Result(err.status, err.body), req

    def _check_query(self, call: Call, route: Route) -> None:
        params = call.params
        if route.template in PULL_REQUEST_LISTS and requested_pagelen(params) > PULL_REQUEST_MAX_PAGELEN:
            raise ApiError(400, shapes.error(MSG_INVALID_PAGELEN))
        if "q" in params and not self.behaviour.bbql:
            raise ApiError(400, shapes.error(MSG_NO_QUERY))

    def _authorize(self, call: Call, route: Route, req: Requirement) -> None:
        cred = call.cred
        if route.template.startswith("/user") and not cred.is_user:
            raise ApiError(403, shapes.error(MSG_AUTH_TYPE))  # access tokens have no user
        if route.template in REMOVED_2770:
            raise ApiError(410, GONE_2770)
        missing = missing_scopes(cred.kind, cred.scopes, req)
        if missing:
            detail: dict[str, Any] = {"required": missing}
            granted = self._granted(cred)
            if granted is not None:
                detail["granted"] = granted
            raise ApiError(403, shapes.error(MSG_SCOPES, detail=detail))
        if "workspace" in call.args:
            self._workspace(call)
        if "repo_slug" in call.args:
            entry = self._repo(call)
            hooks = route.template == HOOKS and self.behaviour.webhooks_need_admin
            if ("repository:admin" in req.classic or hooks) and self.world.permission(cred, entry) != "admin":
                raise ApiError(403, shapes.error(MSG_ADMIN))

    def _granted(self, cred: Credential) -> list[str] | None:
        """The `granted` list of a scope 403: every scope (default), a subset, or none at all."""
        mode = self.behaviour.granted_in_403
        if mode == "missing":
            return None
        if mode == "partial":
            if cred.granted_shown is not None:
                return sorted(cred.granted_shown)
            # Read scopes only: `read:*:bitbucket`, or a classic name without :write/:admin/...
            return sorted(s for s in cred.scopes if s.startswith("read:") or ":" not in s)
        return sorted(cred.scopes)

    def _workspace(self, call: Call) -> Any:
        slug = call.args["workspace"]
        if not self.world.sees_workspace(call.cred, slug):
            raise not_found(f"No workspace with identifier '{slug}'.")
        return self.world.index[slug]

    def _repo(self, call: Call) -> RepoEntry:
        ws, slug = call.args["workspace"], call.args["repo_slug"]
        entry = self.world.index[ws].by_slug.get(slug)
        if entry is None or self.world.permission(call.cred, entry) == "none":
            raise not_found(f"Repository {ws}/{slug} not found")
        return entry

    def _paginate(self, call: Call, total: int) -> tuple[slice, dict[str, Any]]:
        return paginate(total, call.params, call.base_url, call.full_path, call.query, self.behaviour.page_size)

    def _page(self, call: Call, items: list[Any], json_items: list[str] | None = None) -> Result:
        window, meta = self._paginate(call, len(items))
        chunk_json = json_items[window] if json_items is not None else None
        return Result(200, Page(meta, items[window], chunk_json))

    def _query(self, call: Call, fields: dict[str, Callable[[RepoEntry], Any]]) -> Callable[[Any], bool] | None:
        query = call.params.get("q", "").strip()
        if not query:
            return None
        try:
            return compile_query(query, fields, RANKS)
        except BbqlError as err:
            raise ApiError(400, shapes.error(str(err))) from None

    def _cached(self, key: tuple[Any, ...], build: Callable[[], list[RepoEntry]]) -> list[RepoEntry]:
        found = self._filtered.get(key)
        if found is None:
            found = build()
            self._filtered[key] = found  # a race only builds the same list twice
        return found

    # --- handlers -------------------------------------------------------------------------

    def gone(self, call: Call) -> Result:
        return Result(410, GONE_2770)

    def retired(self, call: Call) -> Result:
        return Result(410, GONE_3071)

    def get_user(self, call: Call) -> Result:
        return Result(200, shapes.user(call.cred))

    def user_workspaces(self, call: Call) -> Result:
        # `workspace_access` entries (the OpenAPI document): an administrator flag, no role string.
        cred = call.cred
        admin = cred.is_workspace_admin
        wanted = call.params.get("administrator", "").lower()
        if cred.role == "collaborator" or (wanted in ("true", "false") and (wanted == "true") != admin):
            return self._page(call, [])
        items = [
            {"type": "workspace_access", "administrator": admin, "workspace": shapes.workspace_base(idx.ws)}
            for slug, idx in self.world.index.items()
            if self.world.sees_workspace(cred, slug)
        ]
        return self._page(call, items)

    def user_workspace_permission(self, call: Call) -> Result:
        idx = self._workspace(call)
        return Result(
            200,
            {
                "type": "workspace_membership",
                "permission": self.world.workspace_role(call.cred),
                "user": shapes.user_ref(call.cred),
                "workspace": shapes.workspace_ref(idx.ws),
            },
        )

    def user_repo_permissions(self, call: Call) -> Result:
        ws, cred = call.args["workspace"], call.cred
        explicit = self.behaviour.permissions_list == "explicit"
        # explicit: only explicit grants are listed (a workspace administrator's implicit admin is not).
        entries = self.world.explicitly_granted(cred, ws) if explicit else self.world.visible(cred, ws)
        fields: dict[str, Callable[[RepoEntry], Any]] = {
            "permission": lambda e: self.world.permission(cred, e),
            "repository.full_name": lambda e: e.full_name,
            "repository.name": lambda e: e.repo.slug,
            "repository.uuid": lambda e: shapes.braced_uuid("repo", e.ws.slug, e.repo.slug),
        }
        pred = self._query(call, fields)
        if pred is not None:
            key = ("perms", id(cred), ws, explicit, call.params["q"])
            entries = self._cached(key, lambda: [e for e in entries if pred(e)])
        window, meta = self._paginate(call, len(entries))
        user = shapes.user_ref(call.cred)
        items = [
            {
                "type": "repository_permission",
                "user": user,
                "repository": shapes.repo_ref(e.ws, e.repo),
                "permission": self.world.permission(call.cred, e),
            }
            for e in entries[window]
        ]
        return Result(200, Page(meta, items))

    def get_workspace(self, call: Call) -> Result:
        return Result(200, shapes.workspace(self._workspace(call).ws))

    def workspace_members(self, call: Call) -> Result:
        ws = self._workspace(call).ws
        users = [c for c in self.world.credentials if c.is_user and self.world.sees_workspace(c, ws.slug)]
        unique = {shapes.user_name(c): c for c in users}
        items = [
            {
                "type": "workspace_membership",
                "user": shapes.user_ref(c),
                "workspace": shapes.workspace_ref(ws),
            }
            for c in unique.values()
        ]
        return self._page(call, items)

    def workspace_projects(self, call: Call) -> Result:
        idx = self._workspace(call)
        return self._page(call, [shapes.project(idx.ws, k) for k in idx.project_keys()])

    def workspace_hooks(self, call: Call) -> Result:
        return self._page(call, [shapes.workspace_hook(self._workspace(call).ws)])

    def workspace_variables(self, call: Call) -> Result:
        return self._page(call, [shapes.workspace_variable(self._workspace(call).ws)])

    def list_repositories(self, call: Call) -> Result:
        ws, cred = call.args["workspace"], call.cred
        entries = self.world.visible(cred, ws)
        fields: dict[str, Callable[[RepoEntry], Any]] = {
            "full_name": lambda e: e.full_name,
            "name": lambda e: e.repo.slug,
            "slug": lambda e: e.repo.slug,
            "uuid": lambda e: shapes.braced_uuid("repo", e.ws.slug, e.repo.slug),
            "project.key": lambda e: e.repo.project,
            "is_private": lambda e: e.repo.is_private,
        }
        pred = self._query(call, fields)
        role = call.params.get("role", "")
        if pred is not None or role in ROLE_MINIMUM:
            key = ("repos", id(cred), ws, role, call.params.get("q"))
            entries = self._cached(key, lambda: self._filter(call, entries, role, pred))
        window, meta = self._paginate(call, len(entries))
        chunk = entries[window]
        return Result(200, Page(meta, None, [e.json for e in chunk]))

    def _filter(
        self, call: Call, entries: list[RepoEntry], role: str, pred: Callable[[Any], bool] | None
    ) -> list[RepoEntry]:
        # role=member|contributor|admin|owner: a minimum effective permission, as Bitbucket documents it.
        need = ROLE_MINIMUM.get(role)
        if need is not None:
            rank = PERMISSION_RANK[need]
            entries = [e for e in entries if PERMISSION_RANK.get(self.world.permission(call.cred, e), 0) >= rank]
        return entries if pred is None else [e for e in entries if pred(e)]

    def get_repository(self, call: Call) -> Result:
        return Result(200, self._repo(call).obj)

    def repo_collection(self, call: Call) -> Result:
        entry = self._repo(call)
        kind = call.path.rstrip("/").split("/", 4)[4]
        item = shapes.repo_items(kind, entry.ws, entry.repo, shapes.user_ref(call.cred))
        return self._page(call, [item])

    def pipelines_config(self, call: Call) -> Result:
        entry = self._repo(call)
        return Result(200, shapes.pipelines_config(entry.ws, entry.repo))

    def key_pair(self, call: Call) -> Result:
        self._repo(call)
        return Result(200, shapes.key_pair())

    def override_settings(self, call: Call) -> Result:
        self._repo(call)
        return Result(200, shapes.override_settings())

    def snippets(self, call: Call) -> Result:
        ws = self._workspace(call).ws
        return self._page(call, [shapes.snippet(ws, shapes.user_ref(call.cred))])

    def put_report(self, call: Call) -> Result:
        self._repo(call)
        return self.store_report(call.args, call.body)

    def store_report(self, args: dict[str, str], body: bytes) -> Result:
        try:
            report = json.loads(body or b"null")
        except ValueError:
            report = None
        if not isinstance(report, dict):
            return Result(400, shapes.error("The request body must be a JSON object."))
        key = f"{args['workspace']}/{args['repo_slug']}/{args['commit']}/{args['reportId']}"
        self.reports[key] = report
        uid = shapes.braced_uuid("report", key)
        return Result(
            200,
            {
                **report,
                "uuid": uid,
                "type": "report",
                "external_id": args["reportId"],
                "created_on": shapes.UPDATED,
                "updated_on": shapes.UPDATED,
            },
        )
