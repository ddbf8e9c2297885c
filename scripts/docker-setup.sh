#!/usr/bin/env bash
# Makes a Docker engine and the pipe's base image available on a fresh Debian machine.
# Idempotent: every step is skipped when its result is already there.
#   - installs docker.io and debootstrap when no engine answers;
#   - starts dockerd in the background when none runs;
#   - when the official base image cannot be pulled (no registry reachable), builds a
#     stand-in with the same name from debootstrap + docker import, carrying the host's CA bundle.
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
SUITE="${STANDIN_SUITE:-bookworm}"
MIRROR="${STANDIN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"

log() { printf '[docker-setup] %s\n' "$*" >&2; }

ensure_packages() {
  local missing=()
  # Where a daemon already answers (e.g. a Pipelines step with the docker service, whose
  # DOCKER_HOST points at it) there is no need for docker.io; otherwise install it.
  if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  fi
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v git >/dev/null 2>&1 || missing+=(git)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_daemon() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not start; see /tmp/dockerd.log"; tail -n 20 /tmp/dockerd.log >&2; exit 1
}

# The stand-in mirrors what the official python:*-slim image offers the Dockerfile:
# `python` and `pip` on PATH, pip allowed to install system-wide, a CA bundle for PyPI.
build_standin() {
  local root
  root=$(mktemp -d /tmp/standin-root.XXXXXX)
  log "building stand-in $BASE_IMAGE with debootstrap ($SUITE)"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >/tmp/debootstrap.log 2>&1 || { tail -n 20 /tmp/debootstrap.log >&2; exit 1; }
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf python3 "$root/usr/bin/python"
  ln -sf pip3 "$root/usr/bin/pip"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
}

ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
  log "cannot pull $BASE_IMAGE (no registry reachable): using a local stand-in"
  build_standin
}

ensure_packages
ensure_daemon
ensure_base_image
log "ready: $(docker version --format '{{.Server.Version}}') with base $BASE_IMAGE"
