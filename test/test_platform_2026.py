"""Issue 11, the pipe side: Bitbucket as it is in December 2026, end to end against the simulator.

Each point of the issue, and each switch of the simulator that is not about the inventory, runs the
pipe against the simulator with that behaviour on (test/simulator/__init__.py names the switches),
and checks the verdict and what the report says; where a fact is uncertain, both worlds are run.
Where the simulator has no switch for an answer (a 410 that names a changelog id on an endpoint the
pipe reads), the hostile kit (test/hostile.py) serves Bitbucket's own body for it.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from pipe.catalog import load
from test.conftest import (
    ALL_READ,
    ALL_WRITE,
    API_TOKEN,
    CLASSIC_READ,
    EMAIL,
    FIXTURES,
    SECRETS,
    access_token,
    api_token,
    oauth,
)
from test.hostile import raw, tamper
from test.simulator import Deprecation
from test.simulator.api import GONE_2770
from test.simulator.server import APP_PASSWORD_GONE
from test.test_reports import SCHEMA

CATALOG = load()
PULLS = r"^/2\.0/repositories/acme/[^/]+/pullrequests$"
MEMBERS = r"^/2\.0/workspaces/acme/members$"
GIT = r"\.git/"
CHANGELOG = "https://developer.atlassian.com/cloud/bitbucket/changelog"
READ_ONLY_RESTORE = ("pull-requests", "projects", "snippets", "pipelines")  # write scopes, none held


def guidance(run, entry: str) -> list[dict]:
    """The workspace's items of `entry`, and the run's (advice about the credential is said once)."""
    return [item for item in run.section["guidance"] + run.report["guidance"] if item["id"] == entry]


def texts(run, entry: str) -> list[str]:
    return [item["text"] for item in guidance(run, entry)]


def reasons(run, category: str, side: str = "backup") -> str:
    return " | ".join(run.category(category)["details"][side]["reasons"])


def valid(run) -> dict:
    jsonschema.validate(run.report, SCHEMA, format_checker=jsonschema.FormatChecker())
    return run.report


# --- 2. OAuth consumers since 2026-05-04 -------------------------------------------------------------


@pytest.mark.parametrize("response", ["2026", "legacy"])
def test_the_oauth_token_response_names_its_scopes_in_scope_or_scopes(start, run_pipe, response):
    # No scope headers: the token response is the only source, so it must be read in either shape.
    cred = oauth(scope_headers=False)
    sim = start([cred], oauth_response=response)
    run = run_pipe(sim, cred, CHECK_RESTORE="true")
    report = valid(run)
    assert report["credential"]["scopes"] == sorted(CLASSIC_READ), report["credential"]
    assert report["credential"]["scopes_source"] == ["OAuth token response"]
    # The response names every scope: the missing write scopes are proven missing, not unknown.
    assert run.code == 1, run.output
    assert run.category("pull-requests")["restore"] == "missing"
    assert "pullrequest:write" in run.category("pull-requests")["details"]["restore"]["missing_scopes"]


def test_an_oauth_consumer_is_told_its_refresh_tokens_die_unused(start, run_pipe):
    cred = oauth()
    run = run_pipe(start([cred], oauth_response="2026"), cred)
    assert run.code == 0, run.output
    (note,) = guidance(run, "oauth-refresh")
    assert note["layout"] == "note" and note["severity"] == "info"
    assert "no refresh token" in note["text"] and "app user" in note["text"]
    assert "expires after 3 months unused" in note["text"]
    assert note["text"] in run.output
    assert guidance(run, "token-lifetime") == []  # that one is about API tokens


# --- 3. Removals named by changelog id -----------------------------------------------------------------


def test_a_410_naming_a_known_change_is_reported_with_its_meaning_and_link(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    tamper(sim, MEMBERS, raw(410, json.dumps(GONE_2770).encode()))
    run = run_pipe(sim, cred)
    valid(run)
    assert run.code == 0, run.output  # Workspace members are information in this profile
    (removal,) = run.section["removals"]
    assert removal == {
        "change": "CHANGE-2770",
        "endpoint": "GET /workspaces/acme/members",
        "meaning": CATALOG.changes["CHANGE-2770"],
        "announcement_url": f"{CHANGELOG}/#CHANGE-2770",
    }
    (said,) = texts(run, "removed")
    assert said == f"GET /workspaces/acme/members answered 410 CHANGE-2770: {CATALOG.changes['CHANGE-2770']}."
    assert texts(run, "announcement") == [f"Announcement: {CHANGELOG}/#CHANGE-2770"]
    assert said in run.output and f"Announcement: {CHANGELOG}/#CHANGE-2770" in run.output
    assert run.category("workspace")["backup"] == "unknown"
    assert "CHANGE-2770" in reasons(run, "workspace")


@pytest.mark.parametrize("where", ["message", "detail"])
def test_a_410_naming_an_unknown_change_on_a_required_read_is_inconclusive_naming_it(start, run_pipe, where):
    error = {"message": "Gone", "detail": "Gone", "data": {"announcement_url": f"{CHANGELOG}#CHANGE-4242"}}
    error[where] = "CHANGE-4242 - Functionality has been deprecated"
    cred = api_token()
    sim = start([cred])
    tamper(sim, PULLS, raw(410, json.dumps({"type": "error", "error": error}).encode()))
    run = run_pipe(sim, cred)
    valid(run)
    assert run.code == 3, run.output  # never ready, never missing: the read could not be judged
    assert run.category("pull-requests")["backup"] == "unknown"
    (removal,) = run.section["removals"]
    assert removal["change"] == "CHANGE-4242" and removal["meaning"] is None
    assert removal["endpoint"].endswith("/pullrequests") and removal["announcement_url"] == f"{CHANGELOG}#CHANGE-4242"
    (said,) = texts(run, "removed")
    assert "answered 410 CHANGE-4242: Bitbucket removed this functionality" in said
    assert f"Announcement: {CHANGELOG}#CHANGE-4242" in run.output


def test_a_410_without_a_changelog_id_is_no_removal(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    tamper(sim, PULLS, raw(410, json.dumps({"type": "error", "error": {"message": "Gone"}}).encode()))
    run = run_pipe(sim, cred)
    assert run.code == 3, run.output
    assert run.section["removals"] == [] and texts(run, "removed") == []


def test_a_git_410_with_change_3222_says_an_app_password_reached_git(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    tamper(sim, GIT, raw(410, APP_PASSWORD_GONE, "text/plain"))  # Bitbucket's own answer since 2026-07-28
    run = run_pipe(sim, cred)
    valid(run)
    assert run.code == 1, run.output  # git cannot clone: the backup of git data would fail
    git = run.section["git"]
    assert git["outcome"] == "rejected" and "app password" in git["reason"], git
    (finding,) = texts(run, "app-password-git")
    assert "410 CHANGE-3222" in finding and "app password" in finding
    assert f"git username {git['username']})" in finding
    assert run.section["findings"] == [finding]
    assert texts(run, "git-failing") == []  # not "git rejected the credential"
    for said in (git["reason"], finding):
        assert "gone" not in said.lower() and "rejected the credential" not in said
    (removal,) = run.section["removals"]
    assert removal["change"] == "CHANGE-3222" and removal["endpoint"].startswith("git over HTTPS (acme/")
    assert removal["meaning"] == CATALOG.changes["CHANGE-3222"]
    assert removal["announcement_url"] == f"{CHANGELOG}#CHANGE-3222"  # from git's remote: lines


# --- 4. Announced removals: Deprecation, Sunset, Link rel="deprecation" ------------------------------


def test_deprecation_headers_become_a_warning_and_a_list_in_the_report(start, run_pipe):
    cred = api_token()
    sim = start([cred], deprecations=[Deprecation(r"/pullrequests$")])
    run = run_pipe(sim, cred)
    report = valid(run)
    assert run.code == 0, run.output  # it still answers: a warning, not a verdict
    (found,) = report["deprecations"]
    assert found["endpoint"].startswith("GET /repositories/acme/") and found["endpoint"].endswith("/pullrequests")
    assert found["deprecation"] == "2026-02-20T00:00:00+00:00"  # Deprecation: @1771545600
    assert found["sunset"] == "2026-08-21T00:00:00+00:00"  # Sunset: Fri, 21 Aug 2026 00:00:00 UTC
    assert found["link"] == f"{CHANGELOG}#CHANGE-3071"
    (warning,) = guidance(run, "deprecated")
    assert warning["severity"] == "warning" and warning["variant"] == "sunset"
    assert "its removal for 2026-08-21 (Deprecation: 2026-02-20)" in warning["text"]
    assert "will break on that date" in warning["text"] and f"{CHANGELOG}#CHANGE-3071" in warning["text"]
    assert warning["text"] in run.output


def test_a_deprecation_on_every_page_of_a_listing_is_reported_once(start, run_pipe):
    cred = api_token()
    sim = start([cred], deprecations=[Deprecation(r"^/2\.0/repositories/acme$", sunset=None, link=None)])
    run = run_pipe(sim, cred)
    (found,) = valid(run)["deprecations"]
    assert found == {
        "endpoint": "GET /repositories/acme",
        "deprecation": "2026-02-20T00:00:00+00:00",
        "sunset": None,
        "link": None,
    }
    (warning,) = texts(run, "deprecated")
    assert "without a removal date yet" in warning and "Details: no link given." in warning


@pytest.mark.parametrize(
    ("deprecation", "sunset", "link", "expected"),
    [
        (None, None, f"{CHANGELOG}#CHANGE-9", (None, None, f"{CHANGELOG}#CHANGE-9")),  # the Link alone
        (None, "Sat, 01 May 2027 00:00:00 GMT", None, (None, "2027-05-01T00:00:00+00:00", None)),
        ("true", "soon", None, (None, None, None)),  # an old draft's `true`, an unreadable date
        ("@1771545600", None, "javascript:alert(1)", ("2026-02-20T00:00:00+00:00", None, None)),
    ],
)
def test_each_announcement_header_is_read_alone_and_odd_values_are_not_dates(
    start, run_pipe, deprecation, sunset, link, expected
):
    cred = api_token()
    sim = start([cred], deprecations=[Deprecation(r"/refs/branches$", deprecation, sunset, link)])
    run = run_pipe(sim, cred)
    (found,) = valid(run)["deprecations"]
    assert (found["deprecation"], found["sunset"], found["link"]) == expected
    assert run.code == 0, run.output


def test_answers_without_announcements_list_none(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert valid(run)["deprecations"] == [] and run.section["removals"] == []
    assert texts(run, "deprecated") == []


# --- 6. Scope headers for API tokens, and the 403's granted list -------------------------------------


def test_scope_headers_of_an_api_token_are_used_when_present(start, run_pipe):
    cred = api_token(ALL_READ, scope_headers=True)
    run = run_pipe(start([cred], scope_headers=True), cred, CHECK_RESTORE="true")
    report = valid(run)
    assert report["credential"]["type"] == "api_token"
    assert report["credential"]["scopes_source"] == ["x-oauth-scopes header"]
    # The header names every scope: a restore without write scopes is proven missing.
    assert run.code == 1, run.output
    for category in READ_ONLY_RESTORE:
        assert run.category(category)["restore"] == "missing", category
    assert "write:pullrequest:bitbucket" in run.scopes_to_add


def test_without_scope_headers_the_backup_verdict_holds_from_live_reads(start, run_pipe):
    cred = api_token(ALL_READ)
    run = run_pipe(start([cred], scope_headers=False), cred)
    report = valid(run)
    assert run.code == 0, run.output
    assert report["credential"]["type"] is None
    assert report["credential"]["scopes_source"] == ["403 error detail"]


def test_without_scope_headers_a_missing_scope_is_still_named_by_the_live_read(start, run_pipe):
    cred = api_token([s for s in ALL_READ if s != "read:pullrequest:bitbucket"])
    run = run_pipe(start([cred], scope_headers=False), cred)
    assert run.code == 1, run.output
    assert run.scopes_to_add == ["read:pullrequest:bitbucket"]


@pytest.mark.parametrize("granted", ["full", "partial"])
def test_a_403_granted_list_never_proves_a_scope_absent(start, run_pipe, granted):
    """The 403's `granted` list is not documented to be complete (partial: the simulator shows only
    the read scopes). A token holding every write scope must not be called not-ready on it: the
    write scopes it does not name are unknown, and the source is named."""
    cred = api_token(ALL_READ + ALL_WRITE)
    run = run_pipe(start([cred], granted_in_403=granted, scope_headers=False), cred, CHECK_RESTORE="true")
    report = valid(run)
    assert report["credential"]["scopes_source"] == ["403 error detail"]
    if granted == "full":  # every write scope named: proven held
        assert run.code == 0, run.output
        return
    assert run.code == 3, run.output
    for category in READ_ONLY_RESTORE:
        restore = run.category(category)["details"]["restore"]
        assert restore["status"] == "unknown", (category, restore)
        assert restore["missing_scopes"] == []
        assert "learnt only from the 403 error detail, which may not name every scope" in reasons(
            run, category, "restore"
        )
    assert all(c["backup"] in ("ok", "retired", "unknown") for c in run.section["categories"])
    assert run.category("pull-requests")["backup"] == "ok"  # the live read proves the backup


def test_a_write_scope_a_partial_granted_list_names_is_held(start, run_pipe):
    shown = [*ALL_READ, "write:pullrequest:bitbucket"]
    cred = api_token(ALL_READ + ALL_WRITE, granted_shown=shown)
    run = run_pipe(start([cred], granted_in_403="partial", scope_headers=False), cred, CHECK_RESTORE="true")
    assert run.category("pull-requests")["restore"] == "ok", reasons(run, "pull-requests", "restore")
    assert run.category("projects")["restore"] == "unknown"


def test_a_403_without_a_granted_list_leaves_the_scopes_unrevealed(start, run_pipe):
    cred = api_token(ALL_READ + ALL_WRITE)
    run = run_pipe(start([cred], granted_in_403="missing", scope_headers=False), cred, CHECK_RESTORE="true")
    report = valid(run)
    assert report["credential"]["scopes"] is None and report["credential"]["scopes_source"] == []
    assert run.code == 3, run.output
    assert run.category("pull-requests")["backup"] == "ok"  # proven by the live read
    assert "Bitbucket did not reveal the credential's scopes" in reasons(run, "pull-requests", "restore")


# --- webhooks readable without admin ----------------------------------------------------------------


@pytest.mark.parametrize("need_admin", [True, False])
def test_webhooks_need_admin_only_where_the_live_read_says_so(start, run_pipe, need_admin):
    cred = api_token(permissions={"repo-0001": "read", "repo-0002": "write"})
    sim = start([cred], webhooks_need_admin=need_admin)
    run = run_pipe(sim, cred)
    valid(run)
    assert run.code == 1, run.output  # pipelines and repository admin still need admin on two repositories
    assert run.section["admin_gap"]["repositories"] == 2
    hooks = [r for r in sim.requests if r.path.endswith("/hooks")]
    assert {r.path.split("/")[4] for r in hooks} >= {"repo-0001"} | {hooks[0].path.split("/")[4]}
    if need_admin:
        assert run.category("webhooks")["backup"] == "missing"
        assert "Webhooks" in run.section["admin_gap"]["loses"]
    else:
        assert run.category("webhooks")["backup"] == "ok", reasons(run, "webhooks")
        assert "Webhooks" not in run.section["admin_gap"]["loses"]
        assert "webhooks" not in " ".join(texts(run, "admin-gap"))
    assert "Pipelines" in run.section["admin_gap"]["loses"]


# --- fields= ignored ----------------------------------------------------------------------------------


def test_the_verdict_is_the_same_when_the_server_ignores_fields(start, run_pipe):
    seen = {}
    for honoured in (True, False):
        cred = api_token([s for s in ALL_READ if s != "read:pullrequest:bitbucket"], permissions={"repo-0003": "read"})
        run = run_pipe(start([cred], fields=honoured), cred)
        valid(run)
        seen[honoured] = (
            run.code,
            {
                c["id"]: (c["backup"], c["missing_scopes"], c["affected_repositories"])
                for c in run.section["categories"]
            },
            run.section["admin_gap"],
            run.section["repositories"]["by_permission"],
        )
    assert seen[True] == seen[False]
    assert seen[True][0] == 1 and seen[True][2]["examples"] == ["acme/repo-0003"]


# --- 7. Packages, and scope names the pipe does not know ------------------------------------------


@pytest.mark.parametrize(
    ("held", "status"),
    [(True, "ok"), (False, "missing")],
)
def test_packages_are_judged_from_the_granted_scopes(start, run_pipe, held, status):
    scopes_ = ALL_READ + (["read:package:bitbucket"] if held else [])
    cred = api_token(scopes_, scope_headers=True)
    run = run_pipe(start([cred]), cred)
    packages = run.category("packages")
    assert (packages["backup"], packages["needed"]) == (status, "info"), packages
    assert run.code == 0, run.output  # information: never the verdict of a built-in profile
    if not held:
        assert packages["missing_scopes"] == ["read:package:bitbucket"]
        assert "Not required by the profile, but missing: read:package:bitbucket." in run.output


def test_packages_are_unknown_without_a_whole_list_of_scopes(start, run_pipe):
    cred = api_token(ALL_READ)  # no headers: only the 403's granted list, which may be partial
    run = run_pipe(start([cred]), cred, REQUIRE="packages")
    assert run.code == 3, run.output
    assert run.category("packages")["backup"] == "unknown"
    assert "read:package:bitbucket: not proven" in reasons(run, "packages")


def test_packages_required_and_missing_fail_the_step(start, run_pipe):
    cred = api_token(ALL_READ, scope_headers=True)
    run = run_pipe(start([cred]), cred, REQUIRE="packages", CHECK_RESTORE="true")
    assert run.code == 1 and "read:package:bitbucket" in run.scopes_to_add
    assert run.category("packages")["details"]["restore"]["missing_scopes"] == ["write:package:bitbucket"]


def test_packages_are_unknown_for_an_access_token(start, run_pipe):
    cred = access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"])
    run = run_pipe(start([cred]), cred)
    assert run.code == 0, run.output
    assert run.category("packages")["backup"] == "unknown"
    assert "no access token scope is documented for Bitbucket Packages" in reasons(run, "packages")


@pytest.mark.parametrize("profile", sorted(CATALOG.profiles))
def test_every_built_in_profile_shows_packages_as_information_with_the_note(start, run_pipe, profile):
    cred = api_token([*ALL_READ, "read:package:bitbucket"], scope_headers=True)
    run = run_pipe(start([cred]), cred, PROFILE=profile)
    packages = run.category("packages")
    assert packages["needed"] == "info" and packages["backup"] == "ok"
    note = "Note, Packages: the backup products' documents (Xopero ONE, GitProtect.io, GitSec) do not cover"
    assert note in run.output
    assert any(text.startswith(note) for text in packages["guidance"])


def test_unknown_scope_names_are_accepted_and_shown(start, run_pipe):
    new = ["read:package:bitbucket", "write:test:bitbucket", "read:wiki:bitbucket", "manage:org"]
    cred = api_token(ALL_READ + new, scope_headers=True)
    run = run_pipe(start([cred]), cred)
    assert run.code == 0, run.output
    assert set(new) <= set(valid(run)["credential"]["scopes"])
    for name in new:
        assert name in run.output


# --- 8. An API token without an email ------------------------------------------------------------------


def test_an_api_token_without_email_is_tried_as_bearer_and_says_so(start, run_pipe):
    cred = api_token()
    sim = start([cred], api_token_bearer=True)
    run = run_pipe(sim, cred, BITBUCKET_EMAIL=None)
    report = valid(run)
    assert run.code == 0, run.output
    assert report["credential"]["auth_scheme"] == "bearer"
    api = [r for r in sim.requests if r.path.startswith("/2.0")]
    assert api and {r.authorization_scheme for r in api} == {"Bearer"}
    assert "Credential: api token over Bearer (no BITBUCKET_EMAIL), Acme Backup" in run.output
    (note,) = texts(run, "api-token-bearer")
    assert "without BITBUCKET_EMAIL" in note and note in run.output
    assert run.section["git"]["outcome"] == "ok"  # git still takes the username, never the email


def test_an_api_token_refused_as_bearer_asks_for_the_email(start, run_pipe):
    cred = api_token()
    sim = start([cred])  # api_token_bearer=False: Bearer with an API token is refused (401)
    run = run_pipe(sim, cred, BITBUCKET_EMAIL=None)
    report = valid(run)
    assert run.code == 2, run.output
    assert report["verdict"] == "error"
    assert report["error"]["message"] == "Bitbucket rejected the API token sent as Bearer, without an email (401)."
    assert report["error"]["fix"].startswith("Set BITBUCKET_EMAIL to the Atlassian account email")
    assert report["credential"]["auth_scheme"] == "bearer"
    api = [r for r in sim.requests if r.path.startswith("/2.0")]
    assert api and {(r.authorization_scheme, r.status) for r in api} == {("Bearer", 401)}  # tried once, no Basic
    assert "BITBUCKET_EMAIL" in run.output


def test_an_api_token_with_its_email_is_basic(start, run_pipe):
    cred = api_token()
    sim = start([cred], api_token_bearer=True)
    run = run_pipe(sim, cred)
    assert run.code == 0 and run.report["credential"]["auth_scheme"] == "basic"
    assert {r.authorization_scheme for r in sim.requests if r.path.startswith("/2.0")} == {"Basic"}
    assert texts(run, "api-token-bearer") == [] and "over Bearer" not in run.output


def test_a_username_without_email_is_still_the_username_trap(start, run_pipe):
    cred = api_token()
    sim = start([cred], api_token_bearer=True)
    run = run_pipe(sim, cred, BITBUCKET_EMAIL=None, BITBUCKET_USERNAME="acme-backup")
    assert run.code == 2, run.output
    (problem,) = run.report["error"]["problems"]
    assert problem["variable"] == "BITBUCKET_EMAIL"
    assert problem["message"] == "is not set; an API token does not authenticate with a username."
    assert sim.requests == []


def test_no_secret_leaves_with_a_bearer_api_token(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, BITBUCKET_EMAIL=None)
    written = "".join(p.read_text(errors="replace") for p in run.cwd.rglob("*") if p.is_file())
    for text in (run.out, run.err, written):
        for secret in SECRETS:
            assert secret not in text and secret[8:16] not in text
    assert EMAIL not in json.dumps(run.report["credential"]) and API_TOKEN not in written


# --- 9. The vendors' words in today's scopes ---------------------------------------------------------


@pytest.mark.parametrize(("profile", "vendor"), [("xopero-one", "Xopero ONE"), ("gitprotect", "GitProtect.io")])
def test_the_vendors_lines_are_mapped_to_api_token_scopes(start, run_pipe, profile, vendor):
    cred = api_token()
    run = run_pipe(start([cred]), cred, PROFILE=profile)
    (heading,) = texts(run, "vendor-terms")
    assert heading.startswith(f'{vendor}\'s "Required permissions" page still names the permissions of app')
    lines = texts(run, "vendor-term")
    assert "Account read = read:user:bitbucket + read:workspace:bitbucket." in lines
    assert "Repositories read + admin = read:repository:bitbucket + admin:repository:bitbucket." in lines
    assert "Pull requests read = read:pullrequest:bitbucket." in lines
    assert "Issues read: retired by Bitbucket on 2026-08-20; nothing to tick." in lines
    (gone,) = texts(run, "app-password-gone")
    assert "no longer an option (app passwords were removed on 2026-07-28)" in gone
    for text in (heading, *lines, gone):
        assert text in run.output


def test_the_vendors_lines_in_an_access_tokens_scopes(start, run_pipe):
    cred = access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"])
    run = run_pipe(start([cred]), cred, PROFILE="gitprotect")
    lines = texts(run, "vendor-term")
    assert "Account read: no access token scope exists for it; nothing to tick." in lines
    assert (
        "Repositories read + admin = repository (Repositories: Read) + repository:admin (Repositories: Admin)." in lines
    )


def test_other_profiles_show_no_vendor_lines(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, PROFILE="minimal")
    assert texts(run, "vendor-terms") == texts(run, "vendor-term") == texts(run, "app-password-gone") == []


# --- 10. Token lifetime ---------------------------------------------------------------------------------


def test_an_api_token_is_told_once_that_it_expires_unseen(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    (note,) = guidance(run, "token-lifetime")
    assert note["layout"] == "note"
    assert "expire at most a year after" in note["text"] and "no endpoint tells when" in note["text"]
    assert "on a schedule" in note["text"]
    assert run.output.count("expire at most a year after") == 1


def test_an_access_token_gets_no_api_token_lifetime_note(start, run_pipe):
    cred = access_token(["repository", "repository:admin", "pullrequest", "pipeline", "project"])
    run = run_pipe(start([cred]), cred)
    assert guidance(run, "token-lifetime") == guidance(run, "oauth-refresh") == []


# --- /user/workspaces in the workspace_access shape ------------------------------------------------


def test_workspaces_of_star_are_read_in_the_workspace_access_shape(start, run_pipe):
    # The simulator answers as the OpenAPI document says: {type: workspace_access, administrator, workspace}.
    cred = api_token(permissions={"repo-0001": "read"})
    sim = start([cred])
    run = run_pipe(sim, cred, WORKSPACE="*")
    assert [ws["workspace"] for ws in run.report["workspaces"]] == ["acme"]
    (listed,) = [r for r in sim.requests if r.path == "/2.0/user/workspaces"]
    assert listed.status == 200
    assert run.code == 1 and run.section["admin_gap"]["examples"] == ["acme/repo-0001"]


def test_the_removed_endpoints_shape_of_user_workspaces_grants_no_role(start, run_pipe):
    """go-scm's fixture of /user/workspaces has the shape of the removed /user/permissions/workspaces
    (`permission: owner`): a server answering so must not make the user a workspace administrator.
    Only the slug is read; admin still comes from the permissions, so the gap is still reported."""
    fixture = json.loads((FIXTURES / "user_workspaces.json").read_text())
    fixture["values"] = [{**fixture["values"][0], "workspace": {**fixture["values"][0]["workspace"], "slug": "acme"}}]
    fixture.pop("next", None)
    cred = api_token(permissions={"repo-0001": "read"})
    sim = start([cred])
    tamper(sim, r"^/2\.0/user/workspaces$", raw(200, json.dumps(fixture).encode()))
    run = run_pipe(sim, cred, WORKSPACE="*")
    assert fixture["values"][0]["permission"] == "owner"
    assert [ws["workspace"] for ws in run.report["workspaces"]] == ["acme"]
    assert run.code == 1, run.output
    assert run.section["admin_gap"]["repositories"] == 1 and run.section["admin_gap"]["examples"] == ["acme/repo-0001"]
