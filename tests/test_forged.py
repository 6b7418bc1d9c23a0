"""Teardown deletes only what it can prove is the run's: look-alikes survive `down`, `reap` and `cleanup
--orphaned`, and are reported.

Each command runs as an operator runs it (the real CLI, lifecycle, driver, Azure adapters and ledger) against
the stand-ins: a forged-tag foreign group (``finance-prod`` with the run's tags copied), a foreign Key Vault
soft-deleted from a group named like the run's, a group with the run's exact name made by someone else, and
a directory object squatting the name of one of the run's agent applications. The run's own group goes.
"""

from __future__ import annotations

import json

import pytest

from tests.fakes.cloud import DEPLOYER_CLIENT_ID
from tests.test_online_e2e import VM, online, run  # noqa: F401  (the fixture)

RUN = "20261121t0600z-7f3a"
PREFIX = f"haymaker-{RUN}-"
TAGS = {"AzureHayMaker-managed": "true", "haymaker-run": RUN, "haymaker-scenario": VM, "haymaker-env": "dev",
        "haymaker-expires": "2026-11-21T14:00:00Z"}
STACK_TAGS = {"haymaker:kind": "run", "haymaker:env": "dev", "haymaker:expires": "2026-11-21T14:00:00Z",
              "haymaker:trigger": "schedule"}
MALLORY = "user:5e11a000-0000-4000-8000-00000000ba0d"  # someone with Tag Contributor and an Entra account


def known(run_id: str = RUN) -> None:
    """The run as the ledger recorded it (`down` of a run with neither stack nor record is "no such run")."""
    from datetime import timedelta

    from haymaker.config import load_config
    from haymaker.ledger import Ledger, RunRecord
    from haymaker.runspec import check_run_id

    started = check_run_id(run_id)
    Ledger.from_config(load_config()).upsert_run(RunRecord(run_id, "dev", "schedule", "running", started,
                                                           started + timedelta(hours=2), [VM], 2))


def forge(cloud) -> None:
    """The run's own group, and four things that only look like the run's."""
    cloud.arm.add_group(f"{PREFIX}{VM}", TAGS)  # the run's: exact name, tags, created by the deployer
    cloud.arm.add_group("finance-prod", TAGS, created_by="mallory@contoso.example", created_by_type="User")
    cloud.arm.add_resource("finance-prod", "Microsoft.Storage/storageAccounts", "stfinance", TAGS,
                           created_by="mallory@contoso.example")
    cloud.arm.add_deleted("vault", "kv-finance", f"{PREFIX}payroll", tags=TAGS)  # a look-alike group's vault
    cloud.graph.add("applications", f"{PREFIX}{VM}-portal", owner=MALLORY)
    cloud.graph.add("servicePrincipals", f"{PREFIX}{VM}", owner=MALLORY)  # squats an agent's exact name


def expect_survivors(cloud, results: list) -> None:
    assert "finance-prod" in cloud.arm.groups and any("stfinance" in r for r in cloud.arm.resources)
    assert [d.name for d in cloud.arm.deleted] == ["kv-finance"]
    assert cloud.graph.live_names() == [f"{PREFIX}{VM}", f"{PREFIX}{VM}-portal"]
    assert f"{PREFIX}{VM}".lower() not in cloud.arm.groups  # the run's own group went
    (result,) = [r for r in results if r["run_id"] == RUN]
    assert result["outcome"] in ("verified", "forced"), result  # look-alikes never block the teardown
    odd = {(x["kind"], x["name"]): x["reason"] for x in result["suspicious"]}
    assert odd == {
        ("resource_group", "finance-prod"): f"tagged with run {RUN} but not named as one of its groups",
        ("resource", "stfinance"): f"tagged with run {RUN} but outside its groups",
        ("deleted_key_vault", "kv-finance"): f"its group {PREFIX}payroll is not one of run {RUN}'s groups",
        ("application", f"{PREFIX}{VM}-portal"): f"named for run {RUN} but owned by none of its identities "
                                                 f"(owners: {MALLORY.removeprefix('user:')})",
        ("service_principal", f"{PREFIX}{VM}"): f"named for run {RUN} but owned by none of its identities "
                                                f"(owners: {MALLORY.removeprefix('user:')})",
    }
    assert not [s for s in cloud.arm.seen("DELETE") if "finance" in s.path]
    assert not [s for s in cloud.arm.seen("POST", "/purge$") if "kv-finance" in s.path]
    assert cloud.unlisted_requests() == []


@pytest.mark.parametrize("command", ["down", "reap", "cleanup --orphaned"])
def test_look_alikes_survive_every_teardown_command_and_are_reported(online, capsys, command):
    cloud, pulumi, _ = online
    forge(cloud)
    if command != "cleanup --orphaned":  # cleanup --orphaned is for runs whose stack is gone
        pulumi.add_stack(f"run-{RUN}", STACK_TAGS)
    argv = {"down": ["down", RUN, "--yes", "--json"], "reap": ["reap", "--json", "--now", "2026-11-22T00:00:00Z"],
            "cleanup --orphaned": ["cleanup", "--orphaned", "--apply", "--yes", "--json"]}[command]
    code, out, err = run(capsys, *argv)
    assert code == 3, err  # something needs a look: the orphans issue carries it
    expect_survivors(cloud, json.loads(out))
    assert "suspicious" in err
    assert f"run-{RUN}" not in pulumi.state["stacks"]  # the run's stack is removed all the same


