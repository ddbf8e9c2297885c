"""Keeps secrets out of every line the pipe writes, whatever encoding they hide in, and keeps
text a server sent from forging a line, a colour or a verdict.

Two passes, always both: `Redactor` masks the secret (whole, any run of 8 or more of its
characters in any case, its base64 and URL-encoded forms); `neutralise` makes a string safe
to print and to store (no lone surrogates, no control, ANSI or bidi characters)."""

from __future__ import annotations

import base64
import itertools
import logging
import math
import re
import traceback
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "********"
GRAM = 8  # the shortest run of a secret that is never shown (the README's promise)
CLEAN_MEMO = 65_536  # strings whose scrubbed form is remembered (each is bounded by document.finish)
SECRET_VARIABLES = (
    "BITBUCKET_API_TOKEN",
    "BITBUCKET_ACCESS_TOKEN",
    "BITBUCKET_OAUTH_CLIENT_SECRET",
    "BITBUCKET_APP_PASSWORD",
)
USER_VARIABLES = ("BITBUCKET_EMAIL", "BITBUCKET_USERNAME", "BITBUCKET_OAUTH_CLIENT_ID")
ATLASSIAN_TOKEN = re.compile(r"(?i)\b(?:ATATT|ATCTT|ATBB)[A-Za-z0-9_=+/-]{16,}")
AUTHORIZATION = re.compile(r"(?i)(authorization:\s*)(\S+\s+)?\S+")
# str.lower() can change a string's length ("İ" -> "i̇"); folding ASCII only keeps offsets exact.
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

SURROGATE = re.compile("[\ud800-\udfff]")
# What can move the cursor, recolour, hide, reorder or break a line: C0 and C1 controls
# (ESC starts every ANSI sequence; CR and LF start a new "line"), DEL, the bidi controls
# and the Unicode line and paragraph separators.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return SHOWN.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def neutralise(text: str) -> str:
    """One line of plain text: lone surrogates become U+FFFD (so the text encodes as UTF-8),
    and control characters are shown as escapes (\\n, \\x1b, \\u202e), so that nothing a
    server sent can start a line, colour it or reorder it."""
    return UNSAFE.sub(_visible, SURROGATE.sub("\ufffd", text))


def bounded(value: Any, text_limit: int, items_limit: int) -> Any:
    """A copy of a JSON-like value with every string cut to `text_limit` characters (the cut
    marked with '…') and every list and object to `items_limit` items: what comes after it (the
    redaction, the renderers, past TIMEOUT's deadline) then never grows with what a server sent."""
    if isinstance(value, str):
        return value if len(value) <= text_limit else value[: text_limit - 1] + "…"
    if isinstance(value, (list, tuple)):
        return [bounded(v, text_limit, items_limit) for v in value[:items_limit]]
    if isinstance(value, Mapping):
        items = itertools.islice(value.items(), items_limit)
        return {bounded(k, text_limit, items_limit): bounded(v, text_limit, items_limit) for k, v in items}
    return value


def percent_every_byte(raw: bytes) -> str:
    """Every byte as %XX, letters and digits too: a form quote() never makes, but a server's
    echo may (its 8-character runs are masked in any case, so lower hex is covered too)."""
    return "".join(f"%{b:02X}" for b in raw)


def secret_bytes(secret: str) -> bytes:
    """The bytes a secret stands for; never fails. A variable holding a byte that is not UTF-8
    reaches Python as a lone surrogate (os.environ decodes with surrogateescape), which gives the
    byte back; any other lone surrogate (a server-issued token) is kept as it is (surrogatepass)."""
    try:
        return secret.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return secret.encode("utf-8", "surrogatepass")


def secret_forms(secret: str) -> set[str]:
    """The secret and the encodings in which it travels whole (Basic auth, URLs)."""
    raw = secret_bytes(secret)  # quote() of the str would fail on a lone surrogate: its bytes never do
    every = percent_every_byte(raw)
    forms = {secret, quote(raw, safe=""), base64.b64encode(raw).decode(), every, every.lower()}
    return {form for form in forms if len(form) >= 4}


def _grams(text: str) -> set[str]:
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}


