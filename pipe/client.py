"""The one way the pipe talks to Bitbucket: httpx with auth, retries, a deadline and hard bounds.

Secrets stay inside httpx's Authorization header: URLs never carry them, nothing here logs
headers, and failures are described by status and exception type only.

Trust rules (issue 9): a request goes only to its home origin (scheme, host, port: the one of
BITBUCKET_API_URL, or of BITBUCKET_OAUTH_TOKEN_URL for the grant), and httpx never follows a
redirect by itself: one to the same origin is followed (at most MAX_REDIRECTS), one elsewhere
fails the request, so neither the credential nor "evidence" crosses origins. Every body is read
as a stream, inflated by us with a bound (a gzip bomb stops while inflating), and parsed only
after cheap checks of its size, number of values and nesting depth. Bodies that are not JSON are
never kept: only their status and media type.

Announcements (issue 11): every answer passes `_note`, the one place that records what Bitbucket
says about its own future and past. A successful answer carrying `Deprecation`, `Sunset` or a
`Link: <...>; rel="deprecation"` header is an endpoint a backup reads that will go away
(Traffic.deprecations); a 410 whose error names a changelog id (`CHANGE-3071 - Functionality has
been deprecated`) is a removal (Traffic.removals), with the `error.data.announcement_url` given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx

from pipe.errors import ConfigError, Problem

log = logging.getLogger("backup-readiness")
RETRY_STATUSES = frozenset({500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
MAX_BODY = 8 * 1024 * 1024  # after inflating; a page of 100 items is tens of KiB
MAX_IN_FLIGHT = 24 * 1024 * 1024  # all bodies being read at once, whatever CONCURRENCY is
MAX_VALUES = 250_000  # JSON values in one body: bounds the parsed objects (~100 bytes each)
MAX_DEPTH = 64
MESSAGE_LIMIT = 300
MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,40}/[a-z0-9][a-z0-9.+-]{0,60}")
ASCII_NUMBER = re.compile(r"[0-9]{1,12}")
# A JSON string, unrolled so that long strings are matched in one C-level loop.
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
BRACKET_PAIR = re.compile(rb"\[\]|\{\}")
# A lone surrogate survives json.loads (escaped, or as raw bytes: bytes are decoded with
# surrogatepass) and later breaks every UTF-8 writer; only bodies holding one are walked.
# Two patterns, each starting with a literal byte, so that the search skips ahead quickly.
SURROGATE_HINTS = (re.compile(rb"\\u[dD][89abcdefABCDEF]"), re.compile(rb"\xed[\xa0-\xbf]"))
SURROGATE = re.compile("[\ud800-\udfff]")
# How wide the parsed strings are (PEP 393: 1, 2 or 4 bytes a character, a str as wide as its
# widest character): a UTF-8 lead byte >= F0 or an escaped surrogate pair is beyond U+FFFF, a lead
# byte >= C4 or an escape \u0100 and above is beyond U+00FF.
ASCII_BYTES = bytes(range(0x80))
BELOW_ASTRAL, BELOW_WIDE = bytes(range(0xF0)), bytes(range(0xC4))
ESCAPED_ASTRAL = re.compile(rb"\\u[dD][89abAB]")
ESCAPED_WIDE = re.compile(rb"\\u(?:0[1-9a-fA-F]|[1-9a-fA-F])")
# A changelog id as Bitbucket names a removal: "CHANGE-3071 - Functionality has been deprecated".
CHANGE_ID = re.compile(r"\bCHANGE-(\d{1,6})\b")
# A link a report may show: http(s), printable ASCII without spaces, quotes or angle brackets.
PUBLIC_LINK = re.compile(r"https?://[!#-;=?-~]{1,300}")
LINK_VALUE = re.compile(r"<([^<>]{1,2000})>([^<]{0,500})")
UNIX_DATE = re.compile(r"@(\d{1,12})")  # RFC 9745: Deprecation: @1771545600


class ApiFailure(Exception):
    """A request that could not be answered usefully, after retries."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class BearerAuth(httpx.Auth):
    def __init__(self, token: str):
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


