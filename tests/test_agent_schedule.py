"""The agent's day on paper: operate times, rendering of every catalog step, refusals, the plan command."""

from __future__ import annotations

import json
import random
import string
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from haymaker.cli.agent import app as agent_app, main
from haymaker.agent.plan import plan_day
from haymaker.agent.render import (SECRET, StepRefused, new_password, placeholder_values, prepare_day,
                                   render_step)
from haymaker.agent.schedule import retry_delay
from haymaker.errors import InvalidInput
from haymaker.naming import resource_group_name, unique_suffix
from scenarios.steps import PLACEHOLDERS, check_argv
from tests.conftest import RUN_ID

VM = "compute-01-linux-vm-web-server"
START = datetime(2026, 11, 21, 6, 15, tzinfo=timezone.utc)
SUB, TENANT, CLIENT = ("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
                       "33333333-3333-3333-3333-333333333333")
PASSWORD = "Pw-not-a-real-one-1234567"


def values(scenario=VM, **overrides):
    v = placeholder_values(run_id=RUN_ID, scenario=scenario, resource_group=resource_group_name(RUN_ID, scenario),
                           location="swedencentral", subscription_id=SUB, tenant_id=TENANT, client_id=CLIENT,
                           agent_object_id="44444444-4444-4444-4444-444444444444", password=PASSWORD)
    return {**v, **overrides}


# operate times: see tests/test_agent_day.py

def test_retry_delay_grows_is_capped_and_jittered():
    rng = random.Random(7)
    for attempt in range(1, 10):
        nominal = min(300.0, 10.0 * 2 ** (attempt - 1))
        assert nominal / 2 <= retry_delay(attempt, rng) <= nominal


# rendering

def test_every_placeholder_of_every_scenario_renders(catalog):
    used = set()
    for name in catalog.names():
        day = prepare_day(catalog[name], values(name))
        commands = [c for _, c in day.deploy] + list(day.operate.values()) + [c for _, c in day.cleanup]
        for steps in catalog[name].phases.values():
            used |= {p for s in steps for p in PLACEHOLDERS if f"${{{p}}}" in s.run}
        for c in commands:
            assert not any("${" in a for a in c.argv), (name, c.argv)
            assert "${" not in c.shown and PASSWORD not in c.shown, (name, c.shown)
            assert c.argv[0] == "az"
    assert {"RESOURCE_GROUP", "UNIQUE", "PASSWORD", "CLIENT_ID"} <= used


def test_rendering_fills_values_and_hides_the_password():
    c = render_step("az mysql flexible-server create -g ${RESOURCE_GROUP} --name db-${UNIQUE} "
                    "--admin-password ${PASSWORD} --tags run=${RUN_ID}", values())
    assert c.argv == ("az", "mysql", "flexible-server", "create", "-g", resource_group_name(RUN_ID, VM),
                      "--name", f"db-{unique_suffix(RUN_ID, VM)}", "--admin-password", PASSWORD,
                      "--tags", f"run={RUN_ID}")
    assert PASSWORD not in c.shown and f"--admin-password '{SECRET}'" in c.shown


def test_a_value_cannot_add_arguments():
    c = render_step("az vm list -g ${RESOURCE_GROUP} --query ${LOCATION}",
                    values(LOCATION="x --subscription other-sub"))
    assert len(c.argv) == 7 and c.argv[-1] == "x --subscription other-sub"


