"""The report files: JSON for automation, Markdown beside it, JUnit XML for the Tests tab.

Renderers return text and decide nothing: the table, the advice (the document's `guidance`
items, as the step log writes them) and each JUnit case's guidance are the document's.
`write_inside` puts the text on disk. The document's strings are already
redacted and neutralised (document.finish); each format still escapes what is special to
it: Markdown its markup and HTML, XML the characters XML 1.0 cannot hold."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree as ET

from pipe.reports import console

JUNIT_PATH = "test-results/backup-readiness.xml"
# XML 1.0 allows only #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Markdown's inline markup, table cells' `|`, and what could open HTML or an entity.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|~#!])")
HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class UnsafePath(OSError):
    """A report path that would be written through a symbolic link."""


def json_text(doc: dict[str, Any]) -> str:
    # allow_nan=False: NaN is not JSON; document.finish has already turned it into null.
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def markdown_path(json_path: str) -> str:
    path = PurePosixPath(json_path)
    return str(path.with_suffix(".md") if path.suffix == ".json" else path.with_name("report.md"))


def md(text: Any) -> str:
    """Text for a Markdown paragraph or table cell: markup escaped, HTML made inert."""
    escaped = MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return "".join(HTML_SPECIAL.get(c, c) for c in escaped)


def _markdown_section(ws: dict[str, Any], restore: bool, several: bool) -> list[str]:
    lines = (
        (["", f"## {md(console.heading(ws))}", ""] + [f"> {md(line)}" for line in console.repositories(ws)])
        if several
        else []
    )
    if ws.get("categories"):
        lines += ["", "| Category | Backup | Restore | Needed |", "|---|---|---|---|"]
        for cat in ws["categories"]:
            cells = (cat["title"], cat["backup"], cat["restore"], console.needed(cat))
            lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    advice = console.advice(ws)
    if advice:
        # An indented code block: Markdown and HTML are not interpreted there, and the lines
        # hold no line break (document.finish), so none can leave the block.
        lines += ["", "### What to do" if several else "## What to do", ""] + [f"    {line}" for line in advice]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    spaces = doc.get("workspaces") or []
    named = ", ".join(str(ws["workspace"]) for ws in spaces)
    lines = [f"# Backup readiness: {md(doc['verdict'])}", ""]
    if named:
        lines.append(f"- Workspace{'s' if len(spaces) > 1 else ''}: {md(named)}")
    lines += [f"- Profile: {md(doc['profile'])}", f"- Exit code: {md(doc['exit_code'])}", ""]
    lines += [f"> {md(line)}" if line else ">" for line in console.header(doc)[1:]]
    for ws in spaces:
        lines += _markdown_section(ws, bool(doc.get("check_restore")), len(spaces) > 1)
    once = console.run_advice(doc)
    if once:
        title = console.RUN_HEADING.rstrip(":") if len(spaces) > 1 else "Notes"
        lines += ["", f"## {md(title)}", ""] + [f"    {line}" for line in once]
    errors = console.errors(doc)
    if errors:
        lines += ["", "## What to do", ""] + [f"    {line}" for line in errors]
    generated = f"_Generated {md(doc['generated_at'])} by backup-readiness {md(doc['pipe_version'])}._"
    lines += ["", f"**{md(console.verdict_line(doc))}**", generated, ""]
    return "\n".join(lines)


def xml(text: Any) -> str:
    """Only characters XML 1.0 can hold: the file must stay well-formed for the Tests tab."""
    return NOT_XML.sub("\ufffd", str(text))


def _case(suite: ET.Element, name: str, side: dict[str, Any], guidance: list[str]) -> tuple[int, int, int]:
    case = ET.SubElement(suite, "testcase", classname="backup-readiness", name=xml(name), time="0")
    status, required = side["status"], side["required"]
    text = xml("\n".join(str(line) for line in side["reasons"] + guidance))
    if status == "missing" and required:
        missing = ", ".join(str(s) for s in side["missing_scopes"]) or "permission"
        ET.SubElement(case, "failure", message=xml(f"missing: {missing}"), type="missing").text = text
        return 1, 0, 0
    if status == "unknown" and required:
        ET.SubElement(case, "error", message="could not be checked", type="unknown").text = text
        return 0, 1, 0
    if status in ("retired", "not-applicable") or (status != "ok" and not required):
        reason = status if required else f"{status} (not required by the profile)"
        ET.SubElement(case, "skipped", message=xml(reason)).text = text
        return 0, 0, 1
    return 0, 0, 0


def _counted(suite: ET.Element, counts: list[int], cases: int) -> list[int]:
    suite.set("tests", str(cases))
    suite.set("failures", str(counts[0]))
    suite.set("errors", str(counts[1]))
    suite.set("skipped", str(counts[2]))
    return [cases, *counts]


def _suite(root: ET.Element, doc: dict[str, Any], ws: dict[str, Any]) -> list[int]:
    """One workspace's test suite: a case per category side, or one failing case when the
    credential cannot see the workspace."""
    suite = ET.SubElement(root, "testsuite", name=xml(f"backup-readiness {ws['workspace']} ({doc['profile']})"))
    counts, cases = [0, 0, 0], 0
    if ws.get("error"):
        case = ET.SubElement(suite, "testcase", classname="backup-readiness", name="workspace", time="0")
        ET.SubElement(case, "failure", message=xml(ws["error"]["message"]), type="not-visible").text = xml(
            ws["error"]["fix"]
        )
        return _counted(suite, [1, 0, 0], 1)
    for cat in ws.get("categories", []):
        sides = [("backup", cat["details"]["backup"])]
        if doc.get("check_restore"):
            sides.append(("restore", cat["details"]["restore"]))
        for side_name, side in sides:
            result = _case(suite, f"{side_name}: {cat['title']} [{cat['id']}]", side, cat["guidance"])
            counts = [a + b for a, b in zip(counts, result, strict=True)]
            cases += 1
    return _counted(suite, counts, cases)


def junit(doc: dict[str, Any]) -> ET.ElementTree:
    """<testsuites>: one suite per workspace, or one suite holding the run's error."""
    root = ET.Element("testsuites", name="backup-readiness")
    totals = [0, 0, 0, 0]
    for ws in doc.get("workspaces") or []:
        totals = [a + b for a, b in zip(totals, _suite(root, doc, ws), strict=True)]
    if doc.get("error"):
        suite = ET.SubElement(root, "testsuite", name=xml(f"backup-readiness ({doc['profile']})"))
        case = ET.SubElement(suite, "testcase", classname="backup-readiness", name="configuration", time="0")
        problems = "\n".join(f"{p['variable']}: {p['message']} Fix: {p['fix']}" for p in doc["error"]["problems"])
        ET.SubElement(case, "error", message=xml(doc["error"]["message"]), type=xml(doc["verdict"])).text = xml(
            problems or doc["error"]["fix"]
        )
        totals = [a + b for a, b in zip(totals, _counted(suite, [0, 1, 0], 1), strict=True)]
    for name, value in zip(("tests", "failures", "errors", "skipped"), totals, strict=True):
        root.set(name, str(value))
    return ET.ElementTree(root)


