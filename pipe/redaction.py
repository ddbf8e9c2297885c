"""Keeps secrets out of every line the pipe writes, whatever encoding they hide in."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

MASK = "********"
SECRET_VARIABLES = (
    "BITBUCKET_API_TOKEN",
    "BITBUCKET_ACCESS_TOKEN",
    "BITBUCKET_OAUTH_CLIENT_SECRET",
    "BITBUCKET_APP_PASSWORD",
)
USER_VARIABLES = ("BITBUCKET_EMAIL", "BITBUCKET_USERNAME", "BITBUCKET_OAUTH_CLIENT_ID")
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

    @classmethod
    def for_variables(cls, values: Mapping[str, str]) -> Redactor:
        """Every secret the variables hold, alone and as the Basic-auth pair it travels in."""
        redactor = cls()
        for name in SECRET_VARIABLES:
            secret = values.get(name)
            if secret and secret.strip():
                redactor.add(secret)
                redactor.add(secret.strip())
                for user in USER_VARIABLES:
                    if values.get(user):
                        redactor.add(f"{values[user]}:{secret}")
        return redactor

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value

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
