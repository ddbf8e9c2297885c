"""The Code Insights report on the commit, posted through the Pipelines auth proxy.

Inside Pipelines a proxy at host.docker.internal:29418 authenticates report calls on its own,
so no credential is sent, and the URL is plain http:// as the proxy expects. This is the
pipe's one write to Bitbucket; failing to post is a warning, never a failed step."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

REPORT_ID = "backup-readiness"
PUBLIC_API = "http://api.bitbucket.org/2.0"
DETAILS_LIMIT = 2000  # characters Bitbucket keeps of a report's details
ADVICE_LAYOUTS = ("paragraph", "item", "step")


def _sentences(items: list[dict[str, Any]]) -> list[str]:
    """The items run into one paragraph: each ends as a sentence, a heading the log follows with
    bullets or steps with a colon."""
    texts = []
    for item, after in zip(items, [*items[1:], None], strict=True):
        text = item["text"]
        if not text.endswith((".", ":", "!", "?")):
            heading = item["layout"] == "paragraph" and after is not None and after["layout"] != "paragraph"
            text += ":" if heading else "."
        texts.append(text)
    return texts


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def payload(doc: dict[str, Any]) -> dict[str, Any]:
    repos = doc.get("repositories") or {"total": 0, "by_permission": {"admin": 0}}
    total, admin = repos["total"], repos["by_permission"]["admin"]
    required = [c for c in doc.get("categories", []) if c["required"]["backup"] and not c["retired"]]
    missing = [a["scope"] for a in doc.get("missing_scopes", []) if a["required"]]
    data = [
        {"title": "Verdict", "type": "TEXT", "value": doc["verdict"]},
        {"title": "Profile", "type": "TEXT", "value": doc["profile"]},
        {"title": "Credential", "type": "TEXT", "value": ((doc.get("credential") or {}).get("kind") or "none")},
        {"title": "Repositories covered", "type": "NUMBER", "value": total},
        {"title": "Admin coverage", "type": "PERCENTAGE", "value": round(100 * admin / total, 1) if total else 0},
        {
            "title": "Required categories ready",
            "type": "TEXT",
            "value": f"{sum(c['backup'] == 'ok' for c in required)}/{len(required)}",
        },
        {"title": "Missing scopes", "type": "TEXT", "value": ", ".join(missing) or "none"},
        {"title": "Git over HTTPS", "type": "BOOLEAN", "value": (doc.get("git") or {}).get("outcome") == "ok"},
        {"title": "API requests used", "type": "NUMBER", "value": doc.get("requests", 0)},
    ]
    details = (
        doc["error"]["message"]
        if doc.get("error")
        else f"Backup readiness of workspace {doc['workspace']} for profile {doc['profile']}: "
        f"{doc['verdict']}." + (f" Missing scopes: {', '.join(missing)}." if missing else "")
    )
    # The advice the step log shows, in its words: the document's guidance, minus the notes and
    # retirements its table carries.
    advice = _sentences([i for i in doc.get("guidance", []) if i["layout"] in ADVICE_LAYOUTS])
    return {
        "title": "Backup readiness",
        "details": _shorten(" ".join([details, *advice]), DETAILS_LIMIT),
        "report_type": "SECURITY",
        "reporter": "backup-readiness",
        "result": "PASSED" if doc["verdict"] == "ready" else "FAILED",
        "data": data[:10],
    }


async def _put(url: str, body: dict[str, Any], proxy: str, budget: float) -> httpx.Response:
    # Each phase (connect, write, read) gets at most the budget, and wait_for bounds the sum:
    # a proxy that trickles one byte at a time resets httpx's per-read timeout forever.
    async with httpx.AsyncClient(proxy=proxy, timeout=min(10.0, budget), trust_env=False) as client:
        return await asyncio.wait_for(client.put(url, json=body), timeout=budget)


def post(doc: dict[str, Any], workspace: str, slug: str, commit: str, proxy: str, budget: float = 10.0) -> str | None:
    """Returns None on success, else why it failed (for a warning). Never runs past `budget` seconds."""
    url = f"{PUBLIC_API}/repositories/{workspace}/{slug}/commit/{commit}/reports/{REPORT_ID}"
    try:
        response = asyncio.run(_put(url, payload(doc), proxy, max(0.1, budget)))
    except TimeoutError:
        return f"the Pipelines proxy did not answer within the time left ({budget:.0f} s)"
    except httpx.HTTPError as exc:
        return f"the Pipelines proxy could not be reached ({type(exc).__name__})"
    return None if response.is_success else f"the report was refused (HTTP {response.status_code})"
