"""Git over HTTPS with the credential's git username: `git ls-remote` on one repository.

git runs in a sealed room, because the pipe hands it the secret that reads the whole workspace:
- The secret lives only in the child's environment. git gets it from a credential helper that
  git runs through /bin/sh (a helper named "!..."): nothing is written to disk, so a temp dir
  mounted noexec cannot break it, and nothing secret is on a command line (printf is a shell
  builtin). The helper answers only for the configured origin, with the username as username.
- No redirect is followed (a 30x is reported as refused), and only the https transport is
  allowed (http only for a loopback git URL, which tests use): a redirect to another host or to
  cleartext http never carries the credential.
- No system, global or working-directory git config is read (an earlier pipeline step can plant
  `.git/config` with `http.proxy` or `url.<x>.insteadOf`), and the child environment is built
  from an allow-list, so no inherited GIT_*, proxy or curl variable can redirect git.
- git runs in its own process group, ended as a whole at the deadline: no `git remote-https`
  child outlives the timeout with the secret in its environment.
- TLS trusts the same CA bundle as the API client: SSL_CERT_FILE passed as GIT_SSL_CAINFO and
  SSL_CERT_DIR as GIT_SSL_CAPATH (Debian's git uses libcurl-gnutls, which reads neither), both
  made absolute: git runs in a temporary home, where a path relative to the clone names nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pipe.client import change_id, public_link
from pipe.outcomes import GitOutcome

SECRET_VARIABLE = "BACKUP_READINESS_GIT_SECRET"
USERNAME_VARIABLE = "BACKUP_READINESS_GIT_USERNAME"
PROTOCOL_VARIABLE = "BACKUP_READINESS_GIT_PROTOCOL"
HOST_VARIABLE = "BACKUP_READINESS_GIT_HOST"

# git runs a helper starting with "!" as `/bin/sh -c '<helper> "$@"' <helper> get|store|erase` and
# writes protocol=, host=, username= lines on its stdin. Only `get` for the configured protocol and
# host is answered; printf is a builtin in every /bin/sh, so the secret never reaches an argv.
CREDENTIAL_HELPER = (
    "!f() { "
    'test "$1" = get || return 0; p=; h=; '
    "while IFS= read -r line; do "
    'case "$line" in protocol=*) p="${line#protocol=}";; host=*) h="${line#host=}";; esac; '
    "done; "
    f'test "$p" = "${PROTOCOL_VARIABLE}" && test "$h" = "${HOST_VARIABLE}" || return 0; '
    f'printf "username=%s\\npassword=%s\\n" "${USERNAME_VARIABLE}" "${SECRET_VARIABLE}"; '
    "}; f"
)
# Enough of git's stderr to read its verdict; a hostile server's `remote:` lines are not kept whole.
STDERR_CAP = 64 * 1024
# Bitbucket's git answer to an app password since 2026-07-28. The pipe handed git the credential the
# REST API accepted, so what reached git as an app password is a stale one git was given elsewhere
# (a replayed credential), never "the repository is gone" nor "git rejected the credential".
APP_PASSWORD_GONE = (
    "git over HTTPS answered 410 CHANGE-3222: Bitbucket took the secret that reached git for an app "
    "password, and app passwords were removed on 2026-07-28"
)
APP_PASSWORD_CHANGE = "CHANGE-3222"


@dataclass(frozen=True)
class GitResult:
    outcome: GitOutcome
    repository: str | None
    username: str
    reason: str = ""
    change: str | None = None  # the changelog id of a 410 ("CHANGE-3222"), from git's remote: lines
    announcement_url: str | None = None  # a changelog link among those lines, when there is one

    @property
    def app_password(self) -> bool:
        """Bitbucket answered git as it answers an app password (410 CHANGE-3222)."""
        return self.change == APP_PASSWORD_CHANGE


@dataclass(frozen=True)
class Origin:
    """Where git may send the credential: the scheme and host[:port] of BITBUCKET_GIT_URL."""

    protocol: str
    host: str

    @property
    def allow_http(self) -> bool:
        return self.protocol == "http"


def repo_url(git_url: str, workspace: str, slug: str) -> str:
    """No username in the URL: curl would first try it with an empty password, a round trip
    Bitbucket refuses; the helper gives username and secret together after the first 401."""
    parts = urlsplit(git_url)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path.rstrip('/')}/{workspace}/{slug}.git", "", ""))


def _loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def origin(git_url: str) -> Origin | str:
    """The origin git may talk to, or why git must not run with this URL."""
    parts = urlsplit(git_url)
    https = parts.scheme == "https" and bool(parts.hostname)
    if not https and not (parts.scheme == "http" and parts.hostname and _loopback(parts.hostname)):
        return "BITBUCKET_GIT_URL must be an https:// URL (http:// only for a loopback host, in tests): git was not run"
    if parts.username is not None or parts.password is not None:
        return "BITBUCKET_GIT_URL must not carry a username or password: git was not run"
    return Origin(parts.scheme, parts.netloc)


def git_command(url: str, allowed: Origin) -> list[str]:
    """`git ls-remote` with every setting that seals it; none of them holds a secret."""
    settings = [
        "credential.helper=",  # drop any helper named before ours
        f"credential.helper={CREDENTIAL_HELPER}",
        "core.askPass=",
        "http.followRedirects=false",
        "http.sslVerify=true",
        "protocol.allow=never",
        "protocol.https.allow=always",
        *(["protocol.http.allow=always"] if allowed.allow_http else []),
        "http.lowSpeedLimit=1",
        "http.lowSpeedTime=30",
    ]
    return ["git", *(arg for setting in settings for arg in ("-c", setting)), "ls-remote", "--heads", url]


def git_environment(
    home: str, allowed: Origin, username: str, secret: str, ca_file: str | None, ca_dir: str | None = None
) -> dict[str, str]:
    """An allow-list: nothing inherited but PATH, so no GIT_*, proxy or curl variable steers git."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,  # an empty home: no ~/.gitconfig, no ~/.netrc that curl would read
        "LC_ALL": "C",  # git's messages in English, which _interpret reads
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CEILING_DIRECTORIES": os.path.dirname(home),  # never climb to a planted .git
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",  # empty: git skips core.askPass and SSH_ASKPASS too
        "GIT_PROTOCOL_FROM_USER": "0",
        PROTOCOL_VARIABLE: allowed.protocol,
        HOST_VARIABLE: allowed.host,
        USERNAME_VARIABLE: username,
        SECRET_VARIABLE: secret,
    }
    if ca_file:
        env["GIT_SSL_CAINFO"] = ca_file
    if ca_dir:
        env["GIT_SSL_CAPATH"] = ca_dir
    return env


