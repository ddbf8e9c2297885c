"""Response bodies shaped like Bitbucket's (see the go-scm fixtures): plausible, deterministic."""

from __future__ import annotations

import uuid
from typing import Any

from .model import Credential, Repository, Workspace

API = "https://api.bitbucket.org/2.0"
WEB = "https://bitbucket.org"
CREATED = "2024-03-01T10:00:00.000000+00:00"
UPDATED = "2026-11-01T12:00:00.000000+00:00"
COMMIT = "0f3c9a1b2d4e5f60718293a4b5c6d7e8f9012345"


def braced_uuid(*parts: str) -> str:
    # Stable across runs so tests and recorded outputs are reproducible.
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts))) + "}"


def href(url: str) -> dict[str, str]:
    return {"href": url}


def error(message: str, detail: Any = None, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message}
    if detail is not None:
        err["detail"] = detail
    if data is not None:
        err["data"] = data
    return {"type": "error", "error": err}


def workspace_ref(ws: Workspace) -> dict[str, Any]:
    return {
        "type": "workspace",
        "slug": ws.slug,
        "name": ws.display_name,
        "uuid": braced_uuid("ws", ws.slug),
        "links": {
            "avatar": href(f"{WEB}/workspaces/{ws.slug}/avatar/"),
            "html": href(f"{WEB}/{ws.slug}/"),
            "self": href(f"{API}/workspaces/{ws.slug}"),
        },
    }


def workspace_base(ws: Workspace) -> dict[str, Any]:
    """The sparse workspace of a `workspace_access` entry (GET /user/workspaces): no name, no html link."""
    return {
        "type": "workspace_base",
        "slug": ws.slug,
        "uuid": braced_uuid("ws", ws.slug),
        "links": {
            "avatar": href(f"{WEB}/workspaces/{ws.slug}/avatar/"),
            "self": href(f"{API}/workspaces/{ws.slug}"),
        },
    }


def workspace(ws: Workspace) -> dict[str, Any]:
    ref = workspace_ref(ws)
    ref["links"].update(
        members=href(f"{API}/workspaces/{ws.slug}/members"),
        projects=href(f"{API}/workspaces/{ws.slug}/projects"),
        repositories=href(f"{API}/repositories/{ws.slug}"),
        snippets=href(f"{API}/snippets/{ws.slug}"),
    )
    return {**ref, "is_private": True, "created_on": CREATED}


def user_name(cred: Credential) -> str:
    if cred.username:
        return cred.username
    if cred.email:
        return cred.email.split("@")[0].replace(".", "-")
    return f"{cred.client_id or 'user'}-owner"


def user(cred: Credential) -> dict[str, Any]:
    name = user_name(cred)
    return {
        "type": "user",
        "username": name,
        "display_name": name.replace("-", " ").title(),
        "uuid": braced_uuid("user", name),
        "account_id": "557058:" + braced_uuid("account", name)[1:-1],
        "links": {
            "self": href(f"{API}/users/{name}"),
            "html": href(f"{WEB}/{name}/"),
            "avatar": href(f"{WEB}/account/{name}/avatar/32/"),
        },
        "created_on": CREATED,
        "is_staff": False,
        "location": None,
        "website": None,
    }


def user_ref(cred: Credential) -> dict[str, Any]:
    full = user(cred)
    return {k: full[k] for k in ("type", "display_name", "uuid", "account_id", "links")}


def project(ws: Workspace, key: str) -> dict[str, Any]:
    return {
        "type": "project",
        "key": key,
        "name": f"Project {key}",
        "uuid": braced_uuid("project", ws.slug, key),
        "is_private": True,
        "description": "",
        "links": {
            "self": href(f"{API}/workspaces/{ws.slug}/projects/{key}"),
            "html": href(f"{WEB}/{ws.slug}/workspace/projects/{key}"),
            "avatar": href(f"{WEB}/{ws.slug}/workspace/projects/{key}/avatar/32"),
        },
        "created_on": CREATED,
        "updated_on": UPDATED,
    }


def repo_ref(ws: Workspace, repo: Repository) -> dict[str, Any]:
    return {
        "type": "repository",
        "name": repo.slug,
        "full_name": f"{ws.slug}/{repo.slug}",
        "uuid": braced_uuid("repo", ws.slug, repo.slug),
    }


