# Bitbucket Pipelines pipe: backup-readiness.
# Built with plain `docker build` (legacy builder works: no BuildKit-only syntax).
# BASE_IMAGE is the official image on machines with registry access; where it cannot be
# pulled, scripts/docker-setup.sh builds a local stand-in of the same name (see README).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: a venv with the hashed runtime requirements -------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1

COPY requirements-build.txt requirements.txt /tmp/req/

# bitbucket-pipes-toolkit 6.2.0 is an sdist only; its build backend needs setuptools 75.*.
# Install that setuptools first (hash-checked), then build the toolkit without build
# isolation, so every downloaded archive is checked against requirements*.txt.
# The host CA bundle is used only when the base carries one (the stand-in base carries the
# TLS proxy's CA there; the official image has Debian's bundle, equivalent to certifi).
RUN if [ -f /etc/ssl/certs/ca-certificates.crt ]; then \
        export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; \
    fi \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/req/requirements-build.txt \
 && /opt/venv/bin/pip install --require-hashes --no-deps --no-build-isolation -r /tmp/req/requirements.txt \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y setuptools \
 && /opt/venv/bin/python -m pip uninstall -y pip

# ---- final image -------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# git is needed at run time (`git ls-remote`). The version is whatever the base's Debian
# release ships with security updates; pinning an exact Debian revision would break the
# build as soon as the archive drops it, hence DL3008 is ignored on purpose.
# Size: git pulls in perl (about 46 MB of modules) that `git ls-remote`/`git clone` never
# use, so dpkg is told not to unpack perl's module trees (nor docs, man pages, locales);
# the packages stay registered, so apt's state is consistent. Perl-based git commands
# (send-email, svn, instaweb) do not work in this image.
# hadolint ignore=DL3008
RUN printf '%s\n' \
        'path-exclude=/usr/share/perl/*' \
        'path-exclude=/usr/lib/*/perl/*' \
        'path-exclude=/usr/share/doc/*' \
        'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' \
        'path-exclude=/usr/share/info/*' \
        'path-exclude=/usr/share/locale/*' \
        > /etc/dpkg/dpkg.cfg.d/backup-readiness-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends git \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
           /var/cache/debconf/*-old /var/lib/dpkg/*-old \
 && git --version

COPY --from=builder /opt/venv /opt/venv

# Pipelines runs the container with the clone directory as working directory, so imports
# must not depend on CWD: the package lives in /opt/pipe (on PYTHONPATH), and
# PYTHONSAFEPATH=1 stops `python -m pipe` from putting CWD first on sys.path (a repository
# that has its own pipe/ folder would otherwise shadow ours).
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONPATH=/opt/pipe \
    PYTHONSAFEPATH=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY pipe /opt/pipe/pipe
COPY pipe.yml LICENSE README.md /opt/pipe/

WORKDIR /opt/pipe
ENTRYPOINT ["python", "-m", "pipe"]