def _announcement(remote: str) -> str | None:
    """The first link the server's remote: lines give (Bitbucket's is the changelog entry)."""
    for word in remote.split():
        if word.startswith(("https://", "http://")) and (link := public_link(word.rstrip(".,;)"))):
            return link
    return None


def _trust_advice(ca_file: str | None, ca_dir: str | None = None) -> str:
    """Names the variable that is set (and its value), so that the fix is where the user looks."""
    trusted = [f"the CA bundle in SSL_CERT_FILE ({ca_file})"] if ca_file else []
    trusted += [f"the CA directory in SSL_CERT_DIR ({ca_dir})"] if ca_dir else []
    where = " and ".join(trusted) or "the system CA bundle (SSL_CERT_FILE and SSL_CERT_DIR are unset)"
    fix = (
        "put the CA that signs it in SSL_CERT_DIR (hashed with openssl rehash), or set SSL_CERT_FILE to its bundle"
        if ca_dir and not ca_file
        else "set SSL_CERT_FILE to the CA bundle that signs it"
    )
    return (
        f"git over HTTPS could not verify the server's TLS certificate with {where}: "
        f"{fix} (a TLS-inspecting proxy's CA, for example)"
    )


def _interpret(
    code: int, stderr: str, slug: str, username: str, ca_file: str | None = None, ca_dir: str | None = None
) -> GitResult:
    if code == 0:
        return GitResult(GitOutcome.OK, slug, username)
    # Read git's own lines only: `remote:` lines are the server's words, and the URL in git's own
    # message (its port, a slug) may contain 401 or 403, so each phrase is anchored.
    lines = stderr.splitlines()
    remote = "\n".join(line for line in lines if line.startswith("remote:"))
    own = [line for line in lines if not line.startswith("remote:")]
    text = "\n".join(own).lower()
    statuses = [m.group(1) for line in own if (m := re.search(r"The requested URL returned error: (\d{3})\s*$", line))]
    status = statuses[-1] if statuses else None
    if status == "410":
        change, url = change_id(remote), _announcement(remote)
        if change == APP_PASSWORD_CHANGE or "app passwords are deprecated" in remote.lower():
            return GitResult(GitOutcome.REJECTED, slug, username, APP_PASSWORD_GONE, APP_PASSWORD_CHANGE, url)
        gone = f" {change}: Bitbucket removed this functionality" if change else ": gone"
        return GitResult(GitOutcome.FAILED, slug, username, f"git over HTTPS answered 410{gone}", change, url)
    if status == "403":
        return GitResult(
            GitOutcome.FORBIDDEN,
            slug,
            username,
            "git over HTTPS answered 403: the credential lacks repository read for git",
        )
    if status == "401" or any(line.lower().startswith("fatal: authentication failed for ") for line in own):
        return GitResult(
            GitOutcome.REJECTED,
            slug,
            username,
            f"git over HTTPS rejected the credential with git username '{username}' (401)",
        )
    if status and status.startswith("3"):
        return GitResult(
            GitOutcome.FAILED,
            slug,
            username,
            f"git over HTTPS answered {status} (a redirect): the redirect was refused, "
            "the pipe never follows a git redirect with the credential",
        )
    if "certificate" in text:
        return GitResult(GitOutcome.FAILED, slug, username, _trust_advice(ca_file, ca_dir))
    if "not supported or disabled in libcurl" in text or re.search(r"transport '[^']*' not allowed", text):
        return GitResult(
            GitOutcome.FAILED,
            slug,
            username,
            "git was sent to a transport other than https (a redirect?): it was refused",
        )
    if "could not read username" in text or "could not read password" in text:
        # Not a rejection: the server never judged the credential, git could not get it from us.
        return GitResult(
            GitOutcome.FAILED,
            slug,
            username,
            "git could not get the credential from the pipe's credential helper (/bin/sh)",
        )
    why = (
        f": the server answered {status}"
        if status
        else (": the connection failed" if "reset" in text or "connect" in text or "resolve" in text else "")
    )
    return GitResult(GitOutcome.FAILED, slug, username, f"git ls-remote failed (exit {code}){why}")


