"""Issue 3: the verdicts a backup owner needs, end to end against the simulator."""

from __future__ import annotations

from test.conftest import ALL_READ, ALL_WRITE, access_token, api_token, oauth, workspace
from test.simulator import Repository, Workspace


def without(*scopes: str) -> list[str]:
    return [s for s in ALL_READ if s not in scopes]


def test_complete_api_token(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert run.code == 0, run.output
    report = run.section
    assert report["repositories"]["total"] == 6
    assert report["repositories"]["by_permission"]["admin"] == 6
    assert {c["id"]: c["backup"] for c in report["categories"]}["issues"] == "retired"
    # Packages are information only, judged from the granted scopes: the 403 that named them here may
    # not name every scope, so read:package:bitbucket (not held) is unknown, never missing on a guess.
    others = [c for c in report["categories"] if c["id"] != "packages"]
    assert all(c["backup"] in ("ok", "retired") for c in others), report["categories"]
    assert run.category("packages")["backup"] == "unknown" and run.category("packages")["needed"] == "info"
    assert report["git"]["outcome"] == "ok"


def test_without_pull_request_scope(start, run_pipe):
    cred = api_token(without("read:pullrequest:bitbucket"))
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    assert run.scopes_to_add == ["read:pullrequest:bitbucket"]
    pulls = run.category("pull-requests")
    assert pulls["backup"] == "missing" and pulls["affected_repositories"] == 6
    assert "read:pullrequest:bitbucket" in run.output and "id.atlassian.com" in run.output


def test_three_missing_scopes_are_named_at_once(start, run_pipe):
    missing = ("read:pullrequest:bitbucket", "read:pipeline:bitbucket", "read:project:bitbucket")
    cred = api_token(without(*missing))
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    assert run.scopes_to_add == sorted(missing)
    for scope in missing:
        assert scope in run.output
    assert {run.category(c)["backup"] for c in ("pull-requests", "pipelines", "projects")} == {"missing"}


def test_read_only_token_cannot_restore(start, run_pipe):
    cred = api_token(scope_headers=True)
    run = run_pipe(start([cred]), cred, CHECK_RESTORE="true")
    assert run.code == 1
    assert run.category("pull-requests")["backup"] == "ok"
    assert run.category("pull-requests")["restore"] == "missing"
    assert "write:pullrequest:bitbucket" in run.scopes_to_add
    assert run.category("pull-requests")["details"]["restore"]["missing_scopes"] == ["write:pullrequest:bitbucket"]
    # The advice, not the table's "Restore" header: which scope unblocks restoring what.
    assert "* write:pullrequest:bitbucket: unblocks Pull requests (restore), 6 repositories." in run.output


def test_read_write_token_can_restore(start, run_pipe):
    cred = api_token(ALL_READ + ALL_WRITE, scope_headers=True)
    run = run_pipe(start([cred]), cred, CHECK_RESTORE="true")
    assert run.code == 0, run.output


def test_restore_is_unknown_when_scopes_cannot_be_learnt(start, run_pipe):
    # Every read granted and no runner scope to provoke a revealing 403: nothing tells the write scopes.
    cred = api_token(ALL_READ + ["read:runner:bitbucket"], scope_headers=False)
    run = run_pipe(start([cred]), cred, CHECK_RESTORE="true")
    assert run.code == 3
    assert run.category("pull-requests")["restore"] == "unknown"


def test_repository_access_token_with_classic_scopes(start, run_pipe):
    cred = access_token(["repository", "pullrequest", "pipeline"], level="repository", target="repo-0001")
    sim = start([cred])
    run = run_pipe(sim, cred, PROFILE="git-only")
    assert run.code == 0, run.output
    assert run.section["repositories"]["total"] == 1
    assert run.report["credential"]["type"] == "repo_access_token"
    run = run_pipe(sim, cred)
    assert run.code == 1
    assert "repository:admin" in run.scopes_to_add
    assert "Repository settings > Security > Access tokens" in run.output
    assert "admin only with the Repositories: Admin scope" in run.output
    assert "Repository permissions" not in run.output


def test_oauth_consumer_missing_pipelines(start, run_pipe):
    cred = oauth(["account", "repository", "repository:admin", "project", "pullrequest"])
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    assert run.scopes_to_add == ["pipeline"]
    assert "pipeline (Pipelines: Read)" in run.output and "OAuth consumers" in run.output


def test_admin_on_some_repositories_only(start, run_pipe):
    cred = api_token(permissions={"repo-0001": "read", "repo-0002": "write"})
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    report = run.section
    assert report["repositories"]["by_permission"] == {"admin": 4, "write": 1, "read": 1, "unknown": 0}
    assert report["admin_gap"]["repositories"] == 2
    assert sorted(report["admin_gap"]["examples"]) == ["acme/repo-0001", "acme/repo-0002"]
    assert run.category("repository-admin")["backup"] == "missing"
    assert run.category("branch-restrictions")["affected_repositories"] == 2
    assert run.scopes_to_add == []
    assert "No admin permission on 2 repositories" in run.output


def test_empty_workspace_is_a_failure_with_an_explanation(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred], [Workspace("acme", repositories=[])]), cred)
    assert run.code == 1
    assert run.section["repositories"]["total"] == 0
    assert run.category("repositories")["backup"] == "missing"
    assert "sees no repositories" in run.output


