"""Issue 9, transport: the credential goes only to its origin, no server answer outgrows the
run's bounds, odd answers never crash the client, and TLS trusts the CA bundle git trusts.

Every case runs the pipe against the simulator made hostile (test/hostile.py); a Witness on
another port (or another host name, or plain HTTP on the TLS port) proves that nothing arrived
anywhere else. The bounds cases run `python -m pipe` as a child process, so that its peak memory
(ru_maxrss) and wall time are the real ones."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipe.client import MESSAGE_LIMIT, Client
from test.conftest import ACCESS_TOKEN, API_TOKEN, OAUTH_SECRET, access_token, api_token, credential_env, oauth
from test.hostile import Witness, raw, rewrite, tamper
from test.simulator import Fault, Simulator
from test.simulator.server import Incoming, Response

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 8
MAX_RSS_MB = 150
REPOS = r"^/2\.0/repositories/acme$"
USER = r"^/2\.0/user$"
TOKEN = r"^/site/oauth2/access_token$"
PULLS = r"/pullrequests$"
FULL_ACCESS = ["repository", "repository:admin", "pullrequest", "pipeline", "project"]
CREDENTIALS: dict[str, Callable[..., Any]] = {
    "api_token": api_token,
    "access_token": lambda **kw: access_token(FULL_ACCESS, **kw),
    "oauth": oauth,
}
MiB = 1024 * 1024


def clean(output: str) -> None:
    # The simulator runs in this process: a connection the pipe dropped mid-answer (the run
    # ended) makes socketserver print its own traceback to stderr, which is not the pipe's.
    output = re.sub(r"-{40} Exception occurred during processing of request.*?-{40}", "", output)
    assert "Traceback" not in output, output
    assert "Internal error" not in output and "unexpectedly" not in output, output


@pytest.fixture
def witness() -> Iterator[Witness]:
    w = Witness().start()
    yield w
    w.stop()


def hosts_seen(sim: Simulator) -> set[str]:
    return {next((v for k, v in r.headers.items() if k.lower() == "host"), "") for r in sim.requests}


def without_size(body: Any, next_url: str) -> Any:
    """A first page that does not tell its size (so `next` is what the client would follow)."""
    if not isinstance(body, dict) or "values" not in body:
        return body
    return {**{k: v for k, v in body.items() if k != "size"}, "next": next_url}


# --- 1. Confinement ----------------------------------------------------------------------------


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("target", ["other-port", "other-host", "other-host-same-port"])
def test_a_next_link_to_another_origin_is_never_requested(start, run_pipe, witness, credential, target):
    cred = CREDENTIALS[credential]()
    sim = start([cred])
    origin = {
        "other-port": witness.url,
        "other-host": f"http://localhost:{witness.port}",
        "other-host-same-port": f"http://localhost:{sim.port}",
    }[target]
    rewrite(sim, REPOS, lambda body, req: without_size(body, f"{origin}/2.0/repositories/acme?page=2"))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 3, run.output
    assert run.category("repositories")["backup"] == "unknown"
    reason = f"GET /repositories/acme: a page links its next page on another origin ({origin}); not followed"
    assert f"{reason} with the credential" in run.output, run.output
    assert witness.connections == 0 and witness.saw_nothing()
    assert not any(host.startswith("localhost") for host in hosts_seen(sim)), hosts_seen(sim)


@pytest.mark.parametrize(
    "link", ["/2.0/repositories/acme?page=2", "file:///etc/passwd", "ftp://127.0.0.1/x"]
)  # a `next` that is not a string at all is the shape check's (test_trust_shapes.py)
def test_a_next_that_is_not_an_absolute_http_link_is_not_followed(start, run_pipe, witness, link):
    cred = api_token()
    sim = start([cred])
    rewrite(sim, REPOS, lambda body, req: without_size(body, link))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 3, run.output
    assert "GET /repositories/acme: a page's `next` is not an absolute http(s) link" in run.output, run.output
    # The link was never asked for: no numbered page of the list was requested.
    assert not [r for r in sim.requests if r.path == "/2.0/repositories/acme" and "page=" in r.query]


def test_a_next_link_in_upper_case_is_still_another_origin(start, run_pipe, witness):
    cred = api_token()
    sim = start([cred])
    rewrite(sim, REPOS, lambda body, req: without_size(body, f"HTTP://LOCALHOST:{witness.port}/2.0/x"))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 3, run.output
    assert f"on another origin (http://localhost:{witness.port}); not followed" in run.output, run.output
    assert witness.connections == 0


REDIRECTED = [(c, e) for c in CREDENTIALS for e in ("repository-list", "user")] + [("oauth", "oauth-token")]


@pytest.mark.parametrize("credential,endpoint", REDIRECTED)
def test_a_redirect_to_another_origin_is_never_followed(start, run_pipe, witness, credential, endpoint):
    path, where, method = {
        "repository-list": (REPOS, "GET /repositories/acme", "GET"),
        "user": (USER, "GET /user", "GET"),
        "oauth-token": (TOKEN, "POST /site/oauth2/access_token", "POST"),
    }[endpoint]
    cred = CREDENTIALS[credential]()
    location = f"{witness.url}{path.strip('^$').replace(chr(92), '')}"
    sim = start([cred], faults=[Fault(path, "redirect", times=-1, method=method, location=location)])
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 3, run.output
    expected = f"{where}: Bitbucket redirected to another origin ({witness.url}); not followed with the credential"
    assert expected in run.output, run.output
    assert witness.connections == 0 and witness.saw_nothing()  # and its 200 "evidence" was never read
    if endpoint == "repository-list":
        assert run.category("repositories")["backup"] == "unknown"
    assert sim.faults[0].times == -1 and any(r.status == 302 for r in sim.requests)


def test_a_redirect_on_the_same_origin_is_followed(start, run_pipe, witness):
    """Two hops on the API's own origin (at most three are followed) still read the listing."""
    cred = api_token()
    sim = start([cred], faults=[Fault(REPOS, "redirect", times=2)])  # no location: the same URL again
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 0, run.output
    assert run.section["repositories"]["total"] == 6
    assert [r.status for r in sim.requests if r.path == "/2.0/repositories/acme"][:3] == [302, 302, 200]


