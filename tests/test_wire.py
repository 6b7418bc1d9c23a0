"""The answer key on the wire: every loadable step, run by the image's azure-cli against a local Resource
Manager and Microsoft Graph, sends exactly the operations it declares (issue 19).

tests/wire/ holds the harness: run_steps.py (in the `.azcli` Python) runs each rendered step in-process
against the stand-ins (standin.py, with what it was taught about particular providers in taught.py)
behind a guard that refuses any connection off the loopback; harness.py compares what each step sent
with its ``expect`` (and ``audit``, for Microsoft Graph). scripts/bench_wire.py prints the same run with
its time. These tests hold whatever the catalog contains.
"""

from __future__ import annotations

import re

import pytest

from scenarios import CATALOG_DIR
from scenarios.armpath import operation_of
from scenarios.catalog import check_file
from scenarios.expect import command_plane
from scenarios.extensions import extension_for
from scenarios.operations import kind_of, load_snapshot
from tests.wire.harness import (AZ_PYTHON, IDS, WireStep, loadable_extensions, resource_group, run_steps, select,
                                verdict, verdicts, wire_steps)
from scenarios.audit import ACTIVITIES, fold
from tests.wire.wire_map import AUDIT, INVISIBLE, arm_operations, audit_activities, graph_path

pytestmark = pytest.mark.skipif(not AZ_PYTHON.exists(), reason="no .azcli: run bash scripts/azcli.sh")


@pytest.fixture(scope="module")
def wire(catalog):
    """(verdicts, steps run, all steps) of the whole catalog, from one run of the harness."""
    steps = wire_steps(catalog)
    chosen, after_skipped = select(steps, loadable_extensions())
    return verdicts(chosen, run_steps(chosen, after_skipped)), chosen, steps


def test_every_loadable_step_sends_what_it_declares(wire):
    found, chosen, _ = wire
    assert len(found) == len(chosen)
    wrong = {v.step.key: v.problems for v in found if not v.ok}
    assert wrong == {}


def test_every_step_that_can_run_here_is_run(wire):
    """Only data-plane steps and commands of extensions this environment cannot load stay out."""
    _, chosen, steps = wire
    left = [s for s in steps if s not in chosen]
    assert all(command_plane(list(s.argv)) == "data" or (s.extension and s.extension not in loadable_extensions())
               for s in left)
    assert any(s.plane is None for s in chosen)


def test_the_invisible_list_is_short_and_explained():
    assert len(INVISIBLE) <= 10
    assert all(why and len(why) > 20 for why in INVISIBLE.values())


# --- the negative control ----------------------------------------------------------------------------------

def _pick(catalog):
    """A scenario (chosen by property, whatever the catalog holds) with a step declaring a write, a step
    declaring two or more operations, and a step declaring an action its type has a sibling action for."""
    snapshot = load_snapshot()

    def sibling_action(op):
        base = op.rsplit("/", 2)[0].lower() + "/"
        return next((o for low, o in sorted(snapshot.by_lower.items()) if low.startswith(base) and
                     low.endswith("/action") and low.count("/") == op.count("/") and low != op.lower()), None)

    for scenario in catalog.scenarios.values():
        names = [s.name for ph in scenario.phases.values() for s in ph]
        steps = [s for ph in scenario.phases.values() for s in ph if s.expect and not s.expect_failure
                 and extension_for(s.run) is None and names.count(s.name) == 1]
        verb = next((s for s in steps if any(kind_of(o) == "write" and o[:-5] + "delete" in snapshot for o in s.expect)), None)
        many = next((s for s in steps if len(s.expect) >= 2 and s is not verb), None)
        action = next((s for s in steps if s not in (verb, many) and any(
            kind_of(o) == "action" and sibling_action(o) for o in s.expect)), None)
        if verb and many and action:
            return scenario, verb, many, action, sibling_action
    pytest.skip("no scenario that runs here has a write step, a multi-operation step and an action step")


