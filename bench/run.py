"""Scale benchmark (issue 12): the pipe against the simulator's bench workspaces, and 0.1.0 against
the same workspaces in the same run.

    .venv/bin/python bench/run.py [--rows 1,2,3,4] [--latency-ms 100] [--json out.json] [--results RESULTS.md]

Each row of issue 12's table gets one simulator process (`python -m test.simulator --scenario
bench --repos N [--without-admin M] [--workspace-admin]`, every response delayed --latency-ms).
Against it run, one after the other, `python -m pipe` of this tree and `python -m pipe` of 0.1.0
(`git archive aa0facf`, extracted to a temporary folder and run with the same interpreter: the
old way is measured, not re-imagined). Both run in a virtualenv holding only requirements.txt's
pinned packages, as the image does (bench/.runtime, made on the first run; --dev-venv uses this
interpreter instead). For each: API requests (the report's count
and the simulator's, GET /_sim/stats before and after), wall time (process start to exit), peak
RSS of the pipe process (os.wait4 gives that one child's rusage), the verdict and the admin gap.

Before the runs the simulator answers each filtered list once (role=admin, the permission list
with and without q=): it builds a filtered list of a 50,000-repository workspace on first use,
which is the simulator's cost, not the pipe's. Those requests are not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = "bench"
OLD_COMMIT = "aa0facf"  # 0.1.0: lists every repository and every permission


@dataclass(frozen=True)
class Row:
    """One row of issue 12's table with its targets (None: no target, the ratio is printed)."""

    number: int
    repos: int
    without_admin: int
    workspace_admin: bool
    max_requests: int
    max_wall: float | None
    max_rss_mb: float

    @property
    def title(self) -> str:
        who = ", the credential a workspace admin" if self.workspace_admin else ""
        lacking = f"{self.without_admin:,} without admin" if self.without_admin else "all admin"
        return f"{self.repos:,} repositories, {lacking}{who}"


def formula(m: int) -> int:
    """issue 12: at most 25 + ceil(M/100) requests, M = the repositories the report names."""
    return 25 + math.ceil(m / 100)


ROWS = (
    Row(1, 50_000, 0, False, formula(0), 1.5, 80.0),
    Row(2, 50_000, 500, False, formula(500), 2.0, 80.0),
    Row(3, 50_000, 25_000, False, formula(25_000), None, 120.0),
    Row(4, 5_000, 0, True, 20, 1.2, 80.0),
)


@dataclass
class Measure:
    requests_report: int | None
    requests_simulator: int
    wall: float
    peak_rss_mb: float
    exit_code: int
    verdict: str | None
    admin_gap: int | None
    strategy: str | None


