"""The HTTP side: a threaded stdlib server that speaks like Bitbucket Cloud."""

from __future__ import annotations

import base64
import binascii
import gc
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from . import shapes
from .api import MSG_SCOPES, MSG_UNAUTHORIZED, Api, Call, Result
from .gitrepos import GitRepos, http_backend
from .model import Behaviour, Credential, Fault, RecordedRequest, Workspace
from .paging import Page, apply_fields, page_url
from .scopes import GIT_READ, missing_scopes
from .world import World

REALM = 'Basic realm="Bitbucket.org HTTP"'
RATE_LIMIT_BODY = b"Rate limit for this resource has been exceeded"
HTML_BODY = b"<html><body>Bitbucket is down for maintenance</body></html>"
# Git over HTTPS with an app password since 2026-07-28 (research A1). A text/plain error body is
# what git prints as `remote: ...` lines (checked with git 2.39: text/html bodies are not shown).
APP_PASSWORD_GONE = (
    b"CHANGE-3222 - Functionality has been deprecated\n"
    b"App passwords are deprecated and must be replaced with API tokens.\n"
    b"https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-3222\n"
)
GIT_PATH = re.compile(r"^/(?P<workspace>[^/]+)/(?P<slug>[^/]+?)\.git(?P<rest>/.*)$")
REPORT_PATH = re.compile(
    r"^/2\.0/repositories/(?P<workspace>[^/]+)/(?P<repo_slug>[^/]+)"
    r"/commit/(?P<commit>[^/]+)/reports/(?P<reportId>[^/]+)/?$"
)
PRE_FAULTS = {"status", "reset", "slow", "html", "redirect"}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the socket abruptly instead of answering

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(obj).encode(), headers=headers or {})

    @classmethod
    def text(cls, status: int, text: bytes, headers: dict[str, str] | None = None) -> Response:
        return cls(status, text, "text/plain", headers or {})


@dataclass
class Incoming:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    proxied: bool
    scheme: str | None = None
    user: str = ""
    secret: str = ""


