"""Where the report document goes: files beside the clone, and the Code Insights report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipe.reports import files, insights
from pipe.variables import Config

log = logging.getLogger("backup-readiness")


def write_files(doc: dict[str, Any], output_json: str) -> None:
    """JSON, Markdown and JUnit; a folder that cannot be written is a warning, not a verdict."""
    try:
        path = Path(output_json)
        files.write_json(doc, path)
        files.write_markdown(doc, path)
        files.write_junit(doc)
    except OSError as exc:
        log.warning("Could not write the report files (%s): %s", output_json, exc.strerror)


def post_insights(doc: dict[str, Any], config: Config) -> None:
    if not config.code_insights:
        return
    if not (config.commit and config.repo_slug and config.repo_workspace):
        log.warning("Code Insights skipped: BITBUCKET_COMMIT, BITBUCKET_REPO_SLUG or the workspace is not set.")
        return
    failure = insights.post(doc, config.repo_workspace, config.repo_slug, config.commit, config.code_insights_proxy)
    if failure:
        log.warning("Code Insights report not posted: %s. The verdict stands.", failure)
    else:
        log.info("Code Insights report posted on commit %s.", config.commit[:12])
