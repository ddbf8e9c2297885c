"""Probe results are keyed by the catalog's own Operation objects, and a probe operation without a
result is `unknown`, naming the operation: never passed over in silence (issue 10, point 2).

The Evidence is the real survey's, of a run against the simulator; the tests then take one result
out of it (our own data, built as the survey builds it) and assess it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import pytest

from pipe.assessment import Assessment, assess
from pipe.catalog import Catalog, Operation, load
from pipe.credential import detect
from pipe.outcomes import Outcome, Status, Verdict
from pipe.survey import survey
from pipe.survey.evidence import Evidence
from pipe.variables import read_config
from test.conftest import ALL_READ, api_token, credential_env, simulator_env, workspace
from test.simulator import Simulator

CATALOG = load()
PROBED = [op for c in CATALOG.categories if not c.retired for op in c.probes]


@pytest.fixture(scope="module")
def evidence() -> Iterator[Evidence]:
    """A complete API token's evidence: every category is ok (checked below); Packages too, so the token
    holds read:package:bitbucket (judged from the granted scopes: Packages have no REST endpoint)."""
    cred = api_token([*ALL_READ, "read:package:bitbucket"], scope_headers=True)
    with Simulator(workspaces=[workspace()], credentials=[cred]) as sim:
        values = {"WORKSPACE": "acme", **credential_env(cred), **simulator_env(sim)}
        config = read_config(values, CATALOG.profiles, CATALOG.ids)
        (found,) = asyncio.run(survey(config, detect(values), CATALOG, time.monotonic(), lambda secret: None))
        yield found


def _assess(catalog: Catalog, evidence: Evidence) -> Assessment:
    return assess(catalog, evidence, "xopero-one", (), False)


def _holding(op: Operation) -> list[str]:
    return [c.id for c in CATALOG.categories if not c.retired and op in c.probes]


def test_every_probe_operation_has_its_result_under_the_catalogs_own_object(evidence):
    assert set(evidence.probes) == set(PROBED)
    for op in PROBED:
        assert any(key is op for key in evidence.probes), op.label  # the object itself, not a copy
    assert all(result.outcome is Outcome.OK for result in evidence.probes.values())


def test_with_every_result_the_run_is_ready(evidence):
    """The control for the test below: without it, `unknown` there might come from elsewhere."""
    assessment = _assess(CATALOG, evidence)
    assert assessment.verdict is Verdict.READY
    for result in assessment.categories:
        if not result.category.retired:
            assert result.backup.status is Status.OK, (result.category.id, result.backup.reasons)


@pytest.mark.parametrize("op", PROBED, ids=[op.label for op in PROBED])
def test_a_probe_operation_without_a_result_is_unknown_naming_it(evidence, op):
    lacking = dataclasses.replace(evidence, probes={k: v for k, v in evidence.probes.items() if k != op})
    assessment = _assess(CATALOG, lacking)
    for result in assessment.categories:
        if result.category.id in _holding(op):
            assert result.backup.status is Status.UNKNOWN, result.category.id
            assert f"{op.label} has no result: the survey did not read it" in result.backup.reasons
        else:
            assert result.backup.status is not Status.UNKNOWN, result.category.id
    required = {r.category.id for r in assessment.categories if r.required_backup}
    expected = Verdict.INCONCLUSIVE if required & set(_holding(op)) else Verdict.READY
    assert assessment.verdict is expected
    assert assessment.exit_code == expected.exit_code
