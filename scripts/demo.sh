#!/usr/bin/env bash
# Demo: runs the pipe image against the local Bitbucket simulator.
#   make demo            (builds the venv, Docker, the image, then runs this)
# The simulator's "demo" scenario holds a credential that lacks something a backup needs,
# so the expected outcome is exit code 1 ("not ready") with a report saying what is missing.
# Secrets reach docker only through the environment (`-e NAME`), never on a command line.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_ROOT=$(pwd)
PY="${PY:-.venv/bin/python}"
IMAGE="${IMAGE:-backup-readiness:dev}"
SCENARIO="${SCENARIO:-demo}"
WORKSPACE="${WORKSPACE:-acme}"
# Optional: which credential of the scenario to use (default: the first email + API token one).
DEMO_CREDENTIAL="${DEMO_CREDENTIAL:-}"
CLONE_DIR=/opt/atlassian/pipelines/agent/build   # where Pipelines mounts the clone

log() { printf '[demo] %s\n' "$*" >&2; }

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
SIM_OUT=$(mktemp)
SIM_ERR=$(mktemp)
SIM_PID=""
cleanup() {
  if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  rm -f "$SIM_OUT" "$SIM_ERR"
}
trap cleanup EXIT

log "starting simulator on 127.0.0.1:$PORT (scenario $SCENARIO)"
"$PY" -m test.simulator --port "$PORT" --scenario "$SCENARIO" >"$SIM_OUT" 2>"$SIM_ERR" &
SIM_PID=$!

# The simulator prints one JSON line on stdout once it listens.
for _ in $(seq 1 300); do
  [ -s "$SIM_OUT" ] && head -n 1 "$SIM_OUT" | grep -q '}' && break
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    log "simulator exited early:"; cat "$SIM_ERR" >&2; exit 3
  fi
  sleep 0.1
done
[ -s "$SIM_OUT" ] || { log "simulator printed nothing in 30 s"; cat "$SIM_ERR" >&2; exit 3; }

# Fields, one per line: api_url, git_url, credential name, kind, email, secret.
# The secret goes straight into a shell variable; it is never printed.
{
  read -r BITBUCKET_API_URL
  read -r BITBUCKET_GIT_URL
  read -r CRED_NAME
  read -r CRED_KIND
  read -r BITBUCKET_EMAIL
  read -r BITBUCKET_API_TOKEN
} < <(DEMO_CREDENTIAL="$DEMO_CREDENTIAL" "$PY" -c '
import json, os, sys
info = json.loads(sys.stdin.readline())
creds = info.get("credentials") or {}
wanted = os.environ.get("DEMO_CREDENTIAL")
if wanted:
    name = wanted
else:
    with_email = [n for n, c in creds.items() if c.get("email") and c.get("secret")]
    name = with_email[0] if with_email else next(iter(creds))
c = creds[name]
for value in (info["api_url"], info["git_url"], name, c.get("kind", ""), c.get("email", ""), c.get("secret", "")):
    print(str(value).replace("\n", " "))
' < "$SIM_OUT")
export BITBUCKET_API_URL BITBUCKET_GIT_URL BITBUCKET_EMAIL BITBUCKET_API_TOKEN

log "simulator API $BITBUCKET_API_URL, git $BITBUCKET_GIT_URL"
log "credential '$CRED_NAME' ($CRED_KIND) for $BITBUCKET_EMAIL, workspace $WORKSPACE"
log "running $IMAGE (repository mounted as the clone directory, like Pipelines)"

set +e
docker run --rm --network host \
  -v "$REPO_ROOT:$CLONE_DIR" -w "$CLONE_DIR" -e BITBUCKET_CLONE_DIR="$CLONE_DIR" \
  -e BITBUCKET_API_URL -e BITBUCKET_GIT_URL -e BITBUCKET_EMAIL -e BITBUCKET_API_TOKEN \
  -e WORKSPACE="$WORKSPACE" -e CODE_INSIGHTS=false \
  "$IMAGE"
CODE=$?
set -e

echo
echo "pipe exit code: $CODE"
case "$CODE" in
  0) echo "  0 = ready: the credential can do everything the profile needs (unexpected for the demo scenario)." ;;
  1) echo "  1 = not ready: the credential lacks something a backup needs; this is the expected demo outcome."
     echo "      Report: $REPO_ROOT/backup-readiness/report.json (if the pipe wrote one)." ;;
  2) echo "  2 = configuration error: a variable is missing or invalid, or Bitbucket rejects the credential." ;;
  3) echo "  3 = inconclusive: an API call failed, so a required check could not run." ;;
  *) echo "  $CODE = unexpected failure (crash or Docker error); see the output above." ;;
esac
# The demo succeeds when the pipe reached a verdict (ready or not ready).
[ "$CODE" -eq 0 ] || [ "$CODE" -eq 1 ]