def _transient(result: GitResult) -> bool:
    """Worth one retry: a reset or a 5xx, not a verdict, a refused redirect or a trust problem."""
    return result.outcome is GitOutcome.FAILED and (
        "connection failed" in result.reason or bool(re.search(r"answered 5\d\d$", result.reason))
    )


async def ls_remote(
    git_url: str,
    workspace: str,
    slug: str | None,
    username: str,
    secret: str,
    limit: float,
    *,
    ca_file: str | None = None,
    ca_dir: str | None = None,
) -> GitResult:
    """One retry when git fails for a transient reason (a reset, a 5xx).

    ca_file, ca_dir: the CA bundle and directory the API client trusts; None reads SSL_CERT_FILE
    and SSL_CERT_DIR (the system bundle if unset). Relative paths are taken from the working
    directory, as the API client takes them.
    """
    trust = _trusted(ca_file, ca_dir)
    deadline = time.monotonic() + limit
    result = await _ls_remote(git_url, workspace, slug, username, secret, limit, *trust)
    if _transient(result) and deadline - time.monotonic() > 1.0:
        result = await _ls_remote(git_url, workspace, slug, username, secret, deadline - time.monotonic(), *trust)
    return result


def _trusted(ca_file: str | None, ca_dir: str | None) -> tuple[str | None, str | None]:
    """(CA bundle, CA directory) as absolute paths: git runs in a temporary home of its own."""
    bundle = ca_file if ca_file is not None else (os.environ.get("SSL_CERT_FILE") or None)
    folder = ca_dir if ca_dir is not None else (os.environ.get("SSL_CERT_DIR") or None)
    return (os.path.abspath(bundle) if bundle else None, os.path.abspath(folder) if folder else None)