def parse_authorization(value: str) -> tuple[str | None, str, str]:
    """(scheme, user, secret) from an Authorization header; user is empty for Bearer."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return "Bearer", "", rest.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "Basic", "", ""
        user, _, secret = decoded.partition(":")
        return "Basic", user, secret
    return (scheme or None), "", ""


class Simulator:
    """A Bitbucket Cloud stand-in on 127.0.0.1 (see test/simulator/__init__.py for the API)."""

    def __init__(
        self,
        workspaces: list[Workspace] | None = None,
        credentials: list[Credential] | None = None,
        latency: float = 0.0,
        faults: list[Fault] | None = None,
        rate_limit: int | None = None,
        behaviour: Behaviour | None = None,
        **switches: Any,
    ) -> None:
        # Switches are Behaviour's fields, given by name: Simulator(..., permissions_list="explicit").
        self.behaviour = behaviour or Behaviour(**switches)
        self.world = World(list(workspaces or []), list(credentials or []), self.behaviour)
        self.latency = latency
        self.faults: list[Fault] = list(faults or [])
        self.rate_limit = rate_limit
        self.requests: list[RecordedRequest] = []
        self.reports: dict[str, Any] = {}
        self.annotations: dict[str, list[Any]] = {}
        # Hostile hooks (test/hostile.py): each may replace the answer to a request.
        self.tampers: list[Callable[[Incoming, Response], Response | None]] = []
        self.api = Api(self.world, self.reports)
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self.first_request_at: float | None = None  # time.time() when the first request arrived
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._git: GitRepos | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, port: int = 0) -> Self:
        """Bind 127.0.0.1 (a free port unless given), build data and git repos, serve."""
        server = _Server(("127.0.0.1", port), _handler_class(self))
        self._server = server
        self.world.build(self.git_url)
        # 50,000 precomputed entries make every full GC pass slow (tens of ms, mid-request):
        # move them out of the collector's way. They live as long as the simulator anyway.
        gc.collect()
        gc.freeze()
        self._create_git_repos()
        self._thread = threading.Thread(
            target=server.serve_forever,
            name="bitbucket-sim",
            kwargs={"poll_interval": 0.1},
            daemon=True,
        )
        self._thread.start()
        return self

    def _create_git_repos(self) -> None:
        wanted = [(ws.slug, r.slug) for ws in self.world.workspaces for r in ws.repositories if r.git]
        if wanted:
            self._git = GitRepos()
            for ws_slug, slug in wanted:
                self._git.create(ws_slug, slug)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._git is not None:
            self._git.cleanup()
            self._git = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/2.0"

    @property
    def git_url(self) -> str:
        return self.base_url

    @property
    def oauth_token_url(self) -> str:
        return self.base_url + "/site/oauth2/access_token"

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    # --- request pipeline -----------------------------------------------------------------

    def respond(self, req: Incoming) -> tuple[Response, Credential | None]:
        """Answer one request; also returns the credential it named, for the record."""
        fault = self._take_fault(req)
        if fault is not None and fault.kind in PRE_FAULTS:
            if fault.kind != "slow":
                return self._fault_response(fault, req), None
            time.sleep(fault.delay)
        response, named = self._route(req)
        if fault is not None and fault.kind == "truncated":
            response.body = response.body[: len(response.body) // 2]
        for tamper in list(self.tampers):
            response = tamper(req, response) or response
        return response, named

    def _take_fault(self, req: Incoming, loop_next: bool = False) -> Fault | None:
        """The first live fault matching the request, used up by one; loop_next faults are taken
        separately, when a page is rendered, so that only paged answers consume them."""
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times != 0
                    and (fault.kind == "loop_next") == loop_next
                    and fault.method.upper() == req.method
                    and re.search(fault.path, req.path)
                ):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def _fault_response(self, fault: Fault, req: Incoming) -> Response:
        if fault.kind == "reset":
            return Response(0, reset=True)
        if fault.kind == "html":
            return Response(200, HTML_BODY, "text/html; charset=utf-8")
        if fault.kind == "redirect":
            target = fault.location or self.base_url + req.path + (f"?{req.query}" if req.query else "")
            return Response.json(302, shapes.error("Found"), {"Location": target})
        if fault.status == 429:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return Response.text(429, RATE_LIMIT_BODY, headers)
        return Response.json(fault.status, shapes.error(f"Simulated error {fault.status}"))

    def _route(self, req: Incoming) -> tuple[Response, Credential | None]:
        if req.proxied:
            return self._proxy(req), None
        if req.path == "/site/oauth2/access_token":
            return self._oauth_token(req), None
        if req.path == "/2.0" or req.path.startswith("/2.0/"):
            return self._api(req)
        git = GIT_PATH.match(req.path)
        if git:
            return self._git_request(req, git.groupdict())
        return Response.json(404, shapes.error(f"Resource not found: {req.path}")), None

    # --- REST API ---------------------------------------------------------------------------

    def _api(self, req: Incoming) -> tuple[Response, Credential | None]:
        cred, named = self.world.authenticate_api(req.scheme, req.user, req.secret)
        if cred is None:
            return Response.json(401, shapes.error(MSG_UNAUTHORIZED), {"WWW-Authenticate": REALM}), named
        if self._over_rate_limit(cred):
            return Response.text(429, RATE_LIMIT_BODY), cred
        call = Call(
            req.method,
            req.path[len("/2.0") :] or "/",
            req.path,
            req.query,
            req.body,
            cred,
            self.base_url,
        )
        result, requirement = self.api.handle(call)
        response = self._render(result, req)
        if 200 <= response.status < 300:
            self._announce_deprecations(req, response)
        sends = self.behaviour.scope_headers
        if sends is None:
            sends = cred.sends_scope_headers()
        if sends:
            response.headers["x-oauth-scopes"] = ", ".join(cred.scopes)
            response.headers["x-credential-type"] = cred.credential_type()
            if requirement is not None and requirement.classic:
                response.headers["x-accepted-oauth-scopes"] = ", ".join(requirement.classic)
        if cred.kind == "access_token" and req.path.startswith("/2.0/repositories/"):
            response.headers["X-RateLimit-Limit"] = "1000"
            response.headers["X-RateLimit-Resource"] = "api"
        return response, cred

    def _announce_deprecations(self, req: Incoming, response: Response) -> None:
        for dep in self.behaviour.deprecations:
            if dep.method.upper() == req.method and re.search(dep.path, req.path):
                if dep.deprecation:
                    response.headers["Deprecation"] = dep.deprecation
                if dep.sunset:
                    response.headers["Sunset"] = dep.sunset
                if dep.link:
                    response.headers["Link"] = f'<{dep.link}>; rel="deprecation"; type="text/html"'
                return

    def _over_rate_limit(self, cred: Credential) -> bool:
        if self.rate_limit is None:
            return False
        with self._lock:
            count = self._counts.get(id(cred), 0) + 1
            self._counts[id(cred)] = count
        return count > self.rate_limit

    def _render(self, result: Result, req: Incoming) -> Response:
        payload = result.payload
        if isinstance(payload, Page) and self._take_fault(req, loop_next=True):
            # A buggy server: `next` leads back to page 1 forever.
            payload.meta["next"] = page_url(self.base_url, req.path, req.query, 1)
        fields = dict(parse_qsl(req.query)).get("fields") if self.behaviour.fields else None
        # Error bodies keep their message and detail whatever fields= asks (as Bitbucket's do).
        if fields and 200 <= result.status < 300:
            obj = payload.to_obj() if isinstance(payload, Page) else payload
            return Response.json(result.status, apply_fields(obj, fields), result.headers)
        if isinstance(payload, Page):
            return Response(result.status, payload.to_bytes(), headers=result.headers)
        return Response.json(result.status, payload, result.headers)

    # --- Pipelines auth proxy (Code Insights without credentials) -----------------------------

    def _proxy(self, req: Incoming) -> Response:
        match = REPORT_PATH.match(req.path)
        if req.method == "PUT" and match:
            result = self.api.store_report(match.groupdict(), req.body)
            return Response.json(result.status, result.payload)
        if req.method == "POST" and re.match(REPORT_PATH.pattern[:-3] + "/annotations/?$", req.path):
            key = req.path.split("/reports/")[0]
            self.annotations.setdefault(key, []).append(json.loads(req.body or b"[]"))
            return Response.json(200, {"values": []})
        message = "The Pipelines proxy only forwards Code Insights reports and annotations."
        return Response.json(403, shapes.error(message))

    # --- OAuth 2 client credentials -----------------------------------------------------------

    def _oauth_token(self, req: Incoming) -> Response:
        if req.method != "POST":
            return Response.json(405, shapes.error("Method not allowed"))
        form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        client_id = req.user if req.scheme == "Basic" else form.get("client_id", "")
        secret = req.secret if req.scheme == "Basic" else form.get("client_secret", "")
        consumer = self.world.oauth_consumer(client_id)
        if consumer is None or consumer.secret != secret or consumer.expired:
            return Response.json(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid OAuth client credentials",
                },
            )
        if form.get("grant_type") != "client_credentials":
            return Response.json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is served here",
                },
            )
        body: dict[str, Any] = {
            "access_token": self.world.issue_oauth_token(consumer),
            "expires_in": 7200,
            "token_type": "bearer",
            "state": "client_credentials",
        }
        if self.behaviour.oauth_response == "legacy":
            # Before 2026-05-04: `scopes`, and a refresh token even for client credentials.
            body.update(scopes=" ".join(consumer.scopes), refresh_token=os.urandom(16).hex())
        else:
            body["scope"] = " ".join(consumer.scopes)  # since 2026-05-04; no refresh token (app user)
        return Response.json(200, body)

    # --- git over HTTPS -------------------------------------------------------------------------

    def _git_request(self, req: Incoming, parts: dict[str, str]) -> tuple[Response, Credential | None]:
        app_password = self.world.app_password(req.secret) if req.scheme == "Basic" else None
        if app_password is not None and self.behaviour.app_password_git == "410":
            return Response.text(410, APP_PASSWORD_GONE), app_password
        cred = self.world.authenticate_git(req.user, req.secret) if req.scheme == "Basic" else None
        if cred is None:
            return Response.text(401, b"Invalid credentials\n", {"WWW-Authenticate": REALM}), None
        service = parse_qsl(req.query)
        if "receive-pack" in parts["rest"] or ("service", "git-receive-pack") in service:
            return Response.text(403, b"This simulator does not accept pushes.\n"), cred
        denied = Response.text(403, MSG_SCOPES.encode() + b"\n")
        if not cred.git_enabled or missing_scopes(cred.kind, cred.scopes, GIT_READ):
            return denied, cred
        idx = self.world.index.get(parts["workspace"])
        entry = idx.by_slug.get(parts["slug"]) if idx else None
        if entry is None or self._git is None or not self._git.exists(parts["workspace"], parts["slug"]):
            return Response.text(404, b"Repository not found\n"), cred
        if self.world.permission(cred, entry) == "none":
            return denied, cred
        out = http_backend(self._git.root, req.method, req.path, req.query, req.headers, req.body)
        headers = dict(out.headers)
        ctype = headers.pop("Content-Type", None)
        return Response(out.status, out.body, ctype, headers), cred


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def _handler_class(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        simulator = sim

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    # Without TCP_NODELAY, small answers on a kept-alive connection wait ~40 ms for delayed ACKs.
    disable_nagle_algorithm = True
    simulator: Simulator

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the record is sim.requests; stderr noise would drown test output

    def _serve(self) -> None:
        arrived = time.time()
        req = self._incoming()
        sim = self.simulator
        if req.path == "/_sim/stats":  # for a separate process (bench/run.py); not recorded
            with sim._lock:
                stats = {
                    "requests": len(sim.requests),
                    "first_request_at": sim.first_request_at,
                    "api_requests": sum(1 for r in sim.requests if r.path.startswith("/2.0")),
                }
            self._send(Response.json(200, stats))
            return
        with sim._lock:
            if sim.first_request_at is None:
                sim.first_request_at = arrived
        try:
            response, named = sim.respond(req)
        except Exception as exc:  # noqa: BLE001 -- a simulator bug must show as a 500, not a hung client
            response, named = (
                Response.json(500, shapes.error(f"Simulator error: {exc!r}")),
                None,
            )
        self._record(req, response, named, arrived)
        if sim.latency:
            time.sleep(sim.latency)
        if response.reset:
            self._reset()
        else:
            self._send(response)

    def _incoming(self) -> Incoming:
        target = self.path
        proxied = target.startswith(("http://", "https://"))
        if proxied:
            parts = urlsplit(target)
            path, query = parts.path, parts.query
        else:
            path, _, query = target.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Incoming(self.command, path, query, headers, self._read_body(), proxied)
        if "authorization" in headers:
            req.scheme, req.user, req.secret = parse_authorization(headers["authorization"])
        return req

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, req: Incoming, response: Response, named: Credential | None, arrived: float) -> None:
        headers = {
            k: ("<redacted>" if k.lower() in ("authorization", "proxy-authorization") else v)
            for k, v in self.headers.items()
        }
        record = RecordedRequest(
            req.method,
            req.path,
            req.query,
            response.status,
            named.kind if named else None,
            req.scheme,
            req.body,
            headers,
            arrived,
        )
        with self.simulator._lock:
            self.simulator.requests.append(record)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        # One write for headers and body (end_headers would flush the headers on their own).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(response.body)
        self.flush_headers()

    def _reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True