@dataclass
class Result:
    row: Row
    new: Measure
    old: Measure
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimulatorProcess:
    def __init__(self, row: Row, latency_ms: float):
        self.port = free_port()
        command = [sys.executable, "-m", "test.simulator", "--scenario", "bench", "--repos", str(row.repos)]
        command += ["--latency-ms", f"{latency_ms:g}", "--port", str(self.port)]
        command += ["--without-admin", str(row.without_admin)] + (["--workspace-admin"] if row.workspace_admin else [])
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the simulator exited before printing its URLs ({row.title})")
        self.info = json.loads(line)
        self.credential = self.info["credentials"]["bench"]
        self.base = self.info["git_url"]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/_sim/stats", timeout=10) as reply:
            return json.loads(reply.read())

    def warm(self) -> None:
        """Each filtered list answered once (see the module's docstring)."""
        import httpx  # the pipe's own dependency

        auth = httpx.BasicAuth(self.credential["email"], self.credential["secret"])
        api = self.info["api_url"]
        asks = [
            f"/repositories/{WORKSPACE}?pagelen=1",
            f"/repositories/{WORKSPACE}?role=admin&pagelen=1",
            f"/user/workspaces/{WORKSPACE}/permissions/repositories?pagelen=1",
            f"/user/workspaces/{WORKSPACE}/permissions/repositories?pagelen=1&q="
            + urllib.parse.quote('permission!="admin"'),
        ]
        with httpx.Client(auth=auth, timeout=120) as http:
            for ask in asks:
                http.get(api + ask)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def old_tree(into: Path) -> Path:
    """0.1.0's tree, from git, in a temporary folder."""
    archive = subprocess.run(["git", "archive", OLD_COMMIT], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def runtime_python(into: Path) -> str:
    """A virtualenv with only the pipe's pinned runtime packages (requirements.txt), as the image
    has them: the development venv also holds click and rich, which httpx imports when present
    (~90 ms of every start that no shipped pipe pays). Made once, kept in `into`."""
    python = into / "bin" / "python"
    stamp = into / "requirements.txt"
    wanted = (ROOT / "requirements.txt").read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(into)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--require-hashes", "--no-deps"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
    stamp.write_text(wanted)
    return str(python)


def run_pipe(sim: SimulatorProcess, tree: Path, extra: dict[str, str], python: str) -> Measure:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        workdir = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(tree),
            "BITBUCKET_API_URL": sim.info["api_url"],
            "BITBUCKET_GIT_URL": sim.info["git_url"],
            "BITBUCKET_EMAIL": sim.credential["email"],
            "BITBUCKET_API_TOKEN": sim.credential["secret"],
            "WORKSPACE": WORKSPACE,
            "CODE_INSIGHTS": "false",
            "NO_COLOR": "1",
            "OUTPUT_JSON": str(workdir / "out" / "report.json"),
            **extra,
        }
        before = sim.stats()["api_requests"]
        with open(workdir / "pipe.log", "wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen([python, "-m", "pipe"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's
            wall = time.perf_counter() - start
        sent = sim.stats()["api_requests"] - before
        path = workdir / "out" / "report.json"
        report = json.loads(path.read_text()) if path.exists() else {}
        if not report:
            sys.stderr.write((workdir / "pipe.log").read_text(errors="replace")[-2000:])
    section = _section(report)
    return Measure(
        report.get("requests", section.get("requests")),
        sent,
        wall,
        usage.ru_maxrss / 1024,  # KiB on Linux
        os.waitstatus_to_exitcode(status),
        report.get("verdict"),
        (section.get("admin_gap") or {}).get("repositories"),
        (section.get("repositories") or {}).get("strategy"),
    )


def _section(report: dict) -> dict:
    """The one workspace's part of the report (a report per workspace keeps them in a list)."""
    for key in ("workspaces", "sections"):
        parts = report.get(key)
        if isinstance(parts, list) and parts and isinstance(parts[0], dict):
            return parts[0]
    return report


def judge(result: Result) -> None:
    row, new, old = result.row, result.new, result.old
    if new.requests_report is None:
        result.failures.append("no report")
    for count, who in ((new.requests_report or 0, "report"), (new.requests_simulator, "simulator")):
        if count > row.max_requests:
            result.failures.append(f"requests {count} ({who}) > {row.max_requests}")
    if row.max_wall is not None and new.wall >= row.max_wall:
        result.failures.append(f"wall {new.wall:.2f} s >= {row.max_wall:g} s")
    if new.peak_rss_mb >= row.max_rss_mb:
        result.failures.append(f"RSS {new.peak_rss_mb:.0f} MB >= {row.max_rss_mb:g} MB")
    if (new.verdict, new.admin_gap) != (old.verdict, old.admin_gap):
        result.failures.append(f"verdict or admin gap differ from 0.1.0's ({old.verdict}, {old.admin_gap})")
    if row.workspace_admin and new.admin_gap:
        result.failures.append(f"a workspace admin told it lacks admin on {new.admin_gap} repositories")


def measure(row: Row, latency_ms: float, old: Path, extra: dict[str, str], python: str) -> Result:
    sim = SimulatorProcess(row, latency_ms)
    try:
        sim.warm()
        new_run = run_pipe(sim, ROOT, extra, python)
        old_run = run_pipe(sim, old, extra, python)
    finally:
        sim.stop()
    result = Result(row, new_run, old_run)
    judge(result)
    return result


def scaled(row: Row, scale: float) -> Row:
    if scale == 1:
        return row
    repos, lacking = max(1, round(row.repos * scale)), round(row.without_admin * scale)
    limit = row.max_requests if row.workspace_admin else formula(lacking)
    return Row(row.number, repos, lacking, row.workspace_admin, limit, row.max_wall, row.max_rss_mb)


def table(results: list[Result], latency_ms: float) -> list[str]:
    lines = [
        f"Simulator latency {latency_ms:g} ms per response; CONCURRENCY default (8).",
        "",
        "| # | workspace | pipe | requests (report / server) | limit | wall s | peak RSS MB | verdict | admin gap |"
        " strategy |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        for name, m in (("this tree", r.new), ("0.1.0", r.old)):
            limit = f"{r.row.max_requests}" if name == "this tree" else "-"
            lines.append(
                f"| {r.row.number} | {r.row.title} | {name} | {m.requests_report} / {m.requests_simulator} | {limit} "
                f"| {m.wall:.2f} | {m.peak_rss_mb:.1f} | {m.verdict} | {m.admin_gap} | {m.strategy or '-'} |"
            )
    lines += ["", "| # | requests 0.1.0 / this tree | wall 0.1.0 / this tree | RSS 0.1.0 / this tree | targets |"]
    lines += ["|---|---:|---:|---:|---|"]
    for r in results:
        n, o = r.new, r.old
        wall = f"< {r.row.max_wall:g} s" if r.row.max_wall is not None else "ratio printed"
        targets = f"<= {r.row.max_requests} requests, {wall}, < {r.row.max_rss_mb:g} MB"
        verdict = "PASS" if r.ok else "FAIL: " + "; ".join(r.failures)
        lines.append(
            f"| {r.row.number} | {o.requests_simulator / max(1, n.requests_simulator):.1f}x "
            f"| {o.wall / n.wall:.1f}x | {o.peak_rss_mb / n.peak_rss_mb:.1f}x | {targets}: {verdict} |"
        )
    return lines


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1,2,3,4", help="which rows of issue 12's table (1-4)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="simulator delay per response")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the workspace sizes (a quick look; targets are for 1)"
    )
    parser.add_argument("--results", type=Path, help="write the tables (Markdown) to this file")
    parser.add_argument(
        "--pipe-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra variable for both pipes, e.g. CONCURRENCY=16 (repeatable)",
    )
    parser.add_argument(
        "--dev-venv",
        action="store_true",
        help="run both pipes with this interpreter instead of a runtime-only venv (bench/.runtime)",
    )
    args = parser.parse_args(argv)
    python = sys.executable if args.dev_venv else runtime_python(ROOT / "bench" / ".runtime")
    wanted = {int(n) for n in args.rows.split(",") if n.strip()}
    extra = dict(item.split("=", 1) for item in args.pipe_env)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="backup-readiness-0.1.0-") as tmp:
        old = old_tree(Path(tmp))
        for row in (scaled(r, args.scale) for r in ROWS if r.number in wanted):
            print(f"row {row.number}: {row.title} ...", end=" ", flush=True)
            result = measure(row, args.latency_ms, old, extra, python)
            print(
                f"{result.new.wall:.2f} s, {result.new.requests_simulator} requests, "
                f"{result.new.peak_rss_mb:.0f} MB (0.1.0: {result.old.wall:.2f} s, "
                f"{result.old.requests_simulator} requests, {result.old.peak_rss_mb:.0f} MB)",
                flush=True,
            )
            results.append(result)
    load_after = os.getloadavg()
    lines = table(results, args.latency_ms)
    load = f"Load average (1, 5, 15 min): {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} before, "
    load += f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} after."
    print("\n" + "\n".join(lines) + "\n\n" + load)
    if args.results:
        args.results.write_text("\n".join(lines) + "\n\n" + load + "\n")
        print(f"\nTables written to {args.results}")
    if args.json:
        doc = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "latency_ms": args.latency_ms,
            "machine": machine(),
            "load_average": {"before": load_before, "after": load_after},
            "pipe_env": extra,
            "interpreter": "development venv" if args.dev_venv else "runtime-only venv (requirements.txt)",
            "results": [{**asdict(r), "ok": r.ok} for r in results],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"Figures written to {args.json}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
