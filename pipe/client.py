"""The one way the pipe talks to Bitbucket: httpx with auth, pages, retries and a deadline.

Secrets stay inside httpx's Authorization header: URLs never carry them, nothing here logs
headers, and failures are described by status and exception type only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

log = logging.getLogger("backup-readiness")
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_PAGELEN = 100


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


@dataclass
class Reply:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict:
        """Bitbucket's `{"type": "error", "error": {...}}` payload, or {}."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return {}

    @property
    def message(self) -> str:
        return str(self.error.get("message") or f"HTTP {self.status}")


@dataclass
class RateLimit:
    limit: int | None = None
    resource: str | None = None
    near_limit: bool = False
    throttled: int = 0  # 429 answers seen


@dataclass
class Traffic:
    requests: int = 0
    retries: int = 0
    rate: RateLimit = field(default_factory=RateLimit)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "Bitbucket did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to Bitbucket"
    if isinstance(exc, httpx.TooManyRedirects):
        return "Bitbucket answered with a redirect loop"
    return f"the connection failed ({type(exc).__name__})"


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
    ):
        self.api_url = api_url.rstrip("/")
        self.deadline = deadline
        self.retries, self.request_timeout, self.backoff = retries, request_timeout, backoff
        self.traffic = Traffic()
        self._observer = observer
        self._slots = asyncio.Semaphore(concurrency)
        self._http = httpx.AsyncClient(
            auth=auth,
            follow_redirects=True,
            transport=transport,
            trust_env=False,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Accept": "application/json", "User-Agent": "backup-readiness-pipe"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    def authorize(self, auth: httpx.Auth) -> None:
        self._http.auth = auth

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.api_url}{path}"

    async def _pause(self, attempt: int, hint: float | None = None) -> None:
        wait = hint if hint is not None else self.backoff * (2**attempt) * (0.5 + random.random())
        wait = min(wait, 60.0, max(0.0, self.remaining() - 1.0))
        self.traffic.retries += 1
        await asyncio.sleep(wait)

    def _note(self, response: httpx.Response) -> None:
        rate = self.traffic.rate
        if limit := response.headers.get("x-ratelimit-limit"):
            rate.limit = int(limit) if limit.isdigit() else rate.limit
        rate.resource = response.headers.get("x-ratelimit-resource") or rate.resource
        near = response.headers.get("x-ratelimit-nearlimit", "").lower()
        rate.near_limit = rate.near_limit or near in ("true", "1") or (near.isdigit() and int(near) > 0)
        if self._observer:
            self._observer(response)

    async def _once(self, method: str, url: str, **kwargs) -> httpx.Response:
        timeout = min(self.request_timeout, max(0.1, self.remaining()))
        async with self._slots:
            self.traffic.requests += 1
            started = time.monotonic()
            response = await self._http.request(method, url, timeout=timeout, **kwargs)
        log.debug(
            "%s %s -> %s (%.0f ms)",
            method,
            response.request.url.copy_with(query=None),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        self._note(response)
        return response

    async def send(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request with retries on 429, 5xx and broken connections."""
        url, reason = self.url(path), "no attempt made"
        for attempt in range(self.retries + 1):
            if self.remaining() <= 0:
                raise ApiFailure(f"the TIMEOUT deadline passed ({reason})")
            try:
                response = await self._once(method, url, **kwargs)
            except (httpx.TransportError, httpx.TooManyRedirects) as exc:
                reason = _describe(exc)
            else:
                if response.status_code == 429:
                    self.traffic.rate.throttled += 1
                    reason = "Bitbucket's rate limit was reached (429)"
                    if attempt < self.retries:
                        await self._pause(attempt + 2, _retry_after(response))
                    continue
                if response.status_code not in RETRY_STATUSES:
                    return response
                reason = f"Bitbucket answered {response.status_code}"
            if attempt < self.retries:
                await self._pause(attempt)
        raise ApiFailure(f"{reason}, {self.retries + 1} attempts")

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Reply:
        """GET and parse JSON; a 2xx that is not JSON counts as a failed attempt."""
        reason = ""
        for attempt in range(2):
            response = await self.send("GET", path, params=params)
            try:
                body = response.json() if response.content else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
                if response.is_success:
                    kind = "HTML" if "html" in response.headers.get("content-type", "") else "unreadable JSON"
                    reason = f"Bitbucket answered {response.status_code} with {kind} instead of JSON"
                    if attempt == 0:
                        await self._pause(0)
                    continue
            return Reply(response.status_code, body, response.headers)
        raise ApiFailure(reason)

    async def post_form(self, url: str, data: Mapping[str, str], auth: httpx.Auth) -> Reply:
        response = await self.send("POST", url, data=data, auth=auth)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        return Reply(response.status_code, body, response.headers)

    async def collect(
        self, path: str, params: Mapping[str, Any] | None = None, on_first: Callable[[Reply], None] | None = None
    ) -> tuple[Reply, list[dict]]:
        """Every item of a paged collection. Pages after the first are fetched side by side
        when the first page tells the size; otherwise `next` is followed, guarding loops."""
        query = {**(params or {}), "pagelen": MAX_PAGELEN}
        first = await self.get(path, query)
        if on_first:
            on_first(first)
        if not first.ok or not isinstance(first.body, dict):
            return first, []
        values = list(first.body.get("values") or [])
        size, pagelen = first.body.get("size"), first.body.get("pagelen") or MAX_PAGELEN
        if not first.body.get("next"):
            return first, values
        if isinstance(size, int) and isinstance(pagelen, int) and pagelen > 0:
            pages = range(2, math.ceil(size / pagelen) + 1)
            replies = await asyncio.gather(*(self.get(path, {**query, "page": n}) for n in pages))
            for reply in replies:
                values.extend(self._page_values(reply))
            return first, values
        return first, values + await self._follow(first.body["next"])

    async def _follow(self, url: str) -> list[dict]:
        seen: set[str] = set()
        values: list[dict] = []
        while url:
            if url in seen:
                raise ApiFailure("Bitbucket's pagination looped back to a page already read")
            seen.add(url)
            reply = await self.get(url)
            values.extend(self._page_values(reply))
            url = reply.body.get("next") if isinstance(reply.body, dict) else None
        return values

    @staticmethod
    def _page_values(reply: Reply) -> list[dict]:
        if not reply.ok or not isinstance(reply.body, dict):
            raise ApiFailure(f"a page of results failed: {reply.message}")
        return list(reply.body.get("values") or [])
