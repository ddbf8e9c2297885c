"""Named scenarios for the CLI (`python -m test.simulator --scenario NAME`): plain data.

The credentials here are test data for a local simulator, not real secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Credential, Repository, Workspace
from .scopes import BACKUP_READ_API_SCOPES


@dataclass
class Scenario:
    workspaces: list[Workspace]
    credentials: dict[str, Credential]
    latency: float = 0.0
    rate_limit: int | None = None
    notes: list[str] = field(default_factory=list)


DEMO_EMAIL = "backup@acme.example"
DEMO_USERNAME = "acme-backup"
DEMO_SECRET = "ATATT3xDEMOsimulatorTokenNotARealSecret0000000000"  # 49 chars, test data
DEMO_REPOS = [
    "website",
    "api-gateway",
    "billing",
    "mobile-app",
    "infra",
    "docs",
    "data-pipeline",
    "auth-service",
    "design-system",
    "analytics",
    "legacy-crm",
    "ops-scripts",
]
DEMO_GIT_REPOS = ("website", "api-gateway", "billing", "infra")
DEMO_READ_ONLY = ("design-system", "analytics", "legacy-crm")  # the other 9 are admin
BENCH_SECRET = "ATATT3xBENCHsimulatorTokenNotARealSecret000000000"


def demo() -> Scenario:
    repos = [
        Repository(slug, project="WEB" if i < 6 else "OPS", git=slug in DEMO_GIT_REPOS)
        for i, slug in enumerate(DEMO_REPOS)
    ]
    token = Credential(
        kind="api_token",
        secret=DEMO_SECRET,
        email=DEMO_EMAIL,
        username=DEMO_USERNAME,
        # Everything a backup reads except pull requests: the demo's expected "not ready".
        scopes=[s for s in BACKUP_READ_API_SCOPES if s != "read:pullrequest:bitbucket"],
        permissions={slug: "read" for slug in DEMO_READ_ONLY},
        default_permission="admin",
    )
    workspace = Workspace("acme", "Acme Inc.", repos, projects=["WEB", "OPS"])
    return Scenario([workspace], {"backup": token})


def bench(
    repos: int = 50_000, latency_ms: float = 0.0, without_admin: int = 0, workspace_admin: bool = False
) -> Scenario:
    """issue 12's table: N repositories, `without_admin` of them (spread evenly) only readable by the
    credential, or the credential a workspace administrator (admin on all, no grant listed)."""
    projects = [f"P{i:02d}" for i in range(10)]
    workspace = Workspace(
        "bench",
        "Bench",
        # repo-00000 (the one the pipe reads live) is a real git repository: a run can be "ready".
        [Repository(f"repo-{i:05d}", project=projects[i % 10], git=i == 0) for i in range(repos)],
        projects=projects,
    )
    # Every k-th repository read-only, never repo-00000 (the representative stays an admin one).
    step = repos / without_admin if without_admin else 0
    read_only = {f"repo-{int(1 + k * step) % repos:05d}": "read" for k in range(without_admin)}
    token = Credential(
        kind="api_token",
        secret=BENCH_SECRET,
        email="bench@bench.example",
        username="bench-backup",
        scopes=list(BACKUP_READ_API_SCOPES),
        permissions=read_only,
        default_permission="admin",
        workspace_admin=workspace_admin,
    )
    return Scenario([workspace], {"bench": token}, latency=latency_ms / 1000)


SCENARIOS = {"demo": demo, "bench": bench}