@pytest.mark.parametrize(
    "variable,value",
    [
        ("BITBUCKET_API_URL", "http://api.bitbucket.example/2.0"),
        ("BITBUCKET_GIT_URL", "http://bitbucket.example"),
        ("BITBUCKET_OAUTH_TOKEN_URL", "http://10.0.0.1/site/oauth2/access_token"),
        ("BITBUCKET_API_URL", "http://127.0.0.1.example/2.0"),
    ],
)
def test_http_is_refused_for_a_host_that_is_not_loopback(start, run_pipe, variable, value):
    cred = oauth()
    sim = start([cred])
    run = run_pipe(sim, cred, **{variable: value})
    clean(run.output)
    assert run.code == 2, run.output
    assert f"{variable}: uses http://" in run.output and f"Use https:// in {variable}" in run.output
    assert value not in run.output  # a URL is never echoed: it may hold a secret
    assert sim.requests == []


@pytest.mark.parametrize("host,code", [("127.0.0.1", 0), ("localhost", 0), ("127.0.0.2", 3), ("[::1]", 3)])
def test_http_is_accepted_for_loopback_and_the_pipelines_proxy(start, run_pipe, host, code):
    """Loopback is not a configuration error (the simulator listens on 127.0.0.1 only, so the
    other loopback addresses end in "could not connect", exit 3); the Pipelines proxy is http://."""
    cred = api_token()
    sim = start([cred])
    run = run_pipe(
        sim,
        cred,
        BITBUCKET_API_URL=f"http://{host}:{sim.port}/2.0",
        CODE_INSIGHTS_PROXY="http://host.docker.internal:29418",  # not loopback, but never a credential
        TIMEOUT="5",
    )
    clean(run.output)
    assert run.code == code, run.output
    assert "uses http://" not in run.output


# --- 2. Bounded by construction: the pipe as a child process -----------------------------------


@dataclass
class Child:
    code: int
    output: str
    rss_mb: float
    elapsed: float


