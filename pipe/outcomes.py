"""Every state the pipe can be in, one home for all of them (StrEnum: the JSON words stay the same).

Outcome                 what one live read proved (survey, ProbeResult.outcome)
├── ok                  2xx with a JSON object: the credential can read it
├── scope               403 naming the scopes it required
├── permission          403 without scopes: a repository permission is missing
├── not-found           404
├── gone                410: Bitbucket removed the endpoint
├── failed              no usable answer (transport failure, wrong shape, 5xx after retries)
└── skipped             not asked: no repository to read it on
GitOutcome              what git ls-remote proved (survey.git, GitResult.outcome)
├── ok                  the credential can clone
├── rejected            401, or an app password Bitbucket no longer accepts
├── forbidden           403: no repository read for git
├── failed              no usable answer (network, redirect refused, trust, timeout)
└── skipped             no repository to clone
Status                  one side (backup or restore) of a category (assessment.Side.status)
├── ok                  everything it needs is proven
├── missing             something it needs is proven absent
├── retired             Bitbucket retired the category
├── not-applicable      this credential kind cannot hold it, or nothing is written back
└── unknown             could not be judged: a reason names why
Verdict                 the run (report.json's `verdict`), with its exit code
├── ready               0
├── not-ready           1
├── error               2  the configuration or the credential is wrong
└── inconclusive        3  a required check could not be judged
"""

from __future__ import annotations

from enum import StrEnum

from pipe.errors import ExitCode


class Outcome(StrEnum):
    OK = "ok"
    SCOPE = "scope"
    PERMISSION = "permission"
    NOT_FOUND = "not-found"
    GONE = "gone"
    FAILED = "failed"
    SKIPPED = "skipped"


class GitOutcome(StrEnum):
    OK = "ok"
    REJECTED = "rejected"
    FORBIDDEN = "forbidden"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def refused(self) -> bool:
        """Bitbucket judged the credential and said no (as opposed to not being able to ask)."""
        return self in (GitOutcome.REJECTED, GitOutcome.FORBIDDEN)


class Status(StrEnum):
    OK = "ok"
    MISSING = "missing"
    RETIRED = "retired"
    NOT_APPLICABLE = "not-applicable"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    READY = "ready"
    NOT_READY = "not-ready"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.READY: ExitCode.READY,
    Verdict.NOT_READY: ExitCode.NOT_READY,
    Verdict.ERROR: ExitCode.CONFIGURATION,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
}
