"""CLI: `python -m test.simulator --port 8765 --scenario demo` (or `--scenario bench --repos N`).

Prints one JSON line (URLs and the scenario's test credentials), then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict

from .scenarios import SCENARIOS, Scenario, bench, demo
from .server import Simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m test.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo")
    parser.add_argument("--repos", type=int, default=50_000, help="bench: repositories")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added per response")
    parser.add_argument("--without-admin", type=int, default=0, help="bench: repositories only readable")
    parser.add_argument("--workspace-admin", action="store_true", help="bench: the credential is a workspace admin")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> Scenario:
    if args.scenario == "bench":
        return bench(args.repos, args.latency_ms, args.without_admin, args.workspace_admin)
    scenario = demo()
    scenario.latency = args.latency_ms / 1000
    return scenario


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = build(args)
    sim = Simulator(
        scenario.workspaces,
        list(scenario.credentials.values()),
        latency=scenario.latency,
        rate_limit=scenario.rate_limit,
    )
    sim.start(port=args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    info = {
        "api_url": sim.api_url,
        "git_url": sim.git_url,
        "oauth_token_url": sim.oauth_token_url,
        "credentials": {name: asdict(c) for name, c in scenario.credentials.items()},
    }
    print(json.dumps(info), flush=True)
    try:
        stop.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