# The pipe runs as a grandchild: a fork of this (large) test process would report this process's
# resident set as the child's ru_maxrss (Linux keeps the high-water mark across exec), so a small
# Python in between starts the pipe and reports its children's peak.
PEAK_OF_CHILD = (
    "import resource, subprocess, sys; code = subprocess.call([sys.executable, '-m', 'pipe']); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def run_child(api_url: str, cred, tmp_path: Path, sim: Simulator | None = None, **variables: str) -> Child:
    """`python -m pipe` with the variables, and its peak RSS (ru_maxrss is KiB on Linux)."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "WORKSPACE": "acme",
        "CODE_INSIGHTS": "false",
        "NO_COLOR": "1",
        "TIMEOUT": str(TIMEOUT),
        "BITBUCKET_API_URL": api_url,
        "BITBUCKET_GIT_URL": sim.git_url if sim else api_url,
        "BITBUCKET_OAUTH_TOKEN_URL": sim.oauth_token_url if sim else api_url,
        **credential_env(cred),
        **variables,
    }
    out_path, peak_path = tmp_path / "child.out", tmp_path / "child.peak"
    began = time.monotonic()
    with out_path.open("wb") as out:
        code = subprocess.call(
            [sys.executable, "-c", PEAK_OF_CHILD, str(peak_path)], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    elapsed = time.monotonic() - began
    output = re.sub(r"\s*\n(?:[A-Z]+: )?\s*", " ", out_path.read_text(errors="replace"))  # as Run.output
    return Child(code, output, int(peak_path.read_text()) / 1024, elapsed)


def gzip_bomb(gib: int = 2) -> bytes:
    """`gib` GiB of zeros as one valid gzip member, ~1 MB per GiB: a 16 MiB block compressed once
    with a full flush is the same bytes every time after the first, so it is repeated, not redone."""
    block = bytes(16 * MiB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    blocks = gib * 64
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (blocks * len(block)) & 0xFFFFFFFF)
    return header + first + again * (blocks - 1) + deflate.flush() + trailer


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = gzip_bomb()
    assert len(data) < 4 * MiB
    return data


def endless_pages(sim: Simulator, size: int | None) -> Callable[[Incoming, Response], Response]:
    """Every page of the listing links a fresh next page (a new cursor each time)."""
    cursors = itertools.count(1)

    def answer(req: Incoming, response: Response) -> Response:
        page = {"pagelen": 1, "values": [{"slug": "repo-0000", "full_name": "acme/repo-0000"}]}
        page["next"] = f"{sim.api_url}/repositories/acme?cursor={next(cursors)}"
        if size is not None:
            page["size"] = size
        return Response.json(200, page)

    return answer


def fat_pages(sim: Simulator) -> Callable[[Incoming, Response], Response]:
    """A listing that claims 100,000 repositories, each page 100 items of ~2,100 JSON values."""
    item = {"slug": "repo-0000", "full_name": "acme/repo-0000", "project": {f"k{i}": {} for i in range(700)}}
    page = {"size": 100_000, "pagelen": 100, "values": [item] * 100, "next": f"{sim.api_url}/repositories/acme?page=2"}
    body = json.dumps(page).encode()

    def answer(req: Incoming, response: Response) -> Response:
        return Response(200, body)

    return answer


# id: (endpoint the reason names, what it says, how the simulator is made hostile)
BOUNDS: dict[str, tuple[str, str, Callable[[Simulator, bytes], None]]] = {
    "size-claims-a-million-pages": (
        "GET /repositories/acme",
        "Bitbucket claims 1,000,000 items in 1,000,000 pages, more than the 1,000 the pipe reads",
        lambda sim, bomb: rewrite(
            sim,
            REPOS,
            lambda body, req: {**body, "size": 1_000_000, "pagelen": 1, "values": body["values"][:1], "next": "x"},
        ),
    ),
    "endless-next-without-size": (
        "GET /repositories/acme",
        "Bitbucket kept linking more pages than the 1,000 the pipe reads",
        lambda sim, bomb: tamper(sim, REPOS, endless_pages(sim, None)),
    ),
    "endless-next-beyond-size": (
        "GET /repositories/acme",
        "Bitbucket linked more pages than its size (5 items) allows",
        lambda sim, bomb: tamper(sim, REPOS, endless_pages(sim, 5)),
    ),
    "gzip-bomb": (
        "GET /repositories/acme",
        "the answer is larger than 8 MiB; not read",
        lambda sim, bomb: tamper(sim, REPOS, raw(200, bomb, headers={"Content-Encoding": "gzip"})),
    ),
    "gzip-bomb-on-user": (
        "GET /user",
        "the answer is larger than 8 MiB; not read",
        lambda sim, bomb: tamper(sim, USER, raw(200, bomb, headers={"Content-Encoding": "gzip"})),
    ),
    "huge-body": (
        "GET /repositories/acme",
        "the answer is larger than 8 MiB; not read",
        lambda sim, bomb: tamper(sim, REPOS, raw(200, b'{"values": [' + b" " * (64 * MiB) + b"]}")),
    ),
    "deep-json": (
        "GET /repositories/acme",
        "the answer nests JSON deeper than 64 levels; not read",
        lambda sim, bomb: tamper(sim, REPOS, raw(200, b"[" * 100_000 + b"]" * 100_000)),
    ),
    "deep-json-in-an-error": (
        "GET /user",
        "the answer nests JSON deeper than 64 levels; not read",
        lambda sim, bomb: tamper(sim, USER, raw(403, b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")),
    ),
    "a-million-objects": (
        "GET /repositories/acme",
        "the answer holds more than 250,000 JSON values; not read",
        lambda sim, bomb: tamper(sim, REPOS, raw(200, b'{"values": [' + b"{}," * 2_500_000 + b"{}]}")),
    ),
    "fat-pages": (
        "GET /repositories/acme",
        "the listings are larger than the pipe keeps",
        lambda sim, bomb: tamper(sim, REPOS, fat_pages(sim)),
    ),
}


@pytest.mark.parametrize("name", BOUNDS)
def test_what_the_server_sends_cannot_outgrow_the_bounds(start, tmp_path, bomb, name):
    where, says, make_hostile = BOUNDS[name]
    cred = api_token()
    sim = start([cred])
    make_hostile(sim, bomb)
    # 1,000 pages one after the other take longer than TIMEOUT here: time enough to meet the cap.
    timeout = 40 if name == "endless-next-without-size" else TIMEOUT
    child = run_child(sim.api_url, cred, tmp_path, sim, TIMEOUT=str(timeout))
    clean(child.output)
    assert child.code == 3, child.output
    assert f"{where}: " in child.output and says in child.output, child.output
    assert child.elapsed < timeout + 5, f"took {child.elapsed:.1f} s with TIMEOUT={timeout}"
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    if where == "GET /repositories/acme":
        report = json.loads((tmp_path / "backup-readiness" / "report.json").read_text())
        (section,) = report["workspaces"]
        assert next(c for c in section["categories"] if c["id"] == "repositories")["backup"] == "unknown"


def wide_pages(sim: Simulator, item_chars: int, wide: bool) -> Callable[[Incoming, Response], Response]:
    """An endless listing (no size, a fresh `next` each time) of 99 items whose one long string
    starts with an astral character: UTF-8 holds the rest in 1 byte a character, Python's str in 4
    (PEP 393: a string is as wide as its widest character), so the memory is 4 times the bytes."""
    filler = ("\U0001f600" if wide else "b") + "a" * item_chars
    cursors = itertools.count(2)

    def answer(req: Incoming, response: Response) -> Response:
        items = [{"slug": "repo-0000", "full_name": "acme/repo-0000", "project": {"key": filler}}] * 99
        page = {"pagelen": 99, "values": items, "next": f"{sim.api_url}/repositories/acme?cursor={next(cursors)}"}
        return Response(200, json.dumps(page, ensure_ascii=False).encode())

    return answer


@pytest.mark.parametrize(
    "item_chars,wide",
    [(80_000, False), (80_000, True), (20_000, True)],
    ids=["8-MB-pages-ascii", "8-MB-pages-one-emoji-per-string", "2-MB-pages-one-emoji-per-string"],
)
def test_wide_strings_are_counted_by_the_memory_they_take(start, tmp_path, item_chars, wide):
    """The bounds on bodies count what the parsed strings will cost, not their UTF-8 bytes."""
    cred = api_token()
    sim = start([cred])
    tamper(sim, REPOS, wide_pages(sim, item_chars, wide))
    child = run_child(sim.api_url, cred, tmp_path, sim, TIMEOUT="30")
    clean(child.output)
    assert child.code in (1, 3), child.output  # never ready on a listing that never ends
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    assert child.elapsed < 30 + 5, f"took {child.elapsed:.1f} s with TIMEOUT=30"
    if wide and item_chars == 80_000:  # 8 MB of UTF-8 would be 32 MB of str: refused by its cost
        assert "the answer would take more than 8 MiB once parsed (4 bytes a character)" in child.output


FLOOD = [f"read:s{i}:bitbucket" for i in range(200_000)]  # ~5 MB, under every body bound


def flood_403(field: str) -> Callable[[Incoming, Response], Response]:
    detail = {"required": ["read:pullrequest:bitbucket"], "granted": ["read:repository:bitbucket"], field: FLOOD}
    body = {"type": "error", "error": {"message": "Your credentials lack required privilege scopes.", "detail": detail}}
    return lambda req, response: Response.json(403, body)


@pytest.mark.parametrize("where", ["required", "granted", "oauth-token-scope"])
def test_a_flood_of_scope_names_is_a_shape_problem(start, tmp_path, where):
    """No Bitbucket answer names hundreds of scopes: beyond MAX_SCOPES the answer is not in
    Bitbucket's shape (unknown, naming the endpoint), and nothing after the deadline (the
    assessment, the reports, the redaction) grows with what the server sent."""
    cred = oauth() if where == "oauth-token-scope" else api_token()
    sim = start([cred])
    if where == "oauth-token-scope":
        rewrite(sim, TOKEN, lambda body, req: {**body, "scope": " ".join(FLOOD)}, method="POST")
    else:
        tamper(sim, PULLS, flood_403(where))
    child = run_child(sim.api_url, cred, tmp_path, sim, TIMEOUT=str(TIMEOUT))
    clean(child.output)
    assert child.elapsed < TIMEOUT + 5, f"took {child.elapsed:.1f} s with TIMEOUT={TIMEOUT}"
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    assert len(child.output) < 100_000, f"the step log holds {len(child.output):,} characters"
    report = (tmp_path / "backup-readiness" / "report.json").read_text()
    assert len(report) < 1_000_000, f"report.json holds {len(report):,} characters"
    assert "names more than 200 scopes" in child.output, child.output
    # The pull requests' 403 is unknown; the token's scopes are also named by every answer's header.
    assert child.code == (0 if where == "oauth-token-scope" else 3), child.output


def test_a_full_name_of_a_million_characters_is_a_shape_problem(start, tmp_path):
    """A full name is a workspace ID and a slug: a longer one is not Bitbucket's (unknown, named),
    and is never carried into the reports, whose work would grow with it after the deadline."""
    cred = api_token()
    sim = start([cred])
    rewrite(sim, REPOS, lambda body, req: {**body, "values": [
        {**v, "full_name": f"acme/{v['slug']}" + "x" * 1_000_000} for v in body["values"]]})  # fmt: skip
    child = run_child(sim.api_url, cred, tmp_path, sim, TIMEOUT=str(TIMEOUT))
    clean(child.output)
    assert child.elapsed < TIMEOUT + 5, f"took {child.elapsed:.1f} s with TIMEOUT={TIMEOUT}"
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    sizes = {
        p.name: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".md", ".xml")
    }
    assert max(sizes.values()) < 200_000, sizes
    assert len(child.output) < 100_000, f"the step log holds {len(child.output):,} characters"
    assert "longer than a repository's full name can be" in child.output, child.output
    assert child.code in (1, 3), child.output


def test_pages_kept_whole_are_counted_by_their_memory(start, tmp_path):
    """A listing whose pages are kept as they came (the workspaces of WORKSPACE '*'): 2 MB pages,
    each string starting with an emoji, for as long as the pipe follows them."""
    cred = api_token()
    sim = start([cred])
    filler = "\U0001f600" + "a" * 20_000
    cursors = itertools.count(2)

    def answer(req: Incoming, response: Response) -> Response:
        items = [{"workspace": {"slug": "acme", "name": filler}}] * 99
        page = {"pagelen": 99, "values": items, "next": f"{sim.api_url}/user/workspaces?cursor={next(cursors)}"}
        return Response(200, json.dumps(page, ensure_ascii=False).encode())

    tamper(sim, r"^/2\.0/user/workspaces$", answer)
    child = run_child(sim.api_url, cred, tmp_path, sim, WORKSPACE="*", TIMEOUT="30")
    clean(child.output)
    assert any(r.path == "/2.0/user/workspaces" for r in sim.requests), "the workspaces were never listed"
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    assert child.code in (2, 3) and "GET /user/workspaces: " in child.output, child.output


def test_char_width_is_the_widest_parsed_character():
    from pipe.client import char_width

    cases = {
        b'{"a": "plain"}': 1,
        '{"a": "café"}'.encode(): 1,  # U+00E9 fits one byte
        b'{"a": "caf\\u00e9"}': 1,
        '{"a": "Ā"}'.encode(): 2,
        b'{"a": "\\u0100"}': 2,
        '{"a": "中"}'.encode(): 2,
        '{"a": "😀"}'.encode(): 4,
        b'{"a": "\\ud83d\\ude00"}': 4,
    }
    assert {data: char_width(data) for data in cases} == cases


@pytest.mark.parametrize("text,width", [("plain", 1), ("中文", 2), ("😀 emoji", 4)])
def test_a_reply_tells_what_its_strings_take_in_memory(start, text, width):
    """Reply.memory is what a budget of kept pages counts: the bytes times the widest width."""
    cred = api_token()
    sim = start([cred])
    body = json.dumps({"display_name": text + "a" * 1000}, ensure_ascii=False).encode()
    tamper(sim, USER, lambda req, response: Response(200, body))
    reply = asyncio.run(get_once(sim, cred, "/user"))
    assert (reply.nbytes, reply.width, reply.memory) == (len(body), width, len(body) * width)


class RawServer:
    """An origin that answers every request with a body that never ends (chunked, 64 KiB at a
    time, until the client hangs up) or that drips one byte a second."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sent = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()

    def start(self) -> RawServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b" " * 65536 if self.mode == "endless" else b" "
                frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
                while not self._stop.is_set() and self.sent < 4096 * MiB:
                    conn.sendall(frame)
                    self.sent += len(chunk)
                    if self.mode == "drip":
                        time.sleep(1)
            except OSError:
                return


