"""A Bitbucket Cloud simulator for tests: real HTTP, Bitbucket's auth and scope rules, real git.

from test.simulator import Simulator, Workspace, Repository, Credential, Fault
"""

from .model import Credential, Fault, RecordedRequest, Repository, Workspace
from .server import Simulator

__all__ = [
    "Credential",
    "Fault",
    "RecordedRequest",
    "Repository",
    "Simulator",
    "Workspace",
]
