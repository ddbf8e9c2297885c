"""Scale benchmark: the pipe against the simulator's bench workspace, each in its own process.

    .venv/bin/python bench/run.py [--sizes 100,1000,5000,50000] [--latency-ms 100] [--json out.json]

For each size N: start `python -m test.simulator --scenario bench --repos N` (every response
delayed by --latency-ms), run `python -m pipe` against it and measure wall time (process start
to exit), peak RSS of the pipe process (os.wait4 gives that one child's rusage), start-up (process
start to the first request reaching the simulator) and API requests (the report's `requests`
and the simulator's own count, read from GET /_sim/stats). For N = 100 and 1,000 a naive
sequential loop (one GET per category per repository, as a curl script would do) is measured
too; it is capped at --naive-cap repositories and extrapolated linearly beyond that.
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
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = "bench"
# Per-repository reads a backup makes, as a user's loop would call them one by one.
NAIVE_ENDPOINTS = (
    "pullrequests",
    "pipelines_config/variables",
    "hooks",
    "branch-restrictions",
    "deploy-keys",
    "downloads",
    "refs/branches",
    "override-settings",
)
TARGET_WALL = {5_000: 2.5, 50_000: 15.0}  # seconds; sizes below 5,000 use the 5,000 target
TARGET_RSS = {5_000: 120.0, 50_000: 250.0}  # MB
TARGET_STARTUP = 1.0  # seconds


def request_limit(n: int) -> int:
    return 2 * math.ceil(n / 100) + 25


def _target(table: dict[int, float], n: int) -> float:
    fitting = [size for size in sorted(table) if n <= size]
    return table[fitting[0]] if fitting else table[max(table)]


@dataclass
class Naive:
    repositories_measured: int
    requests_measured: int
    wall_measured: float
    requests: int  # for all N repositories (extrapolated when capped)
    wall: float
    extrapolated: bool


@dataclass
class Result:
    n: int
    limit: int
    requests_report: int | None
    requests_simulator: int
    wall: float
    peak_rss_mb: float
    startup: float | None
    exit_code: int
    verdict: str | None
    simulator_ready_s: float
    naive: Naive | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimulatorProcess:
    def __init__(self, n: int, latency_ms: float):
        self.port = free_port()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "test.simulator",
                "--scenario",
                "bench",
                "--repos",
                str(n),
                "--latency-ms",
                f"{latency_ms:g}",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the simulator exited before printing its URLs (N={n})")
        self.ready_s = time.perf_counter() - started
        self.info = json.loads(line)
        self.credential = self.info["credentials"]["bench"]
        self.base = self.info["git_url"]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/_sim/stats", timeout=10) as reply:
            return json.loads(reply.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_pipe(sim: SimulatorProcess, workdir: Path, extra: dict[str, str]) -> tuple[float, float, int, float]:
    """(wall s, peak RSS MB, exit code, start epoch) of one `python -m pipe` run."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
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
    with open(workdir / "pipe.log", "wb") as log:
        start_epoch = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipe"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode, start_epoch  # ru_maxrss: KiB on Linux


def naive_loop(sim: SimulatorProcess, n: int, cap: int) -> Naive:
    """A user's script: list the repositories, then GET every per-repository endpoint in turn."""
    import httpx  # the pipe's own dependency; imported here so that the timing above stays clean

    before = sim.stats()["api_requests"]
    api = sim.info["api_url"]
    auth = httpx.BasicAuth(sim.credential["email"], sim.credential["secret"])
    start = time.perf_counter()
    slugs: list[str] = []
    with httpx.Client(auth=auth, timeout=30) as http:
        url: str | None = f"{api}/repositories/{WORKSPACE}?pagelen=100"
        while url and len(slugs) < cap:
            page = http.get(url).raise_for_status().json()
            slugs += [v["slug"] for v in page["values"]]
            url = page.get("next")
        listing = time.perf_counter() - start
        slugs = slugs[:cap]
        for slug in slugs:
            for endpoint in NAIVE_ENDPOINTS:
                http.get(f"{api}/repositories/{WORKSPACE}/{slug}/{endpoint}")
    wall = time.perf_counter() - start
    measured = sim.stats()["api_requests"] - before
    listing_pages = math.ceil(n / 100)
    per_repo = (wall - listing) / max(1, len(slugs))
    pages_read = measured - len(slugs) * len(NAIVE_ENDPOINTS)
    per_page = listing / max(1, pages_read)
    return Naive(
        len(slugs),
        measured,
        wall,
        requests=listing_pages + n * len(NAIVE_ENDPOINTS),
        wall=listing_pages * per_page + n * per_repo,
        extrapolated=len(slugs) < n,
    )