@pytest.mark.parametrize("run, fragment", [
    ("az vm list -g ${RESOURCE_GROUP} --query ${NOPE}", "unknown placeholder ${NOPE}"),
    ("az vm list -g other-rg", "names another resource group"),
    ("az vm show --ids /subscriptions/${SUBSCRIPTION_ID}/resourceGroups/prod/providers/x", "names resource group"),
    ("az rest --url https://management.azure.com/subscriptions/0000/resourceGroups/${RESOURCE_GROUP}",
     "names subscription"),
    ("az vm list --subscription ${SUBSCRIPTION_ID}", "remove --subscription"),
    ("az account management-group list", "management groups"),
    ("az group delete --name ${RESOURCE_GROUP} --yes", "do not delete it"),
    ("az keyvault secret set -g ${RESOURCE_GROUP} --value @/proc/self/environ", "read a local file"),
])
def test_steps_outside_the_group_are_refused(run, fragment):
    with pytest.raises(StepRefused, match=fragment.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")):
        render_step(run, values())


def test_the_rendered_check_uses_the_real_group_and_subscription():
    rg = resource_group_name(RUN_ID, VM)
    assert check_argv(["az", "vm", "list", "-g", rg], resource_group=rg, subscription=SUB) == []
    assert check_argv(["az", "vm", "list", "-g", "haymaker-other"], resource_group=rg, subscription=SUB)
    scope = f"/subscriptions/{SUB}/resourceGroups/{rg}"
    assert check_argv(["az", "role", "assignment", "list", "--scope", scope], resource_group=rg, subscription=SUB) == []
    assert check_argv(["az", "role", "assignment", "list", "--scope", scope + "-x"], resource_group=rg,
                      subscription=SUB)


def test_password_meets_azure_complexity_rules():
    allowed = set(string.ascii_letters + string.digits + "!-_.+")
    for _ in range(200):
        p = new_password()
        assert len(p) == 24 and p[0].isalpha() and set(p) <= allowed
        assert any(c.isupper() for c in p) and any(c.islower() for c in p) and any(c.isdigit() for c in p)
        assert any(c in "!-_.+" for c in p)
    assert new_password() != new_password()


# the plan

def test_plan_follows_the_day_and_stops_operating_before_cleanup(catalog, settings):
    for name in catalog.names():
        doc = plan_day(catalog[name], run_id=RUN_ID, duration_hours=8, settings=settings, seed=3)
        phases = [e["phase"] for e in doc["entries"]]
        assert phases == sorted(phases, key=["deploy", "operate", "cleanup"].index)
        buffer = max(settings.cleanup_buffer_minutes, catalog[name].cleanup_minutes)
        assert doc["cleanup_buffer_minutes"] == buffer
        cleanup_offset = next(e["offset_seconds"] for e in doc["entries"] if e["phase"] == "cleanup")
        assert cleanup_offset == (8 * 60 - settings.start_delay_minutes - buffer) * 60
        assert all(e["offset_seconds"] < cleanup_offset for e in doc["entries"] if e["phase"] == "operate")


def test_plan_command_json_is_deterministic_and_hides_secrets():
    args = ["plan", "databases-01-mysql-wordpress", "--run-id", RUN_ID, "--duration", "4", "--seed", "9", "--json"]
    first, second = CliRunner().invoke(agent_app, args), CliRunner().invoke(agent_app, args)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc == json.loads(second.stdout)
    assert doc["expires_at"] == "2026-11-21T10:00:00Z" and doc["cleanup_at"] == "2026-11-21T09:30:00Z"
    assert doc["user_agent"] == f"haymaker/{RUN_ID}/databases-01-mysql-wordpress"
    assert any(SECRET in e["command"] for e in doc["entries"])
    assert "${" not in first.stdout


def test_plan_command_table_fits_80_columns_and_shows_the_calendar():
    result = CliRunner().invoke(agent_app, ["plan", VM, "--run-id", "20261124t0600z-7f3a"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert "calendar: Europe/Stockholm (SE, from company.country)" in lines
    assert "  Tue 2026-11-24  works 08:00-17:00 local = 07:00-16:00 UTC" in lines
    assert "+0:00:00  06:15  Tue 07:15  early    deploy      create-vnet" in lines
    assert any(" work     morning     check-power-state" in line for line in lines)
    assert any(line.endswith("cleanup     delete-vm") for line in lines)


def test_plan_of_an_unknown_scenario_names_close_matches(capsys):
    result = CliRunner().invoke(agent_app, ["plan", "compute-01-linux-vm-webserver"])
    assert isinstance(result.exception, InvalidInput)
    assert main(["plan", "compute-01-linux-vm-webserver"]) == 1
    err = capsys.readouterr().err
    assert "did you mean compute-01-linux-vm-web-server" in err and "Traceback" not in err
