"""The Code Insights report on the commit, posted through the Pipelines auth proxy.

Inside Pipelines a proxy at host.docker.internal:29418 authenticates report calls on its own,
so no credential is sent, and the URL is plain http:// as the proxy expects. This is the
pipe's one write to Bitbucket; failing to post is a warning, never a failed step."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

REPORT_ID = "backup-readiness"
PUBLIC_API = "http://api.bitbucket.org/2.0"
DETAILS_LIMIT = 2000  # characters Bitbucket keeps of a report's details
ADVICE_LAYOUTS = ("paragraph", "item", "step")
MAX_FIELDS = 10  # data fields Bitbucket keeps of a report
WORKSPACE_FIELDS = 5  # of them, one per workspace (the last counts the rest when there are more)
RANK = {"ready": 0, "inconclusive": 1, "not-ready": 2}
# Annotations (OpenAPI report_annotation; POST .../annotations takes 1 to 100, a report keeps 1,000).
SUMMARY_LIMIT = 450
BATCH = 100
MAX_ANNOTATIONS = 1000
UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def _sentences(items: list[dict[str, Any]]) -> list[str]:
    """The items run into one paragraph: each ends as a sentence, a heading the log follows with
    bullets or steps with a colon."""
    texts = []
    for item, after in zip(items, [*items[1:], None][: len(items)], strict=True):
        text = item["text"]
        if not text.endswith((".", ":", "!", "?")):
            heading = item["layout"] == "paragraph" and after is not None and after["layout"] != "paragraph"
            text += ":" if heading else "."
        texts.append(text)
    return texts


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _one(ws: dict[str, Any]) -> list[dict[str, Any]]:
    """The data fields of a run that checked one workspace: its repositories, categories, git."""
    repos = ws.get("repositories") or {"total": 0, "by_permission": {"admin": 0}}
    total, admin = repos["total"], repos["by_permission"]["admin"]
    required = [c for c in ws.get("categories", []) if c["required"]["backup"] and not c["retired"]]
    return [
        {"title": "Repositories covered", "type": "NUMBER", "value": total},
        {"title": "Admin coverage", "type": "PERCENTAGE", "value": round(100 * admin / total, 1) if total else 0},
        {
            "title": "Required categories ready",
            "type": "TEXT",
            "value": f"{sum(c['backup'] == 'ok' for c in required)}/{len(required)}",
        },
        {"title": "Missing scopes", "type": "TEXT", "value": ", ".join(_missing(ws)) or "none"},
        {"title": "Git over HTTPS", "type": "BOOLEAN", "value": (ws.get("git") or {}).get("outcome") == "ok"},
    ]


def _missing(ws: dict[str, Any]) -> list[str]:
    return [a["scope"] for a in ws.get("missing_scopes", []) if a["required"]]


def _state(ws: dict[str, Any]) -> str:
    """One workspace in a few words, for its data field: 'not-ready: 1 scope missing, 3 without admin'."""
    if ws.get("error"):
        return f"{ws['verdict']}: not visible to the credential"
    unknown = sum(
        1
        for c in ws.get("categories", [])
        for side in ("backup", "restore")
        if c["details"][side]["required"] and c["details"][side]["status"] == "unknown"
    )
    parts = [
        f"{len(_missing(ws))} scope(s) missing" if _missing(ws) else "",
        f"{(ws.get('admin_gap') or {}).get('repositories', 0)} without admin"
        if (ws.get("admin_gap") or {}).get("repositories")
        else "",
        f"{unknown} unknown" if unknown else "",
    ]
    shown = ", ".join(p for p in parts if p)
    return ws["verdict"] + (f": {shown}" if shown else "")


def _several(spaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Data fields of a run over several workspaces: the totals, then one field per workspace,
    worst first. Bitbucket keeps 10 fields, so past WORKSPACE_FIELDS workspaces the last field
    counts the others by verdict (their details are in the report's details and in report.json)."""
    total = sum((ws.get("repositories") or {}).get("total", 0) for ws in spaces)
    admin = sum((ws.get("repositories") or {}).get("by_permission", {}).get("admin", 0) for ws in spaces)
    fields = [
        {"title": "Repositories covered", "type": "NUMBER", "value": total},
        {"title": "Admin coverage", "type": "PERCENTAGE", "value": round(100 * admin / total, 1) if total else 0},
    ]
    ranked = sorted(spaces, key=lambda ws: RANK.get(ws["verdict"], 0), reverse=True)
    shown = ranked if len(ranked) <= WORKSPACE_FIELDS else ranked[: WORKSPACE_FIELDS - 1]
    fields += [{"title": f"Workspace {ws['workspace']}", "type": "TEXT", "value": _state(ws)} for ws in shown]
    rest = ranked[len(shown) :]
    if rest:
        counts = {v: sum(ws["verdict"] == v for ws in rest) for v in RANK}
        value = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -RANK[kv[0]]) if n)
        fields.append({"title": f"Other workspaces ({len(rest)})", "type": "TEXT", "value": value})
    return fields