def test_the_dry_run_of_cleanup_names_what_would_go_and_what_would_only_be_reported(online, capsys):
    cloud, _, _ = online
    forge(cloud)
    code, out, err = run(capsys, "cleanup", "--orphaned", "--json")
    doc = json.loads(out)
    assert code == 0, err
    assert [x["name"] for x in doc["would_delete"]] == [f"{PREFIX}{VM}"]
    assert sorted(x["name"] for x in doc["suspicious"]) == sorted(
        ["finance-prod", "stfinance", "kv-finance", f"{PREFIX}{VM}-portal", f"{PREFIX}{VM}"])
    assert f"{PREFIX}{VM}".lower() in cloud.arm.groups and not cloud.arm.seen("DELETE")


@pytest.mark.parametrize("creator, creator_type, kept", [
    ("mallory@contoso.example", "User", True),  # someone made a group with the run's exact name and tags
    (DEPLOYER_CLIENT_ID, "Application", False),  # createdBy as an application id
    (f"oid-of-{DEPLOYER_CLIENT_ID}", "Application", False),  # ... or as an object id: the contract leaves it open
    ("", "", False),  # made before ARM recorded systemData: name and tags decide
], ids=["someone-else", "deployer-app-id", "deployer-object-id", "no-system-data"])
def test_the_creator_arm_records_decides_a_group_with_the_runs_exact_name(online, capsys, creator, creator_type, kept):
    cloud, _, _ = online
    known()
    cloud.arm.add_group(f"{PREFIX}{VM}", TAGS, created_by=creator, created_by_type=creator_type)
    code, out, _ = run(capsys, "down", RUN, "--yes", "--json")
    (result,) = json.loads(out)
    assert (f"{PREFIX}{VM}".lower() in cloud.arm.groups) is kept
    assert (code, bool(result["suspicious"])) == ((3, True) if kept else (0, False))
    if kept:
        assert result["suspicious"][0]["reason"] == ("created by mallory@contoso.example, neither the deployer nor "
                                                     "one of the run's agents")


@pytest.mark.parametrize("tags, why", [
    ({**TAGS, "haymaker-env": "prod"}, "its haymaker-env tag is 'prod', not 'dev'"),
    ({k: v for k, v in TAGS.items() if k != "haymaker-env"}, "its haymaker-env tag is None, not 'dev'"),
])
def test_a_group_of_another_environment_is_not_this_ones_to_delete(online, capsys, tags, why):
    cloud, _, _ = online
    known()
    cloud.arm.add_group(f"{PREFIX}{VM}", tags)
    code, out, _ = run(capsys, "down", RUN, "--yes", "--json")
    (result,) = json.loads(out)
    assert code == 3 and [x["reason"] for x in result["suspicious"]] == [why]
    assert f"{PREFIX}{VM}".lower() in cloud.arm.groups


@pytest.mark.parametrize("still_there", [False, True], ids=["gone", "still-there"])
def test_an_object_whose_owners_graph_cannot_find_never_fails_the_teardown(online, capsys, still_there):
    """Entra is eventually consistent (learn.microsoft.com/graph/best-practices-concept): a list answered by a
    replica that had not seen a delete names an object whose owners then answer 404. Gone when a direct read
    agrees; otherwise not provably the run's, so reported and left alone."""
    from tests.fakes.graph import graph_error

    cloud, _, _ = online
    known()
    app = cloud.graph.add("applications", f"{PREFIX}{VM}")  # the run's agent application, the deployer's
    cloud.graph.fail("GET", rf"/applications/{app['id']}/owners", graph_error(
        404, "Request_ResourceNotFound", f"Resource '{app['id']}' does not exist."), times=1 if not still_there else 9)
    if not still_there:
        cloud.graph.read_lag = 0
        # the listing replica had not seen the delete that the one answering the owners had
        cloud.graph.when("GET", rf"/applications/{app['id']}/owners", lambda: cloud.graph.remove("applications", app["id"]))
    code, out, err = run(capsys, "down", RUN, "--yes", "--json")
    (result,) = json.loads(out)
    assert result["outcome"] == "verified" if not still_there else result["outcome"] in ("verified", "forced"), err
    odd = [(x["name"], x["reason"]) for x in result["suspicious"]]
    if still_there:
        assert odd == [(f"{PREFIX}{VM}", "its owners could not be read (Graph 404): not deleted")]
        assert cloud.graph.live_names() == [f"{PREFIX}{VM}"]
    else:
        assert odd == [] and cloud.graph.live_names() == []
