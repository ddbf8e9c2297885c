"""Real bare git repositories, served by `git http-backend` run as a CGI."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

# Fixed identity so no global git config is needed (CI machines often have none).
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Simulator",
    "GIT_AUTHOR_EMAIL": "simulator@example.invalid",
    "GIT_COMMITTER_NAME": "Simulator",
    "GIT_COMMITTER_EMAIL": "simulator@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def _git(*args: str, cwd: str | None = None) -> None:
    env = {**os.environ, **_GIT_ENV, "HOME": cwd or tempfile.gettempdir()}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@dataclass
class GitRepos:
    """A temp dir holding `{workspace}/{slug}.git` bare repos, each with one commit on main."""

    root: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bbsim-git-"))

    def create(self, workspace: str, slug: str) -> str:
        bare = os.path.join(self.root, workspace, f"{slug}.git")
        os.makedirs(os.path.dirname(bare), exist_ok=True)
        _git("init", "--bare", "-q", "-b", "main", bare)
        work = tempfile.mkdtemp(prefix="bbsim-work-")
        try:
            _git("init", "-q", "-b", "main", work)
            with open(os.path.join(work, "README.md"), "w") as fh:
                fh.write(f"# {workspace}/{slug}\n")
            _git("add", "README.md", cwd=work)
            _git("commit", "-q", "-m", "Initial commit", cwd=work)
            _git("push", "-q", bare, "main:main", cwd=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return bare

    def exists(self, workspace: str, slug: str) -> bool:
        return os.path.isdir(os.path.join(self.root, workspace, f"{slug}.git"))

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_backend(
    root: str,
    method: str,
    path_info: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> CgiResponse:
    """Run `git http-backend` once and parse its CGI output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": root,
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": "simulator",
        "REMOTE_ADDR": "127.0.0.1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": root,
    }
    # Clients gzip large upload-pack requests and negotiate protocol v2 via this header.
    if "content-encoding" in headers:
        env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    if "git-protocol" in headers:
        env["GIT_PROTOCOL"] = headers["git-protocol"]
    proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
    return parse_cgi(proc.stdout)


def parse_cgi(out: bytes) -> CgiResponse:
    sep = out.find(b"\r\n\r\n")
    skip = 4
    if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
        sep, skip = out.find(b"\n\n"), 2
    if sep < 0:
        return CgiResponse(500, [("Content-Type", "text/plain")], b"git http-backend failed\n")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in out[:sep].decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return CgiResponse(status, headers, out[sep + skip :])
