"""The step log: header, a category table, the guidance block, one verdict line.

It renders the document and decides nothing: the advice is the document's `guidance` items,
laid out by their `layout`. Lines stay within 80 columns including the logger's `LEVEL: `
prefix, and read the same without colour (NO_COLOR)."""

from __future__ import annotations

import logging
import re
import textwrap
from typing import Any

from pipe.redaction import neutralise

WIDTH = 71  # 80 columns with the longest prefix, "WARNING: "
LINK = re.compile(r"https?://\S{1,300}")
MARKS = {
    "ok": "✔ ok",
    "missing": "✖ missing",
    "retired": "- retired",
    "not-applicable": "- n/a",
    "unknown": "? unknown",
}
# How each layout of a guidance item is written (the first line's indent, and its prefix).
LAYOUTS = {"paragraph": ("", ""), "item": ("  ", "* "), "step": ("  ", "")}
NOTES = {"note": ("", "")}  # under a table
RUN_HEADING = "Every workspace:"  # over the advice about the credential, when the run checked several
HEADINGS = {"ready": "READY", "not-ready": "NOT READY", "inconclusive": "INCONCLUSIVE", "error": "ERROR"}
VERDICTS = {
    "ready": "READY: the credential can back up everything the profile needs.",
    "not-ready": "NOT READY: the backup would silently miss data (see above).",
    "inconclusive": "INCONCLUSIVE: a required check could not run (see above).",
    "error": "ERROR: the configuration or the credential is wrong (see above).",
}


def _wrap(text: str, indent: str = "  ") -> list[str]:
    # A link longer than a line is not cut (a cut link no longer opens): it overflows instead.
    # Any other word longer than a line is cut, so that a server's long text keeps the width.
    room = WIDTH - len(indent) - 2
    links = all(LINK.fullmatch(word) for word in text.split() if len(word) > room)
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=not links,
    ) or [indent]


def header(doc: dict[str, Any]) -> list[str]:
    """The run's lines: version and workspaces, profile, credential, scopes; with one workspace
    its repositories too (several workspaces each have their own heading, see `section`)."""
    cred = doc.get("credential") or {}
    kind = str(cred.get("kind") or "").replace("_", " ")
    # An API token over Bearer is not the documented Basic email:token: the header says so.
    bearer = cred.get("kind") == "api_token" and cred.get("auth_scheme") == "bearer"
    scheme = " over Bearer (no BITBUCKET_EMAIL)" if bearer else ""
    owner = f", {cred['owner']}" if cred.get("owner") else ""
    spaces = doc.get("workspaces") or []
    named = [str(ws["workspace"]) for ws in spaces]
    title = f"backup-readiness {doc['pipe_version']}"
    if len(named) == 1:
        title += f": workspace {named[0]}"
    elif named:
        title += f": {len(named)} workspaces"
    source = doc.get("profile_source") or ""
    lines = [title]
    if len(named) > 1:
        lines += _wrap("Workspaces: " + ", ".join(named), "")
    lines += _wrap(
        f"Profile: {doc['profile']} ("
        + ("backup and restore" if doc.get("check_restore") else "backup")
        + ")"
        + (f" from {source}" if source.startswith("PROFILE_FILE") else ""),
        "",
    )
    if cred:
        lines.append(f"Credential: {kind}" + (f" ({cred['type']})" if cred.get("type") else "") + scheme + owner)
    if cred.get("scopes") is not None:
        lines += _wrap(
            "Scopes: "
            + (", ".join(cred["scopes"]) or "none")
            + f" (from {', '.join(cred.get('scopes_source') or [])})",
            "",
        )
    elif any(ws.get("categories") for ws in spaces):
        lines.append("Scopes: not revealed by Bitbucket; judged from live reads")
    if len(spaces) == 1:
        lines += repositories(spaces[0])
    return lines


def repositories(ws: dict[str, Any]) -> list[str]:
    repos = ws.get("repositories")
    if not repos:
        return []
    perm = repos["by_permission"]
    lines = [
        f"Repositories: {repos['total']} ({perm['admin']} admin, {perm['write']} write, "
        f"{perm['read']} read" + (f", {perm['unknown']} unknown" if perm["unknown"] else "") + ")"
    ]
    if repos.get("permissions_source"):
        lines += _wrap(f"Permissions from: {repos['permissions_source']}", "")
    return lines