def test_the_harness_catches_a_wrong_verb_a_missing_operation_and_a_swapped_action(catalog, tmp_path):
    scenario, verb, many, action, sibling_action = _pick(catalog)
    source = CATALOG_DIR / f"{scenario.name}.yaml"
    text = source.read_text()
    wrote = next(o for o in verb.expect if kind_of(o) == "write")
    dropped = sorted(many.expect)[0]
    swapped_from = next(o for o in action.expect if kind_of(o) == "action" and sibling_action(o))
    swapped_to = sibling_action(swapped_from)

    def corrupt(text, step, new):
        pattern = re.compile(rf"(- name: {re.escape(step.name)}\n(?:(?!\s*- name:).*\n)*?\s*expect: )\[[^\]]*\]")
        changed, n = pattern.subn(lambda m: m.group(1) + "[" + ", ".join(new) + "]", text, count=1)
        assert n == 1, step.name
        return changed

    text = corrupt(text, verb, [o[:-5] + "delete" if o == wrote else o for o in verb.expect])
    text = corrupt(text, many, [o for o in many.expect if o != dropped])
    text = corrupt(text, action, [swapped_to if o == swapped_from else o for o in action.expect])
    copy = tmp_path / source.name
    copy.write_text(text)
    corrupted, problems = check_file(copy)
    assert problems == [] and corrupted is not None, problems  # the corruptions are valid names: only the wire tells
    steps = wire_steps([corrupted])
    chosen, after = select(steps, loadable_extensions())
    found = {v.step.name: v for v in verdicts(chosen, run_steps(chosen, after))}

    def flagged(step, kind, op):
        return any(p.startswith(kind) and op.lower() in p.lower() for p in found[step.name].problems)

    assert flagged(verb, "declares ", wrote[:-5] + "delete") and flagged(verb, "sends ", wrote)  # wrong verb
    assert flagged(many, "sends ", dropped)  # missing operation
    assert flagged(action, "declares ", swapped_to) and flagged(action, "sends ", swapped_from)  # swapped action
    print(f"negative control on {scenario.name}: {verb.name}, {many.name}, {action.name}")


# --- the harness itself, on steps of its own -----------------------------------------------------------------

RG = resource_group("wire-fixture")
SCOPE = f"/subscriptions/{IDS['subscription_id']}/resourceGroups/{RG}"


def fixture_steps(*items) -> list[WireStep]:
    return [WireStep("wire-fixture", "operate", name, tuple(argv.split()) if isinstance(argv, str) else argv, **more)
            for name, argv, more in items]


@pytest.fixture(scope="module")
def fixture_run():
    steps = fixture_steps(
        ("vnet", f"az network vnet create -g {RG} -n v1 --address-prefixes 10.0.0.0/16",
         {"expect": ("Microsoft.Network/virtualNetworks/write",)}),
        ("keys", f"az storage account keys list -g {RG} -n st1", {"expect": ("Microsoft.Storage/storageAccounts/listKeys/action",)}),
        ("prompt", f"az storage account delete -g {RG} -n st1", {"expect": ("Microsoft.Storage/storageAccounts/delete",)}),
        ("elsewhere", "az rest --method get --url https://collector.example/x", {}),
        ("app", ("az", "ad", "app", "create", "--display-name", "haymaker-x-app"), {"plane": "graph", "audit": ("Add application",)}),
        ("app-wrong", ("az", "ad", "app", "create", "--display-name", "haymaker-x-app2"),
         {"plane": "graph", "audit": ("Add service principal",)}),
    )
    return {s.name: verdict(s, r) for s, r in zip(steps, [run_steps(steps)[s.key] for s in steps])}


def test_a_step_that_sends_what_it_declares_matches(fixture_run):
    assert fixture_run["vnet"].ok and fixture_run["vnet"].sent == {"Microsoft.Network/virtualNetworks/write"}
    assert fixture_run["keys"].ok


def test_a_step_that_would_prompt_fails_the_harness(fixture_run):
    v = fixture_run["prompt"]
    assert v.result["prompted"] and any("asked for confirmation" in p for p in v.problems)


def test_nothing_leaves_the_loopback(fixture_run):
    v = fixture_run["elsewhere"]
    assert "collector.example" in v.result["outside"] and v.result["code"] != 0
    assert all(r["host"] in {"management.azure.com", "graph.microsoft.com"} for r in v.result["requests"])


