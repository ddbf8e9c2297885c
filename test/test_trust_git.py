"""Issue 9, part 2: git in a sealed room. Real git against the simulator (git http-backend),
sometimes behind a real TLS front, with a witness on another port that proves the credential
never arrives there: no redirect followed, the secret only as the password and only for the
configured origin, no planted or inherited configuration obeyed, https only (http on loopback
for tests), the whole git process group ended at its deadline, a noexec temp dir survived, and
the API client's CA bundle (SSL_CERT_FILE) trusted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipe.survey.git import APP_PASSWORD_GONE, Origin, git_command, git_environment, ls_remote
from test.conftest import ALL_READ, EMAIL, Run, api_token
from test.hostile import Witness, raw, tamper
from test.simulator import Credential, Fault, Simulator
from test.simulator.server import Incoming, Response

GIT = r"\.git/"
REFS = r"\.git/info/refs$"
USER = "acme-backup"
REPO = "repo-0000"


# --- helpers -----------------------------------------------------------------------------------


def canary() -> Credential:
    """An API token whose secret no other test (nor a parallel helper's run) uses, so that a
    scan of every process's environment finds only this test's git."""
    secret = f"ATATT3xSealedRoom{uuid.uuid4().hex}Canary"
    return Credential("api_token", secret, list(ALL_READ), email=EMAIL, username=USER)


def processes_holding(secret: str, kind: str) -> list[int]:
    """Pids whose /proc/<pid>/<kind> (environ or cmdline) holds the secret; only our own user's
    processes are readable, which is every process the pipe starts."""
    found = []
    needle = secret.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            data = Path(f"/proc/{entry}/{kind}").read_bytes()
        except OSError:
            continue
        if needle in data:
            found.append(int(entry))
    return found


def assert_secret_absent(run: Run, secret: str) -> None:
    stored = (run.cwd / "backup-readiness" / "report.json").read_text()
    for text in (run.out, run.err, stored):
        assert secret not in text and secret[8:24] not in text


def git_calls(sim: Simulator) -> list:
    return [r for r in sim.requests if ".git/" in r.path]


def run_git(
    url: str, allowed: Origin, secret: str, home: Path, ca_file: str | None = None
) -> subprocess.CompletedProcess:
    """The pipe's own git command and environment, run directly (a layer below ls_remote)."""
    return subprocess.run(
        git_command(url, allowed),
        cwd=home,
        env=git_environment(str(home), allowed, USER, secret, ca_file),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- a TLS front: real HTTPS in front of the simulator ---------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: str
    cert: str
    key: str


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1, made by the openssl command."""
    where = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Sealed Room CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    openssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (where / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return Certificates(str(where / "ca.pem"), str(where / "srv.pem"), str(where / "srv.key"))


class TlsFront:
    """Terminates TLS on its own port and relays the bytes to the simulator's plain port."""

    def __init__(self, backend: int, certs: Certificates) -> None:
        self.backend = backend
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs.cert, certs.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except OSError:  # the client refused our certificate: that is the test's point sometimes
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.backend))
        threading.Thread(target=_pump, args=(upstream, tls), daemon=True).start()
        _pump(tls, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tls_sim(start, certificates) -> Iterator[tuple[Simulator, TlsFront, Credential]]:
    cred = canary()
    sim = start([cred])
    front = TlsFront(urlsplit(sim.base_url).port or 0, certificates)
    yield sim, front, cred
    front.close()


@pytest.fixture
def witness() -> Iterator[Witness]:
    w = Witness().start()
    yield w
    w.stop()


def ls(url: str, cred: Credential, limit: float = 20.0, **kw: str | None) -> object:
    return asyncio.run(ls_remote(url, "acme", REPO, USER, cred.secret, limit, **kw))


# --- 1. no redirect is followed with the credential ------------------------------------------------


def test_a_git_redirect_to_another_port_is_refused_and_never_followed(start, run_pipe, witness):
    cred = api_token()
    location = f"{witness.url}/acme/{REPO}.git/info/refs?service=git-upload-pack"
    sim = start([cred], faults=[Fault(GIT, "redirect", times=-1, location=location)])
    run = run_pipe(sim, cred)
    git = run.section["git"]
    assert git["outcome"] == "failed", git
    assert "redirect was refused" in git["reason"], git
    assert witness.connections == 0 and witness.saw_nothing()
    assert_secret_absent(run, cred.secret)


def test_an_https_git_url_redirected_to_http_sends_nothing_in_cleartext(tls_sim, witness, certificates):
    sim, front, cred = tls_sim
    sim.add_fault(Fault(GIT, "redirect", times=-1, location=f"{witness.url}/acme/{REPO}.git/info/refs"))
    result = ls(front.url, cred, ca_file=certificates.ca)
    assert result.outcome == "failed", result
    assert "redirect was refused" in result.reason
    assert witness.connections == 0 and witness.saw_nothing()
    assert git_calls(sim), "the redirect must have come from the simulator, through TLS"


def test_sealed_git_refuses_a_transport_it_was_not_given(tmp_path, start):
    """protocol.allow: even if git were sent to http:// (a redirect, a rewrite), an https
    origin's git refuses it, and file:// is never allowed."""
    cred = canary()
    sim = start([cred])
    https_only = Origin("https", "127.0.0.1")
    answer = run_git(f"{sim.git_url}/acme/{REPO}.git", https_only, cred.secret, tmp_path)
    assert answer.returncode != 0 and "transport 'http' not allowed" in answer.stderr
    bare = tmp_path / "acme" / "local.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, env={"PATH": os.environ["PATH"]})
    answer = run_git(f"file://{bare}", Origin("http", "127.0.0.1"), cred.secret, tmp_path)
    assert answer.returncode != 0 and "transport 'file' not allowed" in answer.stderr
    assert not git_calls(sim)


@pytest.mark.parametrize(
    "url",
    ["file://{root}", "http://bitbucket.example", "http://10.0.0.1:8080", "ext::sh -c true", "ssh://git@bitbucket.org"],
)
def test_only_https_is_run_and_http_only_for_loopback(tmp_path, url):
    bare = tmp_path / "acme" / f"{REPO}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, env={"PATH": os.environ["PATH"]})
    started = time.monotonic()
    result = ls(url.format(root=tmp_path), canary())
    assert result.outcome == "failed", result
    assert "must be an https:// URL" in result.reason and "git was not run" in result.reason
    assert time.monotonic() - started < 2


# --- 2. the secret only as the password, and only for the configured origin --------------------------


def fill(allowed: Origin, secret: str, home: Path, protocol: str, host: str) -> subprocess.CompletedProcess:
    """`git credential fill` with the pipe's helper: git itself runs the helper as it would for
    a 401, for a URL that names no username (the case where git asks for one)."""
    settings = git_command("unused", allowed)[1:-3]  # the -c settings, without ls-remote --heads URL
    return subprocess.run(
        ["git", *settings, "credential", "fill"],
        input=f"protocol={protocol}\nhost={host}\n\n",
        cwd=home,
        env=git_environment(str(home), allowed, USER, secret, None),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_helper_gives_the_username_as_username_and_the_secret_only_as_password(tmp_path):
    secret = canary().secret
    answer = fill(Origin("https", "bitbucket.org"), secret, tmp_path, "https", "bitbucket.org")
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert f"username={USER}" in lines and f"password={secret}" in lines
    assert not any(line.startswith("username=") and secret in line for line in lines)


@pytest.mark.parametrize(
    ("protocol", "host"),
    [("https", "bitbucket.org:8443"), ("https", "evil.example"), ("http", "bitbucket.org"), ("https", "bitbucket.or")],
)
def test_the_helper_answers_nothing_for_another_origin(tmp_path, protocol, host):
    secret = canary().secret
    answer = fill(Origin("https", "bitbucket.org"), secret, tmp_path, protocol, host)
    assert answer.returncode != 0
    assert "terminal prompts disabled" in answer.stderr  # git asked for a username, nobody answered
    assert secret not in answer.stdout + answer.stderr and secret[:12] not in answer.stdout


def test_the_simulator_sees_the_username_as_git_username_and_never_the_secret(start, run_pipe):
    cred = canary()
    sim = start([cred])
    seen: list[tuple[str, str]] = []

    def record(req: Incoming, response: Response) -> None:
        if req.scheme == "Basic":
            seen.append((req.user, req.secret))

    tamper(sim, GIT, record)
    run = run_pipe(sim, cred)
    git = run.section["git"]
    assert git["outcome"] == "ok", git
    assert seen and all(user == git["username"] for user, _ in seen), seen
    assert all(cred.secret[:8] not in user for user, _ in seen)
    assert {secret for _, secret in seen} <= {"", cred.secret}, "curl may send the username alone first"


def test_the_secret_is_in_no_argv_and_no_file_while_git_runs(start, tmp_path, monkeypatch):
    """While git waits on a stalled server: the secret is in git's environment (the scan works),
    in no process's command line, and in no file of the temp dir the pipe gave git."""
    cred = canary()
    sim = start([cred], faults=[Fault(REFS, "slow", times=1, delay=3.0)])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    seen: dict[str, object] = {}

    async def scan() -> None:
        await asyncio.sleep(1.5)
        seen["environ"] = processes_holding(cred.secret, "environ")
        seen["cmdline"] = processes_holding(cred.secret, "cmdline")
        files = [p for p in scratch.rglob("*") if p.is_file()]
        seen["dirs"] = [p for p in scratch.iterdir()]
        seen["files"] = [p for p in files if cred.secret.encode() in p.read_bytes()]

    async def both() -> None:
        await asyncio.gather(ls_remote(sim.git_url, "acme", REPO, USER, cred.secret, 20.0), scan())

    asyncio.run(both())
    assert seen["environ"], "the scan must see git holding the secret, or it proves nothing"
    assert seen["dirs"], "git's temp dir must be under TMPDIR"
    assert seen["cmdline"] == [] and seen["files"] == []


# --- 3. no system, global or working-directory git config; no inherited variables ---------------------


def plant(repo: Path, settings: dict[str, str]) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env, capture_output=True)
    for key, value in settings.items():
        subprocess.run(["git", "-C", str(repo), "config", "--add", key, value], check=True, env=env)


def test_a_git_config_planted_in_the_working_directory_is_never_read(start, run_pipe, witness, tmp_path):
    cred = canary()
    sim = start([cred])
    marker = tmp_path / "planted-helper-ran"
    script = tmp_path / "planted-askpass.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho planted\n")
    script.chmod(0o755)
    plant(
        tmp_path,  # run_pipe runs the pipe in tmp_path: an earlier pipeline step's clone
        {
            f"url.{witness.url}/.insteadOf": f"{sim.git_url}/",
            "http.proxy": witness.url,
            "http.extraHeader": "X-Planted: 1",
            "core.askPass": str(script),
            "credential.helper": f"!touch {marker}; echo username=planted; echo password=planted",
        },
    )
    run = run_pipe(sim, cred)
    assert run.section["git"]["outcome"] == "ok", run.section["git"]
    assert witness.connections == 0 and witness.saw_nothing()
    assert not marker.exists()
    assert git_calls(sim) and not any("x-planted" in r.headers for r in git_calls(sim))
    assert_secret_absent(run, cred.secret)


