"""Entry point: variables -> credential -> survey -> assessment -> document -> reports. Wiring only."""

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
from pipe.outcomes import Verdict
from pipe.profiles import SAFE_LOADER
from pipe.redaction import Redactor
from pipe.reports import console, document, publish
from pipe.reports.document import Section
from pipe.survey import survey
from pipe.survey.evidence import Unseen
from pipe.variables import SCHEMA, Config, output_path, read_config

METADATA = Path(__file__).resolve().parent.parent / "pipe.yml"
log = logging.getLogger("backup-readiness")
LIST_ITEM = re.compile(r"^(WORKSPACE|REPOSITORIES|REQUIRE)_(COUNT|\d+)$")


class ReadinessPipe(Pipe):
    """The toolkit's Pipe for its schema and metadata; DEBUG is parsed with the other variables."""

    def enable_debug_log_level(self) -> None:
        pass


def _metadata() -> dict[str, Any]:
    try:
        return yaml.load(METADATA.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _configure(values: Mapping[str, str]) -> tuple[Config, Credential]:
    catalog = catalog_module.load()
    problems: list[Problem] = []
    config = credential = None
    try:
        config = read_config(values, catalog.profiles, catalog.ids)
    except ConfigError as exc:
        problems += exc.problems
    try:
        credential = detect(values)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return config, credential


async def _run(config: Config, credential: Credential, redactor: Redactor, started: float) -> list[Section]:
    catalog = catalog_module.load()
    try:
        found = await asyncio.wait_for(
            survey(config, credential, catalog, started, redactor.add),
            # The client stops at the deadline itself and reports which check it cut short;
            # this outer guard only catches what hangs past it.
            timeout=max(1.0, config.timeout - (time.monotonic() - started)) + 2.0,
        )
    except TimeoutError:
        raise ApiUnavailable(f"The check did not finish within TIMEOUT ({config.timeout:g} s).") from None
    return [
        Section(e.workspace, unseen=e)
        if isinstance(e, Unseen)
        else Section(e.workspace, e, assess(catalog, e, config.profile, config.require, config.check_restore))
        for e in found
    ]


def _label(values: Mapping[str, str]) -> str:
    """The profile for a document built without a valid Config: only a built-in name is echoed
    (an invalid value may be a pasted secret, or markup)."""
    profile = (values.get("PROFILE") or "xopero-one").strip().lower()
    try:
        known = profile in catalog_module.load().profiles
    except Exception:  # noqa: BLE001 - the labels of a failed run must not fail it again
        known = False
    return profile if known else "(invalid)"


def _evaluate(values: Mapping[str, str], redactor: Redactor, started: float) -> tuple[dict[str, Any], Config | None]:
    config = credential = None
    try:
        config, credential = _configure(values)
        sections = asyncio.run(_run(config, credential, redactor, started))
        return document.build(config.profile, credential, sections), config
    except ConfigError as exc:
        failure = Failure(
            f"{len(exc.problems)} variable(s) need fixing; nothing was sent to Bitbucket.",
            "Fix the variables named above in the pipe's variables block.",
            ExitCode.CONFIGURATION,
            tuple(exc.problems),
        )
        return document.build(config.profile if config else _label(values), None, [], failure), None
    except (CredentialError, ApiUnavailable) as exc:
        fix = getattr(
            exc,
            "fix",
            "Run the pipe again; if it keeps failing, check status.atlassian.com "
            "and that the runner can reach BITBUCKET_API_URL.",
        )
        return document.build(config.profile, credential, [], Failure(exc.message, fix, exc.exit_code)), config


def _internal_error(values: Mapping[str, str], exc: BaseException, where: str) -> dict[str, Any]:
    """The last-resort document: a bug in the pipe, not an answer of Bitbucket's. The error
    line carries the exception's type and (redacted, one-line) message; the traceback goes
    to the DEBUG log only, redacted and indented by the log filter."""
    try:
        message = str(exc)[:300]
    except Exception:  # noqa: BLE001 - an exception whose str() fails must not end the guard
        message = ""
    log.error("Internal error in %s (%s): %s", where, type(exc).__name__, message)
    log.debug("Traceback of the internal error:", exc_info=exc)
    failure = Failure(
        f"The pipe failed unexpectedly in {where} ({type(exc).__name__}).",
        "Run again with DEBUG: 'true' and report the log.",
        ExitCode.INCONCLUSIVE,
    )
    return document.build(_label(values), None, [], failure)


def _render(doc: dict[str, Any], values: Mapping[str, str], redactor: Redactor) -> tuple[publish.Rendered, bool]:
    """Every output of `doc`, or of the internal-error document if a renderer fails; the flag
    says whether the fallback was taken (the Code Insights report then is not posted)."""
    try:
        return publish.render(document.finish(doc, redactor)), False
    except Exception as exc:  # noqa: BLE001 - a renderer's bug must still leave valid files
        fallback = document.finish(_internal_error(values, exc, "a report renderer"), redactor)
        return publish.render_fallback(fallback), True


def main(env: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    raw = dict(os.environ if env is None else env)
    redactor = Redactor.for_variables(raw, public=SCHEMA)  # the variable names are the pipe's own words
    color = logs.configure(redactor, raw)
    values = dict(ReadinessPipe(pipe_metadata=_metadata(), schema=SCHEMA, env=raw).variables)
    values.update({k: v for k, v in raw.items() if LIST_ITEM.match(k)})  # the toolkit drops these
    try:
        doc, config = _evaluate(values, redactor, started)
    except Exception as exc:  # noqa: BLE001 - never a traceback: the log must stay readable and secret-free
        doc, config = _internal_error(values, exc, "the check"), None
    rendered, fell_back = _render(doc, values, redactor)
    # Without a valid Config, OUTPUT_JSON is checked on its own: even a failed run never
    # writes outside the working directory.
    output_json = config.output_json if config else output_path(values.get("OUTPUT_JSON"), os.getcwd())[0]
    publish.write_files(rendered, output_json)
    console.emit_lines(rendered.console, rendered.doc, log, color)
    if config and not fell_back and rendered.doc["verdict"] != Verdict.ERROR:
        try:
            publish.post_insights(rendered.doc, config, deadline=started + config.timeout)
        except Exception as exc:  # noqa: BLE001 - the upload is optional; its failure is a warning
            log.warning(
                "Code Insights report not posted: an internal error (%s). The verdict stands.", type(exc).__name__
            )
    return int(rendered.doc["exit_code"])