def _details(doc: dict[str, Any], omitted: int) -> str:
    spaces = doc.get("workspaces") or []
    if doc.get("error"):
        return doc["error"]["message"]
    missing = list(dict.fromkeys(scope for ws in spaces for scope in _missing(ws)))
    if len(spaces) == 1:
        head = f"Backup readiness of workspace {spaces[0]['workspace']} for profile {doc['profile']}: {doc['verdict']}."
    else:
        states = "; ".join(f"{ws['workspace']}: {_state(ws)}" for ws in spaces)
        head = (
            f"Backup readiness of {len(spaces)} workspaces for profile {doc['profile']}: {doc['verdict']} ({states})."
        )
    head += f" Missing scopes: {', '.join(missing)}." if missing else ""
    if omitted:
        head += f" {omitted} more finding(s) are not annotated: Code Insights keeps {MAX_ANNOTATIONS:,} per report."
    # The advice the step log shows, in its words: the document's guidance, minus the notes and
    # retirements its table carries (each workspace's named, when there are several).
    advice = []
    for ws in spaces:
        texts = _sentences([i for i in ws.get("guidance", []) if i["layout"] in ADVICE_LAYOUTS])
        if ws.get("error"):
            texts = [ws["error"]["message"], "Fix: " + ws["error"]["fix"]]
        if texts and len(spaces) > 1:
            texts[0] = f"{ws['workspace']}: {texts[0]}"
        advice += texts
    advice += _sentences([i for i in doc.get("guidance", []) if i["layout"] in ADVICE_LAYOUTS])
    return _shorten(" ".join([head, *advice]), DETAILS_LIMIT)


def payload(doc: dict[str, Any]) -> dict[str, Any]:
    spaces = doc.get("workspaces") or []
    data = [
        {"title": "Verdict", "type": "TEXT", "value": doc["verdict"]},
        {"title": "Profile", "type": "TEXT", "value": doc["profile"]},
        {"title": "Credential", "type": "TEXT", "value": ((doc.get("credential") or {}).get("kind") or "none")},
    ]
    if len(spaces) > 1:
        data += _several(spaces)
    else:
        data += _one(spaces[0] if spaces else {})
        data.append({"title": "API requests used", "type": "NUMBER", "value": doc.get("requests", 0)})
    return {
        "title": "Backup readiness",
        "details": _details(doc, annotations(doc)[1]),
        "report_type": "SECURITY",
        "reporter": "backup-readiness",
        "result": "PASSED" if doc["verdict"] == "ready" else "FAILED",
        "data": data[:MAX_FIELDS],
    }


# --- annotations: one line per thing to fix, in the commit's Reports panel ------------------


def _external_id(kind: str, name: str) -> str:
    return f"{REPORT_ID}-{kind}-" + UNSAFE_ID.sub("-", name)[:200]


def _annotation(kind: str, name: str, summary: str, required: bool, details: str) -> dict[str, Any]:
    """HIGH (a VULNERABILITY: the backup would miss data the profile needs) for a required
    category, MEDIUM (a CODE_SMELL) for one shown as information; `details` opens on a click."""
    return {
        "external_id": _external_id(kind, name),
        "annotation_type": "VULNERABILITY" if required else "CODE_SMELL",
        "severity": "HIGH" if required else "MEDIUM",
        "summary": _shorten(summary, SUMMARY_LIMIT),
        "details": _shorten(details, DETAILS_LIMIT),
    }