def test_inherited_git_proxy_and_curl_variables_are_ignored(start, run_pipe, witness, monkeypatch, tmp_path):
    cred = canary()
    sim = start([cred])  # started before the variables: the simulator's own git must not see them
    marker = tmp_path / "inherited-askpass-ran"
    script = tmp_path / "askpass.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho inherited\n")
    script.chmod(0o755)
    hostile = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": f"url.{witness.url}/.insteadOf",
        "GIT_CONFIG_VALUE_0": f"{sim.git_url}/",
        "GIT_CONFIG_KEY_1": "http.extraHeader",
        "GIT_CONFIG_VALUE_1": "X-Planted: 1",
        "GIT_CONFIG_PARAMETERS": f"'http.proxy'='{witness.url}'",
        "http_proxy": witness.url,
        "HTTPS_PROXY": witness.url,
        "ALL_PROXY": witness.url,
        "GIT_ASKPASS": str(script),
        "SSH_ASKPASS": str(script),
        "GIT_TRACE": str(tmp_path / "trace"),
        "GIT_TRACE_CURL": str(tmp_path / "trace-curl"),
        "GIT_SSL_NO_VERIFY": "1",
    }
    for name, value in hostile.items():
        monkeypatch.setenv(name, value)
    run = run_pipe(sim, cred)
    assert run.section["git"]["outcome"] == "ok", run.section["git"]
    assert witness.connections == 0 and witness.saw_nothing()
    assert not marker.exists() and not (tmp_path / "trace").exists() and not (tmp_path / "trace-curl").exists()
    assert not any("x-planted" in r.headers for r in git_calls(sim))


