"""Keeps secrets out of every line the pipe writes, whatever encoding they hide in."""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote

MASK = "********"
ATLASSIAN_TOKEN = re.compile(r"(?i)\b(?:ATATT|ATCTT|ATBB)[A-Za-z0-9_=+/-]{16,}")


def secret_forms(secret: str) -> set[str]:
    """The secret and the encodings in which it travels (Basic auth, URLs)."""
    forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    return {form for form in forms if len(form) >= 4}


class Redactor:
    def __init__(self, secrets: list[str] | None = None):
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        self._forms |= secret_forms(secret)
        alternatives = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in alternatives))

    def __call__(self, text: str) -> str:
        text = re.sub(r"(?i)(authorization:\s*)(\S+\s+)?\S+", r"\1" + MASK, text)
        text = ATLASSIAN_TOKEN.sub(MASK, text)  # a token pasted where no secret was expected
        return self._pattern.sub(MASK, text) if self._pattern else text


class RedactingFilter(logging.Filter):
    """Installed on the log handler, so that even a third-party library's line is scrubbed."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True
