"""The README, pipe.yml and the toolkit schema must name the same variables and image tag."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipe import __version__
from pipe.pipe import ReadinessPipe
from pipe.variables import CREDENTIAL_VARIABLES, SCHEMA, SETTING_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
METADATA = yaml.safe_load((ROOT / "pipe.yml").read_text())
DOCUMENTED = {v["name"] for v in METADATA["variables"]}
USER_FACING = (set(CREDENTIAL_VARIABLES) | set(SETTING_VARIABLES)) - {"NO_COLOR"}


def test_pipe_yml_declares_every_variable_the_pipe_reads():
    assert DOCUMENTED == USER_FACING


def test_every_declared_variable_is_in_the_toolkit_schema():
    # The toolkit hands the pipe only what its schema declares, typed as the schema says: a declared
    # variable missing there would be dropped, and one typed boolean would turn "yes" into True.
    env = {name: "yes" for name in DOCUMENTED}
    assert dict(ReadinessPipe(pipe_metadata=METADATA, schema=SCHEMA, env=env).variables) == env


def test_readme_variables_table_covers_every_variable():
    table = README.split("## Variables", 1)[1].split("## Details", 1)[0]
    rows = {
        name
        for row in re.findall(r"^\| ([A-Z_ +,]+?)(?: \(\*\))? \|", table, re.M)
        for name in re.split(r"[ +,]+", row)
        if name
    }
    assert rows == USER_FACING
    assert "| DEBUG | Turn on extra debug information. Default: `false`. |" in table


def test_image_tag_is_pinned_to_the_package_version_everywhere():
    assert METADATA["image"].endswith(f":{__version__}")
    tags = set(re.findall(r"backupreadiness/backup-readiness:([0-9.]+)", README))
    assert tags == {__version__}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {__version__}" in changelog


def test_readme_sections_follow_the_pipe_convention():
    for section in ("## YAML Definition", "## Variables", "## Prerequisites", "## Examples", "## Support"):
        assert section in README


def readme_output() -> list[str]:
    block = README.split("### Output", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    return block.rstrip("\n").splitlines()


def test_readme_shows_a_real_run_of_the_demo(run_pipe):
    from test.simulator import Simulator
    from test.simulator.scenarios import demo

    scenario = demo()
    (cred,) = scenario.credentials.values()
    sim = Simulator(workspaces=scenario.workspaces, credentials=[cred]).start()
    try:
        run = run_pipe(sim, cred)
    finally:
        sim.stop()
    assert run.code == 1
    assert (run.err + run.out).rstrip("\n").splitlines() == readme_output()


def _pipe_steps(node):
    if isinstance(node, dict):
        if "pipe" in node:
            yield node
        for value in node.values():
            yield from _pipe_steps(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pipe_steps(value)


def test_readme_examples_are_valid_yaml_with_known_variables():
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    steps = [step for block in blocks for step in _pipe_steps(yaml.safe_load(block))]
    assert len(steps) >= 4
    for step in steps:
        assert step["pipe"] == f"docker://backupreadiness/backup-readiness:{__version__}"
        assert set(step["variables"]) <= USER_FACING, set(step["variables"]) - USER_FACING