# --- 5. the whole process group ends at the deadline -----------------------------------------------


def test_no_git_process_outlives_the_deadline_with_the_secret(start):
    cred = canary()
    sim = start([cred], faults=[Fault(REFS, "slow", times=-1, delay=30.0)])
    during: list[int] = []

    async def watch() -> None:
        await asyncio.sleep(1.0)
        during.extend(processes_holding(cred.secret, "environ"))

    async def both():
        return await asyncio.gather(ls_remote(sim.git_url, "acme", REPO, USER, cred.secret, 2.5), watch())

    started = time.monotonic()
    result, _ = asyncio.run(both())
    elapsed = time.monotonic() - started
    assert len(during) >= 2, f"git and its remote-http child must hold the secret while they wait: {during}"
    assert result.outcome == "failed" and "did not finish in" in result.reason, result
    assert elapsed < 5
    for _ in range(20):  # SIGKILL is delivered at once; give the kernel a moment to tear down
        left = processes_holding(cred.secret, "environ")
        if not left:
            break
        time.sleep(0.05)
    assert left == [], f"processes still holding the secret after the deadline: {left}"


# --- 6. a temp dir mounted noexec -----------------------------------------------------------------


@pytest.fixture
def noexec_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR on a real noexec tmpfs. Tests run as root here and in CI: a mount that fails is a
    failure of the test environment, reported loudly, never a skip."""
    where = tmp_path / "noexec"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "noexec,nosuid,size=8m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a noexec tmpfs (tests need root): {mounted.stderr.strip()}")
    try:
        probe = where / "probe.sh"
        probe.write_text("#!/bin/sh\nexit 0\n")
        probe.chmod(0o755)
        with pytest.raises(PermissionError):
            subprocess.run([str(probe)], check=False)
        monkeypatch.setenv("TMPDIR", str(where))
        monkeypatch.setattr(tempfile, "tempdir", None)
        yield where
    finally:
        monkeypatch.setattr(tempfile, "tempdir", None)
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def test_a_noexec_temp_dir_is_not_misread_as_a_rejected_credential(start, run_pipe, noexec_tmpdir):
    cred = canary()
    sim = start([cred])
    run = run_pipe(sim, cred)
    assert tempfile.gettempdir() == str(noexec_tmpdir)
    assert run.section["git"]["outcome"] == "ok", run.section["git"]
    assert [r.status for r in git_calls(sim)][-1] == 200


def test_a_noexec_temp_dir_still_tells_a_real_rejection(start, run_pipe, noexec_tmpdir):
    cred = canary()
    sim = start([cred])
    run = run_pipe(sim, cred, BITBUCKET_USERNAME="someone-else")
    assert run.section["git"]["outcome"] == "rejected", run.section["git"]


# --- 7. TLS: the API client's CA bundle ------------------------------------------------------------


def test_git_trusts_the_ca_bundle_named_by_ssl_cert_file(tls_sim, certificates, monkeypatch):
    sim, front, cred = tls_sim
    monkeypatch.setenv("SSL_CERT_FILE", certificates.ca)
    result = ls(front.url, cred)
    assert result.outcome == "ok", result
    assert [r.status for r in git_calls(sim)][-1] == 200


def test_the_ca_bundle_can_be_passed_explicitly(tls_sim, certificates, monkeypatch):
    sim, front, cred = tls_sim
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert ls(front.url, cred, ca_file=certificates.ca).outcome == "ok"


def test_an_untrusted_certificate_says_so_and_names_ssl_cert_file(tls_sim, monkeypatch):
    sim, front, cred = tls_sim
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    result = ls(front.url, cred)
    assert result.outcome == "failed", result
    assert "TLS certificate" in result.reason and "SSL_CERT_FILE" in result.reason
    assert not git_calls(sim), "nothing may pass an unverified TLS connection"


def test_a_ca_bundle_that_is_not_a_file_is_named(tls_sim, tmp_path):
    sim, front, cred = tls_sim
    result = ls(front.url, cred, ca_file=str(tmp_path / "missing.pem"))
    assert result.outcome == "failed" and "SSL_CERT_FILE" in result.reason and "missing.pem" in result.reason


@pytest.fixture
def ca_dir(certificates, tmp_path_factory) -> Path:
    """The CA as an OpenSSL hashed directory, what SSL_CERT_DIR names."""
    folder = tmp_path_factory.mktemp("cadir")
    (folder / "proxy-ca.pem").write_bytes(Path(certificates.ca).read_bytes())
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    return folder


def test_a_relative_ssl_cert_file_is_trusted_by_git(tls_sim, certificates, monkeypatch, tmp_path):
    """SSL_CERT_FILE relative to the clone directory (the pipe's working directory), as the API
    client reads it: git runs in a temporary home of its own, so it needs the absolute path."""
    sim, front, cred = tls_sim
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "proxy-ca.pem").write_bytes(Path(certificates.ca).read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", "certs/proxy-ca.pem")
    result = ls(front.url, cred)
    assert result.outcome == "ok", result
    assert [r.status for r in git_calls(sim)][-1] == 200


def test_git_trusts_the_ca_directory_named_by_ssl_cert_dir(tls_sim, ca_dir, monkeypatch):
    sim, front, cred = tls_sim
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
    result = ls(front.url, cred)
    assert result.outcome == "ok", result
    assert [r.status for r in git_calls(sim)][-1] == 200


def test_an_untrusted_certificate_names_ssl_cert_dir_when_that_is_the_one_set(tls_sim, monkeypatch, tmp_path):
    sim, front, cred = tls_sim
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # holds no CA
    result = ls(front.url, cred)
    assert result.outcome == "failed", result
    assert "TLS certificate" in result.reason and f"SSL_CERT_DIR ({tmp_path})" in result.reason, result.reason
    assert "SSL_CERT_FILE is unset" not in result.reason, result.reason
    assert not git_calls(sim)


def test_an_ssl_cert_dir_that_is_not_a_directory_is_named(tls_sim, monkeypatch, tmp_path):
    sim, front, cred = tls_sim
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-dir"))
    result = ls(front.url, cred)
    assert result.outcome == "failed" and f"SSL_CERT_DIR ({tmp_path / 'no-such-dir'})" in result.reason, result


@pytest.mark.parametrize("variable", ["a relative SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_the_api_and_git_trust_the_same_ca_in_a_whole_run(
    tls_sim, run_pipe, certificates, ca_dir, monkeypatch, tmp_path, variable
):
    """Point 8 through a whole run: the REST API and git both behind one TLS front."""
    sim, front, cred = tls_sim
    if variable == "SSL_CERT_DIR":
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
    else:
        (tmp_path / "certs").mkdir()
        (tmp_path / "certs" / "proxy-ca.pem").write_bytes(Path(certificates.ca).read_bytes())
        monkeypatch.setenv("SSL_CERT_FILE", "certs/proxy-ca.pem")  # run_pipe runs in tmp_path
    run = run_pipe(sim, cred, BITBUCKET_API_URL=f"{front.url}/2.0", BITBUCKET_GIT_URL=front.url, TIMEOUT="20")
    assert any(r.path == "/2.0/user" and r.status == 200 for r in sim.requests), "the API did not trust it"
    assert run.code == 0, run.output
    assert [r.status for r in git_calls(sim)][-1] == 200, "git did not trust it"


# --- git's 410s and forged phrases ----------------------------------------------------------------

APP_PASSWORD_410 = (
    b"CHANGE-3222 - Functionality has been deprecated\n"
    b"App passwords are deprecated and must be replaced with API tokens.\n"
)


@pytest.mark.parametrize(
    ("body", "outcome", "reason"),
    [
        (APP_PASSWORD_410, "rejected", APP_PASSWORD_GONE),
        (b"App passwords are deprecated and must be replaced with API tokens.\n", "rejected", APP_PASSWORD_GONE),
        (b"CHANGE-4321 - Functionality has been deprecated\n", "failed", "CHANGE-4321"),
        (b"Gone\n", "failed", "410"),
    ],
)
def test_a_git_410_names_the_platform_change(start, run_pipe, body, outcome, reason):
    cred = api_token()
    sim = start([cred])
    tamper(sim, GIT, raw(410, body, "text/plain"))
    run = run_pipe(sim, cred)
    git = run.section["git"]
    assert git["outcome"] == outcome and reason in git["reason"], git
    assert "remote:" not in git["reason"] and "Functionality" not in git["reason"]  # server text is not echoed


def test_remote_lines_cannot_forge_a_rejection(start, run_pipe):
    cred = api_token()
    sim = start([cred])
    forged = b"The requested URL returned error: 401\nfatal: Authentication failed for 'x'\nCHANGE-3222\n"
    tamper(sim, GIT, raw(502, forged, "text/plain"))
    run = run_pipe(sim, cred)
    git = run.section["git"]
    assert git["outcome"] == "failed" and git["reason"].endswith("answered 502"), git
