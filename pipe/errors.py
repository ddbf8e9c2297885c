"""Exit codes and the exceptions that end a run early with one of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    READY = 0
    NOT_READY = 1  # permissions missing
    CONFIGURATION = 2  # bad variables or a credential Bitbucket rejects
    INCONCLUSIVE = 3  # the API failed, so a required check could not run


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: what, where, and how to fix it."""

    variable: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message} Fix: {self.fix}"


@dataclass(frozen=True)
class Failure:
    """Why a run ended before an assessment: shown in every report."""

    message: str
    fix: str
    exit_code: ExitCode
    problems: tuple[Problem, ...] = ()


class PipeError(Exception):
    exit_code: ExitCode = ExitCode.INCONCLUSIVE


class ConfigError(PipeError):
    """Raised before any request is made; lists every problem at once."""

    exit_code = ExitCode.CONFIGURATION

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class CredentialError(PipeError):
    """Bitbucket rejected the credential, or the workspace cannot be seen with it."""

    exit_code = ExitCode.CONFIGURATION

    def __init__(self, message: str, fix: str):
        self.message, self.fix = message, fix
        super().__init__(f"{message} {fix}")


class ApiUnavailable(PipeError):
    """Bitbucket could not be asked: network failure, outage, deadline."""

    exit_code = ExitCode.INCONCLUSIVE

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)