def repository(ws: Workspace, repo: Repository, git_base: str) -> dict[str, Any]:
    full = f"{ws.slug}/{repo.slug}"
    api = f"{API}/repositories/{full}"
    proj = project(ws, repo.project)
    links = {
        name: href(f"{api}/{name}")
        for name in (
            "watchers",
            "commits",
            "forks",
            "downloads",
            "pullrequests",
            "hooks",
        )
    }
    links.update(
        self=href(api),
        html=href(f"{WEB}/{full}"),
        branches=href(f"{api}/refs/branches"),
        tags=href(f"{api}/refs/tags"),
        source=href(f"{api}/src"),
        avatar=href(f"{WEB}/{full}/avatar/32/"),
        clone=[
            {"name": "https", "href": f"{git_base}/{full}.git"},
            {"name": "ssh", "href": f"git@bitbucket.org:{full}.git"},
        ],
    )
    return {
        **repo_ref(ws, repo),
        "slug": repo.slug,
        "scm": "git",
        "website": "",
        "description": f"The {repo.slug} repository",
        "language": "python",
        "is_private": repo.is_private,
        "has_issues": repo.has_issues,
        "has_wiki": repo.has_wiki,
        "fork_policy": "no_public_forks",
        "size": 4096,
        "mainbranch": {"type": "branch", "name": "main"},
        "project": {k: proj[k] for k in ("type", "key", "name", "uuid", "links")},
        "owner": {
            "type": "team",
            "username": ws.slug,
            "display_name": ws.display_name,
            "uuid": braced_uuid("ws", ws.slug),
            "links": workspace_ref(ws)["links"],
        },
        "links": links,
        "created_on": CREATED,
        "updated_on": UPDATED,
    }


def commit_ref(full: str) -> dict[str, Any]:
    return {
        "type": "commit",
        "hash": COMMIT,
        "date": UPDATED,
        "links": {"self": href(f"{API}/repositories/{full}/commit/{COMMIT}")},
    }


def repo_items(kind: str, ws: Workspace, repo: Repository, owner: dict[str, Any]) -> Any:
    """Small plausible bodies for the per-repository backup endpoints (one item each)."""
    full = f"{ws.slug}/{repo.slug}"
    ref = repo_ref(ws, repo)
    uid = braced_uuid(kind, full)
    items: dict[str, Any] = {
        "refs/branches": {
            "type": "branch",
            "name": "main",
            "target": commit_ref(full),
            "links": {"html": href(f"{WEB}/{full}/branch/main")},
        },
        "refs/tags": {
            "type": "tag",
            "name": "v1.0.0",
            "target": commit_ref(full),
            "message": "First release",
            "date": UPDATED,
        },
        "downloads": {
            "type": "download",
            "name": "release-1.0.0.zip",
            "size": 2048,
            "downloads": 3,
            "created_on": CREATED,
            "user": owner,
            "links": {"self": href(f"{API}/repositories/{full}/downloads/release-1.0.0.zip")},
        },
        "pullrequests": pull_request(full, ref, owner),
        "pullrequests/activity": {
            "pull_request": {"type": "pullrequest", "id": 1, "title": "Add CI"},
            "update": {"state": "OPEN", "author": owner, "date": UPDATED},
        },
        "default-reviewers": owner,
        "pipelines": {
            "type": "pipeline",
            "uuid": uid,
            "build_number": 1,
            "creator": owner,
            "repository": ref,
            "created_on": CREATED,
            "completed_on": UPDATED,
            "target": {
                "type": "pipeline_ref_target",
                "ref_type": "branch",
                "ref_name": "main",
                "commit": {"type": "commit", "hash": COMMIT},
            },
            "state": {
                "type": "pipeline_state_completed",
                "name": "COMPLETED",
                "result": {
                    "type": "pipeline_state_completed_successful",
                    "name": "SUCCESSFUL",
                },
            },
        },
        "pipelines_config/variables": {
            "type": "pipeline_variable",
            "uuid": uid,
            "key": "DEPLOY_ENV",
            "value": "production",
            "secured": False,
        },
        "pipelines_config/schedules": {
            "type": "pipeline_schedule",
            "uuid": uid,
            "enabled": True,
            "cron_pattern": "0 0 2 * * ? *",
            "created_on": CREATED,
            "target": {
                "type": "pipeline_ref_target",
                "ref_type": "branch",
                "ref_name": "main",
                "selector": {"type": "custom", "pattern": "backup"},
            },
        },
        "pipelines_config/ssh/known_hosts": {
            "type": "pipeline_known_host",
            "uuid": uid,
            "hostname": "github.com",
            "public_key": {
                "type": "pipeline_ssh_public_key",
                "key_type": "ssh-ed25519",
                "key": "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                "md5_fingerprint": "md5:00",
                "sha256_fingerprint": "SHA256:00",
            },
        },
        "environments": {
            "type": "deployment_environment",
            "uuid": uid,
            "name": "Production",
            "slug": "production",
            "rank": 2,
            "environment_type": {
                "type": "deployment_environment_type",
                "name": "Production",
                "rank": 2,
            },
        },
        "deployments": {
            "type": "deployment",
            "uuid": uid,
            "state": {"type": "deployment_state_completed", "name": "COMPLETED"},
            "environment": {"type": "deployment_environment", "uuid": uid},
            "release": {
                "type": "deployment_release",
                "name": "1",
                "commit": {"type": "commit", "hash": COMMIT},
            },
        },
        "hooks": {
            "type": "webhook_subscription",
            "uuid": uid,
            "url": "https://ci.example/hook",
            "description": "ci",
            "subject_type": "repository",
            "subject": ref,
            "active": True,
            "events": ["repo:push"],
            "created_at": CREATED,
            "skip_cert_verification": False,
            "read_only": False,
            "source": None,
            "links": {"self": href(f"{API}/repositories/{full}/hooks/{uid}")},
        },
        "branch-restrictions": {
            "type": "branchrestriction",
            "id": 1,
            "kind": "push",
            "branch_match_kind": "glob",
            "pattern": "main",
            "users": [owner],
            "groups": [],  # no `value`: it is an integer, for the kinds that take a number only
        },
        "deploy-keys": {
            "type": "deploy_key",
            "id": 1,
            "label": "ci",
            "comment": "ci@example",
            "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy",
            "repository": ref,
            "created_on": CREATED,
            "last_used": UPDATED,
        },
        "permissions-config/users": {
            "type": "repository_user_permission",
            "permission": "admin",
            "user": owner,
            "repository": ref,
        },
        "pipelines-config/runners": {
            "type": "pipeline_runner",
            "uuid": uid,
            "name": "runner-1",
            "labels": ["self.hosted", "linux"],
            "state": {"type": "pipeline_runner_state", "status": "ONLINE", "updated_on": UPDATED},
        },
    }
    return items[kind]