@pytest.mark.parametrize(
    "mode,says",
    [("endless", "the answer is larger than 8 MiB; not read"), ("drip", "Bitbucket did not answer in time")],
)
def test_a_body_that_never_ends_is_cut_off(tmp_path, mode, says):
    server = RawServer(mode).start()
    try:
        child = run_child(server.url + "/2.0", api_token(), tmp_path)
    finally:
        server.stop()
    clean(child.output)
    assert child.code == 3, child.output
    assert says in child.output, child.output
    if mode == "endless":
        assert "GET /user: " in child.output or "GET /workspaces/acme: " in child.output, child.output
        assert server.sent < 64 * MiB, f"{server.sent} bytes were sent before the pipe hung up"
    assert child.elapsed < TIMEOUT + 5, f"took {child.elapsed:.1f} s with TIMEOUT={TIMEOUT}"
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"


class AnsweringProxy:
    """A Code Insights proxy that answers every request 200 with `body` (Content-Encoding
    `encoding`), and counts the bytes it got to send before the pipe hung up."""

    def __init__(self, body: bytes, encoding: str | None):
        self.body, self.encoding, self.requests, self.sent = body, encoding, 0, 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def stop(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.requests += 1
                head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                head += f"Content-Encoding: {self.encoding}\r\n" if self.encoding else ""
                conn.sendall(f"{head}Content-Length: {len(self.body)}\r\n\r\n".encode())
                for start in range(0, len(self.body), MiB):
                    conn.sendall(self.body[start : start + MiB])
                    self.sent += MiB
            except OSError:
                return


INSIGHTS = {
    "CODE_INSIGHTS": "true",
    "BITBUCKET_BUILD_NUMBER": "7",
    "BITBUCKET_COMMIT": "b" * 40,
    "BITBUCKET_REPO_SLUG": "repo-0000",
    "BITBUCKET_WORKSPACE": "acme",
}


@pytest.mark.parametrize("kind", ["gzip-bomb", "300-MiB-body"])
def test_the_code_insights_answer_is_never_read(start, tmp_path, bomb, kind):
    """Only the status of the upload matters: the body of the proxy's answer is not read, so
    neither a gzip bomb (inflated by httpx when read) nor a huge body can grow the run."""
    body, encoding = (bomb, "gzip") if kind == "gzip-bomb" else (b" " * (300 * MiB), None)
    proxy = AnsweringProxy(body, encoding)
    cred = api_token()
    sim = start([cred])
    try:
        child = run_child(sim.api_url, cred, tmp_path, sim, CODE_INSIGHTS_PROXY=proxy.url, **INSIGHTS)
    finally:
        proxy.stop()
    clean(child.output)
    assert child.code == 0, child.output
    assert proxy.requests >= 1, "the upload never reached the proxy"
    assert "Code Insights report posted" in child.output, child.output
    assert child.rss_mb < MAX_RSS_MB, f"peak RSS {child.rss_mb:.0f} MB"
    assert child.elapsed < TIMEOUT + 5, f"took {child.elapsed:.1f} s with TIMEOUT={TIMEOUT}"


def test_rate_limit_headers_count_only_ascii_digits(start, run_pipe):
    cred = access_token(FULL_ACCESS)  # the simulator sends X-RateLimit-Limit to access tokens
    sim = start([cred])
    # Header bytes are latin-1 on the wire: "²" itself, and the UTF-8 bytes of an Arabic-Indic 3.
    junk = {"X-RateLimit-Limit": "²", "X-RateLimit-NearLimit": "³", "X-RateLimit-Resource": "\x1b[31mapi"}

    def answer(req: Incoming, response: Response) -> Response:
        response.headers.update(junk)
        return response

    tamper(sim, r"^/2\.0/", answer)
    tamper(sim, PULLS, raw(429, b"slow down", "text/plain", {"Retry-After": "\xd9\xa3", **junk}), times=1)
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code == 0, run.output
    assert [r.status for r in sim.requests if r.path.endswith("/pullrequests")] == [429, 200]
    assert run.section["rate_limit"]["throttled"] == 1, run.section["rate_limit"]
    assert "\\u001b" not in json.dumps(run.report) and "\x1b" not in run.output


# --- 3. A defensive Reply ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    ["denied", ["denied", "twice"], 7, None, {"message": ["not", "a", "string"]}, {"message": "m" * 5000}],
    ids=["string", "list", "number", "null", "message-list", "message-5000"],
)
def test_an_error_of_any_shape_is_read_without_a_crash(start, run_pipe, error):
    cred = api_token()
    sim = start([cred])
    tamper(sim, PULLS, lambda req, response: Response.json(403, {"type": "error", "error": error}))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT))
    clean(run.output)
    assert run.code in (1, 3), run.output
    assert run.category("pull-requests")["backup"] != "ok"
    assert "m" * 301 not in run.output + json.dumps(run.report)


