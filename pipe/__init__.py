"""backup-readiness: checks that a Bitbucket Cloud credential can back up (and restore) a workspace."""

__version__ = "0.2.0"
