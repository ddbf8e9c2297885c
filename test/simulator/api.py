"""The /2.0 REST API: routing, scope enforcement and handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from . import shapes
from .model import Credential
from .paging import Page, paginate
from .scopes import SCOPE_TABLE, Requirement, missing_scopes
from .world import PERMISSION_RANK, RepoEntry, World

MSG_UNAUTHORIZED = "Token is invalid, expired, or not supported for this endpoint."
MSG_SCOPES = "Your credentials lack one or more required privilege scopes."
MSG_AUTH_TYPE = (
    "This API is only accessible with the following authentication types: "
    "session, password, apppassword, api_token, oauth"
)
MSG_ADMIN = "You must be an administrator of this repository to access this resource."
MSG_RETIRED = "Issues and Wikis have been removed from Bitbucket Cloud (2026-08-20)."
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
    "override-settings",
)
# Bitbucket lets only repository admins manage webhooks, though the hooks scope is not an admin one.
ADMIN_ONLY = frozenset({_REPO + "/hooks"})


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
        self.reports = reports
        self.routes = [Route(m, t, h, compile_template(t)) for m, t, h in self._route_list()]

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
            return Result(410, shapes.error(MSG_RETIRED)), None
        found = self.match(call.method, call.path)
        if found is None:
            return Result(404, shapes.error(f"Resource not found: {call.path}")), None
        route, call.args = found
        req = SCOPE_TABLE[(route.method, route.template)]
        try:
            self._authorize(call, route, req)
            return route.handler(self, call), req
        except ApiError as err:
            return Result(err.status, err.body), req

    def _authorize(self, call: Call, route: Route, req: Requirement) -> None:
        cred = call.cred
        if route.template.startswith("/user") and not cred.is_user:
            raise ApiError(403, shapes.error(MSG_AUTH_TYPE))  # access tokens have no user
        if route.template in REMOVED_2770:
            raise ApiError(410, GONE_2770)
        missing = missing_scopes(cred.kind, cred.scopes, req)
        if missing:
            detail = {"required": missing, "granted": sorted(cred.scopes)}
            raise ApiError(403, shapes.error(MSG_SCOPES, detail=detail))
        if "workspace" in call.args:
            self._workspace(call)
        if "repo_slug" in call.args:
            entry = self._repo(call)
            if ("repository:admin" in req.classic or route.template in ADMIN_ONLY) and self.world.permission(
                cred, entry
            ) != "admin":
                raise ApiError(403, shapes.error(MSG_ADMIN))

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

    def _page(self, call: Call, items: list[Any], json_items: list[str] | None = None) -> Result:
        window, meta = paginate(len(items), call.params, call.base_url, call.full_path, call.query)
        chunk_json = json_items[window] if json_items is not None else None
        return Result(200, Page(meta, items[window], chunk_json))

    # --- handlers -------------------------------------------------------------------------

    def gone(self, call: Call) -> Result:
        return Result(410, GONE_2770)

    def retired(self, call: Call) -> Result:
        return Result(410, shapes.error(MSG_RETIRED))

    def get_user(self, call: Call) -> Result:
        return Result(200, shapes.user(call.cred))

    def user_workspaces(self, call: Call) -> Result:
        role = self.world.workspace_role(call.cred)
        items = (
            []
            if role == "collaborator"
            else [
                {
                    "type": "workspace_access",
                    "workspace": shapes.workspace_ref(idx.ws),
                    "permission": role,
                    "administrator": role == "owner",
                    "last_accessed": shapes.UPDATED,
                }
                for slug, idx in self.world.index.items()
                if self.world.sees_workspace(call.cred, slug)
            ]
        )
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
        ws = call.args["workspace"]
        entries = self.world.visible(call.cred, ws)
        wanted = re.search(r'repository\.full_name\s*=\s*"([^"]+)"', call.params.get("q", ""))
        if wanted:
            entries = [e for e in entries if e.full_name == wanted.group(1)]
        window, meta = paginate(len(entries), call.params, call.base_url, call.full_path, call.query)
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
        entries = self.world.visible(call.cred, call.args["workspace"])
        entries = self._filter_role(call, entries)
        window, meta = paginate(len(entries), call.params, call.base_url, call.full_path, call.query)
        chunk = entries[window]
        return Result(200, Page(meta, None, [e.json for e in chunk]))

    def _filter_role(self, call: Call, entries: list[RepoEntry]) -> list[RepoEntry]:
        # role=member|contributor|admin: minimum permission, as Bitbucket documents it.
        need = {
            "member": "read",
            "contributor": "write",
            "admin": "admin",
            "owner": "admin",
        }.get(call.params.get("role", ""))
        if need is None:
            return entries
        rank = PERMISSION_RANK[need]
        return [e for e in entries if PERMISSION_RANK.get(self.world.permission(call.cred, e), 0) >= rank]

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