async def get_once(sim: Simulator, cred, path: str):
    """One GET through the client itself, against the hostile simulator."""
    auth = httpx.BasicAuth(cred.email, cred.secret)
    async with Client(sim.api_url, auth, concurrency=2, deadline=time.monotonic() + TIMEOUT) as client:
        return await client.get(path)


@pytest.mark.parametrize(
    "error,message",
    [
        ("denied", "HTTP 403"),
        (["denied", "twice"], "HTTP 403"),
        (7, "HTTP 403"),
        ({"message": ["not", "a", "string"]}, "HTTP 403"),
        ({"message": 42}, "HTTP 403"),
        ({"message": "m" * 5000}, "m" * (MESSAGE_LIMIT - 1) + "…"),
        ({"message": "Your credentials lack one or more required privilege scopes."}, None),
    ],
    ids=["string", "list", "number", "message-list", "message-number", "message-5000", "message"],
)
def test_reply_error_is_only_a_dict_and_message_only_a_short_str(start, error, message):
    cred = api_token()
    sim = start([cred])
    tamper(sim, USER, lambda req, response: Response.json(403, {"type": "error", "error": error}))
    reply = asyncio.run(get_once(sim, cred, "/user"))
    assert isinstance(reply.error, dict) and isinstance(reply.message, str)
    assert reply.error == (error if isinstance(error, dict) else {})
    assert reply.message == (message or error["message"])


