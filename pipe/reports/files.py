"""The report files: JSON for automation, Markdown beside it, JUnit XML for the Tests tab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pipe.reports import console

JUNIT_PATH = Path("test-results/backup-readiness.xml")


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Backup readiness: {doc['verdict']}",
        "",
        f"- Workspace: `{doc['workspace']}`",
        f"- Profile: `{doc['profile']}`",
        f"- Exit code: {doc['exit_code']}",
        "",
    ]
    lines += [f"> {line}" if line else ">" for line in console.header(doc)[1:]]
    if doc.get("categories"):
        lines += ["", "| Category | Backup | Restore | Needed |", "|---|---|---|---|"]
        for cat in doc["categories"]:
            needed = "required" if cat["required"]["backup"] else ("retired" if cat["retired"] else "info")
            lines.append(f"| {cat['title']} | {cat['backup']} | {cat['restore']} | {needed} |")
    guidance = console.guidance(doc)
    if guidance:
        lines += ["", "## What to do", ""] + [f"    {line}" for line in guidance]
    generated = f"_Generated {doc['generated_at']} by backup-readiness {doc['pipe_version']}._"
    lines += ["", f"**{console.verdict_line(doc)}**", generated, ""]
    return "\n".join(lines)


def write_markdown(doc: dict[str, Any], json_path: Path) -> Path:
    path = json_path.with_suffix(".md") if json_path.suffix == ".json" else json_path.with_name("report.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(doc), encoding="utf-8")
    return path


def _case(suite: ET.Element, name: str, side: dict[str, Any], guidance: list[str]) -> tuple[int, int, int]:
    case = ET.SubElement(suite, "testcase", classname="backup-readiness", name=name, time="0")
    status, required = side["status"], side["required"]
    text = "\n".join(side["reasons"] + guidance)
    if status == "missing" and required:
        ET.SubElement(
            case, "failure", message=f"missing: {', '.join(side['missing_scopes']) or 'permission'}", type="missing"
        ).text = text
        return 1, 0, 0
    if status == "unknown" and required:
        ET.SubElement(case, "error", message="could not be checked", type="unknown").text = text
        return 0, 1, 0
    if status in ("retired", "not-applicable") or (status != "ok" and not required):
        reason = status if required else f"{status} (not required by the profile)"
        ET.SubElement(case, "skipped", message=reason).text = text
        return 0, 0, 1
    return 0, 0, 0


def junit(doc: dict[str, Any]) -> ET.ElementTree:
    suite = ET.Element("testsuite", name=f"backup-readiness ({doc['profile']})")
    counts = [0, 0, 0]
    cases = 0
    for cat in doc.get("categories", []):
        sides = [("backup", cat["details"]["backup"])]
        if doc.get("check_restore"):
            sides.append(("restore", cat["details"]["restore"]))
        for side_name, side in sides:
            result = _case(suite, f"{side_name}: {cat['title']} [{cat['id']}]", side, cat["guidance"])
            counts = [a + b for a, b in zip(counts, result, strict=True)]
            cases += 1
    if doc.get("error"):
        case = ET.SubElement(suite, "testcase", classname="backup-readiness", name="configuration", time="0")
        problems = "\n".join(f"{p['variable']}: {p['message']} Fix: {p['fix']}" for p in doc["error"]["problems"])
        ET.SubElement(case, "error", message=doc["error"]["message"], type=doc["verdict"]).text = (
            problems or doc["error"]["fix"]
        )
        counts[1] += 1
        cases += 1
    suite.set("tests", str(cases))
    suite.set("failures", str(counts[0]))
    suite.set("errors", str(counts[1]))
    suite.set("skipped", str(counts[2]))
    return ET.ElementTree(suite)


def write_junit(doc: dict[str, Any], path: Path = JUNIT_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit(doc)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