@dataclass(frozen=True)
class Origin:
    """Where a credential may go: scheme, host and port, compared exactly."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: httpx.URL | str) -> Origin:
        url = httpx.URL(url)
        port = url.port or (443 if url.scheme == "https" else 80)
        return cls(url.scheme, url.raw_host.decode("ascii", "replace").lower(), port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def media_type(headers: httpx.Headers) -> str:
    """The Content-Type without parameters, or 'no content type' when absent or odd."""
    value = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value if MEDIA_TYPE.fullmatch(value) else "no content type" if not value else "an unreadable content type"


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None: a body that is not JSON is never kept
    headers: httpx.Headers
    content_type: str = "application/json"
    nbytes: int = 0  # body size after inflating
    weight: int = 0  # JSON values counted in the body (a bound on the objects it became)
    width: int = 1  # bytes a character of its widest parsed string (char_width)

    @property
    def memory(self) -> int:
        """What the parsed strings may take: the bytes times the widest character's width. A
        budget of kept pages counts this, not `nbytes` (one emoji makes a string 4 times wider)."""
        return self.nbytes * self.width

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict:
        """Bitbucket's `{"type": "error", "error": {...}}` payload, or {} for any other shape."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return {}

    @property
    def message(self) -> str:
        """Bitbucket's error message (a short str), else the status and, for non-JSON, the media type."""
        message = self.error.get("message")
        if isinstance(message, str) and message.strip():
            return _short(message.strip())
        if self.body is None and self.nbytes and "json" not in self.content_type:
            return f"HTTP {self.status} ({self.content_type}, not JSON)"
        return f"HTTP {self.status}"


@dataclass
class RateLimit:
    limit: int | None = None  # X-RateLimit-Limit: the hourly budget the report compares with
    throttled: int = 0  # 429 answers seen


@dataclass(frozen=True)
class Deprecation:
    """An endpoint that still answers but is announced to go: the dates as ISO 8601 (UTC), or None
    when the header was absent or unreadable; the link Bitbucket gave, if any."""

    endpoint: str
    deprecation: str | None
    sunset: str | None
    link: str | None


@dataclass(frozen=True)
class Removal:
    """A 410 that names the platform change behind it."""

    change: str  # "CHANGE-3071"
    endpoint: str
    announcement_url: str | None


@dataclass
class Traffic:
    requests: int = 0
    rate: RateLimit = field(default_factory=RateLimit)
    deprecations: list[Deprecation] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)

    def announce(self, found: Deprecation | Removal | None) -> None:
        """Kept once: every page of a listing carries the same headers."""
        kept = self.deprecations if isinstance(found, Deprecation) else self.removals
        if found is not None and found not in kept:
            kept.append(found)


def ascii_int(value: str | None) -> int | None:
    """A header's number: ASCII digits only ('²'.isdigit() is True, int('²') is not)."""
    value = (value or "").strip()
    return int(value) if ASCII_NUMBER.fullmatch(value) else None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = ascii_int(headers.get("retry-after"))
    return float(value) if value is not None else None


def public_link(value: object) -> str | None:
    """A server's URL when it is one a report can show (http or https, short, no spaces)."""
    text = value.strip() if isinstance(value, str) else ""
    return text if PUBLIC_LINK.fullmatch(text) else None


def change_id(text: object) -> str | None:
    """'CHANGE-3071' when the text names a changelog id."""
    found = CHANGE_ID.search(text) if isinstance(text, str) else None
    return f"CHANGE-{found.group(1)}" if found else None


def _when(value: str | None, unix: bool) -> str | None:
    """An announcement header's date as ISO 8601 in UTC: `@<seconds>` (RFC 9745) or an HTTP-date
    (RFC 8594's Sunset, and older Deprecation drafts). Anything else is not a date."""
    value = (value or "").strip()
    stamp = UNIX_DATE.fullmatch(value) if unix else None
    try:
        moment = datetime.fromtimestamp(int(stamp.group(1)), UTC) if stamp else parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:  # an HTTP-date is GMT by definition
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _deprecation_link(header: str | None) -> str | None:
    """The target of the Link header's rel="deprecation" entry."""
    for target, params in LINK_VALUE.findall(header or ""):
        rels = re.findall(r'\brel\s*=\s*"?([^";,]*)', params, re.IGNORECASE)
        if any("deprecation" in rel.lower().split() for rel in rels):
            return public_link(target)
    return None