def test_a_reply_that_is_not_json_keeps_only_status_and_media_type(start):
    cred = api_token()
    sim = start([cred])
    tamper(sim, USER, raw(403, HTML_PAGE, "text/html; charset=utf-8"))
    reply = asyncio.run(get_once(sim, cred, "/user"))
    assert reply.body is None and reply.error == {}
    assert reply.message == "HTTP 403 (text/html, not JSON)"
    kept = repr(vars(reply)) + repr(list(reply.headers.items()))
    assert "WEBTOKENCANARY" not in kept and "<html" not in kept


HTML_PAGE = b"<html><body>Signed in as Jane Q. Admin <input name=csrftoken value=WEBTOKENCANARY9f3k2></body></html>"


@pytest.mark.parametrize(
    "status,ctype,named",
    [
        (403, "text/html; charset=utf-8", None),  # the probe's wording is the probe's; the body never shows
        (200, "text/html; charset=utf-8", "Bitbucket answered 200 with HTML instead of JSON"),
        (200, "text/plain", "Bitbucket answered 200 with text/plain instead of JSON"),
    ],
)
def test_a_body_that_is_not_json_is_never_kept_printed_or_stored(start, run_pipe, status, ctype, named):
    """A Bitbucket HTML error page can hold the caller's profile and a web token."""
    cred = api_token()
    sim = start([cred])
    tamper(sim, PULLS, raw(status, HTML_PAGE, ctype))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT), DEBUG="true")
    clean(run.output)
    assert run.code in (1, 3), run.output
    assert run.category("pull-requests")["backup"] != "ok"
    if named:
        assert named in run.output, run.output  # only the status and the media type are named
    stored = [p.read_text(errors="replace") for p in run.cwd.rglob("*") if p.is_file()]
    for text in [run.output, *stored]:
        for fragment in ("WEBTOKENCANARY", "Jane Q", "csrftoken", "<html", "<body"):
            assert fragment not in text, fragment


