"""Guidance as data (pipe/guidance.yml): chosen once by the assessment, the same in every format.

The access-token case that once differed (report.json and JUnit told an access token to get repository
permissions while the log named the repository:admin scope) is checked in each format: the log,
report.json, report.md, the JUnit file and the Code Insights payload, for an access token and, as the
control that makes each check able to fail, for an API token whose account lacks admin permission.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml

from pipe import guidance
from pipe.credential import Kind
from pipe.guidance import GuidanceError, Layout, Severity
from test.conftest import ALL_READ, access_token, api_token
from test.simulator import Credential

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load(guidance.GUIDANCE_FILE.read_text(encoding="utf-8"))
ACCESS_FIX = (
    "An access token is admin only with the Repositories: Admin scope (repository:admin); create the token with it."
)
USER_FIX = "Give the account admin on them (Repository settings > Repository permissions) or use a workspace admin's credential."
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FORMATS = ("console", "report.json", "report.md", "junit", "code-insights")


def pipelines(sim) -> dict[str, str]:
    return {
        "CODE_INSIGHTS": "true",
        "CODE_INSIGHTS_PROXY": sim.base_url,
        "BITBUCKET_COMMIT": COMMIT,
        "BITBUCKET_REPO_SLUG": "infra",
        "BITBUCKET_WORKSPACE": "acme",
    }


def one_line(text: str) -> str:
    """Wrapped lines (the log's, Markdown's code block) joined back into sentences."""
    return re.sub(r"\s*\n(?:[A-Z]+: )?\s*", " ", text)


def rendered(fmt: str, run, sim) -> str:
    """What one format says about the Webhooks category's admin gap, as one line of text."""
    if fmt == "console":
        return run.output
    if fmt == "report.json":
        return " ".join(run.category("webhooks")["guidance"])
    if fmt == "report.md":
        text = (run.cwd / "backup-readiness" / "report.md").read_text()
        return one_line(text.split("## What to do\n", 1)[1])
    if fmt == "junit":
        (suite,) = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
        case = suite.find("testcase[@name='backup: Webhooks [webhooks]']")
        (outcome,) = list(case)  # missing but not required: skipped, with the reasons and guidance
        return outcome.text
    (payload,) = sim.reports.values()
    return payload["details"]


