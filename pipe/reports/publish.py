"""Where the report document goes: files beside the clone, and the Code Insights report.

Everything is rendered first (`render`), so that a renderer's failure is known before any
output exists and the run can fall back to an `inconclusive` document; then each file is
written on its own (`write_files`), so that one failed write never skips the others."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipe.reports import console, files, insights
from pipe.variables import Config

log = logging.getLogger("backup-readiness")
GRACE = 3.0  # seconds the Code Insights upload may run past TIMEOUT: the report is worth a moment


@dataclass(frozen=True)
class Rendered:
    doc: dict[str, Any]
    json: str
    markdown: str
    junit: bytes
    console: list[tuple[int, str]]


MINIMAL_JUNIT = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="backup-readiness" tests="1" failures="0" errors="1" '
    b'skipped="0">\n  <testcase classname="backup-readiness" name="report" time="0">\n    <error message="the report '
    b'could not be rendered" type="inconclusive" />\n  </testcase>\n</testsuite>\n'
)


def render(doc: dict[str, Any]) -> Rendered:
    """Every format of one finished document; raises if any renderer fails."""
    return Rendered(doc, files.json_text(doc), files.markdown(doc), files.junit_bytes(doc), console.lines(doc))


def render_fallback(doc: dict[str, Any]) -> Rendered:
    """The internal-error document's outputs, each renderer on its own: should one fail even
    for this small document, its part is a fixed minimal text, so the files still exist and
    parse. JSON cannot fail here: document.finish left only JSON types."""

    def attempt(renderer: Any, fixed: Any) -> Any:
        try:
            return renderer(doc)
        except Exception:  # noqa: BLE001 - the last resort must not fail
            return fixed

    summary = "# Backup readiness: inconclusive\n\nThe report could not be rendered; run again with DEBUG.\n"
    return Rendered(
        doc,
        files.json_text(doc),
        attempt(files.markdown, summary),
        attempt(files.junit_bytes, MINIMAL_JUNIT),
        attempt(console.lines, []),
    )


def write_files(rendered: Rendered, output_json: str, root: Path | None = None) -> None:
    """JSON, Markdown and JUnit, each on its own: a folder that cannot be written is a
    warning naming the file, never a verdict, and never stops the other files."""
    root = root or Path.cwd()
    for relative, data in (
        (output_json, rendered.json.encode("utf-8", "replace")),
        (files.markdown_path(output_json), rendered.markdown.encode("utf-8", "replace")),
        (files.JUNIT_PATH, rendered.junit),
    ):
        try:
            files.write_inside(root, relative, data)
        except (OSError, ValueError) as exc:  # ValueError: a name the file system cannot encode
            log.warning("Could not write %s: %s.", relative, getattr(exc, "strerror", None) or type(exc).__name__)


def post_insights(doc: dict[str, Any], config: Config, deadline: float) -> None:
    """The upload gets only the time left before TIMEOUT (plus GRACE): a proxy that accepts
    and never answers cannot keep the step alive."""
    if not config.code_insights:
        return
    if not (config.commit and config.repo_slug and config.repo_workspace):
        log.warning("Code Insights skipped: BITBUCKET_COMMIT, BITBUCKET_REPO_SLUG or the workspace is not set.")
        return
    budget = max(0.0, deadline - time.monotonic()) + GRACE
    posted = insights.post(
        doc, config.repo_workspace, config.repo_slug, config.commit, config.code_insights_proxy, budget
    )
    if posted.failure:
        log.warning("Code Insights report not posted: %s. The verdict stands.", posted.failure)
        return
    notes = f" with {posted.annotated} annotation(s)" if posted.annotated else ""
    log.info("Code Insights report posted on commit %s%s.", config.commit[:12], notes)
    if posted.annotation_failure:
        log.warning("Code Insights annotations not all posted: %s. The verdict stands.", posted.annotation_failure)
