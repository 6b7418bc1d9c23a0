"""Every command the agent runs, parsed by the Azure CLI the agent image carries.

The catalog's steps are rendered as the agent renders them (placeholders filled), then handed to
azure-cli's own parser (tests/azcli/parse_steps.py, in the `.azcli` environment scripts/azcli.sh builds
at the Dockerfile's version): an unknown command or flag, a missing required argument or a value outside
an argument's choices is refused there, as `az` would refuse it before sending anything. Nothing is
executed and nothing reaches Azure. Commands of CLI extensions cannot be parsed here (extensions are
downloaded from Microsoft's storage, which these machines cannot reach); they are counted, not checked.

The parser also shows that the forms the step guard refuses (tests/test_step_guard.py) are real: az
reads ``-gOTHER``, ``--resource-gr OTHER`` and ``--resource-group=OTHER`` as the group OTHER. And every
catalog step spells its options exactly as az defines them, so the guard reads them as az does.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from haymaker.agent.config import LOGIN_MANAGED_IDENTITY, LOGIN_SERVICE_PRINCIPAL, AgentConfig
from haymaker.agent.render import placeholder_values, render_step
from haymaker.agent.runner import login_commands
from scenarios.expect import changes_something
from scenarios.extensions import extension_for
from scenarios.steps import check_argv

ROOT = Path(__file__).resolve().parent.parent
AZ_PYTHON = ROOT / ".azcli" / "bin" / "python"
PARSER = ROOT / "tests" / "azcli" / "parse_steps.py"
RUN_ID = "20261128t0900z-ab12"
GUID = "00000000-0000-0000-0000-00000000000{}".format

# Commands az must refuse: without them a parser that accepted everything would pass this file.
REFUSED = {
    "unknown flag": (["network", "vnet", "create", "-g", "rg", "-n", "v", "--adress-prefixes", "10.0.0.0/16"],
                     "unrecognized arguments: --adress-prefixes"),
    "value outside the choices": (["network", "nsg", "rule", "create", "-g", "rg", "--nsg-name", "n", "-n", "r",
                                   "--priority", "100", "--access", "Alow"], "Alow"),
    "required argument missing": (["vm", "create", "--resource-group", "rg", "--image", "Ubuntu2204"],
                                  "the following arguments are required: --name/-n"),
    "unknown command": (["network", "vnet", "crate", "-g", "rg"], "crate"),
}

# Forms the step guard refuses, and what az's own parser makes of them: (argv, parsed field, value).
BYPASS_READS = {
    "attached short option": (["vm", "list", "-gfinance-prod"], "resource_group_name", "finance-prod"),
    "abbreviated option": (["vm", "list", "--resource-gr", "finance-prod"], "resource_group_name", "finance-prod"),
    "--opt=value": (["vm", "list", "--resource-group=finance-prod"], "resource_group_name", "finance-prod"),
    "abbreviated --subscription": (["vm", "list", "-g", "rg", "--subs", "0000"], "_subscription", "0000"),
    "abbreviated --scope": (["role", "assignment", "list", "--scop", "/subscriptions/0000"], "scope", "/subscriptions/0000"),
}


def agent_config(login: str) -> AgentConfig:
    return AgentConfig(run_id=RUN_ID, scenario="s", expires_at=datetime(2026, 11, 28, 17, tzinfo=timezone.utc),
                       resource_group="rg", location="westeurope", cleanup_buffer_minutes=60,
                       tenant_id=GUID(2), subscription_id=GUID(1), client_id=GUID(3), client_secret="not-used",
                       login=login)


@pytest.fixture(scope="module")
def parsed(catalog):
    """{key: (step, argv, {"ok", "error"})} for every command, from one parser process."""
    if not AZ_PYTHON.exists():
        pytest.fail("no Azure CLI for the parser test: run `bash scripts/azcli.sh` (scripts/test.sh does)")
    commands = {}
    for s in catalog.scenarios.values():
        values = placeholder_values(run_id=RUN_ID, scenario=s.name, resource_group=f"haymaker-{RUN_ID}-{s.name}",
                                    location="westeurope", subscription_id=GUID(1), tenant_id=GUID(2),
                                    client_id=GUID(3), agent_object_id=GUID(4), password="Xa1!" + "b" * 20)
        for phase, steps in s.phases.items():
            for step in steps:
                if extension_for(step.run) is None:
                    commands[(s.name, phase, step.name)] = (step, render_step(step.run, values).argv)
    for login in (LOGIN_SERVICE_PRINCIPAL, LOGIN_MANAGED_IDENTITY):
        sign_in, _, account = login_commands(agent_config(login))
        commands[("agent", "login", login)] = (None, sign_in.argv)
        commands[("agent", "account-set", login)] = (None, account.argv)
    for name, (argv, _) in REFUSED.items():
        commands[("refused", name)] = (None, ("az", *argv))
    for name, (argv, _, _) in BYPASS_READS.items():
        commands[("bypass", name)] = (None, ("az", *argv))
    for key, (_, argv) in commands.items():
        assert argv[0] == "az", key
    out = subprocess.run([str(AZ_PYTHON), str(PARSER)], input=json.dumps([list(a[1:]) for _, a in commands.values()]),
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout)
    return {key: (step, argv, result) for (key, (step, argv)), result in zip(commands.items(), results, strict=True)}


def test_the_parser_is_the_images_azure_cli():
    pinned = re.search(r"^azure-cli==([\d.]+)", (ROOT / "requirements" / "azure-cli.txt").read_text(), re.M).group(1)
    assert "requirements/azure-cli.txt" in (ROOT / "Dockerfile").read_text()
    out = subprocess.run([str(AZ_PYTHON), "-c", "from azure.cli.core import __version__; print(__version__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == pinned, out.stderr


def test_az_refuses_what_it_should(parsed):
    for name, (_, reason) in REFUSED.items():
        result = parsed[("refused", name)][2]
        assert not result["ok"] and reason in result["error"], (name, result)


def test_every_step_that_should_work_parses(parsed):
    refused = {key: result["error"] for key, (step, _, result) in parsed.items()
               if step is not None and not step.expect_failure and not result["ok"]}
    assert refused == {}


def test_the_forms_the_guard_refuses_are_what_az_reads_them_as(parsed):
    for name, (argv, field, value) in BYPASS_READS.items():
        result = parsed[("bypass", name)][2]
        assert result["ok"] and result["values"].get(field) == value, (name, result)
        assert result["inexact"], name
        assert check_argv(["az", *argv], resource_group="rg", subscription="1111"), name


def test_every_step_spells_its_options_as_az_defines_them(parsed):
    inexact = {key: result["inexact"] for key, (step, _, result) in parsed.items()
               if step is not None and result["inexact"]}
    assert inexact == {}


def test_the_agents_own_sign_in_commands_parse(parsed):
    refused = {key: result["error"] for key, (_, _, result) in parsed.items() if key[0] == "agent" and not result["ok"]}
    assert refused == {} and len([k for k in parsed if k[0] == "agent"]) == 4


def test_a_mistake_az_refuses_while_parsing_declares_no_operation(parsed):
    """A mistaken change az's parser refuses never reaches ARM, so it leaves nothing in the Activity Log:
    `expect: []`. A mistake that parses either fails at Azure (declaring what it sends) or is refused by az
    when it runs (`expect: []`): tests/test_wire.py runs those and checks which."""
    mistakes = {key: (step, result) for key, (step, argv, result) in parsed.items()
                if step and step.expect_failure and step.plane is None and changes_something(argv)}
    wrong = {key: (step.expect, result["error"]) for key, (step, result) in mistakes.items()
             if not result["ok"] and step.expect}
    assert wrong == {}
