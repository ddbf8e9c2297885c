"""A Bitbucket Cloud simulator for tests: real HTTP, Bitbucket's auth and scope rules, real git.

from test.simulator import Simulator, Workspace, Repository, Credential, Fault

Switches: where real Bitbucket is uncertain, or may differ from the default answers, a keyword of
Simulator (a field of Behaviour; `start([...], name=value)` in test/conftest.py passes them on)
turns the other behaviour on. The default is the behaviour listed first.

  granted_in_403="full"|"partial"|"missing"
      The `granted` list of a missing-scope 403 (`error.detail.granted`): every scope the credential
      holds; a subset (Credential.granted_shown when set, else only the read scopes: `read:*` and
      classic names without `:write`/`:admin`/...); or no `granted` key at all (`required` stays).
  scope_headers=None|False|True
      x-oauth-scopes / x-credential-type / x-accepted-oauth-scopes response headers. None: per
      credential (Credential.scope_headers; unset = access tokens and OAuth send them, API tokens
      do not). False: none for any credential. True: every credential, API tokens included
      (x-oauth-scopes in `*:bitbucket` names, x-credential-type: api_token).
  webhooks_need_admin=True|False
      GET .../hooks of a repository needs repository admin on top of the webhook scope; False: the
      scope alone reads them.
  permissions_list="effective"|"explicit"
      GET /user/workspaces/{ws}/permissions/repositories lists every visible repository with the
      effective permission; or only repositories with an explicit grant in Credential.permissions
      (a workspace administrator's implicit admin on the others is not listed).
  page_size=True|False
      Pages carry `size` (the total); False leaves it out (it is optional in Bitbucket's pages).
  fields=True|False
      `fields=` trims successful answers; False ignores it (full objects). Error bodies are never
      trimmed: a 403 keeps its message and `required`/`granted` whatever fields= asks.
  bbql=True|False
      `q=` filters the repository list and the permissions list (see bbql.py: permission="admin",
      permission!="admin", permission>"read", repository.full_name="ws/x", full_name="ws/x",
      AND/OR, parentheses; an unknown field is a 400). False: any `q=` on any endpoint is a 400,
      as from a server that does not support it.
  api_token_bearer=False|True
      `Authorization: Bearer <API token>` is refused (401); True accepts it (uncertain in 2026).
  oauth_response="2026"|"legacy"
      The client-credentials token response: "2026" (the default; the rule enforced 2026-05-04)
      names the scopes in `scope` and has no refresh_token; legacy names them in `scopes` and
      carries a refresh_token. The pipe reads both.
  deprecations=[Deprecation(path_regex, deprecation="@1771545600", sunset="...", link="...")]
      `Deprecation`, `Sunset` and `Link: <url>; rel="deprecation"` headers on successful answers
      whose path (with /2.0) matches; the defaults are the CHANGE-3071 values Bitbucket sent.
  app_password_git="401"|"410"
      Git over HTTPS with an app password: 401 like any refused credential; or 410 with a
      text/plain body that git prints as `remote: CHANGE-3222 - Functionality has been deprecated`,
      `remote: App passwords are deprecated and must be replaced with API tokens.` and the
      changelog URL (as Bitbucket answers since 2026-07-28). REST stays 401 either way.

Credential fields for the same purpose: workspace_admin=True (admin on every repository of the
workspaces it sees, role "owner", `administrator: true` in /user/workspaces; workspace_role="owner"
means the same), workspace_role (owner|create-project|collaborator|member, as
/user/workspaces/{ws}/permission reports it), granted_shown (the partial `granted` list),
scope_headers. Scope names are free strings: `read:package:bitbucket`, `write:package:bitbucket`
(Bitbucket Packages, not in the June 2026 OpenAPI document) are granted like any other.

Fixed answers that are not switches: pull request lists refuse pagelen > 50 with 400
"Invalid pagelen", other lists clamp pagelen to 100; Issues and Wiki endpoints answer 410
CHANGE-3071; the cross-workspace endpoints answer 410 CHANGE-2770.
"""

from .model import Behaviour, Credential, Deprecation, Fault, RecordedRequest, Repository, Workspace
from .server import Simulator

__all__ = [
    "Behaviour",
    "Credential",
    "Deprecation",
    "Fault",
    "RecordedRequest",
    "Repository",
    "Simulator",
    "Workspace",
]
