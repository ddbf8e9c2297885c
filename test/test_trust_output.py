"""Issue 9, the output part: no server answer can forge a verdict, break a report file or
carry a piece of the secret out; the report files exist and parse on every path; they are
written only inside the working directory; the Code Insights upload honours TIMEOUT.

The simulator is made hostile with test/hostile.py: its answers are rewritten with control
characters, ANSI escapes, bidi controls, lone surrogates, HTML and pieces of the token."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from pipe import pipe as pipe_module
from pipe.reports import files
from test.conftest import ALL_READ, API_TOKEN, CLASSIC_READ, EMAIL, api_token, oauth
from test.hostile import rewrite, tamper
from test.simulator.server import Response

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "report.schema.json").read_text())
USER, WORKSPACE, REPOS, PULLS = (
    r"^/2\.0/user$",
    r"^/2\.0/workspaces/acme$",
    r"^/2\.0/repositories/acme$",
    r"/pullrequests$",
)
TOKEN_PATH = r"^/site/oauth2/access_token$"
PERMS = r"^/2\.0/user/workspaces/acme/permissions/repositories$"
NO_PULLS = [s for s in ALL_READ if s != "read:pullrequest:bitbucket"]
FORGED = "x\n\x1b[0mINFO: ✔ READY: the credential can back up everything the profile needs. (exit 0)"
# Anything that moves the cursor, recolours or reorders text in a terminal.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
VERDICT_LINE = re.compile(r"^(?:[A-Z]+: )?(?:\x1b\[[0-9;]*m)*[✔✖] (?:READY|NOT READY|INCONCLUSIVE|ERROR)\b")
NASTY = "a\x00b\x07c\x1b[31md\re\u202eevil\u2066f\u200eg\u061ch\ud800i\udfffj\uffffk\x7fl"
HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>|x|"
PIPELINES = {
    "BITBUCKET_BUILD_NUMBER": "7",
    "BITBUCKET_COMMIT": "b" * 40,
    "BITBUCKET_REPO_SLUG": "repo-0000",
    "BITBUCKET_WORKSPACE": "acme",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def percent(text: str) -> str:
    """Every byte as %XX: a form quote() never makes, but a server may echo."""
    return "".join(f"%{b:02X}" for b in text.encode())


def error(status: int, message: str):
    body = json.dumps({"type": "error", "error": {"message": message}}).encode()
    return lambda req, response: Response(status, body, "application/json")


def hostile_strings(sim, text: str, *, user: bool = True, pulls: bool = True) -> None:
    """`text` in the display name, the workspace's name, every repository's full name and an
    error message: each way server text reaches the reports."""
    if user:
        rewrite(sim, USER, lambda body, req: {**body, "display_name": text})
    rewrite(sim, WORKSPACE, lambda body, req: {**body, "name": text})
    rewrite(
        sim,
        REPOS,
        lambda body, req: {
            **body,
            # A full name longer than a workspace ID and a slug is a shape problem, not text to show.
            "values": [{**v, "full_name": f"acme/{v['slug']}{text[:150]}"} for v in body.get("values", [])],
        },
    )
    # The repositories without admin are named by the permission list (issue 12): its names too.
    rewrite(
        sim,
        PERMS,
        lambda body, req: {
            **body,
            "values": [
                {**v, "repository": {**v["repository"], "full_name": v["repository"]["full_name"] + text}}
                for v in body.get("values", [])
            ],
        },
    )
    if pulls:
        tamper(sim, PULLS, error(400, f"hostile-marker {text}"))


def everything(run) -> dict[str, str]:
    """Both streams and every file the run left, decoded strictly (invalid UTF-8 fails)."""
    places = {"stdout": run.out, "stderr": run.err}
    for path in run.cwd.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(run.cwd))] = path.read_bytes().decode("utf-8")
    return places


def assert_reports_valid(run) -> dict:
    """report.json is strict UTF-8 JSON that the schema accepts; the JUnit file parses."""
    raw = (run.cwd / "backup-readiness" / "report.json").read_bytes()
    report = json.loads(raw.decode("utf-8"))
    jsonschema.validate(report, SCHEMA)
    assert report["exit_code"] == run.code
    ET.parse(run.cwd / "test-results" / "backup-readiness.xml")
    assert (run.cwd / "backup-readiness" / "report.md").read_text(encoding="utf-8").startswith("# Backup readiness")
    return report


# --- 1. output integrity --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["display_name", "repository full_name", "error message"])
def test_a_lone_surrogate_in_any_server_string_leaves_valid_reports(start, run_pipe, where):
    cred = api_token()
    sim = start([cred])
    text = "name\ud800-\udfff-end"  # two lone surrogates (together they would be a pair)
    if where == "display_name":
        rewrite(sim, USER, lambda body, req: {**body, "display_name": text})
    elif where == "repository full_name":
        hostile_strings(sim, text, user=False, pulls=False)
    else:
        tamper(sim, PULLS, error(400, f"hostile-marker {text}"))
    run = run_pipe(sim, cred)
    assert "Traceback" not in run.output and "Internal error" not in run.output, run.output
    report = assert_reports_valid(run)
    text_of = json.dumps(report, ensure_ascii=False)
    if where == "display_name":
        assert run.code == 0 and report["credential"]["owner"] == "name\ufffd-\ufffd-end"
    if where == "error message":
        assert "hostile-marker name\ufffd-\ufffd-end" in text_of and report["verdict"] == "inconclusive"
    for place, content in everything(run).items():
        assert not re.search("[\ud800-\udfff]", content), place


def test_server_text_cannot_forge_a_verdict_line(start, run_pipe):
    cred = api_token(NO_PULLS)
    sim = start([cred])
    hostile_strings(sim, FORGED + NASTY, pulls=False)
    run = run_pipe(sim, cred)
    assert run.code == 1 and run.report["verdict"] == "not-ready"
    lines = (run.out + run.err).splitlines()
    verdicts = [line for line in lines if VERDICT_LINE.match(line)]
    assert verdicts == ["✖ NOT READY: the backup would silently miss data (see above). (exit 1)"], verdicts
    assert not CONTROLS.search(run.out + run.err), repr(CONTROLS.search(run.out + run.err))
    # Neutralised, not dropped: the reader sees what the server sent.
    assert "x\\n\\x1b[0mINFO: ✔ READY" in run.err and "\\u202eevil" in run.err


def test_server_text_cannot_forge_a_verdict_line_in_colour(start, run_pipe):
    cred = api_token(NO_PULLS)
    sim = start([cred])
    hostile_strings(sim, FORGED, pulls=False)
    run = run_pipe(sim, cred, NO_COLOR=None)
    verdicts = [line for line in (run.out + run.err).splitlines() if VERDICT_LINE.match(line)]
    assert len(verdicts) == 1 and "NOT READY" in verdicts[0], verdicts
    assert "\x1b[0mINFO" not in run.out + run.err


def test_an_internal_error_quoting_server_text_cannot_forge_a_line(start, run_pipe, monkeypatch):
    # The log filter is the last line of defence: a message that never went through the
    # document (here, an exception's) is neutralised too.
    def forged(*args, **kwargs):
        raise RuntimeError(FORGED + NASTY)

    monkeypatch.setattr(pipe_module, "assess", forged)
    cred = api_token()
    run = run_pipe(start([cred]), cred, DEBUG="true")
    verdicts = [line for line in (run.out + run.err).splitlines() if VERDICT_LINE.match(line)]
    assert verdicts == ["✖ INCONCLUSIVE: a required check could not run (see above). (exit 3)"], verdicts
    assert not CONTROLS.search(run.out + run.err) and "x\\n\\x1b[0mINFO: ✔ READY" in run.err
    assert_reports_valid(run)


def test_markdown_escapes_server_text(start, run_pipe):
    cred = api_token(permissions={"repo-0001": "read", "repo-0002": "write"})
    sim = start([cred])
    hostile_strings(sim, HTML + "\n# heading\n| a | b |", pulls=False)
    run = run_pipe(sim, cred)
    lines = (run.cwd / "backup-readiness" / "report.md").read_text(encoding="utf-8").splitlines()
    guidance = lines.index("## What to do")
    for number, line in enumerate(lines):
        if line.startswith("    "):  # the guidance: an indented code block, where HTML is literal
            assert number > guidance, line
            continue
        body = line[2:] if line.startswith("> ") else line
        assert "<" not in body and ">" not in body, line  # HTML only as &lt; &gt;
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5, line  # no cell added by server text
    owner = next(line for line in lines if line.startswith("> Credential:"))
    assert "&lt;script&gt;" in owner and "&lt;img src=x onerror=alert(2)&gt;" in owner, owner
    assert r"\|x\|" in owner and r"\\n\# heading" in owner, owner
    assert any("<img src=x" in line for line in lines[guidance:]), "the examples should show in the guidance"


def test_junit_stays_well_formed_with_any_character(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    tamper(sim, PULLS, error(400, "hostile-marker " + NASTY + "".join(chr(c) for c in range(32))))
    run = run_pipe(sim, cred)
    assert run.code == 3
    xml_text = (run.cwd / "test-results" / "backup-readiness.xml").read_text(encoding="utf-8")
    suite = ET.fromstring(xml_text)  # raises on a character XML 1.0 cannot hold
    texts = " ".join(e.text or "" for e in suite.iter("error"))
    assert "hostile-marker a\\x00b\\x07c\\x1b[31md\\re\\u202eevil" in texts, texts
    assert "\uffff" not in xml_text and "\ufffd" in texts
    assert_reports_valid(run)


def test_json_report_holds_what_the_server_sent_as_safe_text(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    rewrite(sim, USER, lambda body, req: {**body, "display_name": NASTY})
    run = run_pipe(sim, cred)
    report = assert_reports_valid(run)
    owner = report["credential"]["owner"]
    assert not CONTROLS.search(owner) and not re.search("[\ud800-\udfff]", owner)
    assert owner.startswith("a\\x00b\\x07c\\x1b[31md\\re\\u202eevil")


# --- 2. the files exist and parse on every path ---------------------------------------------------


def boom(*args, **kwargs):
    raise RuntimeError(f"a bug, with the token's head {API_TOKEN[:20]} in its message")


@pytest.mark.parametrize("debug", ["false", "true"])
def test_an_internal_error_in_the_assessment_still_leaves_valid_reports(start, run_pipe, monkeypatch, debug):
    # Fault injection: no server answer crashes the assessment once the shapes are checked,
    # so a bug is simulated at the seam; what is tested is the guard around it.
    monkeypatch.setattr(pipe_module, "assess", boom)
    cred = api_token()
    run = run_pipe(start([cred]), cred, DEBUG=debug)
    assert run.code == 3
    report = assert_reports_valid(run)
    assert report["verdict"] == "inconclusive" and "unexpectedly" in report["error"]["message"]
    assert "Internal error in the check (RuntimeError)" in run.output
    assert API_TOKEN[:8] not in run.output and API_TOKEN[:20].lower() not in run.output.lower()
    if debug == "true":
        # The traceback goes to the debug log, redacted, each line indented so none can pass
        # for one of the pipe's own.
        assert "Traceback (most recent call last)" in run.err and "    RuntimeError: a bug" in run.err
        assert not [line for line in run.err.splitlines() if line.startswith(("RuntimeError", "  File"))]
    else:
        assert "Traceback" not in run.output


@pytest.mark.parametrize("renderer", ["markdown", "junit", "header"])
def test_a_renderer_failure_still_leaves_valid_reports(start, run_pipe, monkeypatch, renderer):
    from pipe.reports import console

    target = {"markdown": (files, "markdown"), "junit": (files, "junit"), "header": (console, "header")}[renderer]
    monkeypatch.setattr(*target, boom)
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert run.code == 3, run.output
    report = assert_reports_valid(run)
    assert report["verdict"] == "inconclusive" and "renderer" in report["error"]["message"]
    assert "Traceback" not in run.output
    assert [line for line in run.out.splitlines() if VERDICT_LINE.match(line)] == [
        "✖ INCONCLUSIVE: a required check could not run (see above). (exit 3)"
    ]


def test_one_failed_write_never_skips_the_others(start, run_pipe, tmp_path):
    (tmp_path / "backup-readiness" / "report.md").mkdir(parents=True)  # the Markdown cannot be written
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert run.code == 0
    assert json.loads((tmp_path / "backup-readiness" / "report.json").read_text())["verdict"] == "ready"
    ET.parse(tmp_path / "test-results" / "backup-readiness.xml")
    assert "Could not write backup-readiness/report.md" in run.output
    assert not [p for p in tmp_path.rglob(".*.tmp")], "a temporary file was left behind"


# --- 3. fragments of the secret -------------------------------------------------------------------

MIDDLE = API_TOKEN[15:45]
ECHOES = {
    "head": API_TOKEN[:20],
    "tail": API_TOKEN[-20:],
    "lower middle": MIDDLE.lower(),
    "upper middle": MIDDLE.upper(),
    "base64 at 0 mod 3": b64(API_TOKEN[3:30]),
    "base64 at 1 mod 3": b64(API_TOKEN[4:31]),
    "base64 at 2 mod 3": b64(API_TOKEN[5:33]),
    "basic auth": b64(f"{EMAIL}:{API_TOKEN}"),
    "url-encoded": API_TOKEN[10:30].replace("F", "%46"),
    "every byte percent-encoded": percent(API_TOKEN[2:22]),
    "every byte percent-encoded, lower hex": percent(API_TOKEN[30:50]).lower(),
}
# One endpoint of the survey per echo: its error message carries the echo to the report.
ECHOED_AT = (
    r"/pullrequests$",
    r"/hooks$",
    r"/refs/branches$",
    r"/deploy-keys$",
    r"/branch-restrictions$",
    r"/downloads$",
    r"/pipelines_config/variables$",
    r"/pipelines_config$",
    r"/override-settings$",
    r"^/2\.0/snippets/acme$",
    r"^/2\.0/workspaces/acme/projects$",
)


def fragments_in(text: str) -> list[str]:
    """Any 8-character run of the token in any case, any 12-character run of the base64 of
    any of its slices (three alignments), and any echo above (base64 without its last,
    padded group, which also encodes what follows the slice)."""
    found = []
    lower = text.lower()
    found += [API_TOKEN[i : i + 8] for i in range(len(API_TOKEN) - 7) if API_TOKEN[i : i + 8].lower() in lower]
    for start in range(3):
        chunk = API_TOKEN[start:]
        encoded = base64.b64encode(chunk[: len(chunk) // 3 * 3].encode()).decode()
        found += [encoded[i : i + 12] for i in range(len(encoded) - 11) if encoded[i : i + 12] in text]
    found += [name for name, echo in ECHOES.items() if echo.rstrip("=")[:-4] in text]
    found += ["%46 form"] if ECHOES["url-encoded"].lower() in lower else []
    every = percent(API_TOKEN).lower()
    found += [every[i : i + 8] for i in range(len(every) - 7) if every[i : i + 8] in lower]
    return found


@pytest.mark.parametrize("debug", ["false", "true"])
def test_a_server_echoing_pieces_of_the_token_shows_none_of_them(start, run_pipe, monkeypatch, debug, caplog):
    cred = api_token()
    sim = start([cred])
    echo = " ".join(f"{name}={value}" for name, value in ECHOES.items())
    hostile_strings(sim, echo, pulls=False)
    # Messages are kept to 300 characters: each echo in an error message of its own, whole.
    for (name, value), where in zip(ECHOES.items(), ECHOED_AT, strict=True):
        tamper(sim, where, error(400, f"hostile-marker {name}={value}"))
    run = run_pipe(sim, cred, DEBUG=debug, **PIPELINES, CODE_INSIGHTS="true", CODE_INSIGHTS_PROXY=sim.base_url)
    assert run.code in (1, 3) and "hostile-marker" in run.output  # the echoes did reach the output
    places = everything(run) | {"Code Insights": json.dumps(sim.reports)}
    shown = "\n".join(places.values())
    assert all(f"hostile-marker {name}=" in shown for name in ECHOES), "an echo never reached the output"
    places["log records"] = "\n".join(r.getMessage() for r in caplog.records)
    for place, text in places.items():
        assert not fragments_in(text), (place, fragments_in(text))
    assert sim.reports, "no Code Insights report: the canary would test nothing there"


@pytest.mark.parametrize("at", range(-12, 12, 3))
def test_the_document_is_bounded_before_the_redaction_and_no_secret_survives_the_cut(at):
    """Whatever slipped past the checks at intake, finish() does bounded work (a million
    characters, a hundred thousand items) and a token straddling the cut leaves no run of it."""
    from pipe.redaction import Redactor
    from pipe.reports import document

    cut = document.TEXT_LIMIT
    text = "x" * (cut + at - 20) + API_TOKEN + "y" * 1_000_000
    doc = {"verdict": "ready", "findings": [text] * 50 + ["z"] * 200_000, "details": {"reasons": [text]}}
    began = time.monotonic()
    done = document.finish(doc, Redactor([API_TOKEN]))
    assert time.monotonic() - began < 5, "finish() grew with the input"
    shown = [done["findings"][0], done["details"]["reasons"][0]]
    assert all(len(t) <= cut and t.endswith("…") for t in shown), [len(t) for t in shown]
    assert len(done["findings"]) == document.ITEMS_LIMIT
    assert not fragments_in("\n".join(shown)), fragments_in("\n".join(shown))


def test_a_secret_learnt_after_a_text_was_scrubbed_masks_that_text_next_time():
    """scrub remembers its answers (a report repeats its words per repository); a secret added
    later (the OAuth access token, learnt mid-run) must not meet a remembered unmasked answer."""
    from pipe.redaction import Redactor

    token = "oauthAccessTokenQm7Zp2Xw9Lr4"  # not in an Atlassian token's form, masked only once known
    redactor = Redactor()
    text = f"echoed: {token}"
    assert redactor.scrub({"a": text})["a"] == text  # no secret known yet: nothing to mask
    redactor.add(token)
    assert redactor.scrub({"a": text})["a"] == "echoed: ********"


def test_a_traceback_in_debug_is_redacted(start, run_pipe, monkeypatch):
    def leaky(*args, **kwargs):
        raise ValueError(" ".join(ECHOES.values()))

    monkeypatch.setattr(pipe_module, "assess", leaky)
    cred = api_token()
    run = run_pipe(start([cred]), cred, DEBUG="true")
    assert "Traceback (most recent call last)" in run.err and "ValueError" in run.err
    for place, text in everything(run).items():
        assert not fragments_in(text), (place, fragments_in(text))


def test_an_oauth_token_that_is_a_report_word_does_not_change_the_report(start, run_pipe):
    cred = oauth()
    sim = start([cred])

    def issue_ready(body, req):
        sim.world.oauth_tokens["ready"] = sim.world.oauth_tokens[body["access_token"]]  # the API accepts it
        return {**body, "access_token": "ready"}

    rewrite(sim, TOKEN_PATH, issue_ready, method="POST")
    run = run_pipe(sim, cred)
    assert any(r.authorization_scheme == "Bearer" and r.status == 200 for r in sim.requests), "token not used"
    assert run.code == 0, run.output
    report = assert_reports_valid(run)
    (section,) = report["workspaces"]
    # Packages have no classic scope: unknown for an OAuth consumer, information only.
    judged = [c for c in section["categories"] if c["id"] != "packages"]
    assert report["verdict"] == "ready" and all(c["backup"] in ("ok", "retired") for c in judged)
    assert run.out.strip().endswith("✔ READY: the credential can back up everything the profile needs. (exit 0)")
    assert "# Backup readiness: ready" in (run.cwd / "backup-readiness" / "report.md").read_text()


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _branches(node: dict[str, Any]) -> list[Any]:
    return [b for key in ("allOf", "anyOf", "oneOf") for b in node.get(key, [])] + [
        node[key] for key in ("then", "else") if key in node
    ]


def _enum_valued(node: Any) -> bool:
    node = _resolve(node)
    if not isinstance(node, dict):
        return False
    return "enum" in node or "const" in node or ("items" in node and _enum_valued(node["items"]))


def enum_keys(node: Any = SCHEMA) -> set[str]:
    """Every property of the schema whose value is an enum word, or a list of them."""
    found: set[str] = set()
    if isinstance(node, dict):
        found |= {key for key, sub in node.get("properties", {}).items() if _enum_valued(sub)}
        for sub in node.values():
            found |= enum_keys(sub)
    elif isinstance(node, list):
        for sub in node:
            found |= enum_keys(sub)
    return found


def enum_words(node: Any = SCHEMA) -> set[str]:
    if isinstance(node, dict):
        words = {w for w in node.get("enum", []) if isinstance(w, str)}
        words |= {node["const"]} if isinstance(node.get("const"), str) else set()
        return words.union(*(enum_words(v) for k, v in node.items() if k not in ("enum", "const")))
    if isinstance(node, list):
        return set().union(*(enum_words(v) for v in node))
    return set()


def enum_values(value: Any, node: Any = SCHEMA, path: str = "") -> dict[str, Any]:
    """{path: value} of every value of `value` the schema says is an enum word."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return {}
    found = {path: value} if "enum" in node or "const" in node else {}
    for branch in _branches(node):
        found |= enum_values(value, branch, path)
    if isinstance(value, dict):
        for key, sub in node.get("properties", {}).items():
            if key in value:
                found |= enum_values(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            found |= enum_values(item, node["items"], f"{path}[{index}]")
    return found


def test_every_enum_valued_field_of_the_schema_is_vocabulary():
    """VOCABULARY cannot drift from the schema: a new enum field is never redacted."""
    from pipe.reports.document import VOCABULARY

    assert enum_keys() <= VOCABULARY, sorted(enum_keys() - VOCABULARY)
    assert {"verdict", "status", "scopes_source", "needed"} <= enum_keys()  # the walk finds them


# Every word of every enum of the schema, as a token can hold it (no spaces): a hostile OAuth
# server can issue any of them as the access token, and the pipe must then mask that token.
TOKEN_WORDS = sorted({part for word in enum_words() for part in word.split()})
UNKNOWN_HOOKS = r"/hooks$"
_CONTROL: dict[str, Any] = {}


def _word_run(start, run_pipe, word: str | None):
    """Pull requests missing (no scope), webhooks unknown (a wrong shape), the rest ok or retired;
    with `word`, the OAuth server issues it as the access token."""
    cred = oauth([s for s in CLASSIC_READ if s != "pullrequest"])
    sim = start([cred])
    tamper(sim, UNKNOWN_HOOKS, lambda req, response: Response(200, b"[1]", "application/json"))
    if word is not None:

        def issue(body, req):
            sim.world.oauth_tokens[word] = sim.world.oauth_tokens[body["access_token"]]
            return {**body, "access_token": word}

        rewrite(sim, TOKEN_PATH, issue, method="POST")
    run = run_pipe(sim, cred)
    if word is not None:
        assert any(r.authorization_scheme == "Bearer" and r.status == 200 for r in sim.requests), "token not used"
    report = assert_reports_valid(run)
    junit = ET.parse(run.cwd / "test-results" / "backup-readiness.xml").getroot()
    # A case's name holds the category's title (free text, masked like any) and its id in brackets.
    marks = sorted(
        (case.get("name").split(":")[0], re.findall(r"\[([a-z-]+)\]", case.get("name")), child.tag)
        for case in junit.iter("testcase")
        for child in case
        if child.tag != "system-out"
    )
    return run, enum_values(report), marks


@pytest.mark.parametrize("word", TOKEN_WORDS)
def test_an_oauth_token_equal_to_any_enum_word_changes_no_enum_field(start, run_pipe, word):
    """A secret equal to a report word is masked in free text, never in a field of the report's
    vocabulary: same verdict, statuses, sources, layouts and JUnit failures as with any token."""
    if not _CONTROL:
        run, values, marks = _word_run(start, run_pipe, None)
        statuses = {v for k, v in values.items() if k.endswith((".backup", ".status"))}
        assert {"missing", "unknown", "ok"} <= statuses, statuses  # the scenario holds the words it tests
        _CONTROL.update(values=values, marks=marks, code=run.code)
    run, values, marks = _word_run(start, run_pipe, word)
    assert run.code == _CONTROL["code"], run.output
    changed = {k: (_CONTROL["values"].get(k), v) for k, v in values.items() if _CONTROL["values"].get(k) != v}
    assert values.keys() == _CONTROL["values"].keys() and not changed, changed
    assert marks == _CONTROL["marks"], "a JUnit failure or error changed"


# --- 4. output paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["../escaped.json", "out/../../escaped.json", "ABSOLUTE"])
def test_output_json_outside_the_working_directory_is_refused(start, run_pipe, tmp_path_factory, value):
    outside = tmp_path_factory.mktemp("outside")
    value = str(outside / "escaped.json") if value == "ABSOLUTE" else value
    cred = api_token()
    sim = start([cred])
    run = run_pipe(sim, cred, OUTPUT_JSON=value)
    assert run.code == 2 and "OUTPUT_JSON" in run.output and "inside the working directory" in run.output
    assert 'OUTPUT_JSON: "backup-readiness/report.json"' in run.output  # the fix
    assert value not in run.output  # never echoed: it may be a pasted secret
    assert not list(outside.iterdir()) and not (run.cwd.parent / "escaped.json").exists()
    assert not sim.requests, "a configuration error sends nothing"
    assert assert_reports_valid(run)["verdict"] == "error"  # the default report, inside


def test_an_absolute_output_json_inside_the_working_directory_is_accepted(start, run_pipe, tmp_path):
    cred = api_token()
    run = run_pipe(start([cred]), cred, OUTPUT_JSON=str(tmp_path / "out" / "r.json"))
    assert run.code == 0
    assert json.loads((tmp_path / "out" / "r.json").read_text())["verdict"] == "ready"
    assert (tmp_path / "out" / "r.md").exists()


@pytest.mark.parametrize("target", ["the working directory", "another directory"])
def test_an_absolute_output_json_through_a_link_to_the_working_directory(
    start, run_pipe, tmp_path, tmp_path_factory, target
):
    """The clone directory as the user wrote it (BITBUCKET_CLONE_DIR) may pass through a symbolic
    link, while the working directory is its real path: the path's ancestors are resolved before
    they are compared, never what lies below the working directory (the writer refuses links)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    link = tmp_path_factory.mktemp("via") / "clone"
    link.symlink_to(tmp_path if target == "the working directory" else elsewhere, target_is_directory=True)
    cred = api_token()
    run = run_pipe(start([cred]), cred, OUTPUT_JSON=str(link / "out" / "r.json"))
    if target == "another directory":
        assert run.code == 2 and "OUTPUT_JSON: must be a file path inside the working directory" in run.output
        assert not list(elsewhere.iterdir()), "a report was written outside the working directory"
        return
    assert run.code == 0, run.output
    assert json.loads((tmp_path / "out" / "r.json").read_text())["verdict"] == "ready"
    assert (tmp_path / "out" / "r.md").exists()


@pytest.mark.parametrize(
    "planted", ["backup-readiness/report.json", "backup-readiness/report.md", "test-results/backup-readiness.xml"]
)
def test_a_symlink_planted_at_a_report_file_is_not_written_through(
    start, run_pipe, tmp_path, tmp_path_factory, planted
):
    target = tmp_path_factory.mktemp("outside") / "precious"
    target.write_text("precious\n")
    link = tmp_path / planted
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert target.read_text() == "precious\n"
    assert not link.is_symlink() and link.is_file()  # the link was replaced by the report
    assert run.code == 0 and assert_reports_valid(run)["verdict"] == "ready"


@pytest.mark.parametrize("folder", ["backup-readiness", "test-results"])
def test_a_symlinked_report_folder_is_refused_and_the_other_files_written(
    start, run_pipe, tmp_path, tmp_path_factory, folder
):
    outside = tmp_path_factory.mktemp("outside")
    (tmp_path / folder).symlink_to(outside, target_is_directory=True)
    cred = api_token()
    run = run_pipe(start([cred]), cred)
    assert run.code == 0
    assert not list(outside.iterdir()), "a report was written through the link"
    assert f"{folder} is a symbolic link" in run.output
    if folder == "backup-readiness":
        ET.parse(tmp_path / "test-results" / "backup-readiness.xml")
    else:
        assert json.loads((tmp_path / "backup-readiness" / "report.json").read_text())["verdict"] == "ready"


def test_a_symlink_deeper_in_output_json_is_refused(start, run_pipe, tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "deep").symlink_to(outside, target_is_directory=True)
    cred = api_token()
    run = run_pipe(start([cred]), cred, OUTPUT_JSON="out/deep/r.json")
    assert not list(outside.iterdir()) and "out/deep is a symbolic link" in run.output
    ET.parse(tmp_path / "test-results" / "backup-readiness.xml")


def test_write_inside_refuses_a_link_above_the_file(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a").symlink_to(elsewhere)
    with pytest.raises(files.UnsafePath):
        files.write_inside(tmp_path / "root", "a/b/c.json", b"{}")
    assert not list(elsewhere.iterdir())


# --- 5. the Code Insights upload honours TIMEOUT --------------------------------------------------


class TricklingProxy:
    """Accepts, reads the request, then sends an answer one byte every half second, so that no
    read ever times out; it gives up after `limit` seconds (the pipe should long before)."""

    def __init__(self, limit: float = 40.0):
        self.limit = limit
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        began = time.monotonic()
        with conn:
            try:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    if self._stop.is_set() or time.monotonic() - began > self.limit:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(0.5)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()


def test_the_code_insights_upload_ends_within_timeout(start, run_pipe):
    proxy = TricklingProxy()
    try:
        cred = api_token()
        sim = start([cred])
        began = time.monotonic()
        run = run_pipe(sim, cred, TIMEOUT="5", CODE_INSIGHTS="true", CODE_INSIGHTS_PROXY=proxy.url, **PIPELINES)
        elapsed = time.monotonic() - began
    finally:
        proxy.stop()
    assert proxy.connections == 1, "the upload never reached the proxy: the test would prove nothing"
    assert elapsed < 5 + 3 + 4, f"the run took {elapsed:.1f} s with TIMEOUT 5"  # 40 s before the fix
    assert run.code == 0 and "Code Insights report not posted" in run.output
    assert_reports_valid(run)