# --- 4. TLS like git -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is needed to make the test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class TlsFront:
    """https://127.0.0.1:PORT in front of a plain HTTP server. The same port also takes plain
    HTTP (a first byte that is not a TLS handshake) and passes it to `plain`: a downgrade to
    http:// on this very host and port would arrive there, at the witness."""

    upstream: int
    cert: Path
    key: Path
    plain: int | None = None
    handshakes_failed: int = 0
    plaintext_connections: int = 0
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> TlsFront:
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(self.cert, self.key)
        self._sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._sock is not None
        return self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._sock:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(1, socket.MSG_PEEK)
            if first == b"\x16":
                try:
                    conn = self._ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    self.handshakes_failed += 1
                    conn.close()
                    return
                target = self.upstream
            else:
                self.plaintext_connections += 1
                if self.plain is None:
                    conn.close()
                    return
                target = self.plain
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            conn.close()
            return
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def tls(certificate, witness) -> Iterator[Callable[[Simulator], TlsFront]]:
    fronts: list[TlsFront] = []

    def _front(sim: Simulator) -> TlsFront:
        cert, key = certificate
        front = TlsFront(sim.port, cert, key, plain=witness.port).start()
        fronts.append(front)
        return front

    yield _front
    for front in fronts:
        front.stop()


def over_tls(front: TlsFront, cred) -> dict[str, str]:
    """The REST API (and the OAuth grant) through the TLS front; git stays on the simulator."""
    variables = {"BITBUCKET_API_URL": f"{front.url}/2.0", "TIMEOUT": str(TIMEOUT)}
    if cred.kind == "oauth":
        variables["BITBUCKET_OAUTH_TOKEN_URL"] = f"{front.url}/site/oauth2/access_token"
    return variables