def measure(n: int, latency_ms: float, naive_sizes: set[int], naive_cap: int, extra: dict[str, str]) -> Result:
    sim = SimulatorProcess(n, latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-{n}-") as tmp:
            workdir = Path(tmp)
            wall, rss, code, start_epoch = run_pipe(sim, workdir, extra)
            stats = sim.stats()
            report_path = workdir / "out" / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else {}
            if not report:
                sys.stderr.write((workdir / "pipe.log").read_text(errors="replace")[-2000:])
        first = stats.get("first_request_at")
        result = Result(
            n,
            request_limit(n),
            report.get("requests"),
            stats["api_requests"],
            wall,
            rss,
            (first - start_epoch) if first else None,
            code,
            report.get("verdict"),
            sim.ready_s,
        )
        if n in naive_sizes:
            result.naive = naive_loop(sim, n, naive_cap)
    finally:
        sim.stop()
    judge(result)
    return result


def judge(r: Result) -> None:
    if r.requests_report is None:
        r.failures.append("no report")
    elif r.requests_report > r.limit:
        r.failures.append(f"requests {r.requests_report} > {r.limit}")
    if r.requests_simulator > r.limit:
        r.failures.append(f"simulator saw {r.requests_simulator} > {r.limit}")
    if r.wall >= _target(TARGET_WALL, r.n):
        r.failures.append(f"wall {r.wall:.2f} s >= {_target(TARGET_WALL, r.n):g} s")
    if r.peak_rss_mb >= _target(TARGET_RSS, r.n):
        r.failures.append(f"RSS {r.peak_rss_mb:.0f} MB >= {_target(TARGET_RSS, r.n):g} MB")
    if r.startup is None or r.startup >= TARGET_STARTUP:
        r.failures.append(f"start-up {r.startup} s >= {TARGET_STARTUP:g} s")


def print_table(results: list[Result], latency_ms: float) -> None:
    print(f"\nbackup-readiness scale benchmark: simulator latency {latency_ms:g} ms per response\n")
    head = (
        f"{'N':>7} {'requests':>9} {'sim req':>8} {'limit':>6} {'wall s':>7} {'peak RSS MB':>12} "
        f"{'start-up s':>11} {'pipe says':>13} verdict"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        startup = f"{r.startup:.2f}" if r.startup is not None else "-"
        print(
            f"{r.n:>7,} {r.requests_report!s:>9} {r.requests_simulator:>8} {r.limit:>6} {r.wall:>7.2f} "
            f"{r.peak_rss_mb:>12.1f} {startup:>11} {r.verdict!s:>13} "
            f"{'PASS' if r.ok else 'FAIL: ' + '; '.join(r.failures)}"
        )
    print(
        "\nTargets: requests <= 2*ceil(N/100)+25 (report and simulator); wall < 2.5 s up to 5,000 "
        "and < 15 s for 50,000;\npeak RSS < 120 MB up to 5,000 and < 250 MB for 50,000; start-up "
        "(process start to first request) < 1 s."
    )
    naive = [r for r in results if r.naive]
    if naive:
        print(
            "\nNaive sequential loop (list, then GET each of "
            f"{len(NAIVE_ENDPOINTS)} per-repository endpoints for every repository):\n"
        )
        print(f"{'N':>7} {'measured on':>12} {'requests':>9} {'wall s':>9} {'req ratio':>10} {'wall ratio':>11}")
        for r in naive:
            nv = r.naive
            note = f"{nv.repositories_measured} repos" + (" *" if nv.extrapolated else "")
            print(
                f"{r.n:>7,} {note:>12} {nv.requests:>9} {nv.wall:>9.1f} "
                f"{nv.requests / max(1, r.requests_report or 1):>9.1f}x {nv.wall / r.wall:>10.1f}x"
            )
        if any(r.naive.extrapolated for r in naive):
            print(
                "\n* measured on the first repositories only and extrapolated linearly to N "
                "(the full loop would take too long);\n  ratios are naive / pipe."
            )


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
    parser.add_argument("--sizes", default="100,1000,5000,50000", help="comma-separated workspace sizes")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="simulator delay per response")
    parser.add_argument("--naive", default="100,1000", help="sizes to run the naive loop on ('' = none)")
    parser.add_argument("--naive-cap", type=int, default=100, help="repositories the naive loop really reads")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--pipe-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra variable for the pipe, e.g. CONCURRENCY=4 (repeatable)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    naive_sizes = {int(s) for s in args.naive.split(",") if s.strip()}
    extra = dict(item.split("=", 1) for item in args.pipe_env)
    results = []
    for n in sizes:
        print(f"N={n:,}: ...", end=" ", flush=True)
        result = measure(n, args.latency_ms, naive_sizes, args.naive_cap, extra)
        print(f"{result.wall:.2f} s, {result.requests_report} requests, {result.peak_rss_mb:.0f} MB", flush=True)
        results.append(result)
    print_table(results, args.latency_ms)
    if args.json:
        doc = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "latency_ms": args.latency_ms,
            "machine": machine(),
            "pipe_env": extra,
            "results": [{**asdict(r), "ok": r.ok} for r in results],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nFigures written to {args.json}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
