"""The workspace role of the calling user: one request, GET /user/workspaces/{workspace}/permission.

A workspace administrator (role `owner`) has admin on every repository of the workspace, whether
or not the repository-permissions list names a grant for it (bitbucket-cloud.md section 3): its
role settles the admin question without listing anything. Only a user has a role: access tokens
are never asked (every /user endpoint answers them 403). Any answer that is not a known role word
leaves the role unknown, which is never taken as admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipe.client import ApiFailure, Client
from pipe.credential import Kind
from pipe.shapes import ShapeError, expect_dict, expect_one_of

# The OpenAPI document's words (`collaborator` is deprecated but still answered).
ROLES = ("owner", "create-project", "collaborator", "member")
ROLE_PATH = "/user/workspaces/{workspace}/permission"


@dataclass(frozen=True)
class WorkspaceRole:
    role: str | None  # one of ROLES, or None when it was not learnt
    why: str = ""  # when None: why not (no user, the answer, the failure)

    @property
    def admin(self) -> bool:
        return self.role == "owner"


async def learn(client: Client, workspace: str, kind: Kind) -> WorkspaceRole:
    if kind is Kind.ACCESS_TOKEN:
        return WorkspaceRole(None, "an access token has no user, so no workspace role")
    path = ROLE_PATH.replace("{workspace}", workspace)
    endpoint = f"GET {path}"
    try:
        reply = await client.get(path, {"fields": "permission"})
    except ApiFailure as exc:
        return WorkspaceRole(None, f"{endpoint}: {exc.reason}")
    if not reply.ok:
        return WorkspaceRole(None, f"{endpoint} answered {reply.status}")
    try:
        word = expect_one_of(expect_dict(reply.body, endpoint).get("permission"), ROLES, endpoint, "permission")
    except ShapeError as exc:
        return WorkspaceRole(None, str(exc))
    return WorkspaceRole(word)