@pytest.mark.parametrize("credential", ["api_token", "oauth"])
def test_the_api_trusts_ssl_cert_file_like_git(start, run_pipe, tls, certificate, monkeypatch, credential):
    cred = CREDENTIALS[credential]()
    sim = start([cred])
    front = tls(sim)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    run = run_pipe(sim, cred, **over_tls(front, cred))
    clean(run.output)
    assert run.code == 0, run.output
    assert front.handshakes_failed == 0
    assert any(r.path == "/2.0/user" for r in sim.requests)


@pytest.mark.parametrize("credential", ["api_token", "oauth"])
def test_an_untrusted_certificate_is_named_with_the_variable_that_fixes_it(
    start, run_pipe, tls, monkeypatch, credential
):
    cred = CREDENTIALS[credential]()
    sim = start([cred])
    front = tls(sim)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    began = time.monotonic()
    run = run_pipe(sim, cred, **over_tls(front, cred))
    clean(run.output)
    assert run.code == 3, run.output
    host = "OAuth token host" if credential == "oauth" else "api host"
    assert f"the TLS certificate of {host} 127.0.0.1 is not trusted (CERTIFICATE_VERIFY_FAILED" in run.output
    assert "set SSL_CERT_FILE to its CA bundle" in run.output, run.output
    assert "could not connect" not in run.output
    assert front.handshakes_failed >= 1 and sim.requests == []  # nothing reached the server
    assert time.monotonic() - began < 5, "a certificate failure is not retried"


def test_an_unreadable_ssl_cert_file_is_a_configuration_error(start, run_pipe, tls, tmp_path, monkeypatch):
    cred = api_token()
    sim = start([cred])
    front = tls(sim)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    run = run_pipe(sim, cred, **over_tls(front, cred))
    clean(run.output)
    assert run.code == 2, run.output
    assert "SSL_CERT_FILE: does not point to a readable PEM CA bundle" in run.output, run.output
    assert sim.requests == []


@pytest.mark.parametrize("credential", ["api_token", "oauth"])
def test_sslkeylogfile_is_never_honoured(start, run_pipe, tls, certificate, monkeypatch, tmp_path_factory, credential):
    """ssl.create_default_context() writes every TLS session key to SSLKEYLOGFILE: anyone who can
    read that file and the traffic reads the credential. A variable set by an earlier step (or the
    runner) must not turn that on."""
    cred = CREDENTIALS[credential]()
    sim = start([cred])
    front = tls(sim)
    keylog = tmp_path_factory.mktemp("keys") / "keys.log"
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    run = run_pipe(sim, cred, **over_tls(front, cred))
    clean(run.output)
    assert run.code == 0, run.output
    assert any(r.path == "/2.0/user" for r in sim.requests), "the API was not reached over TLS"
    assert not keylog.exists(), f"{keylog} was created: {keylog.read_text().count(chr(10))} lines of TLS secrets"


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_an_https_to_http_downgrade_redirect_is_not_followed(
    start, run_pipe, tls, certificate, witness, monkeypatch, credential
):
    """The redirect keeps host and port and drops only TLS: still another origin."""
    cred = CREDENTIALS[credential]()
    sim = start([cred])
    front = tls(sim)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    downgrade = f"http://127.0.0.1:{front.port}"
    sim.add_fault(Fault(USER, "redirect", times=-1, location=f"{downgrade}/2.0/user"))
    run = run_pipe(sim, cred, **over_tls(front, cred))
    clean(run.output)
    assert run.code == 3, run.output
    expected = f"GET /user: Bitbucket redirected to another origin ({downgrade}); not followed with the credential"
    assert expected in run.output, run.output
    assert front.plaintext_connections == 0 and witness.connections == 0 and witness.saw_nothing()
    assert any(r.status == 302 for r in sim.requests), "the redirect was never served: the case tests nothing"


# --- the canaries: no secret in any of the new failures -------------------------------------------


def test_the_new_failures_leak_no_secret(start, run_pipe, witness):
    cred = api_token()
    sim = start([cred], faults=[Fault(USER, "redirect", times=-1, location=f"{witness.url}/{API_TOKEN}")])
    tamper(sim, PULLS, raw(200, b"[" * 1000 + API_TOKEN.encode() + b"]" * 1000))
    run = run_pipe(sim, cred, TIMEOUT=str(TIMEOUT), DEBUG="true")
    clean(run.output)
    stored = [p.read_text(errors="replace") for p in run.cwd.rglob("*") if p.is_file()]
    for text in [run.output, *stored]:
        for secret in (API_TOKEN, ACCESS_TOKEN, OAUTH_SECRET):
            for i in range(len(secret) - 7):
                assert secret[i : i + 8] not in text, (secret[i : i + 8], text[:500])
    assert witness.connections == 0
