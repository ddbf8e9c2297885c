"""The step log: header, a category table, the guidance block, one verdict line.

Lines stay within 80 columns including the logger's `LEVEL: ` prefix, and read the same
without colour (NO_COLOR)."""

from __future__ import annotations

import logging
import textwrap
from typing import Any

from pipe.redaction import neutralise

WIDTH = 72
MARKS = {
    "ok": "✔ ok",
    "missing": "✖ missing",
    "retired": "- retired",
    "not-applicable": "- n/a",
    "unknown": "? unknown",
}
VERDICTS = {
    "ready": "READY: the credential can back up everything the profile needs.",
    "not-ready": "NOT READY: the backup would silently miss data (see above).",
    "inconclusive": "INCONCLUSIVE: a required check could not run (see above).",
    "error": "ERROR: the configuration or the credential is wrong (see above).",
}


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [indent]


def header(doc: dict[str, Any]) -> list[str]:
    cred = doc.get("credential") or {}
    kind = str(cred.get("kind") or "").replace("_", " ")
    owner = f", {cred['owner']}" if cred.get("owner") else ""
    lines = [
        f"backup-readiness {doc['pipe_version']}: workspace {doc['workspace']}",
        f"Profile: {doc['profile']} (" + ("backup and restore" if doc.get("check_restore") else "backup") + ")",
    ]
    if cred:
        lines.append(f"Credential: {kind}" + (f" ({cred['type']})" if cred.get("type") else "") + owner)
    if cred.get("scopes") is not None:
        lines += _wrap(
            "Scopes: "
            + (", ".join(cred["scopes"]) or "none")
            + f" (from {', '.join(cred.get('scopes_source') or [])})",
            "",
        )
    elif doc.get("categories"):
        lines.append("Scopes: not revealed by Bitbucket; judged from live reads")
    repos = doc.get("repositories")
    if repos:
        perm = repos["by_permission"]
        lines.append(
            f"Repositories: {repos['total']} ({perm['admin']} admin, {perm['write']} write, "
            f"{perm['read']} read" + (f", {perm['unknown']} unknown" if perm["unknown"] else "") + ")"
        )
    return lines


def table(doc: dict[str, Any]) -> list[str]:
    restore = doc.get("check_restore")
    lines = [
        f"{'Category':<26}{'Backup':<12}" + (f"{'Restore':<12}" if restore else "") + "Needed",
        "-" * (WIDTH if restore else 58),
    ]
    for cat in doc.get("categories", []):
        needed = "required" if cat["required"]["backup"] else "info"
        if cat["retired"]:
            needed = f"retired {cat['retired']}"
        row = f"{cat['title'][:25]:<26}{MARKS[cat['backup']]:<12}"
        if restore:
            row += f"{MARKS[cat['restore']]:<12}"
        lines.append(row + needed)
    notes = [
        f"Note, {c['title']}: {c['note']}."
        for c in doc.get("categories", [])
        if c["note"] and not c["retired"] and c["required"]["backup"]
    ]
    for note in notes:  # what no credential can fix, so nobody hunts for a missing scope
        lines += _wrap(note, "")
    return lines


def guidance(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    advice = [a for a in doc.get("missing_scopes", []) if a["required"]]
    if advice:
        lines.append(f"To fix: add {len(advice)} scope(s) to the credential")
        for a in advice:
            affected = f", {a['affected_repositories']} repositories" if a["affected_repositories"] else ""
            name = a["scope"] if a["label"] == a["scope"] else f"{a['scope']} ({a['label']})"
            lines += _wrap(f"* {name}: unblocks {', '.join(a['unblocks'])}{affected}.")
        lines += _wrap(f"Where: {advice[0]['where']}")
    gap = doc.get("admin_gap") or {}
    if gap.get("repositories"):
        lines += _wrap(
            f"No admin permission on {gap['repositories']} repositories (e.g. "
            f"{', '.join(gap['examples'])}): a backup loses their "
            f"{', '.join(t.lower() for t in gap['loses'])}.",
            "",
        )
        if (doc.get("credential") or {}).get("kind") == "access_token":
            lines += _wrap(
                "An access token is admin only with the Repositories: Admin scope "
                "(repository:admin); create the token with it."
            )
        else:
            lines += _wrap(
                "Give the account admin on them (Repository settings > Repository permissions) "
                "or use a workspace admin's credential."
            )
    for cat in doc.get("categories", []):
        for side in ("backup", "restore"):
            detail = cat["details"][side]
            if detail["required"] and detail["status"] == "unknown":
                lines += _wrap(f"{cat['title']} ({side}) unknown: {'; '.join(detail['reasons'])}", "")
    for finding in doc.get("findings", []):
        lines += _wrap(finding, "")
    optional = [a for a in doc.get("missing_scopes", []) if not a["required"]]
    if optional:
        lines += _wrap("Not required by the profile, but missing: " + ", ".join(a["label"] for a in optional) + ".", "")
    if doc.get("error"):
        for problem in doc["error"]["problems"]:
            lines += _wrap(f"{problem['variable']}: {problem['message']}", "")
            lines += _wrap(f"Fix: {problem['fix']}")
        lines += _wrap(doc["error"]["message"], "")
        if not doc["error"]["problems"]:
            lines += _wrap("Fix: " + doc["error"]["fix"])
    budget = doc.get("rate_limit")
    if budget:
        lines += _wrap(
            f"This check used {budget['requests_used']} API requests. A metadata backup of "
            f"this workspace needs about {budget['backup_requests_per_run']} per run, against "
            f"{budget['hourly_limit']} an hour.",
            "",
        )
        if not budget["fits_in_an_hour"]:
            lines += _wrap(
                "Warning: the backup cannot fit in one hour of Bitbucket's rate limit; "
                "spread it over several hours or use an access token with scaled limits.",
                "",
            )
    return lines


def verdict_line(doc: dict[str, Any]) -> str:
    return VERDICTS[doc["verdict"]] + f" (exit {doc['exit_code']})"


def lines(doc: dict[str, Any]) -> list[tuple[int, str]]:
    """Every log line of the report with its level, rendered before anything is shown, so
    that a renderer's failure is known before the first line goes out."""
    top = header(doc) + [""] + (table(doc) + [""] if doc.get("categories") else [])
    level = {"ready": logging.INFO, "not-ready": logging.WARNING}.get(doc["verdict"], logging.ERROR)
    # The document is neutralised already; once more here costs nothing and keeps any doc safe.
    return [(logging.INFO, neutralise(line)) for line in top] + [(level, neutralise(line)) for line in guidance(doc)]


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
