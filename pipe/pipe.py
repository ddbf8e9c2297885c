"""Entry point: variables -> credential -> probes -> assessment -> reports. Wiring only."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from bitbucket_pipes_toolkit import Pipe

from pipe import catalog as catalog_module
from pipe import logs
from pipe.assessment import assess
from pipe.credential import Credential, detect
from pipe.errors import ApiUnavailable, ConfigError, CredentialError, ExitCode, Failure, Problem
from pipe.probes import gather_evidence
from pipe.redaction import Redactor
from pipe.reports import console, document, publish
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
            timeout=max(1.0, config.timeout - (time.monotonic() - started)) + 2.0,
        )
    except TimeoutError:
        raise ApiUnavailable(f"The check did not finish within TIMEOUT ({config.timeout:g} s).") from None
    return evidence, assess(catalog, evidence, config.profile, config.require, config.check_restore)


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
        failure = Failure(
            f"{len(exc.problems)} variable(s) need fixing; nothing was sent to Bitbucket.",
            "Fix the variables named above in the pipe's variables block.",
            ExitCode.CONFIGURATION,
            tuple(exc.problems),
        )
        return document.build(workspace, profile, None, None, None, failure), None
    except (CredentialError, ApiUnavailable) as exc:
        fix = getattr(
            exc,
            "fix",
            "Run the pipe again; if it keeps failing, check status.atlassian.com "
            "and that the runner can reach BITBUCKET_API_URL.",
        )
        return document.build(
            config.workspace, config.profile, credential, None, None, Failure(exc.message, fix, exc.exit_code)
        ), config


def main(env: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    raw = dict(os.environ if env is None else env)
    redactor = Redactor.for_variables(raw)
    color = logs.configure(redactor, raw)
    values = dict(ReadinessPipe(pipe_metadata=_metadata(), schema=SCHEMA, env=raw).variables)
    values.update({k: v for k, v in raw.items() if LIST_ITEM.match(k)})  # the toolkit drops these
    try:
        doc, config = _evaluate(values, redactor, started)
    except Exception as exc:  # noqa: BLE001 - never a traceback: the log must stay readable and secret-free
        log.error("Internal error (%s): %s", type(exc).__name__, redactor(str(exc))[:300])
        failure = Failure(
            "The pipe failed unexpectedly.", "Run again with DEBUG: 'true' and report the log.", ExitCode.INCONCLUSIVE
        )
        doc = document.build(values.get("WORKSPACE", ""), values.get("PROFILE", ""), None, None, None, failure)
        config = None
    doc = redactor.scrub(doc)  # reports, console and Code Insights all come from this document
    publish.write_files(doc, config.output_json if config else (values.get("OUTPUT_JSON") or DEFAULT_OUTPUT))
    console.emit(doc, log, color)
    if config and doc["verdict"] != "error":
        publish.post_insights(doc, config)
    return int(doc["exit_code"])
