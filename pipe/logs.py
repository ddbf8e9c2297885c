"""The step log: the toolkit's one colorlog handler, scrubbed of secrets, coloured unless NO_COLOR.

bitbucket-pipes-toolkit adds that handler to the root logger when it is imported; adding our
own would print every line twice, so the pipe adjusts the toolkit's instead."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from bitbucket_pipes_toolkit import get_logger
from colorlog import ColoredFormatter

from pipe.redaction import RedactingFilter, Redactor
from pipe.variables import TRUE

QUIET = ("httpx", "httpcore", "asyncio")  # httpx logs full URLs at INFO; nothing of theirs is needed


def _toolkit_handlers(root: logging.Logger) -> list[logging.Handler]:
    """The toolkit's handler, tagged on first sight because NO_COLOR swaps its formatter."""
    found = []
    for handler in root.handlers:
        if getattr(handler, "_backup_readiness", False) or isinstance(handler.formatter, ColoredFormatter):
            handler._backup_readiness = True  # type: ignore[attr-defined]
            found.append(handler)
    return found


def configure(redactor: Redactor, values: Mapping[str, str]) -> bool:
    """Set up the log for one run; returns whether to use colour."""
    color = "NO_COLOR" not in values
    root = get_logger()
    for handler in _toolkit_handlers(root):
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        handler.addFilter(RedactingFilter(redactor))
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # not setStream(): it flushes the old, maybe closed, stream
        if not color:
            handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    # A line that cannot be written (a closed or odd stream) is dropped, never answered with
    # logging's own traceback on stderr.
    logging.raiseExceptions = False
    debug = (values.get("DEBUG") or "").strip().lower() in TRUE  # needed before the variables are checked
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return color
