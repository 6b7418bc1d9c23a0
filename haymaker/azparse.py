"""Scenario steps checked by the Azure CLI's own parser, when the local copy of the agent image's CLI is
installed (`.azcli`, from scripts/azcli.sh): `az network nsgg create` is refused here as az would refuse
it. The parser is tests/azcli/parse_steps.py (tests/test_azcli_parser.py explains it); nothing runs and
nothing reaches Azure. Without `.azcli` the check is skipped, and `scenarios validate` says so.
"""

from __future__ import annotations

import json
import subprocess

from haymaker.settings import REPO_ROOT

AZ_PYTHON = REPO_ROOT / ".azcli" / "bin" / "python"
PARSER = REPO_ROOT / "tests" / "azcli" / "parse_steps.py"
GUID = "00000000-0000-0000-0000-00000000000{}".format
MOST_CHARS = 200


def skipped_because() -> str | None:
    """Why the check cannot run here, or None."""
    if not AZ_PYTHON.exists():
        return "no local Azure CLI (.azcli): run `bash scripts/azcli.sh` to check them"
    if not PARSER.exists():
        return f"no {PARSER.relative_to(REPO_ROOT)} in this checkout"
    return None


def step_commands(scenarios) -> dict[tuple[str, str, int], tuple[str, ...]]:
    """{(scenario, phase, index): argv} of every step az can parse here: rendered as the agent renders it,
    leaving out expected mistakes and commands of CLI extensions (not installed here)."""
    from haymaker.agent.render import placeholder_values, render_step
    from scenarios.extensions import extension_for

    found = {}
    for s in scenarios:
        values = placeholder_values(run_id="20261128t0900z-ab12", scenario=s.name, resource_group=f"rg-{s.name}",
                                    location="westeurope", subscription_id=GUID(1), tenant_id=GUID(2),
                                    client_id=GUID(3), agent_object_id=GUID(4), password="Xa1!" + "b" * 20)
        for phase, steps in s.phases.items():
            for i, step in enumerate(steps):
                if not step.expect_failure and extension_for(step.run) is None:
                    found[(s.name, phase, i)] = render_step(step.run, values).argv
    return found


def refused(scenarios) -> dict[tuple[str, str, int], str]:
    """{(scenario, phase, index): az's complaint, cut short} for every step the parser refuses."""
    commands = step_commands(scenarios)
    if not commands:
        return {}
    try:
        done = subprocess.run([str(AZ_PYTHON), str(PARSER)], input=json.dumps([list(a[1:]) for a in commands.values()]),
                              capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
        results = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        results = None
    if results is None or len(results) != len(commands):
        from haymaker.errors import InvalidInput

        raise InvalidInput("the local Azure CLI could not parse the steps: run `bash scripts/azcli.sh` to rebuild "
                           ".azcli, or remove it to skip this check")
    return {key: _short(r["error"]) for key, r in zip(commands, results) if not r["ok"]}


def _short(text: str) -> str:
    return text if len(text) <= MOST_CHARS else text[: MOST_CHARS - 1] + "…"
