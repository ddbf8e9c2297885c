"""Shared fixtures: a simulator per test and the pipe run in-process against it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipe.pipe import main
from test.simulator import Credential, Repository, Simulator, Workspace

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENAPI = SHARED / "bitbucket-openapi" / "swagger.v3.json"
FIXTURES = SHARED / "fixtures" / "bitbucket-cloud" / "go-scm"

EMAIL = "backup@acme.example"
API_TOKEN = "ATATT3xFfGF0canaryApiTokenValue7Q9zX2mLp4Rk8Vw1Yt6Ns3Hd5Jb0Cg"
ACCESS_TOKEN = "ATCTT3xFfGN0canaryAccessTokenValue4Hk9Pq2Lm7Zx5Rt1Vb8Nc3Wd6Jy"
OAUTH_ID = "Kc7qNpW3consumerKey"
OAUTH_SECRET = "canaryOauthSecretValue9Xm2Qr7Lp4Zt8Vk1Wn5"
SECRETS = (API_TOKEN, ACCESS_TOKEN, OAUTH_SECRET)

# Every read scope a full backup needs, in each vocabulary.
ALL_READ = [
    "read:user:bitbucket",
    "read:workspace:bitbucket",
    "read:repository:bitbucket",
    "admin:repository:bitbucket",
    "read:project:bitbucket",
    "read:pullrequest:bitbucket",
    "read:pipeline:bitbucket",
    "read:webhook:bitbucket",
    "read:snippet:bitbucket",
]
ALL_WRITE = [
    "write:repository:bitbucket",
    "admin:project:bitbucket",
    "write:pullrequest:bitbucket",
    "admin:pipeline:bitbucket",
    "write:pipeline:bitbucket",
    "write:webhook:bitbucket",
    "write:snippet:bitbucket",
    "write:ssh-key:bitbucket",
]
CLASSIC_READ = ["account", "repository", "repository:admin", "project", "pullrequest", "pipeline", "webhook", "snippet"]


def workspace(n: int = 6, git: int = 2, slug: str = "acme") -> Workspace:
    repos = [Repository(f"repo-{i:04d}", project="PROJ" if i % 2 else "OPS", git=i < git) for i in range(n)]
    return Workspace(slug, repositories=repos, projects=["PROJ", "OPS"])


def api_token(scopes: list[str] | None = None, **kwargs: Any) -> Credential:
    return Credential(
        "api_token",
        API_TOKEN,
        list(ALL_READ if scopes is None else scopes),
        email=EMAIL,
        username="acme-backup",
        **kwargs,
    )


def access_token(scopes: list[str] | None = None, **kwargs: Any) -> Credential:
    kwargs.setdefault("workspace", "acme")
    kwargs.setdefault("level", "workspace")
    return Credential("access_token", ACCESS_TOKEN, list(scopes or ["repository", "repository:admin"]), **kwargs)


def oauth(scopes: list[str] | None = None, **kwargs: Any) -> Credential:
    return Credential(
        "oauth", OAUTH_SECRET, list(scopes or CLASSIC_READ), client_id=OAUTH_ID, username="acme-backup", **kwargs
    )


def credential_env(cred: Credential) -> dict[str, str]:
    if cred.kind == "api_token":
        return {"BITBUCKET_EMAIL": cred.email or "", "BITBUCKET_API_TOKEN": cred.secret}
    if cred.kind == "access_token":
        return {"BITBUCKET_ACCESS_TOKEN": cred.secret}
    if cred.kind == "oauth":
        return {"BITBUCKET_OAUTH_CLIENT_ID": cred.client_id or "", "BITBUCKET_OAUTH_CLIENT_SECRET": cred.secret}
    return {"BITBUCKET_USERNAME": cred.username or "", "BITBUCKET_APP_PASSWORD": cred.secret}


def simulator_env(sim: Simulator) -> dict[str, str]:
    return {
        "BITBUCKET_API_URL": sim.api_url,
        "BITBUCKET_GIT_URL": sim.git_url,
        "BITBUCKET_OAUTH_TOKEN_URL": sim.oauth_token_url,
    }


@dataclass
class Run:
    code: int
    out: str
    err: str
    cwd: Path

    @property
    def output(self) -> str:
        """Both streams, with the log's wrapped lines joined back into sentences."""
        return re.sub(r"\s*\n(?:[A-Z]+: )?\s*", " ", self.out + self.err)

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.cwd / "backup-readiness" / "report.json").read_text())

    @property
    def section(self) -> dict[str, Any]:
        """The report's one workspace section (report.json's `workspaces` holds one per workspace)."""
        (only,) = self.report["workspaces"]
        return only

    def workspace(self, name: str) -> dict[str, Any]:
        """The section of the workspace `name`, in a run over several."""
        return next(ws for ws in self.report["workspaces"] if ws["workspace"] == name)

    def category(self, category_id: str, workspace: str | None = None) -> dict[str, Any]:
        section = self.workspace(workspace) if workspace else self.section
        return next(c for c in section["categories"] if c["id"] == category_id)

    @property
    def scopes_to_add(self) -> list[str]:
        return [a["scope"] for a in self.section["missing_scopes"] if a["required"]]


@pytest.fixture
def start() -> Iterator[Callable[..., Simulator]]:
    """start(credentials=[...], workspaces=[...], **options) -> a running simulator."""
    running: list[Simulator] = []

    def _start(credentials: list[Credential], workspaces: list[Workspace] | None = None, **kw: Any) -> Simulator:
        sim = Simulator(workspaces=workspaces or [workspace()], credentials=credentials, **kw).start()
        running.append(sim)
        return sim

    yield _start
    for sim in running:
        sim.stop()


@pytest.fixture
def run_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., Run]:
    """run_pipe(sim, credential, **variables): the pipe's main() in-process, in a fresh folder."""
    monkeypatch.chdir(tmp_path)

    def _run(sim: Simulator | None, cred: Credential | None, **variables: str) -> Run:
        env = {"WORKSPACE": "acme", "CODE_INSIGHTS": "false", "NO_COLOR": "1", "PATH": os.environ["PATH"]}
        env.update(simulator_env(sim) if sim else {})
        env.update(credential_env(cred) if cred else {})
        env.update(variables)
        env = {k: v for k, v in env.items() if v is not None}
        capsys.readouterr()
        code = main(env)
        out, err = capsys.readouterr()
        return Run(code, out, err, tmp_path)

    return _run


def shared_or_skip(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here: ../shared is missing (CI always has it)")
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI ../shared is always laid beside the clone: its absence must fail, not skip."""
    in_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    if in_ci and not (OPENAPI.exists() and FIXTURES.is_dir()):
        raise pytest.UsageError(f"CI=true but {SHARED} is missing: the OpenAPI and fixture tests cannot run")
