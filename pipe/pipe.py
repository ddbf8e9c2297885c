"""Entry point: variables -> credential -> probes -> assessment -> reports. Wiring only."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from bitbucket_pipes_toolkit import Pipe, get_logger
from colorlog import ColoredFormatter

from pipe import catalog as catalog_module
from pipe.assessment import assess
from pipe.credential import Credential, detect
from pipe.errors import ApiUnavailable, ConfigError, CredentialError, ExitCode, Failure, Problem
from pipe.probes import gather_evidence
from pipe.redaction import RedactingFilter, Redactor
from pipe.reports import console, document, files, insights
from pipe.variables import DEFAULT_OUTPUT, SCHEMA, Config, read_config

METADATA = Path(__file__).resolve().parent.parent / "pipe.yml"
log = logging.getLogger("backup-readiness")
LIST_ITEM = re.compile(r"^(REPOSITORIES|REQUIRE)_(COUNT|\d+)$")


class ReadinessPipe(Pipe):
    """The toolkit's Pipe for its schema and metadata; DEBUG is parsed with the other variables."""

    def enable_debug_log_level(self) -> None:
        pass


def _metadata() -> dict[str, Any]:
    try:
        return yaml.safe_load(METADATA.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _toolkit_handlers(root: logging.Logger) -> list[logging.Handler]:
    """The colorlog handler the toolkit added at import (tagged, as NO_COLOR swaps its formatter)."""
    found = []
    for handler in root.handlers:
        if getattr(handler, "_backup_readiness", False) or isinstance(handler.formatter, ColoredFormatter):
            handler._backup_readiness = True  # type: ignore[attr-defined]
            found.append(handler)
    return found


def _logging(redactor: Redactor, values: Mapping[str, str]) -> bool:
    """Scrub and (optionally) uncolour the toolkit's one handler; returns whether to colour."""
    color = "NO_COLOR" not in values
    root = get_logger()
    for handler in _toolkit_handlers(root):
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        handler.addFilter(RedactingFilter(redactor))
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # not setStream(): it flushes the old, maybe closed, stream
        if not color:
            handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    debug = (values.get("DEBUG") or "").strip().lower() in ("true", "yes", "on", "1")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return color


def _redactor(values: Mapping[str, str]) -> Redactor:
    redactor = Redactor()
    for name in ("BITBUCKET_API_TOKEN", "BITBUCKET_ACCESS_TOKEN", "BITBUCKET_OAUTH_CLIENT_SECRET",
                 "BITBUCKET_APP_PASSWORD"):
        secret = values.get(name)
        if secret and secret.strip():
            redactor.add(secret)
            redactor.add(secret.strip())
            for user in ("BITBUCKET_EMAIL", "BITBUCKET_USERNAME", "BITBUCKET_OAUTH_CLIENT_ID"):
                if values.get(user):  # the Basic-auth pair, as it is base64-encoded on the wire
                    redactor.add(f"{values[user]}:{secret}")
    return redactor


def _configure(values: Mapping[str, str]) -> tuple[Config, Credential]:
    catalog = catalog_module.load()
    problems: list[Problem] = []
    config = credential = None
    try:
        config = read_config(values, tuple(catalog.profiles), catalog.ids)
    except ConfigError as exc:
        problems += exc.problems
    try:
        credential = detect(values)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return config, credential


async def _run(config: Config, credential: Credential, redactor: Redactor, started: float):
    catalog = catalog_module.load()
    try:
        evidence = await asyncio.wait_for(
            gather_evidence(config, credential, catalog, started, redactor.add),
            # The client stops at the deadline itself and reports which check it cut short;
            # this outer guard only catches what hangs past it.
            timeout=max(1.0, config.timeout - (time.monotonic() - started)) + 2.0)
    except TimeoutError:
        raise ApiUnavailable(f"The check did not finish within TIMEOUT ({config.timeout:g} s).") from None
    return evidence, assess(catalog, evidence, config.profile, config.require, config.check_restore)


def _outputs(doc: dict[str, Any], output_json: str) -> None:
    try:
        path = Path(output_json)
        files.write_json(doc, path)
        files.write_markdown(doc, path)
        files.write_junit(doc)
    except OSError as exc:
        log.warning("Could not write the report files (%s): %s", output_json, exc.strerror)


def _insights(doc: dict[str, Any], config: Config) -> None:
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


def _evaluate(values: Mapping[str, str], redactor: Redactor, started: float) -> tuple[dict[str, Any], Config | None]:
    workspace = values.get("WORKSPACE") or values.get("BITBUCKET_WORKSPACE") or ""
    profile = (values.get("PROFILE") or "xopero-one").strip().lower()
    if profile not in catalog_module.load().profiles:  # never echo an unknown value: it may be a pasted secret
        profile = "(invalid)"
    config = credential = None
    try:
        config, credential = _configure(values)
        evidence, assessment = asyncio.run(_run(config, credential, redactor, started))
        return document.build(config.workspace, config.profile, credential, evidence, assessment), config
    except ConfigError as exc:
        failure = Failure(f"{len(exc.problems)} variable(s) need fixing; nothing was sent to Bitbucket.",
                          "Fix the variables named above in the pipe's variables block.",
                          ExitCode.CONFIGURATION, tuple(exc.problems))
        return document.build(workspace, profile, None, None, None, failure), None
    except (CredentialError, ApiUnavailable) as exc:
        fix = getattr(exc, "fix", "Run the pipe again; if it keeps failing, check status.atlassian.com "
                                  "and that the runner can reach BITBUCKET_API_URL.")
        return document.build(config.workspace, config.profile, credential, None, None,
                              Failure(exc.message, fix, exc.exit_code)), config


def _scrub(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {k: _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, redactor) for v in value]
    return value


def main(env: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    raw = dict(os.environ if env is None else env)
    redactor = _redactor(raw)
    color = _logging(redactor, raw)
    values = dict(ReadinessPipe(pipe_metadata=_metadata(), schema=SCHEMA, env=raw).variables)
    values.update({k: v for k, v in raw.items() if LIST_ITEM.match(k)})  # the toolkit drops these
    try:
        doc, config = _evaluate(values, redactor, started)
    except Exception as exc:  # noqa: BLE001 - never a traceback: the log must stay readable and secret-free
        log.error("Internal error (%s): %s", type(exc).__name__, redactor(str(exc))[:300])
        failure = Failure("The pipe failed unexpectedly.", "Run again with DEBUG: 'true' and report the log.",
                          ExitCode.INCONCLUSIVE)
        doc = document.build(values.get("WORKSPACE", ""), values.get("PROFILE", ""), None, None, None, failure)
        config = None
    doc = _scrub(doc, redactor)  # reports, console and Code Insights all come from this document
    _outputs(doc, config.output_json if config else (values.get("OUTPUT_JSON") or DEFAULT_OUTPUT))
    console.emit(doc, log, color)
    if config and doc["verdict"] != "error":
        _insights(doc, config)
    return int(doc["exit_code"])