def table(ws: dict[str, Any], restore: bool) -> list[str]:
    """One workspace's category table, and the notes its guidance lays out under it."""
    lines = [
        f"{'Category':<26}{'Backup':<12}" + (f"{'Restore':<12}" if restore else "") + "Needed",
        "-" * (WIDTH if restore else 58),
    ]
    for cat in ws.get("categories", []):
        row = f"{cat['title'][:25]:<26}{MARKS[cat['backup']]:<12}"
        if restore:
            row += f"{MARKS[cat['restore']]:<12}"
        lines.append(row + needed(cat))
    return lines + _items(ws.get("guidance", []), NOTES)


def needed(cat: dict[str, Any]) -> str:
    """The Needed column, the same in the log and in Markdown."""
    return f"retired {cat['retired']}" if cat["needed"] == "retired" else cat["needed"]


def advice(ws: dict[str, Any]) -> list[str]:
    """One workspace's advice block: its guidance items, or why it could not be seen."""
    lines: list[str] = []
    if ws.get("error"):
        lines += _wrap(ws["error"]["message"], "")
        lines += _wrap("Fix: " + ws["error"]["fix"])
    return lines + _items(ws.get("guidance", []), LAYOUTS)


def run_advice(doc: dict[str, Any]) -> list[str]:
    """The advice about the credential and the profile (the same for every workspace), once:
    its notes first, as under a table, then its paragraphs."""
    items = doc.get("guidance") or []
    return _items(items, NOTES) + _items(items, LAYOUTS)


def _items(items: list[dict[str, Any]], layouts: dict[str, tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if item["layout"] in layouts:
            indent, prefix = layouts[item["layout"]]
            lines += _wrap(prefix + item["text"], indent)
    return lines


def errors(doc: dict[str, Any]) -> list[str]:
    """The run's error, if it ended early: each variable's problem and fix, or the one fix."""
    lines: list[str] = []
    if doc.get("error"):
        for problem in doc["error"]["problems"]:
            lines += _wrap(f"{problem['variable']}: {problem['message']}", "")
            lines += _wrap(f"Fix: {problem['fix']}")
        lines += _wrap(doc["error"]["message"], "")
        if not doc["error"]["problems"]:
            lines += _wrap("Fix: " + doc["error"]["fix"])
    return lines


def heading(ws: dict[str, Any]) -> str:
    """A workspace's first line when the run checked several."""
    return f"Workspace {ws['workspace']}: {HEADINGS[ws['verdict']]}"


def verdict_line(doc: dict[str, Any]) -> str:
    return VERDICTS[doc["verdict"]] + f" (exit {doc['exit_code']})"


def _level(verdict: str) -> int:
    return {"ready": logging.INFO, "not-ready": logging.WARNING}.get(verdict, logging.ERROR)


def section(ws: dict[str, Any], restore: bool, several: bool) -> list[tuple[int, str]]:
    """One workspace's lines with their levels: its heading and repositories when the run checked
    several, its table, its advice at the level of its own verdict."""
    top = ([heading(ws)] + repositories(ws) + [""]) if several else []
    top += table(ws, restore) + [""] if ws.get("categories") else []
    return [(logging.INFO, line) for line in top] + [(_level(ws["verdict"]), line) for line in advice(ws)]


def lines(doc: dict[str, Any]) -> list[tuple[int, str]]:
    """Every log line of the report with its level, rendered before anything is shown, so
    that a renderer's failure is known before the first line goes out."""
    spaces = doc.get("workspaces") or []
    shown = [(logging.INFO, line) for line in header(doc) + [""]]
    for index, ws in enumerate(spaces):
        if index and len(spaces) > 1:
            shown.append((logging.INFO, ""))
        shown += section(ws, bool(doc.get("check_restore")), len(spaces) > 1)
    once = run_advice(doc)
    if once:
        top = ["", RUN_HEADING] if len(spaces) > 1 else [""]
        shown += [(logging.INFO, line) for line in top + once]  # information only (guidance.py)
    shown += [(_level(doc["verdict"]), line) for line in errors(doc)]
    # The document is neutralised already; once more here costs nothing and keeps any doc safe.
    return [(level, neutralise(line)) for level, line in shown]


def emit_lines(shown: list[tuple[int, str]], doc: dict[str, Any], logger: logging.Logger, color: bool) -> None:
    """The lines go through the log handler's filter (redacted, one line each); the verdict is
    printed by itself, in the pipe's own words only, so it is the one line that says it."""
    for level, line in shown:
        logger.log(level, line)
    mark = "✔" if doc["verdict"] == "ready" else "✖"
    code = "32" if doc["verdict"] == "ready" else "31"
    text = f"{mark} {verdict_line(doc)}"
    print(f"\x1b[{code}m{text}\x1b[0m" if color else text, flush=True)


def emit(doc: dict[str, Any], logger: logging.Logger, color: bool) -> None:
    emit_lines(lines(doc), doc, logger, color)