def _base64_grams(raw: bytes) -> set[str]:
    """Every 8-character run of the base64 of any slice of `raw`, embedded anywhere.

    base64 encodes 3 bytes at a time, so a slice's encoding depends on where it starts
    modulo 3: the encodings of raw[0:], raw[1:] and raw[2:] hold every whole group that
    any slice (alone, or inside "email:token") can produce. The last, padded group depends
    on what follows the slice, so only whole groups count."""
    grams: set[str] = set()
    for start in range(3):
        chunk = raw[start:]
        chunk = chunk[: len(chunk) // 3 * 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            grams |= _grams(encode(chunk).decode())
    return grams


class Redactor:
    """Masks secrets. `public` names the pipe's own words (its variable names): a run of a
    secret that lies wholly inside one of them is the pipe speaking, not a leak (a test
    canary "...AppPasswordValue..." must not hide the name BITBUCKET_APP_PASSWORD)."""

    def __init__(self, secrets: list[str] | None = None, public: Iterable[str] = ()):
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._folded: set[str] = set()  # ASCII-lower-cased runs of the secret and its URL forms
        self._encoded: set[str] = set()  # runs of its base64 (case matters there)
        # scrub's answers for the strings it has seen since the last secret was added: a report
        # repeats its words (sources, statuses) once per repository.
        self._clean: dict[str, str] = {}
        words = sorted({w for w in public if len(w) >= GRAM}, key=len, reverse=True)
        self._public = re.compile("|".join(re.escape(w) for w in words)) if words else None
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """A secret: masked whole, and by any run of 8 or more of its characters."""
        if not secret:
            return
        self._exact(secret_forms(secret))
        raw = secret_bytes(secret)
        self._clean.clear()
        for form in (secret, quote(raw, safe=""), quote(raw, safe="/"), quote_plus(raw), percent_every_byte(raw)):
            self._folded |= _grams(form.translate(ASCII_LOWER))
        self._encoded |= _base64_grams(raw)

    def add_pair(self, user: str, secret: str) -> None:
        """The Basic-auth pair "user:secret", masked whole; its runs are the secret's (added
        with `add`), so that the user name alone (an email) is not masked everywhere."""
        self._exact(secret_forms(f"{user}:{secret}"))

    def _exact(self, forms: Iterable[str]) -> None:
        self._clean.clear()
        self._forms |= set(forms)
        alternatives = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in alternatives))

    @classmethod
    def for_variables(cls, values: Mapping[str, str], public: Iterable[str] = ()) -> Redactor:
        """Every secret the variables hold, alone and as the Basic-auth pair it travels in."""
        redactor = cls(public=public)
        for name in SECRET_VARIABLES:
            secret = values.get(name)
            if secret and secret.strip():
                redactor.add(secret)
                redactor.add(secret.strip())
                for user in USER_VARIABLES:
                    if values.get(user):
                        redactor.add_pair(values[user], secret)
        return redactor

    def _runs(self, text: str) -> list[list[int]]:
        """[start, end) of every stretch made of 8-character runs of a secret, merged.
        One pass of set look-ups per string: the redactor sees every log line."""
        folded = text.translate(ASCII_LOWER)
        hits = [
            i
            for i in range(len(text) - GRAM + 1)
            if folded[i : i + GRAM] in self._folded or text[i : i + GRAM] in self._encoded
        ]
        if hits and self._public:
            own = [m.span() for m in self._public.finditer(text)]
            hits = [i for i in hits if not any(start <= i and i + GRAM <= end for start, end in own)]
        runs: list[list[int]] = []
        for i in hits:
            if runs and i <= runs[-1][1]:
                runs[-1][1] = i + GRAM
            else:
                runs.append([i, i + GRAM])
        return runs

    def __call__(self, text: str) -> str:
        text = AUTHORIZATION.sub(r"\1" + MASK, text)
        text = ATLASSIAN_TOKEN.sub(MASK, text)  # a token pasted where no secret was expected
        if self._pattern:
            text = self._pattern.sub(MASK, text)
        if not self._folded and not self._encoded:
            return text
        runs = self._runs(text)
        for start, end in reversed(runs):
            text = text[:start] + MASK + text[end:]
        return text

    def scrub(self, value: Any, keep: frozenset[str] = frozenset()) -> Any:
        """A copy of a JSON-like value that is safe to show and to store: every string
        redacted and neutralised, except that the values of the keys in `keep` (verdicts,
        statuses: words of the report's own vocabulary) are only neutralised, so that a
        secret that happens to be "ready" cannot change the document's structure or verdict.
        Anything that is not JSON (a non-finite number, an object) becomes text."""
        if isinstance(value, str):
            clean = self._clean.get(value)
            if clean is None:
                if len(self._clean) >= CLEAN_MEMO:
                    self._clean.clear()
                clean = self._clean[value] = neutralise(self(value))
            return clean
        if isinstance(value, bool) or value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, Mapping):
            return {
                neutralise(str(k)): (self._keep(v, keep) if k in keep else self.scrub(v, keep))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.scrub(v, keep) for v in value]
        return neutralise(self(str(value)))

    def _keep(self, value: Any, keep: frozenset[str]) -> Any:
        """A kept key's value: a word, or a list of words, is only neutralised; an object under it
        (details.backup) is judged by its own keys, so its `status` stays a word too, and its
        free text is still redacted."""
        if isinstance(value, str):
            return neutralise(value)
        if isinstance(value, (list, tuple)):
            return [self._keep(v, keep) for v in value]
        return self.scrub(value, keep)


class RedactingFilter(logging.Filter):
    """Installed on the log handler, so that even a third-party library's line is scrubbed:
    redacted, neutralised to one line, and a traceback (DEBUG only) redacted and indented,
    so that no line of it can pass for one of the pipe's own."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not print logging's own traceback
            message = str(record.msg)
        lines = [neutralise(self.redactor(message))]
        if record.exc_info:
            lines += self._indented("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            lines += self._indented(record.stack_info)
        record.msg, record.args = "\n".join(lines), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _indented(self, text: str) -> list[str]:
        return ["    " + neutralise(line) for line in self.redactor(text).splitlines()]