def junit_bytes(doc: dict[str, Any]) -> bytes:
    tree = junit(doc)
    ET.indent(tree)
    return ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n"


def _open_folder(parent: int, name: str, shown: str) -> int:
    """The folder `name` inside the open folder `parent`, created if missing, never a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o777, dir_fd=parent)
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
            os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        ):
            raise UnsafePath(
                errno.ELOOP, f"{shown} is a symbolic link, and reports are never written through one"
            ) from None
        raise


def write_inside(root: Path, relative: str, data: bytes) -> None:
    """Write `data` to `relative` under `root` without following any symbolic link.

    Every folder is opened relative to the one before with O_NOFOLLOW, so a link planted by
    an earlier step (at the folder or above it) is refused rather than written through; the
    file goes to a fresh temporary name (O_EXCL | O_NOFOLLOW) and is renamed into place, so
    a link planted at the file itself is replaced, never followed, and a reader never sees
    half a report."""
    parts = PurePosixPath(relative).parts
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(parts[:-1]):
            inner = _open_folder(folder, name, "/".join(parts[: depth + 1]))
            os.close(folder)
            folder = inner
        temporary = f".{parts[-1]}.{secrets.token_hex(6)}.tmp"
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
        try:
            with os.fdopen(out, "wb") as stream:
                stream.write(data)
            os.replace(temporary, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
    finally:
        os.close(folder)