def pull_request(full: str, ref: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    side = {
        "branch": {"name": "feature/ci"},
        "commit": {"type": "commit", "hash": COMMIT[:12]},
        "repository": ref,
    }
    return {
        "type": "pullrequest",
        "id": 1,
        "title": "Add CI",
        "description": "Adds CI",
        "state": "OPEN",
        "author": owner,
        "source": side,
        "destination": {**side, "branch": {"name": "main"}},
        "merge_commit": None,
        "comment_count": 1,
        "task_count": 0,
        "close_source_branch": False,
        "closed_by": None,
        "reason": "",
        "created_on": CREATED,
        "updated_on": UPDATED,
        "summary": {
            "type": "rendered",
            "raw": "Adds CI",
            "markup": "markdown",
            "html": "<p>Adds CI</p>",
        },
        "links": {
            "self": href(f"{API}/repositories/{full}/pullrequests/1"),
            "html": href(f"{WEB}/{full}/pull-requests/1"),
        },
    }


def pipelines_config(ws: Workspace, repo: Repository) -> dict[str, Any]:
    return {
        "type": "repository_pipelines_configuration",
        "enabled": True,
        "repository": repo_ref(ws, repo),
    }


def override_settings() -> dict[str, Any]:
    # `repository_inheritance_state`: which repository settings override the project's.
    return {
        "type": "repository_inheritance_state",
        "override_settings": {"default_merge_strategy": True, "branching_model": True},
    }


def key_pair() -> dict[str, Any]:
    # Bitbucket never returns the private half.
    return {
        "type": "pipeline_ssh_key_pair",
        "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPipelineKey",
    }


def snippet(ws: Workspace, owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "snippet",
        "id": 1,  # an integer in the OpenAPI document; the URL uses the encoded id
        "title": "deploy notes",
        "scm": "git",
        "is_private": True,
        "owner": owner,
        "creator": owner,
        "workspace": workspace_ref(ws),
        "created_on": CREATED,
        "updated_on": UPDATED,
        "links": {"self": href(f"{API}/snippets/{ws.slug}/kypj")},
    }


def workspace_variable(ws: Workspace) -> dict[str, Any]:
    return {
        "type": "pipeline_variable",
        "uuid": braced_uuid("wsvar", ws.slug),
        "key": "ARTIFACT_TOKEN",
        "secured": True,
    }


def workspace_hook(ws: Workspace) -> dict[str, Any]:
    uid = braced_uuid("wshook", ws.slug)
    return {
        "type": "webhook_subscription",
        "uuid": uid,
        "url": "https://audit.example/hook",
        "description": "audit",
        "subject_type": "workspace",
        "subject": workspace_ref(ws),
        "active": True,
        "events": ["repo:created"],
        "created_at": CREATED,
        "skip_cert_verification": False,
        "read_only": False,
        "source": None,
        "links": {"self": href(f"{API}/workspaces/{ws.slug}/hooks/{uid}")},
    }