def test_graph_steps_are_checked_against_their_audit_activities(fixture_run):
    assert fixture_run["app"].ok and fixture_run["app"].activities == ["Add application"]
    assert any("declares audit" in p for p in fixture_run["app-wrong"].problems)


# --- naming requests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, op", [
    ("PUT", SCOPE + "/providers/Microsoft.Network/virtualNetworks/v/subnets/s", "Microsoft.Network/virtualNetworks/subnets/write"),
    ("PATCH", SCOPE + "/providers/Microsoft.Web/sites/a", "Microsoft.Web/sites/write"),
    ("DELETE", SCOPE + "/providers/Microsoft.Web/sites/a/config/web", "Microsoft.Web/sites/config/delete"),
    ("POST", SCOPE + "/providers/Microsoft.Storage/storageAccounts/a/listKeys", "Microsoft.Storage/storageAccounts/listKeys/action"),
    ("POST", SCOPE + "/providers/Microsoft.Web/sites/a/config/appsettings/list", "Microsoft.Web/sites/config/list/action"),
    ("PUT", SCOPE + "/providers/Microsoft.Web/sites/a/providers/Microsoft.Insights/diagnosticSettings/d",
     "Microsoft.Insights/diagnosticSettings/write"),
    ("GET", SCOPE + "/providers/Microsoft.Network/virtualNetworks", "Microsoft.Network/virtualNetworks/read"),
    ("PUT", SCOPE, "Microsoft.Resources/subscriptions/resourceGroups/write"),
])
def test_requests_are_named_as_arm_names_their_operations(method, path, op):
    assert operation_of(method, path) == op


def test_reads_unpublished_actions_and_templates_follow_the_documented_rules():
    snapshot = load_snapshot()
    sub = f"/subscriptions/{IDS['subscription_id']}"
    requests = [
        {"host": "management.azure.com", "method": "GET", "path": SCOPE + "/providers/Microsoft.Web/sites/a"},
        {"host": "management.azure.com", "method": "POST", "path": sub + "/providers/Microsoft.Storage/checkNameAvailability"},
        {"host": "management.azure.com", "method": "PUT", "path": SCOPE + "/providers/Microsoft.Resources/deployments/d",
         "deployed": ["Microsoft.Network/publicIPAddresses"]},
    ]
    ops, excluded, unknown = arm_operations(requests, snapshot)
    assert {o.lower() for o in ops} == {"microsoft.resources/deployments/write", "microsoft.network/publicipaddresses/write"}
    assert excluded == {"Microsoft.Storage/checkNameAvailability/action"} and unknown == set()


def test_graph_requests_name_their_audit_activities():
    g = "graph.microsoft.com"
    activities, unknown = audit_activities([
        {"host": g, "method": "POST", "path": "/v1.0/groups", "body_keys": ["displayName"]},
        {"host": g, "method": "POST", "path": "/v1.0/groups/8c2d6e1a-0000-4000-8000-000000000001/members/$ref"},
        {"host": g, "method": "GET", "path": "/v1.0/groups"},
        {"host": g, "method": "POST", "path": "/v1.0/applications(appId='x')/addPassword"},
        {"host": g, "method": "DELETE", "path": "/v1.0/applications/a1/federatedIdentityCredentials/github-prod"},
        {"host": g, "method": "POST", "path": "/v1.0/invitations"},
    ])
    assert activities == ["Add group", "Add member to group",
                          "Update application - Certificates and secrets management", "Update application"]
    assert unknown == {"POST invitations"}
    assert graph_path("/v1.0/identity/conditionalAccess/policies/p1") == "identity/conditionalAccess/policies/{id}"



def test_a_group_created_with_its_owner_adds_the_owner_too():
    activities, _ = audit_activities([{"host": "graph.microsoft.com", "method": "POST", "path": "/v1.0/groups",
                                       "body_keys": ["displayName", "owners@odata.bind"]}])
    assert activities == ["Add group", "Add owner to group"]


def test_every_activity_the_harness_names_is_in_the_entra_reference():
    known = {fold(a) for names in ACTIVITIES.values() for a in names}
    assert {a for a in AUDIT.values() if fold(a) not in known} == set()
