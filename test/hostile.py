"""A hostile Bitbucket for the security tests: the simulator with answers rewritten, and a
witness listener on another port that proves the credential never arrives anywhere else.

    sim = start([api_token()])
    witness = Witness().start()
    rewrite(sim, r"/repositories/acme$", lambda body, req: {**body, "next": witness.url + "/p2"})
    ... run the pipe ...
    assert witness.saw_nothing()

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from test.simulator.server import Incoming, Response, Simulator

BodyRewrite = Callable[[Any, Incoming], Any]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; the Authorization value is kept to compare


@dataclass
class Witness:
    """A second origin. It counts every TCP connection (a TLS hello included) and records
    every HTTP request; it answers JSON pages with 200 (bait: "evidence" from elsewhere) and
    git with a 401 Basic challenge (bait: a credential sent after a redirect)."""

    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Self:
        witness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                with witness._lock:
                    witness.connections += 1
                super().setup()

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                with witness._lock:
                    witness.requests.append(Seen(self.command, self.path, headers))
                if ".git/" in self.path:
                    body, status = b"auth please\n", 401
                    extra = {"WWW-Authenticate": 'Basic realm="witness"', "Content-Type": "text/plain"}
                else:
                    page = {"values": [{"slug": "elsewhere", "full_name": "acme/elsewhere"}], "size": 1, "pagelen": 100}
                    body, status, extra = json.dumps(page).encode(), 200, {"Content-Type": "application/json"}
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credentials_seen(self) -> list[str]:
        return [s.headers["authorization"] for s in self.requests if "authorization" in s.headers]

    def saw_nothing(self) -> bool:
        """No credential arrived, and no request carried one in any header or in the path."""
        return not self.credentials_seen()


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tamper(
    sim: Simulator,
    path: str,
    answer: Callable[[Incoming, Response], Response | None],
    method: str = "GET",
    times: int = -1,
) -> None:
    """Replace the simulator's answer to requests whose path matches `path` (a regex)."""
    left = [times]

    def hook(req: Incoming, response: Response) -> Response | None:
        if req.method != method or not re.search(path, req.path) or left[0] == 0:
            return None
        left[0] -= 1
        return answer(req, response)

    sim.tampers.append(hook)


def rewrite(sim: Simulator, path: str, change: BodyRewrite, method: str = "GET", times: int = -1) -> None:
    """Rewrite the JSON body of matching answers; status and headers stay the simulator's."""

    def answer(req: Incoming, response: Response) -> Response:
        body = json.loads(response.body) if response.body else None
        new = change(body, req)
        return Response(response.status, json.dumps(new).encode(), response.content_type, dict(response.headers))

    tamper(sim, path, answer, method, times)


def raw(
    status: int, body: bytes, content_type: str | None = "application/json", headers: dict[str, str] | None = None
) -> Callable[[Incoming, Response], Response]:
    """An answer of exactly these bytes (a bomb, a broken document, an HTML page)."""
    return lambda req, response: Response(status, body, content_type, dict(headers or {}))
