"""Expected operations: the catalog against the obvious, the refusals of bad annotations, the snapshot
and the script that refreshes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scenarios.catalog import check_files, load_catalog
from scenarios.expect import changes_something, command_plane, command_words, expected_operations
from scenarios.operations import SNAPSHOT_FILE, load_snapshot, namespace_of
from scenarios.steps import split_step

GOOD = Path(__file__).resolve().parent / "fixtures" / "repo" / "scenarios" / "compute-01-linux-vm-web-server.yaml"
FIXTURES = Path(__file__).parent / "fixtures" / "operations"


def steps(catalog):
    for s in catalog.scenarios.values():
        for phase, phase_steps in s.phases.items():
            for step in phase_steps:
                yield s, phase, step, split_step(step.run)


# --- the committed catalog against the obvious --------------------------------------------------------

@pytest.mark.parametrize("command, operation", [
    ("vm create", "Microsoft.Compute/virtualMachines/write"),
    ("vm run-command invoke", "Microsoft.Compute/virtualMachines/runCommand/action"),
    ("network vnet create", "Microsoft.Network/virtualNetworks/write"),
    ("network nsg rule create", "Microsoft.Network/networkSecurityGroups/securityRules/write"),
    ("storage account create", "Microsoft.Storage/storageAccounts/write"),
    ("keyvault create", "Microsoft.KeyVault/vaults/write"),
    ("aks create", "Microsoft.ContainerService/managedClusters/write"),
    ("webapp restart", "Microsoft.Web/sites/restart/action"),
    ("appservice plan create", "Microsoft.Web/serverfarms/write"),
    ("cosmosdb create", "Microsoft.DocumentDB/databaseAccounts/write"),
])
def test_common_commands_declare_what_they_obviously_cause(catalog, command, operation):
    found = [(s.name, step) for s, _, step, argv in steps(catalog) if " ".join(command_words(argv)) == command]
    assert found, command
    for name, step in found:
        assert operation in step.expect, (name, step.name)


def test_vm_create_declares_its_template_deployment_and_the_network_pieces_it_makes(fixture_catalog):
    catalog = fixture_catalog
    web = {st.name: st for st in catalog["compute-01-linux-vm-web-server"].phases["deploy"]}
    # vnet and NSG exist already; az vm create deploys a template that makes the NIC and a public IP
    assert web["create-vm"].expect == (
        "Microsoft.Resources/deployments/write", "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Network/networkInterfaces/write", "Microsoft.Network/publicIPAddresses/write")
    lb = {st.name: st for st in catalog["networking-03-load-balancer"].phases["deploy"]}
    assert lb["create-vm-web-1"].expect == (  # --nics: nothing else is made
        "Microsoft.Resources/deployments/write", "Microsoft.Compute/virtualMachines/write")


# Deleting a key of a settings collection rewrites the collection: a PUT, not a DELETE.
DELETE_BY_REWRITE = {"staticwebapp appsettings delete"}


def test_every_delete_step_declares_a_delete_and_every_create_a_write(catalog):
    checked = 0
    for s, _, step, argv in steps(catalog):
        words = command_words(argv)
        if command_plane(argv) != "arm" or words[0] == "rest" or " ".join(words) in DELETE_BY_REWRITE:
            continue
        kinds = {op.rsplit("/", 1)[1].lower() for op in step.expect}
        if step.expect_failure and not step.expect:
            continue  # a mistake az refuses before sending anything (tests/test_wire.py shows it does)
        if words[-1] == "delete":
            assert "delete" in kinds, (s.name, step.name)
            checked += 1
        if words[-1] == "create":
            assert "write" in kinds, (s.name, step.name)
            checked += 1
    assert checked  # the catalog has create and delete steps: the loop checked something


def test_every_mutating_step_declares_operations_or_its_plane_and_reads_declare_no_writes(catalog):
    for s, _, step, argv in steps(catalog):
        plane = command_plane(argv)
        if changes_something(argv):
            if step.expect_failure and not step.expect and not step.plane:
                continue  # a mistake az refuses itself (tests/test_azcli_parser.py proves each one)
            assert bool(step.expect) != bool(step.plane), (s.name, step.name)
            assert step.plane == (None if plane == "arm" else plane), (s.name, step.name)
        else:
            assert all(op.lower().endswith("/action") for op in step.expect), (s.name, step.name)


def test_graph_and_data_plane_steps_are_marked(catalog):
    planes = {(" ".join(command_words(argv)), step.plane) for _, _, step, argv in steps(catalog) if step.plane}
    assert ("rest", "graph") in planes and ("ad app create", "graph") in planes
    assert ("storage blob upload", "data") in planes and ("keyvault secret set", "data") in planes
    assert {p for _, p in planes} == {"graph", "data"}


def test_every_declared_operation_is_published_and_of_a_listed_provider(catalog):
    snapshot = load_snapshot()
    ops = {op for _, _, step, _ in steps(catalog) for op in step.expect}
    assert ops and all(op in snapshot for op in ops)
    for s, _, step, _ in steps(catalog):
        listed = {namespace_of(t).lower() for t in s.services} | {"microsoft.resources"}
        assert all(namespace_of(op).lower() in listed for op in step.expect), (s.name, step.name)


def test_expected_operations_per_phase_per_step(fixture_catalog):
    got = expected_operations(fixture_catalog["compute-01-linux-vm-web-server"])
    assert list(got) == ["deploy", "operate", "cleanup"]
    assert got["deploy"]["create-vnet"] == ("Microsoft.Network/virtualNetworks/write",)
    assert got["operate"]["check-power-state"] == ()  # a read
    assert got["cleanup"] == {"delete-vm": ("Microsoft.Compute/virtualMachines/delete",),
                              "delete-network": ("Microsoft.Network/virtualNetworks/delete",)}


# --- refusals ---------------------------------------------------------------------------------------------

def errors_with(tmp_path, *edits) -> list[str]:
    text = GOOD.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    p = tmp_path / GOOD.name
    p.write_text(text)
    _, errors = check_files([p])
    return [e.removeprefix(f"{p}: ") for e in errors]


def test_the_good_file_passes_and_spelling_case_does_not_matter(tmp_path):
    assert errors_with(tmp_path) == []
    assert errors_with(tmp_path, ("expect: [Microsoft.Network/virtualNetworks/write]",
                                  "expect: [microsoft.network/VIRTUALNETWORKS/write]")) == []


def test_unknown_operation_is_refused_with_close_matches(tmp_path):
    (e,) = errors_with(tmp_path, ("[Microsoft.Network/virtualNetworks/write]",
                                  "[Microsoft.Network/virtualNetwork/write]"))
    assert e == ("phases.deploy[0].expect[0]: unknown operation 'Microsoft.Network/virtualNetwork/write': not in "
                 f"Azure's published operations (snapshot taken {load_snapshot().taken}); did you mean "
                 "Microsoft.Network/virtualNetworks/write, Microsoft.Network/virtualNetworkTaps/write, "
                 "Microsoft.Network/virtualNetworkGateways/write?")


def test_operation_of_a_namespace_outside_the_snapshot_says_how_to_add_it(tmp_path):
    (e,) = errors_with(tmp_path, ("[Microsoft.Network/virtualNetworks/write]", "[Contoso.Widgets/gadgets/write]"))
    assert e == ("phases.deploy[0].expect[0]: unknown operation 'Contoso.Widgets/gadgets/write': not in Azure's "
                 f"published operations (snapshot taken {load_snapshot().taken}); Contoso.Widgets is not in the "
                 "snapshot: add it to the scenario's services and run scripts/refresh_operations.py")


@pytest.mark.parametrize("step, phase", [("nsg-web\n      expect: [Microsoft.Network/networkSecurityGroups/write]",
                                          "deploy[1]"),
                                         ("--yes\n      expect: [Microsoft.Compute/virtualMachines/delete]",
                                          "cleanup[0]")])
def test_mutating_step_without_operations_is_refused(tmp_path, step, phase):
    (e,) = errors_with(tmp_path, (step, step.split("\n", 1)[0]))
    command = "az network nsg create" if phase == "deploy[1]" else "az vm delete"
    assert e == (f"phases.{phase}.expect: '{command}' changes resources but declares no operations: add expect: "
                 "[<Provider>/<type>/<write|delete|action>] listing what it causes in the Activity Log (or, for "
                 "an expect_failure step that az refuses before sending anything, expect: [])")


def test_an_empty_expect_is_only_for_a_mistake(tmp_path):
    mistake = "      expect: [Microsoft.Compute/virtualMachines/write]\n  cleanup:"
    (e,) = errors_with(tmp_path, ("      expect_failure: true\n", ""), (mistake, "      expect: []\n  cleanup:"))
    assert e.startswith("phases.operate[7].expect: 'az vm resize' changes resources but declares no operations")
    assert errors_with(tmp_path, (mistake, "      expect: []\n  cleanup:")) == []


def test_operation_of_a_provider_the_services_do_not_list_is_refused(tmp_path):
    (e,) = errors_with(tmp_path, ("[Microsoft.Network/virtualNetworks/write]",
                                  "[Microsoft.Network/virtualNetworks/write, Microsoft.Storage/storageAccounts/write]"))
    assert e == ("phases.deploy[0].expect[1]: 'Microsoft.Storage/storageAccounts/write' belongs to Microsoft.Storage, "
                 "which the scenario's services do not list: add the Microsoft.Storage/<type> it creates to "
                 "services, or fix the operation")


def test_read_only_step_may_declare_an_action_but_not_a_write(tmp_path):
    line = "--nsg-name nsg-web --output table\n"
    (e,) = errors_with(tmp_path, (line, line + "      expect: [Microsoft.Network/networkSecurityGroups/write]\n"))
    assert e == ("phases.operate[4].expect[0]: 'az network nsg rule list' only reads: it cannot cause "
                 "'Microsoft.Network/networkSecurityGroups/write' (a list or show command may declare only action "
                 "operations, such as listKeys, that ARM records)")
    # get-boot-log is a POST that ARM records: the good file declares it on a read verb
    assert "Microsoft.Compute/virtualMachines/retrieveBootDiagnosticsData/action" in GOOD.read_text()


@pytest.mark.parametrize("op, message", [
    ("Microsoft.Network/virtualNetworks/read", "'Microsoft.Network/virtualNetworks/read': reads never reach the "
                                               "Activity Log: declare only write, delete or action operations"),
    ("virtualNetworks/write", "'virtualNetworks/write' is not an operation name: use "
                              "<Provider>/<type>/<write|delete|action>, e.g. Microsoft.Network/virtualNetworks/write"),
])
def test_malformed_and_read_operations_are_refused(tmp_path, op, message):
    (e,) = errors_with(tmp_path, ("[Microsoft.Network/virtualNetworks/write]", f"[{op}]"))
    assert e == f"phases.deploy[0].expect[0]: {message}"


CREATE_NSG = "--name nsg-web\n      expect: [Microsoft.Network/networkSecurityGroups/write]\n"
GROUP = ("    - name: make-group\n"
         "      run: az ad app create --display-name haymaker-${RUN_ID}-ops\n")


@pytest.mark.parametrize("replacement, message", [
    ("--name nsg-web\n      plane: graph\n",
     "phases.deploy[1].plane: 'az network nsg create' is not a graph-plane command: declare the ARM operations it "
     "causes in expect"),
    (CREATE_NSG + GROUP,
     "phases.deploy[2].plane: 'az ad app create' acts on Microsoft Graph, not ARM: add plane: graph (and no expect)"),
    (CREATE_NSG + GROUP + "      plane: graph\n      expect: [Microsoft.Network/networkSecurityGroups/write]\n",
     "phases.deploy[2].expect: a plane: graph step causes no ARM operation: remove expect"),
    (CREATE_NSG + "    - name: upload\n      run: az storage blob upload --account-name st --container-name c "
                  "--name a.txt --data hello\n      plane: data\n",
     "phases.deploy[2].plane: 'az storage blob upload' without --auth-mode login reads the account key through ARM "
     "(Microsoft.Storage/storageAccounts/listKeys/action): add --auth-mode login"),
    (CREATE_NSG + "    - name: twiddle\n      run: az network nsg frobnicate --name nsg-web\n",
     "phases.deploy[2].expect: cannot tell whether 'az network nsg frobnicate' changes anything: add its verb to "
     "WRITE_VERBS or READ_VERBS in scenarios/expect.py"),
])
def test_plane_declarations_and_unknown_verbs_are_checked(tmp_path, replacement, message):
    errors = errors_with(tmp_path, (CREATE_NSG, replacement))
    # GROUP's application is never deleted: tests/test_validate.py covers that check
    assert [e for e in errors if "outlives the resource group" not in e] == [message]


def test_az_rest_goes_by_method_and_host():
    def classify(run):
        argv = split_step(run)
        return command_plane(argv), changes_something(argv)

    assert classify("az rest --url https://graph.microsoft.com/v1.0/groups") == ("graph", False)
    assert classify("az rest --method post --url https://graph.microsoft.com/v1.0/groups") == ("graph", True)
    assert classify("az rest -m put --url https://management.azure.com/subscriptions/x") == ("arm", True)
    assert classify("az rest --method post --url https://x.openai.azure.com/openai/v1/chat") == ("data", True)


# --- the snapshot and its refresh --------------------------------------------------------------------

def test_committed_snapshot_is_dated_sourced_and_covers_every_catalog_namespace():
    doc = json.loads(SNAPSHOT_FILE.read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc["taken"]) and doc["sources"]
    assert doc["taken"] == min(s["taken"] for s in doc["sources"])
    assert doc["count"] == sum(map(len, doc["operations"].values())) > 1000
    services = {namespace_of(t).lower() for s in load_catalog().scenarios.values() for t in s.services}
    assert services <= {ns.lower() for ns, ops in doc["operations"].items() if ops}
    every = [op for ops in doc["operations"].values() for op in ops]
    assert not [op for op in every if op.rsplit("/", 1)[1].lower() not in {"write", "delete", "action"}]


def refresh(tmp_path, *args) -> tuple[int, dict | None]:
    from scripts.refresh_operations import main

    out = tmp_path / "ops.json"
    code = main([*args, "--output", str(out)])
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_refresh_from_the_permissions_reference_pages(tmp_path):
    code, snap = refresh(tmp_path, f"docs:{FIXTURES / 'docs'}@2026-11-01",
                         "--namespace", "microsoft.network", "--namespace", "Microsoft.Storage")
    assert code == 0
    assert snap["operations"] == {  # reads, data actions, other namespaces and the lowercase repeat are dropped
        "microsoft.network": ["Microsoft.Network/virtualNetworks/delete",
                              "Microsoft.Network/virtualNetworks/peer/action",
                              "Microsoft.Network/virtualNetworks/write"],
        "Microsoft.Storage": ["Microsoft.Storage/storageAccounts/listKeys/action",
                              "Microsoft.Storage/storageAccounts/write"]}
    assert snap["taken"] == "2026-11-01" and snap["count"] == 5
    assert snap["sources"] == [{"source": "Azure permissions reference (MicrosoftDocs/azure-docs, "
                                          "role-based-access-control/permissions)", "taken": "2026-11-01"}]


def test_refresh_merges_az_json_and_a_powershell_export_and_keeps_the_oldest_date(tmp_path):
    code, snap = refresh(tmp_path, f"az-json:{FIXTURES / 'az.json'}@2026-10-02",
                         f"csv:{FIXTURES / 'ops.csv'}@2025-01-31",
                         "--namespace", "Microsoft.Compute", "--namespace", "Microsoft.Web", "--note", "fixture")
    assert code == 0
    assert snap["operations"] == {
        "Microsoft.Compute": ["Microsoft.Compute/register/action", "Microsoft.Compute/virtualMachines/start/action",
                              "Microsoft.Compute/virtualMachines/write"],
        "Microsoft.Web": ["Microsoft.Web/sites/restart/Action", "Microsoft.Web/sites/Write"]}
    assert snap["taken"] == "2025-01-31" and snap["note"] == "fixture"
    assert [s["source"] for s in snap["sources"]] == ["az provider operation list", "Get-AzProviderOperation export"]


def test_refresh_keeps_the_catalogs_namespaces_by_default(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / GOOD.name).write_text(GOOD.read_text())
    code, snap = refresh(tmp_path, f"az-json:{FIXTURES / 'az.json'}", "--catalog", str(tmp_path / "cat"))
    assert code == 0 and sorted(snap["operations"]) == ["Microsoft.Compute", "Microsoft.Network", "Microsoft.Resources"]


@pytest.mark.parametrize("source, message", [
    ("github:x", "'github:x' is not a source: use docs, docs:DIR, az, az-json:FILE, csv:FILE, sdk[:DIR] or snapshot[:FILE]"),
    ("csv:/nonexistent.csv", "'csv:/nonexistent.csv': /nonexistent.csv does not exist"),
    (f"csv:{FIXTURES / 'ops.csv'}@yesterday", "'yesterday' is not a date: use @YYYY-MM-DD"),
    (f"csv:{FIXTURES / 'az.json'}", "the CSV has no Operation column"),
])
def test_refresh_refuses_a_bad_source_and_writes_nothing(tmp_path, capsys, source, message):
    code, snap = refresh(tmp_path, source)
    assert code == 2 and snap is None
    assert message in capsys.readouterr().err


# --- offline: the plan and the pull-request comment --------------------------------------------------------

def test_plan_json_lists_each_scenarios_expected_operations(capsys):
    from haymaker.cli import main

    assert main(["plan", "--json", "--run-id", "20261121t0600z-7f3a", "-s", GOOD.stem]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["scenarios"]
    ops = entry["expected_operations"]
    assert ops["deploy"]["create-vnet"] == ["Microsoft.Network/virtualNetworks/write"]
    assert "check-power-state" not in ops["operate"]  # a read declares nothing and is left out
    assert ops["cleanup"] == {"delete-vm": ["Microsoft.Compute/virtualMachines/delete"],
                              "delete-network": ["Microsoft.Network/virtualNetworks/delete"]}
    assert entry["expected_operations_count"] == sum(len(v) for steps in ops.values() for v in steps.values()) == 16  # with the declared mistake (a resize to a size that does not exist)


def test_pr_comment_counts_expected_operations_per_scenario(catalog, settings, make_spec):
    from haymaker.plan import make_plan
    from haymaker.render import MARKDOWN_LIMIT, markdown

    text = markdown(make_plan(make_spec(catalog.names()), settings, catalog, budget_usd=10_000))
    assert len(text) < MARKDOWN_LIMIT
    assert "| scenario | area | resources | expected ops | roles |" in text
    assert re.search(rf"\n\| `{GOOD.stem}` \| compute \| \d+ \| 16 \| Virtual Machine Contributor, Network", text)
    assert "| `identity-05-conditional-access` | identity | " in text


SDK_MODULE = '''
def build_create_request(resource_group_name, server_name, backup_name, **kwargs):
    _url = kwargs.pop("template_url", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.DBforMySQL/flexibleServers/{serverName}/backupsV2/{backupName}")
    return HttpRequest(method="PUT", url=_url, params=_params, headers=_headers, **kwargs)

def build_check_request(location, **kwargs):
    _url = "/subscriptions/{subscriptionId}/providers/Microsoft.DBforMySQL/locations/{locationName}/checkNameAvailability"
    return HttpRequest(method="POST", url=_url, **kwargs)

class Delete(AAZHttpOperation):
    @property
    def url(self):
        return self.client.format_url("/{scope}/providers/Microsoft.Insights/diagnosticSettings/{name}", **self.url_parameters)

    @property
    def method(self):
        return "DELETE"
'''


def test_refresh_from_the_sdk_paths_of_azure_cli_keeps_writes_and_deletes(tmp_path):
    """The source this machine and CI reach: azure-cli's own SDKs (PyPI). Actions stay the published list's."""
    from scenarios.operations import parse_sdk_source

    site = tmp_path / "site-packages"
    ops_dir = site / "azure" / "mgmt" / "rdbms" / "operations"
    ops_dir.mkdir(parents=True)
    (ops_dir / "_ops.py").write_text(SDK_MODULE)
    assert sorted(op for op, _ in parse_sdk_source(SDK_MODULE)) == [
        "Microsoft.DBforMySQL/flexibleServers/backupsV2/write", "Microsoft.Insights/diagnosticSettings/delete"]
    code, snap = refresh(tmp_path, f"sdk:{site}@2026-12-01", "--namespace", "Microsoft.DBforMySQL")
    assert code == 0 and snap["operations"] == {
        "Microsoft.DBforMySQL": ["Microsoft.DBforMySQL/flexibleServers/backupsV2/write"]}
