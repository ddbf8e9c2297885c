"""Issue 13, point 2: what to fix, one line each, on the commit's Reports panel.

With Code Insights on, the report carries annotations: one per missing scope, one per repository
without admin (and one per workspace the credential cannot see), HIGH for what a required category
needs and MEDIUM for information, posted through the Pipelines proxy in batches of 100, at most
1,000, the rest counted in the report's details. Each batch is checked at the simulator against
the OpenAPI document's request body of POST .../reports/{reportId}/annotations.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from test.conftest import ALL_READ, OPENAPI, api_token, shared_or_skip, workspace
from test.hostile import raw, tamper

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PIPELINES = {
    "CODE_INSIGHTS": "true",
    "BITBUCKET_BUILD_NUMBER": "42",
    "BITBUCKET_COMMIT": COMMIT,
    "BITBUCKET_REPO_SLUG": "infra",
    "BITBUCKET_WORKSPACE": "acme",
}
KEY = f"/2.0/repositories/acme/infra/commit/{COMMIT}"
# Pull requests are required by the default profile (xopero-one); webhooks are information.
LACKING = [
    s
    for s in [*ALL_READ, "read:package:bitbucket"]
    if s not in ("read:pullrequest:bitbucket", "read:webhook:bitbucket")
]
# 120 repositories without admin; repo-0000 (the one with git data) is admin, so git is proven.
READ_ONLY = {f"repo-{i:04d}": "read" for i in range(1, 121)}


@pytest.fixture(scope="module")
def batch_schema() -> dict:
    """The request body of POST .../annotations, as the OpenAPI document states it."""
    document = json.loads(shared_or_skip(OPENAPI).read_text())
    operation = document["paths"][
        "/repositories/{workspace}/{repo_slug}/commit/{commit}/reports/{reportId}/annotations"
    ]
    body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**body, "components": document["components"]}


def check_batch(batch: list, schema: dict) -> None:
    errors = [
        e
        for e in jsonschema.Draft202012Validator(schema).iter_errors(batch)
        # Every schema built on `object` requires `type`; Bitbucket's own examples send none.
        if not (e.validator == "required" and e.message == "'type' is a required property")
    ]
    assert not errors, [e.message for e in errors]


def posted(sim) -> list[list[dict]]:
    return sim.annotations.get(KEY, [])


def run_insights(start, run_pipe, cred, repositories: int, **variables):
    sim = start([cred], [workspace(repositories, git=1)])
    run = run_pipe(sim, cred, CODE_INSIGHTS_PROXY=sim.base_url, **{**PIPELINES, **variables})
    return sim, run


def test_one_annotation_per_scope_and_per_repository_without_admin_in_batches_of_100(start, run_pipe, batch_schema):
    cred = api_token(LACKING, permissions=READ_ONLY)
    sim, run = run_insights(start, run_pipe, cred, 130)
    assert run.code == 1, run.output
    batches = posted(sim)
    assert [len(b) for b in batches] == [100, 22]  # 2 scopes + 120 repositories
    for batch in batches:
        check_batch(batch, batch_schema)
    notes = [note for batch in batches for note in batch]
    assert len({n["external_id"] for n in notes}) == len(notes)  # unique, as Bitbucket requires
    assert all(len(n["summary"]) <= 450 for n in notes)
    by_id = {n["external_id"]: n for n in notes}
    pulls = by_id["backup-readiness-scope-read-pullrequest-bitbucket"]
    assert (pulls["severity"], pulls["annotation_type"]) == ("HIGH", "VULNERABILITY")
    assert pulls["summary"] == "Missing scope read:pullrequest:bitbucket: unblocks Pull requests, 130 repositories."
    assert pulls["details"].startswith("Where: id.atlassian.com > Security > API tokens")
    hooks = by_id["backup-readiness-scope-read-webhook-bitbucket"]
    assert (hooks["severity"], hooks["annotation_type"]) == ("MEDIUM", "CODE_SMELL")  # webhooks: information
    admin = [n for n in notes if n["external_id"].startswith("backup-readiness-admin-")]
    assert len(admin) == 120 and all(n["severity"] == "HIGH" for n in admin)
    first = by_id["backup-readiness-admin-acme-repo-0001"]
    assert first["summary"].startswith("No admin permission on acme/repo-0001 (read): a backup loses its pipelines")
    assert first["details"].startswith("Give the account admin on them")
    # Through the proxy like the report: no credential on any Code Insights call.
    insights = [r for r in sim.requests if "/commit/" in r.path]
    assert [r.method for r in insights] == ["PUT", "POST", "POST"]
    assert all(r.authorization_scheme is None for r in insights)
    assert "Code Insights report posted on commit 0123456789ab with 122 annotation(s)." in run.output
    (report,) = sim.reports.values()
    assert "not annotated" not in report["details"]


def test_at_most_1000_annotations_and_the_rest_counted_in_the_details(start, run_pipe, batch_schema):
    cred = api_token(LACKING, default_permission="read")
    sim, run = run_insights(start, run_pipe, cred, 1050)
    assert run.code == 1, run.output
    assert run.section["admin_gap"]["repositories"] == 1050
    batches = posted(sim)
    assert [len(b) for b in batches] == [100] * 10
    for batch in batches:
        check_batch(batch, batch_schema)
    (report,) = sim.reports.values()
    # 2 scopes and 1,050 repositories: 1,052 findings, 1,000 annotated.
    assert "52 more finding(s) are not annotated: Code Insights keeps 1,000 per report." in report["details"]
    assert len(report["details"]) <= 2000


def test_a_workspace_the_credential_cannot_see_is_annotated(start, run_pipe, batch_schema):
    cred = api_token([*ALL_READ, "read:package:bitbucket"])
    sim, run = run_insights(start, run_pipe, cred, 3, WORKSPACE="acme,ghost")
    assert run.code == 1, run.output
    (batch,) = posted(sim)
    check_batch(batch, batch_schema)
    (ghost,) = [n for n in batch if n["external_id"] == "backup-readiness-workspace-ghost"]
    assert ghost["severity"] == "HIGH"
    assert ghost["summary"] == "Workspace ghost: Workspace 'ghost' was not found, or this credential cannot see it."
    assert "Check WORKSPACE" in ghost["details"]


def test_a_ready_run_posts_no_annotation(start, run_pipe):
    cred = api_token([*ALL_READ, "read:package:bitbucket"])
    sim, run = run_insights(start, run_pipe, cred, 3)
    assert run.code == 0, run.output
    assert sim.reports and posted(sim) == []
    assert [r.method for r in sim.requests if "/commit/" in r.path] == ["PUT"]


def test_a_refused_batch_is_a_warning_and_the_verdict_stands(start, run_pipe):
    cred = api_token(LACKING, permissions=READ_ONLY)
    sim = start([cred], [workspace(130, git=1)])
    seen = []

    def second_refused(req, response):
        seen.append(req.path)
        refused = raw(500, b'{"type": "error", "error": {"message": "nope"}}')
        return refused(req, response) if len(seen) == 2 else None

    tamper(sim, r"/annotations$", second_refused, method="POST")
    run = run_pipe(sim, cred, CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES)
    assert run.code == 1, run.output
    assert "WARNING: Code Insights annotations not all posted: 100 of 122 posted, then HTTP 500." in run.err
    assert "Code Insights report posted on commit" in run.output  # the report itself is there
    assert run.report["verdict"] == "not-ready"


def test_annotations_only_with_code_insights(start, run_pipe):
    cred = api_token(LACKING)
    sim = start([cred])
    run = run_pipe(sim, cred, CODE_INSIGHTS_PROXY=sim.base_url, **{**PIPELINES, "CODE_INSIGHTS": "false"})
    assert run.code == 1
    assert sim.annotations == {} and sim.reports == {}


def test_many_workspaces_one_field_each_and_summaries_within_450_characters(start, run_pipe, batch_schema):
    """Twelve workspaces with long names, a scope missing in each: the one scope annotation names
    them all, cut to 450 characters; the data fields show the four worst workspaces, and the fifth
    counts the other eight by verdict (Bitbucket keeps ten fields)."""
    names = [f"acme-division-with-a-long-name-{i:02d}" for i in range(12)]
    admin_gap = {f"{names[0]}/repo-0001": "read"}
    cred = api_token(LACKING, permissions=admin_gap)
    sim = start([cred], [workspace(2, git=1, slug=name) for name in names])
    run = run_pipe(sim, cred, WORKSPACE="*", CODE_INSIGHTS_PROXY=sim.base_url, **PIPELINES)
    assert run.code == 1, run.output
    assert len(run.report["workspaces"]) == 12
    (batch,) = posted(sim)
    check_batch(batch, batch_schema)
    pulls = next(n for n in batch if n["external_id"] == "backup-readiness-scope-read-pullrequest-bitbucket")
    assert len(pulls["summary"]) <= 450 and pulls["summary"].endswith("…")
    assert pulls["summary"].startswith(
        f"Missing scope read:pullrequest:bitbucket: unblocks Pull requests, 24 repositories in {names[0]}"
    )
    (report,) = sim.reports.values()
    assert len(report["data"]) == 10
    fields = {d["title"]: d["value"] for d in report["data"]}
    workspace_fields = [t for t in fields if t.startswith("Workspace ")]
    assert len(workspace_fields) == 4
    assert fields[f"Workspace {names[0]}"] == "not-ready: 1 scope(s) missing, 1 without admin"
    assert fields["Other workspaces (8)"] == "8 not-ready"
    assert fields["Repositories covered"] == 24
