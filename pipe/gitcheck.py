"""Git over HTTPS with the credential's git username: `git ls-remote` on one repository.

The secret reaches git through GIT_ASKPASS from the child's environment only: never in the
URL, the command line, a file, or git's configuration.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

ASKPASS = '#!/bin/sh\nprintf "%s\\n" "$BACKUP_READINESS_GIT_SECRET"\n'


@dataclass(frozen=True)
class GitResult:
    outcome: str  # ok | rejected | forbidden | failed | skipped
    repository: str | None
    username: str
    reason: str = ""


def repo_url(git_url: str, workspace: str, slug: str, username: str) -> str:
    parts = urlsplit(git_url)
    netloc = f"{quote(username, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/{workspace}/{slug}.git", "", ""))


def _environment(askpass: str, secret: str, home: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "GIT_ASKPASS": askpass,
        "BACKUP_READINESS_GIT_SECRET": secret,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        **{k: os.environ[k] for k in ("SSL_CERT_FILE", "GIT_SSL_CAINFO") if k in os.environ},
    }


def _interpret(code: int, stderr: str, slug: str, username: str) -> GitResult:
    if code == 0:
        return GitResult("ok", slug, username)
    # Match git's own phrases only: the URL in the message (its port) may contain 401 or 403.
    text = stderr.lower()
    answered = re.search(r"returned error: (\d{3})", stderr)
    status = answered.group(1) if answered else None
    if status == "403":
        return GitResult(
            "forbidden", slug, username, "git over HTTPS answered 403: the credential lacks repository read for git"
        )
    if status == "401" or "authentication failed" in text or "could not read password" in text:
        return GitResult(
            "rejected", slug, username, f"git over HTTPS rejected the credential with git username '{username}' (401)"
        )
    why = (
        f": the server answered {answered.group(1)}"
        if answered
        else (": the connection failed" if "reset" in text or "connection" in text else "")
    )
    return GitResult("failed", slug, username, f"git ls-remote failed (exit {code}){why}")


def _write_askpass(home: str) -> str:
    path = os.path.join(home, "askpass.sh")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(ASKPASS)
    os.chmod(path, stat.S_IRWXU)
    return path


async def ls_remote(
    git_url: str, workspace: str, slug: str | None, username: str, secret: str, limit: float
) -> GitResult:
    """One retry when git fails for a reason other than the credential (a reset, a 5xx)."""
    deadline = time.monotonic() + limit
    result = await _ls_remote(git_url, workspace, slug, username, secret, limit)
    if result.outcome == "failed" and deadline - time.monotonic() > 1.0 and shutil.which("git"):
        result = await _ls_remote(git_url, workspace, slug, username, secret, deadline - time.monotonic())
    return result


async def _ls_remote(
    git_url: str, workspace: str, slug: str | None, username: str, secret: str, limit: float
) -> GitResult:
    if not slug:
        return GitResult("skipped", None, username, "no repository to clone")
    if shutil.which("git") is None:
        return GitResult("failed", slug, username, "git is not installed where the pipe runs")
    with tempfile.TemporaryDirectory(prefix="backup-readiness-") as home:
        askpass = _write_askpass(home)
        process = await asyncio.create_subprocess_exec(
            "git",
            "-c",
            "credential.helper=",
            "-c",
            "http.lowSpeedLimit=1",
            "-c",
            "http.lowSpeedTime=30",
            "ls-remote",
            "--heads",
            repo_url(git_url, workspace, slug, username),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=_environment(askpass, secret, home),
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            return GitResult("failed", slug, username, f"git ls-remote did not finish in {limit:.0f} s")
    return _interpret(process.returncode or 0, stderr.decode(errors="replace"), slug, username)