def _refusal(git_url: str, username: str, secret: str, ca_file: str | None, ca_dir: str | None) -> Origin | str:
    """The origin git may use, or why git must not run at all."""
    allowed = origin(git_url)
    if isinstance(allowed, str):
        return allowed
    if any(c in value for value in (username, secret) for c in "\r\n"):
        return "the git username or secret contains a line break: git was not run"
    if ca_file and not os.path.isfile(ca_file):
        return f"SSL_CERT_FILE ({ca_file}) is not a file: git was not run"
    if ca_dir and not os.path.isdir(ca_dir):
        return f"SSL_CERT_DIR ({ca_dir}) is not a directory: git was not run"
    if shutil.which("git") is None:
        return "git is not installed where the pipe runs"
    return allowed


async def _ls_remote(
    git_url: str,
    workspace: str,
    slug: str | None,
    username: str,
    secret: str,
    limit: float,
    ca_file: str | None,
    ca_dir: str | None,
) -> GitResult:
    if not slug:
        return GitResult(GitOutcome.SKIPPED, None, username, "no repository to clone")
    allowed = _refusal(git_url, username, secret, ca_file, ca_dir)
    if isinstance(allowed, str):
        return GitResult(GitOutcome.FAILED, slug, username, allowed)
    try:
        home = tempfile.mkdtemp(prefix="backup-readiness-")  # TMPDIR decides where
    except OSError as exc:
        where = tempfile.gettempdir()
        return GitResult(
            GitOutcome.FAILED, slug, username, f"no temporary directory for git in {where} (TMPDIR): {exc.strerror}"
        )
    try:
        env = git_environment(home, allowed, username, secret, ca_file, ca_dir)
        code, stderr = await _run(git_command(repo_url(git_url, workspace, slug), allowed), home, env, limit)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if code is None:
        return GitResult(GitOutcome.FAILED, slug, username, f"git ls-remote did not finish in {limit:.0f} s")
    return _interpret(code, stderr, slug, username, ca_file, ca_dir)


async def _run(command: list[str], cwd: str, env: dict[str, str], limit: float) -> tuple[int | None, str]:
    """(exit code, stderr) or (None, "") at the deadline. git runs in a session of its own so that
    the whole group (git and its remote-https helper, both holding the secret) is ended together,
    also when the pipe's task is cancelled."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,  # a fresh empty directory: the pipe's working directory may hold a planted .git
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stderr = await asyncio.wait_for(_finish(process), limit)
    except TimeoutError:
        await _end(process)
        return None, ""
    except BaseException:  # the pipe's task cancelled: git must not outlive it either
        await _end(process)
        raise
    return process.returncode or 0, stderr


async def _finish(process: asyncio.subprocess.Process) -> str:
    kept = bytearray()
    assert process.stderr is not None
    while chunk := await process.stderr.read(65536):
        kept += chunk[: max(0, STDERR_CAP - len(kept))]  # read on, so git never blocks on a full pipe
    await process.wait()
    return kept.decode(errors="replace")


async def _end(process: asyncio.subprocess.Process) -> None:
    # The whole group, even when git itself has exited: a child of it may linger with the secret.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