def deprecation(headers: httpx.Headers, endpoint: str) -> Deprecation | None:
    """What a successful answer's announcement headers say, or None when it carries none."""
    link = _deprecation_link(headers.get("link"))
    if "deprecation" not in headers and "sunset" not in headers and link is None:
        return None
    return Deprecation(endpoint, _when(headers.get("deprecation"), True), _when(headers.get("sunset"), False), link)


def removal(reply: Reply, endpoint: str) -> Removal | None:
    """The changelog id a 410 names in its error's message or detail, with its announcement."""
    if reply.status != 410:
        return None
    error = reply.error
    change = change_id(error.get("message")) or change_id(error.get("detail"))
    if change is None:
        return None
    data = error.get("data")
    url = public_link(data.get("announcement_url")) if isinstance(data, dict) else None
    return Removal(change, endpoint, url)


def trust_context(env: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """The CA bundle git trusts too: SSL_CERT_FILE / SSL_CERT_DIR if set, else the system's
    (httpx's default would be certifi, which a TLS-inspecting proxy's CA is never in)."""
    cafile, capath = env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None
    try:
        # What ssl.create_default_context() builds, without its one side effect: it honours
        # SSLKEYLOGFILE, writing every session key (so the credential's traffic) to that file.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # certificate and host name verified
        if cafile or capath:
            context.load_verify_locations(cafile, capath)
        else:
            context.load_default_certs()
        return context
    except (OSError, ssl.SSLError, ValueError):
        name = "SSL_CERT_FILE" if cafile else "SSL_CERT_DIR"
        raise ConfigError(
            [
                Problem(
                    name,
                    "does not point to a readable PEM CA bundle.",
                    f"Set {name} to the CA bundle of the TLS-inspecting proxy (PEM), or unset it to use the system's.",
                )
            ]
        ) from None


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _tls_failure(exc: Exception, url: httpx.URL, home: str) -> str | None:
    """A certificate the CA bundle does not trust: said so, with the variable that fixes it."""
    failure = _cause(exc, ssl.SSLCertVerificationError)
    if failure is None and "CERTIFICATE_VERIFY_FAILED" not in str(exc):
        return None
    detail = getattr(failure, "verify_message", "") or ""
    code = "CERTIFICATE_VERIFY_FAILED" + (f": {_short(str(detail))}" if detail else "")
    return (
        f"the TLS certificate of {home} host {Origin.of(url).host} is not trusted ({code}); if a "
        "TLS-inspecting proxy sits in between, set SSL_CERT_FILE to its CA bundle"
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "Bitbucket did not answer in time"
    if _cause(exc, ssl.SSLError) is not None:
        return f"the TLS handshake failed ({type(_cause(exc, ssl.SSLError)).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to Bitbucket"
    return f"the connection failed ({type(exc).__name__})"


class _Inflater:
    """Content-Encoding done by us, in bounded steps: zlib's max_length stops a bomb mid-way."""

    def __init__(self, encoding: str, where: str):
        self.where = where
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise ApiFailure(f"{where}: the answer uses an encoding the pipe did not ask for")

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Yield the inflated bytes of `data`, never more than `room` + 1 in total."""
        if self._zlib is None:
            yield data
            return
        try:
            while data and room >= 0:
                out = self._zlib.decompress(data, room + 1)
                room -= len(out)
                data = self._zlib.unconsumed_tail
                yield out
        except zlib.error:
            raise ApiFailure(f"{self.where}: the compressed answer is corrupt") from None

    def finish(self, room: int) -> bytes:
        """What zlib still holds once the input ended (at most a window, 32 KiB)."""
        if self._zlib is None:
            return b""
        try:
            return self._zlib.decompress(b"", room + 1) + self._zlib.flush()
        except zlib.error:
            raise ApiFailure(f"{self.where}: the compressed answer is corrupt") from None


def _skeleton(data: bytes | bytearray) -> bytes:
    """The JSON text with the contents of its strings removed (quotes, brackets or commas in
    them are not structure). Without an escaped quote every `"` delimits a string, so a split
    does it; otherwise the (slower) string pattern."""
    if b'\\"' not in data:
        return b"".join(data.split(b'"')[::2])
    return JSON_STRING.sub(b"", data)


def _depth_exceeds(brackets: bytes, limit: int) -> bool:
    """True when balanced brackets nest deeper than `limit`: each pass removes the innermost
    pairs, so a text of depth d is empty after d passes. Unbalanced text stops early and is
    left to the parser (which rejects it, or stops at its own recursion limit)."""
    for _ in range(limit):
        brackets, removed = BRACKET_PAIR.subn(b"", brackets)
        if not brackets or not removed:
            return False
    return bool(brackets)


def _weigh(data: bytes | bytearray, where: str) -> int:
    """Values in a JSON text, and its nesting depth checked, before any parsing (C-speed scans)."""
    skeleton = _skeleton(data)
    brackets = skeleton.translate(None, NOT_BRACKETS)
    weight = skeleton.count(b",") + skeleton.count(b":") + brackets.count(b"[") + brackets.count(b"{") + 1
    if weight > MAX_VALUES:
        raise ApiFailure(f"{where}: the answer holds more than {MAX_VALUES:,} JSON values; not read")
    if len(brackets) > MAX_DEPTH and _depth_exceeds(brackets, MAX_DEPTH):  # fewer cannot nest deeper
        raise ApiFailure(f"{where}: the answer nests JSON deeper than {MAX_DEPTH} levels; not read")
    return weight


def _clean(value: Any) -> Any:
    """Lone surrogates replaced by U+FFFD, everywhere (depth is already bounded)."""
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def char_width(data: bytes | bytearray) -> int:
    """Bytes a character of the widest string `data` can parse into: 1, 2 or 4. One astral
    character makes every character of its string (and of the decoded text json.loads builds
    first) 4 bytes wide, 4 times what UTF-8 takes for ASCII. C-speed scans only."""
    high = data.translate(None, ASCII_BYTES)
    escaped = b"\\u" in data
    if high.translate(None, BELOW_ASTRAL) or (escaped and ESCAPED_ASTRAL.search(data)):
        return 4
    if high.translate(None, BELOW_WIDE) or (escaped and ESCAPED_WIDE.search(data)):
        return 2
    return 1


def parse_json(data: bytes | bytearray, where: str) -> tuple[Any, int]:
    """(parsed body, weight); ValueError for a body that is not JSON, ApiFailure for one too big."""
    weight = _weigh(data, where)
    width = char_width(data)
    if len(data) * width > MAX_BODY:  # what the strings cost in memory, not their UTF-8 bytes
        raise ApiFailure(
            f"{where}: the answer would take more than {MAX_BODY // 2**20} MiB once parsed "
            f"({width} bytes a character); not read"
        )
    try:
        body = json.loads(data)
    except RecursionError:  # unbalanced brackets can still reach the parser's own limit
        raise ApiFailure(f"{where}: the answer nests JSON too deeply; not read") from None
    if any(hint.search(data) for hint in SURROGATE_HINTS):
        body = _clean(body)
    return body, weight


@dataclass
class _Answer:
    """One HTTP exchange, read and (if JSON) parsed within the bounds."""

    status: int
    headers: httpx.Headers
    url: httpx.URL
    reply: Reply
    json_failure: str = ""  # why a body that should be JSON is not


class Client:
    """Async Bitbucket client: bounded concurrency, bounded retries, one global deadline."""

    def __init__(
        self,
        api_url: str,
        auth: httpx.Auth | None,
        *,
        concurrency: int,
        deadline: float,
        retries: int = 4,
        request_timeout: float = 30.0,
        backoff: float = 0.5,
        observer: Callable[[httpx.Response], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self.origin = Origin.of(self.api_url)
        self._api_path = httpx.URL(self.api_url).path.rstrip("/")
        self.deadline = deadline
        self.retries, self.request_timeout, self.backoff = retries, request_timeout, backoff
        self.traffic = Traffic()
        self._observer = observer
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        self._http = httpx.AsyncClient(
            auth=auth,
            follow_redirects=False,  # redirects are ours to judge: see _exchange
            transport=transport,
            trust_env=False,
            verify=verify if verify is not None else trust_context(),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "gzip",  # the one encoding _Inflater bounds
                "User-Agent": "backup-readiness-pipe",
            },
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    def authorize(self, auth: httpx.Auth) -> None:
        self._http.auth = auth

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
        absolute = path[:8].lower().startswith(("http://", "https://"))
        url = httpx.URL(path if absolute else f"{self.api_url}{path}")
        return url.copy_merge_params(params) if params else url

    def is_home(self, url: str | httpx.URL) -> bool:
        """True when `url` is on the API's origin (the only place the credential may go)."""
        try:
            return Origin.of(url) == self.origin
        except (httpx.InvalidURL, ValueError, TypeError):
            return False

    def where(self, method: str, url: httpx.URL | str) -> str:
        """'GET /repositories/acme': the endpoint a failure names (no query, no host)."""
        url = httpx.URL(url)
        path = url.raw_path.decode("ascii", "replace").split("?", 1)[0]
        if self.is_home(url) and self._api_path and path.startswith(self._api_path + "/"):
            path = path[len(self._api_path) :]
        return f"{method} {path[:120]}"

    async def _pause(self, attempt: int, hint: float | None = None) -> None:
        wait = hint if hint is not None else self.backoff * (2**attempt) * (0.5 + random.random())
        wait = min(wait, 60.0, max(0.0, self.remaining() - 1.0))
        await asyncio.sleep(wait)

    def _note(self, answer: _Answer, request: httpx.Request, content: bytes, where: str) -> None:
        rate, headers = self.traffic.rate, answer.headers
        rate.limit = ascii_int(headers.get("x-ratelimit-limit")) or rate.limit
        if answer.reply.ok:
            self.traffic.announce(deprecation(headers, where))
        self.traffic.announce(removal(answer.reply, where))
        if self._observer:
            # The observer sees the status, the headers and only a body that passed the bounds.
            dropped = ("content-encoding", "content-length", "transfer-encoding")
            kept = httpx.Headers([(k, v) for k, v in headers.raw if k.decode("latin-1").lower() not in dropped])
            kept["content-length"] = str(len(content))
            self._observer(httpx.Response(answer.status, headers=kept, content=content, request=request))

    async def _read(self, response: httpx.Response, where: str) -> bytearray:
        """The body, inflated, never more than MAX_BODY, and never more than MAX_IN_FLIGHT in all."""
        declared = ascii_int(response.headers.get("content-length"))
        if declared is not None and declared > MAX_BODY:  # compressed or not, it would inflate beyond
            raise ApiFailure(f"{where}: the answer is larger than {MAX_BODY // 2**20} MiB; not read")
        inflater = _Inflater(response.headers.get("content-encoding", ""), where)
        body = bytearray()
        try:
            async for raw in response.aiter_raw():
                for piece in inflater.feed(raw, MAX_BODY - len(body)):
                    body += piece
                    self._in_flight += len(piece)
                    if len(body) > MAX_BODY:
                        raise ApiFailure(f"{where}: the answer is larger than {MAX_BODY // 2**20} MiB; not read")
                    if self._in_flight > MAX_IN_FLIGHT:
                        raise ApiFailure(f"{where}: the answers being read exceed {MAX_IN_FLIGHT // 2**20} MiB")
            rest = inflater.finish(MAX_BODY - len(body))
            body += rest
            self._in_flight += len(rest)
            if len(body) > MAX_BODY:
                raise ApiFailure(f"{where}: the answer is larger than {MAX_BODY // 2**20} MiB; not read")
        except BaseException:
            self._in_flight -= len(body)
            raise
        return body

    def _parse(self, status: int, headers: httpx.Headers, body: bytearray, where: str) -> tuple[Reply, str, bytes]:
        """(Reply, why the body is not JSON, the bytes the observer may see)."""
        ctype = media_type(headers)
        reply = Reply(status, None, headers, ctype, len(body))
        if not body:
            return reply, "", b""
        try:
            reply.body, reply.weight = parse_json(body, where)
            reply.width = char_width(body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
            kind = "HTML" if "html" in ctype else "unreadable JSON" if "json" in ctype else ctype
            return reply, f"Bitbucket answered {status} with {kind} instead of JSON", b""
        return reply, "", bytes(body) if status == 403 else b""

    async def _once(self, method: str, url: httpx.URL, where: str, **kwargs) -> _Answer:
        timeout = min(self.request_timeout, max(0.1, self.remaining()))
        started = time.monotonic()
        body = bytearray()
        try:
            async with self._slots:
                self.traffic.requests += 1
                async with asyncio.timeout(timeout):  # the whole exchange, body included: no slow drip
                    async with self._http.stream(method, url, timeout=timeout, **kwargs) as response:
                        body = await self._read(response, where)
                        request, status, headers = response.request, response.status_code, response.headers
            reply, failure, seen = self._parse(status, headers, body, where)
        finally:
            self._in_flight -= len(body)
        log.debug("%s -> %s (%.0f ms)", where, status, (time.monotonic() - started) * 1000)
        answer = _Answer(status, headers, request.url, reply, failure)
        self._note(answer, request, seen, where)
        return answer

    async def _exchange(self, method: str, url: httpx.URL, home: Origin, where: str, **kwargs) -> _Answer:
        """One request, and the redirects that stay on `home` (at most MAX_REDIRECTS)."""
        for _ in range(MAX_REDIRECTS + 1):
            answer = await self._once(method, url, where, **kwargs)
            location = answer.headers.get("location")
            if answer.status not in REDIRECT_STATUSES or not location:
                return answer
            try:
                target = answer.url.join(location)
                elsewhere = Origin.of(target)
            except (httpx.InvalidURL, ValueError, TypeError):
                raise ApiFailure(f"{where}: Bitbucket redirected to an unreadable location") from None
            if elsewhere != home:
                raise ApiFailure(
                    f"{where}: Bitbucket redirected to another origin ({elsewhere}); not followed with the credential"
                )
            if answer.status == 303 or (answer.status in (301, 302) and method != "GET"):
                method, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data", "content")}
            url = target
        raise ApiFailure(f"{where}: Bitbucket answered with a redirect loop (more than {MAX_REDIRECTS} redirects)")

    async def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        home: Origin | None = None,
        host: str = "api",
        **kwargs,
    ) -> _Answer:
        """One request with retries on 429, 5xx and broken connections; never off `home`."""
        try:
            url, home = self.url(path, params), home or self.origin
            target = Origin.of(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            raise ApiFailure(f"{method} (a link Bitbucket gave): not a readable URL; not followed") from None
        where, reason = self.where(method, url), "no attempt made"
        if target != home:
            raise ApiFailure(f"{where}: the link points to another origin ({target}); not followed with the credential")
        for attempt in range(self.retries + 1):
            if self.remaining() <= 0:
                raise ApiFailure(f"{where}: the TIMEOUT deadline passed ({reason})")
            try:
                answer = await self._exchange(method, url, home, where, **kwargs)
            except (httpx.TransportError, TimeoutError) as exc:
                tls = _tls_failure(exc, url, host)
                if tls:
                    raise ApiFailure(tls) from None  # no retry: the certificate will not change
                reason = _describe(exc)
            else:
                if answer.status == 429:
                    self.traffic.rate.throttled += 1
                    reason = "Bitbucket's rate limit was reached (429)"
                    if attempt < self.retries:
                        await self._pause(attempt + 2, _retry_after(answer.headers))
                    continue
                if answer.status not in RETRY_STATUSES:
                    return answer
                reason = f"Bitbucket answered {answer.status}"
            if attempt < self.retries:
                await self._pause(attempt)
        raise ApiFailure(f"{reason}, {self.retries + 1} attempts")

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Reply:
        """GET and parse JSON; a 2xx that is not JSON counts as a failed attempt."""
        reason = ""
        for attempt in range(2):
            answer = await self.send("GET", path, params)
            if answer.json_failure and answer.reply.ok:
                reason = answer.json_failure
                if attempt == 0:
                    await self._pause(0)
                continue
            return answer.reply
        raise ApiFailure(reason)

    async def post_form(self, url: str, data: Mapping[str, str], auth: httpx.Auth) -> Reply:
        """The OAuth grant: its only home is the origin of `url` (BITBUCKET_OAUTH_TOKEN_URL)."""
        answer = await self.send("POST", url, home=Origin.of(url), host="OAuth token", data=data, auth=auth)
        return answer.reply
