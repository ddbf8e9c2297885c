"""The simulated Bitbucket's data and rules: who a credential is, what it may see."""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from . import shapes
from .model import Behaviour, Credential, Repository, Workspace
from .scopes import expand_classic

PERMISSION_RANK = {"none": 0, "read": 1, "write": 2, "admin": 3}


@dataclass
class RepoEntry:
    """A repository with its JSON precomputed once (a page of 100 is then a slice + join)."""

    ws: Workspace
    repo: Repository
    json: str

    @functools.cached_property
    def obj(self) -> dict[str, Any]:
        # Built only when needed (fields=, single GETs): 50,000 dicts up front cost seconds.
        return json.loads(self.json)

    @property
    def full_name(self) -> str:
        return f"{self.ws.slug}/{self.repo.slug}"


@dataclass
class WorkspaceIndex:
    ws: Workspace
    entries: list[RepoEntry]
    by_slug: dict[str, RepoEntry]

    def project_keys(self) -> list[str]:
        keys = list(self.ws.projects) + [e.repo.project for e in self.entries]
        return list(dict.fromkeys(keys))


_PLACEHOLDER = "zzsimslugzz"
_PLACEHOLDER_UUID = "zzsimuuidzz"


def _repo_template(ws: Workspace, repo: Repository, git_base: str) -> str:
    """Repository JSON with the slug and uuid as placeholders: string replacement is ~50x faster
    than building and serialising a dict per repository. Slugs never need JSON escaping."""
    proto = dataclasses.replace(repo, slug=_PLACEHOLDER)
    obj = shapes.repository(ws, proto, git_base)
    obj["uuid"] = _PLACEHOLDER_UUID
    return json.dumps(obj)


@dataclass
class World:
    workspaces: list[Workspace]
    credentials: list[Credential]
    behaviour: Behaviour = field(default_factory=Behaviour)
    index: dict[str, WorkspaceIndex] = field(default_factory=dict)
    oauth_tokens: dict[str, Credential] = field(default_factory=dict)
    _visible: dict[tuple[int, str], list[RepoEntry]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, git_base: str) -> None:
        for ws in self.workspaces:
            templates: dict[tuple[Any, ...], str] = {}
            entries = []
            for repo in ws.repositories:
                key = (repo.project, repo.is_private, repo.has_issues, repo.has_wiki)
                if key not in templates:
                    templates[key] = _repo_template(ws, repo, git_base)
                uid = shapes.braced_uuid("repo", ws.slug, repo.slug)
                text = templates[key].replace(_PLACEHOLDER_UUID, uid)
                entries.append(RepoEntry(ws, repo, text.replace(_PLACEHOLDER, repo.slug)))
            self.index[ws.slug] = WorkspaceIndex(ws, entries, {e.repo.slug: e for e in entries})

    # --- authentication ----------------------------------------------------------------

    def authenticate_api(
        self, scheme: str | None, user: str, secret: str
    ) -> tuple[Credential | None, Credential | None]:
        """(credential if the request is authenticated, credential it named for the record)."""
        named = self.oauth_tokens.get(secret) or self._by_secret(secret)
        if named is None or named.expired:
            return None, named
        is_issued_oauth = secret in self.oauth_tokens
        if scheme == "Basic":
            # Only API tokens use Basic, and only with the Atlassian account email as user.
            ok = named.kind == "api_token" and user.lower() == (named.email or "").lower()
        elif scheme == "Bearer":
            # API tokens over Bearer: uncertain on Bitbucket (2026), so only behind a switch.
            api_bearer = self.behaviour.api_token_bearer and named.kind == "api_token"
            ok = named.kind == "access_token" or is_issued_oauth or api_bearer
        else:
            ok = False
        return (named if ok else None), named

    def authenticate_git(self, user: str, secret: str) -> Credential | None:
        named = self.oauth_tokens.get(secret) or self._by_secret(secret)
        if named is None or named.expired:
            return None
        if user == "x-token-auth":
            return named if named.kind == "access_token" or secret in self.oauth_tokens else None
        if named.kind == "api_token" and user in (
            "x-bitbucket-api-token-auth",
            named.username,
        ):
            return named  # an email as git user is refused, as on Bitbucket
        return None

    def _by_secret(self, secret: str) -> Credential | None:
        if not secret:
            return None
        for cred in self.credentials:
            if cred.secret == secret and cred.kind != "oauth":
                return cred
        return None

    def issue_oauth_token(self, cred: Credential) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.oauth_tokens[token] = cred
        return token

    def oauth_consumer(self, client_id: str) -> Credential | None:
        return next(
            (c for c in self.credentials if c.kind == "oauth" and c.client_id == client_id),
            None,
        )

    # --- visibility and permissions ------------------------------------------------------

    def sees_workspace(self, cred: Credential, ws_slug: str) -> bool:
        return ws_slug in self.index and cred.workspace in (None, ws_slug)

    def workspace_role(self, cred: Credential) -> str:
        return cred.role

    def app_password(self, secret: str) -> Credential | None:
        cred = self._by_secret(secret)
        return cred if cred is not None and cred.kind == "app_password" else None

    def permission(self, cred: Credential, entry: RepoEntry) -> str:
        """admin | write | read | none: the caller's permission on one repository."""
        if not self.sees_workspace(cred, entry.ws.slug):
            return "none"
        if cred.is_user:
            if cred.is_workspace_admin:
                return "admin"  # a workspace administrator administers every repository in it
            return self.explicit_grant(cred, entry) or cred.default_permission
        if not self._token_covers(cred, entry):
            return "none"
        granted = expand_classic(cred.scopes)
        if "repository:admin" in granted:
            return "admin"
        return "write" if "repository:write" in granted else "read"

    @staticmethod
    def explicit_grant(cred: Credential, entry: RepoEntry) -> str | None:
        perms = cred.permissions
        return perms.get(entry.full_name) or perms.get(entry.repo.slug)

    def _sees_all(self, cred: Credential) -> bool:
        if cred.is_user:
            if cred.is_workspace_admin:
                return True
            return not cred.permissions and cred.default_permission != "none"
        return cred.level == "workspace"

    def _token_covers(self, cred: Credential, entry: RepoEntry) -> bool:
        if cred.level == "repository":
            return cred.target == entry.repo.slug
        if cred.level == "project":
            return cred.target == entry.repo.project
        return True

    def visible(self, cred: Credential, ws_slug: str) -> list[RepoEntry]:
        """Repositories of a workspace the credential can see (cached: 50,000 repos per request is too slow)."""
        key = (id(cred), ws_slug)
        cached = self._visible.get(key)
        if cached is None:
            entries = self.index[ws_slug].entries
            if not self.sees_workspace(cred, ws_slug):
                cached = []
            elif self._sees_all(cred):
                cached = entries  # the common big case: no per-repository work at all
            else:
                cached = [e for e in entries if self.permission(cred, e) != "none"]
            with self._lock:
                self._visible[key] = cached
        return cached

    def explicitly_granted(self, cred: Credential, ws_slug: str) -> list[RepoEntry]:
        """Visible repositories with an explicit grant in Credential.permissions (the 'explicit' list)."""
        if not cred.permissions:
            return []
        return [e for e in self.visible(cred, ws_slug) if self.explicit_grant(cred, e) not in (None, "none")]