def test_250_repositories_are_all_counted(start, run_pipe):
    cred = api_token(permissions={f"repo-{i:04d}": "read" for i in range(0, 250, 50)})
    sim = start([cred], [workspace(250, git=1)])
    run = run_pipe(sim, cred)
    report = run.section
    assert report["repositories"]["total"] == 250
    assert report["repositories"]["by_permission"]["read"] == 5
    assert report["admin_gap"]["repositories"] == 5
    # Counted, not listed (issue 12): the total and the admin count, one page each, and role=admin
    # and the list filtered by the slug of the first repository without admin (role=admin must not hold it).
    pages = [r for r in sim.requests if r.path == "/2.0/repositories/acme"]
    assert len(pages) == 4 and all("slug" in p.query for p in pages[2:])


def test_git_fails_while_rest_works(start, run_pipe):
    cred = api_token(git_enabled=False)
    run = run_pipe(start([cred]), cred)
    assert run.code == 1
    assert run.section["git"]["outcome"] == "forbidden"
    assert run.category("repositories")["backup"] == "missing"
    assert "Git over HTTPS failed while the REST API worked" in run.output


def test_git_username_trap(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, BITBUCKET_USERNAME="someone-else")
    assert run.code == 1
    assert run.section["git"]["outcome"] == "rejected"
    assert "someone-else" in run.output


def test_repositories_variable_narrows_the_check(start, run_pipe):
    cred = api_token(permissions={"repo-0003": "read"})
    run = run_pipe(start([cred]), cred, REPOSITORIES="repo-0000,acme/repo-0001")
    assert run.code == 0, run.output
    assert run.section["repositories"]["total"] == 2


def test_repositories_variable_names_invisible_repositories(start, run_pipe):
    cred = api_token(permissions={"repo-0003": "none"})
    run = run_pipe(start([cred]), cred, REPOSITORIES="repo-0000 repo-0003")
    assert run.code == 1
    assert run.section["repositories"]["not_visible"] == ["repo-0003"]


def test_profile_minimal_ignores_pull_requests(start, run_pipe):
    cred = api_token(without("read:pullrequest:bitbucket"))
    run = run_pipe(start([cred]), cred, PROFILE="minimal")
    assert run.code == 0, run.output
    assert run.category("pull-requests")["backup"] == "missing"
    assert run.category("pull-requests")["required"]["backup"] is False


def test_require_adds_categories(start, run_pipe):
    cred = api_token(without("read:webhook:bitbucket"))
    run = run_pipe(start([cred]), cred, PROFILE="minimal", REQUIRE="webhooks")
    assert run.code == 1 and run.scopes_to_add == ["read:webhook:bitbucket"]


def test_issues_and_wikis_never_fail_the_step(start, run_pipe):
    cred = api_token()
    repos = [Repository("old", has_issues=True, has_wiki=True, git=True)]
    run = run_pipe(start([cred], [Workspace("acme", repositories=repos)]), cred)
    assert run.code == 0, run.output
    assert run.category("issues")["backup"] == "retired"
    assert run.category("wikis")["backup"] == "retired"