# An access token with `webhook` but without repository:admin; an API token (every scope) whose account is
# not admin on two repositories. Both lack admin on some repositories; each gets its own kind's fix.
CASES = {
    "access-token": (lambda: access_token(["repository", "webhook", "pullrequest", "project", "pipeline"]), ACCESS_FIX),
    "api-token": (lambda: api_token(ALL_READ, permissions={"repo-0001": "read", "repo-0002": "write"}), USER_FIX),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_the_admin_fix_is_the_credential_kinds_in_every_format(start, run_pipe, case, fmt):
    make, fix = CASES[case]
    cred: Credential = make()
    sim = start([cred])
    run = run_pipe(sim, cred, **pipelines(sim))
    assert run.code == 1, run.output
    text = rendered(fmt, run, sim)
    assert fix in text, (fmt, text)
    wrong = USER_FIX if fix == ACCESS_FIX else ACCESS_FIX
    assert wrong not in text and "Repository permissions" not in text.replace(fix, ""), (fmt, text)


def test_report_json_names_the_fix_once_with_its_kind(start, run_pipe):
    cred = access_token(["repository", "webhook", "pullrequest", "project", "pipeline"])
    run = run_pipe(start([cred]), cred)
    fixes = [i for i in run.section["guidance"] if i["id"] == "admin-fix"]
    assert [(i["variant"], i["text"]) for i in fixes] == [("access_token", ACCESS_FIX)]
    assert "webhooks" in fixes[0]["categories"]
    assert run.category("webhooks")["guidance"][1] == ACCESS_FIX


def test_a_missing_admin_scope_is_not_reported_as_missing_admin_permission(start, run_pipe):
    # The account is admin everywhere; only the token's admin:repository scope is missing. The fix is the
    # scope, named with the others: telling the user to ask for repository permissions would be wrong.
    cred = api_token([s for s in ALL_READ if s != "admin:repository:bitbucket"])
    run = run_pipe(start([cred]), cred)
    assert run.code == 1, run.output
    assert run.scopes_to_add == ["admin:repository:bitbucket"]
    assert run.section["admin_gap"]["repositories"] == 0
    assert [i["id"] for i in run.section["guidance"] if i["id"].startswith("admin")] == []
    assert "No admin permission" not in run.output


def table_needed(lines: list[str], start: int, width: int) -> dict[str, str]:
    rows = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith("Note"):
            break
        rows[line[:26].strip()] = line[width:].strip()
    return rows


def test_the_needed_column_is_the_same_in_the_log_and_in_markdown(start, run_pipe):
    cred = api_token()
    run = run_pipe(start([cred]), cred, PROFILE="minimal")
    log = [line.removeprefix("INFO: ") for line in run.err.splitlines()]
    console = table_needed(log, log.index("-" * 58) + 1, 38)
    markdown = {}
    for line in (run.cwd / "backup-readiness" / "report.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("Category", "---"):
            markdown[cells[0].replace("\\", "")] = cells[3]
    assert console == markdown
    assert markdown["Issues"] == "retired 2026-08-20"  # not "required": the console's word, one truth
    assert markdown["Repositories: admin"] == "required" and markdown["Pull requests"] == "info"
    assert [c["needed"] for c in run.section["categories"] if c["id"] in ("issues", "account", "webhooks")] == [
        "required",
        "info",
        "retired",
    ]


# --- the file and its loader -------------------------------------------------------------------------


def test_the_shipped_guidance_has_every_credential_kinds_text():
    guide = guidance.load()
    for kind in Kind:
        assert kind.value in guide.where, kind
        assert kind.value in guide.entries["admin-fix"].variants, kind
        assert kind.value in guide.entries["git-failing"].variants, kind
    # Every x-credential-type the simulator (like Bitbucket) sends has its own settings page.
    levels = ("repository", "project", "workspace")
    types = {Credential("access_token", "x", [], level=level).credential_type() for level in levels}
    assert types <= set(guide.where), types - set(guide.where)


def test_every_entry_is_chosen_by_the_assessment_and_every_choice_exists():
    source = (ROOT / "pipe" / "assessment.py").read_text(encoding="utf-8")
    chosen = set(re.findall(r'\.item\(\s*"([a-z-]+)"', source))
    assert chosen == set(guidance.load().entries)


def test_where_an_access_token_ticks_follows_its_credential_type():
    guide = guidance.load()
    place = guide.where_to_tick("access_token", "project_access_token", "-", "BITBUCKET_ACCESS_TOKEN")
    assert place.startswith("Project settings > Security > Access tokens")
    # A type the file does not know (the server's word) falls back to the kind's own text.
    fallback = guide.where_to_tick("access_token", "<b>new_token</b>", "-", "BITBUCKET_ACCESS_TOKEN")
    assert fallback.startswith("Repository, project or workspace settings")
    assert "Edit 'key-1'" in guide.where_to_tick("oauth", None, "key-1", "BITBUCKET_OAUTH_CLIENT_SECRET")


def test_filling_checks_every_placeholder():
    guide = guidance.load()
    item = guide.item("admin-gap", ["webhooks"], count=2, examples="acme/a, acme/b", loses="webhooks")
    assert item.text == "No admin permission on 2 repositories (e.g. acme/a, acme/b): a backup loses their webhooks."
    assert (item.severity, item.layout) == (Severity.ERROR, Layout.PARAGRAPH)
    assert guide.item("admin-gap", blocking=False, count=1, examples="x", loses="y").severity is Severity.WARNING
    with pytest.raises(GuidanceError, match=r"missing \['loses'\]"):
        guide.item("admin-gap", count=2, examples="x")
    with pytest.raises(GuidanceError, match=r"extra \['colour'\]"):
        guide.item("admin-gap", count=2, examples="x", loses="y", colour="red")
    with pytest.raises(GuidanceError, match="no variant 'app_password'"):
        guide.item("admin-fix", variant="app_password")
    with pytest.raises(GuidanceError, match="no entry 'admin-gaps'"):
        guide.item("admin-gaps")


def broken(change) -> dict:
    raw = yaml.safe_load(guidance.GUIDANCE_FILE.read_text(encoding="utf-8"))
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["entries"]["budget"].update(severity="fatal"), r"entry 'budget': 'fatal' is not a valid Severity"),
        (lambda r: r["entries"]["budget"].update(layout="box"), r"entry 'budget': 'box' is not a valid Layout"),
        (lambda r: r["entries"]["note"].update(colour="red"), r"entry 'note': needs layout, severity and text"),
        (lambda r: r["entries"]["note"].update(about="everywhere"), r"entry 'note': 'everywhere' is not a valid About"),
        (
            lambda r: r["entries"]["token-lifetime"].update(severity="error"),
            r"entry 'token-lifetime': advice about the run is information",
        ),
        (lambda r: r["entries"]["note"].update(text="Note {0}"), r"placeholder \{0\} must be a plain name"),
        (lambda r: r["entries"]["note"].update(text="Note {title!r}"), r"placeholder \{title\} must be a plain name"),
        (lambda r: r["entries"]["note"].update(text="Note {title"), r"entry 'note': a brace without its pair"),
        (lambda r: r["entries"]["admin-fix"].update(text={}), r"entry 'admin-fix': no variants"),
        (lambda r: r["entries"]["admin-fix"]["text"].update(oauth=""), r"variant 'oauth': the text must be"),
        (lambda r: r["where"].update(oauth="Edit {consumer}"), r"where 'oauth': unknown placeholders \['consumer'\]"),
        (lambda r: r.pop("where"), r"needs exactly `entries` and `where`"),
    ],
)
def test_a_malformed_guidance_file_is_refused_naming_the_entry(change, message):
    with pytest.raises(GuidanceError, match=message):
        guidance.parse(broken(change))


def test_the_shipped_file_parses_as_loaded():
    assert guidance.parse(SHIPPED) == guidance.load()