def _scope_notes(spaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One annotation per missing scope, the workspaces it matters in named when there are several."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for ws in spaces:
        for advice in ws.get("missing_scopes", []):
            found.setdefault(advice["scope"], []).append((ws["workspace"], advice))
    notes = []
    for scope, places in found.items():
        first = places[0][1]
        unblocks = ", ".join(dict.fromkeys(title for _, a in places for title in a["unblocks"]))
        count = sum(a["affected_repositories"] for _, a in places)
        where = f" in {', '.join(w for w, _ in places)}" if len(spaces) > 1 else ""
        summary = f"Missing scope {first['scope']}" + (f" ({first['label']})" if first["label"] != scope else "")
        summary += f": unblocks {unblocks}" + (f", {count} repositories" if count else "") + f"{where}."
        notes.append(
            _annotation("scope", scope, summary, any(a["required"] for _, a in places), f"Where: {first['where']}")
        )
    return notes


def _admin_notes(ws: dict[str, Any]) -> list[dict[str, Any]]:
    """One annotation per repository the credential lacks admin on."""
    gap = ws.get("admin_gap") or {}
    if not gap.get("repositories"):
        return []
    items = {i["id"]: i for i in ws.get("guidance", [])}
    required = (items.get("admin-gap") or {}).get("severity") == "error"
    fix = (items.get("admin-fix") or {}).get("text", "")
    loses = ", ".join(t.lower() for t in gap.get("loses", []))
    listed = (ws.get("repositories") or {}).get("without_admin")
    named = [(r["full_name"], r["permission"]) for r in listed] if listed is not None else []
    if not named:
        named = [(name, "no admin") for name in gap.get("examples", [])]
    return [
        _annotation(
            "admin",
            name,
            f"No admin permission on {name} ({permission}): a backup loses its {loses}.",
            required,
            fix,
        )
        for name, permission in named
    ]


def annotations(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """(the annotations to post, at most MAX_ANNOTATIONS; how many findings are left without one):
    each missing scope, each workspace the credential cannot see, each repository without admin."""
    if doc.get("error"):
        return [], 0
    spaces = doc.get("workspaces") or []
    notes = _scope_notes(spaces)
    unnamed = 0
    for ws in spaces:
        if ws.get("error"):  # a workspace the credential cannot see: all of it would be missed
            summary = f"Workspace {ws['workspace']}: {ws['error']['message']}"
            notes.append(_annotation("workspace", ws["workspace"], summary, True, ws["error"]["fix"]))
        admin = _admin_notes(ws)
        notes += admin
        unnamed += max(0, (ws.get("admin_gap") or {}).get("repositories", 0) - len(admin))
    return notes[:MAX_ANNOTATIONS], max(0, len(notes) - MAX_ANNOTATIONS) + unnamed


@dataclass(frozen=True)
class Posted:
    """What the upload did: the report's failure (None: posted), and the annotations'."""

    failure: str | None = None
    annotated: int = 0
    annotation_failure: str | None = None


async def _send(client: httpx.AsyncClient, method: str, url: str, body: Any, ends: float) -> int:
    """The answer's status. Its body is never read: the status is all the upload needs, and
    httpx would inflate a compressed body whole, so a proxy could grow the run without bound."""

    async def status() -> int:
        async with client.stream(method, url, json=body) as response:
            return response.status_code  # leaving the block closes the connection unread

    # Each phase (connect, write, read) gets at most the budget, and wait_for bounds the sum:
    # a proxy that trickles one byte at a time resets httpx's per-read timeout forever.
    return await asyncio.wait_for(status(), timeout=max(0.1, ends - time.monotonic()))


def _success(status: int) -> bool:
    return 200 <= status < 300


async def _upload(url: str, doc: dict[str, Any], proxy: str, budget: float) -> Posted:
    ends = time.monotonic() + budget
    async with httpx.AsyncClient(proxy=proxy, timeout=min(10.0, budget), trust_env=False) as client:
        try:
            status = await _send(client, "PUT", url, payload(doc), ends)
        except TimeoutError:
            return Posted(f"the Pipelines proxy did not answer within the time left ({budget:.0f} s)")
        except httpx.HTTPError as exc:
            return Posted(f"the Pipelines proxy could not be reached ({type(exc).__name__})")
        if not _success(status):
            return Posted(f"the report was refused (HTTP {status})")
        notes, _ = annotations(doc)
        posted = 0
        for start in range(0, len(notes), BATCH):  # Bitbucket takes at most 100 per POST
            batch = notes[start : start + BATCH]
            try:
                status = await _send(client, "POST", f"{url}/annotations", batch, ends)
            except (TimeoutError, httpx.HTTPError) as exc:
                why = "no answer in the time left" if isinstance(exc, TimeoutError) else type(exc).__name__
                return Posted(None, posted, f"{posted} of {len(notes)} posted, then {why}")
            if not _success(status):
                return Posted(None, posted, f"{posted} of {len(notes)} posted, then HTTP {status}")
            posted += len(batch)
        return Posted(None, posted)


def post(doc: dict[str, Any], workspace: str, slug: str, commit: str, proxy: str, budget: float = 10.0) -> Posted:
    """The report, then its annotations in batches. Never runs past `budget` seconds; any failure
    is returned for a warning, never raised."""
    url = f"{PUBLIC_API}/repositories/{workspace}/{slug}/commit/{commit}/reports/{REPORT_ID}"
    return asyncio.run(_upload(url, doc, proxy, max(0.1, budget)))
