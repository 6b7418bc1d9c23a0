"""The run program: inventory and metadata as stack outputs, for 1 and 30 scenarios."""

from __future__ import annotations

import json

import pulumi
import pytest

from haymaker.errors import InvalidInput
from haymaker.mockrun import unwrap
from tests.conftest import RUN_ID

FIELDS = {"scenario", "resource_group_name", "resource_group_id", "client_id", "service_principal_object_id",
          "job_name", "job_id"}


@pytest.mark.parametrize("count", [1, 10])  # one, and every scenario of the fixture
def test_inventory_has_one_entry_per_scenario(declare, make_spec, fixture_catalog, count):
    names = fixture_catalog.names()[:count]
    run = declare(make_spec(names))
    inventory = run.outputs["inventory"]
    assert [e["scenario"] for e in inventory] == names
    for entry in inventory:
        assert set(entry) == FIELDS
        assert entry["resource_group_name"] == f"haymaker-{RUN_ID}-{entry['scenario']}"
        assert entry["resource_group_id"].endswith(f"/resourceGroups/{entry['resource_group_name']}")
        assert entry["job_id"].endswith(f"/jobs/{entry['job_name']}")
    assert len({e["client_id"] for e in inventory}) == count
    assert run.outputs["run"]["run_id"] == RUN_ID
    assert run.outputs["run"]["expires_at"] == "2026-11-21T14:00:00Z"
    assert run.outputs["run"]["environment"] == "dev"
    assert len(run.of_type("haymaker:index:ScenarioAgent")) == count


def test_no_credential_value_in_outputs(declare, make_spec, fixture_catalog):
    run = declare(make_spec(fixture_catalog.names()[:3]))
    secrets = [unwrap(r.outputs["value"]) for r in run.of_type("azuread:index/applicationPassword:ApplicationPassword")]
    dumped = json.dumps(unwrap(run.outputs))
    assert len(secrets) == 3 and not any(s in dumped for s in secrets)


def test_unknown_scenario_is_refused_before_declaring(declare, make_spec):
    with pytest.raises(InvalidInput, match="not in the catalog: nope-01-x"):
        declare(make_spec(["nope-01-x"]))


def pinned(settings):
    """The environment's settings with the agent image pinned by digest, as a deployment sets it (the
    shipped placeholder is refused by the program: tests/test_handrun.py)."""
    import dataclasses

    registry = settings.agent_image.split("/", 1)[0]
    return dataclasses.replace(settings, agent_image=f"{registry}/haymaker-agent@sha256:{'ab' * 32}")


def test_stack_config_round_trip(tmp_path, make_spec, settings):
    """`haymaker plan --write-stack-config` writes what `pulumi up` of the run stack reads back."""
    import yaml

    settings = pinned(settings)
    from haymaker.stackconfig import write_run_stack_config
    from stacks.config import run_inputs_from_config

    spec = make_spec(["compute-01-linux-vm-web-server"])
    path = write_run_stack_config(spec, settings, root=tmp_path)
    assert path.name == f"Pulumi.run-{RUN_ID}.yaml"
    config = yaml.safe_load(path.read_text())["config"]
    # The engine hands config to the program as strings, JSON for objects and lists.
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    try:
        got_spec, got_settings = run_inputs_from_config(spec.stack_name)
    finally:
        pulumi.runtime.set_all_config({})
    assert got_spec == spec and got_settings == settings


def test_pulumi_entry_point_runs_the_run_program_for_run_stacks(make_spec, settings):
    import runpy

    from haymaker.mockrun import evaluate
    from haymaker.plan import platform_outputs_offline
    from haymaker.stackconfig import run_stack_config

    spec = make_spec(["compute-01-linux-vm-web-server"])
    config = run_stack_config(spec, pinned(settings))["config"]
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    try:
        declared, _ = evaluate(lambda: runpy.run_module("stacks.__main__", run_name="__main__") and {},
                               project="haymaker", stack=spec.stack_name,
                               platform_outputs=platform_outputs_offline("dev"))
    finally:
        pulumi.runtime.set_all_config({})
    assert any(d.type == "azure-native:app:Job" for d in declared)


def test_run_stacks_drop_only_the_providers_type_aliases():
    from components.aliases import drop_type_aliases

    rename = pulumi.Alias(name="old-name")
    opts = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="azure-native:resources/v20151101:ResourceGroup"),
                                           rename])
    result = drop_type_aliases(pulumi.ResourceTransformationArgs(None, "azure-native:resources:ResourceGroup", "rg",
                                                                 {"location": "x"}, opts))
    assert result.opts.aliases == [rename] and result.props == {"location": "x"}
    assert opts.aliases[1] is rename and len(opts.aliases) == 2  # the caller's options are not modified
    assert drop_type_aliases(pulumi.ResourceTransformationArgs(None, "t", "n", {}, pulumi.ResourceOptions())) is None


def test_a_scenario_that_needs_a_longer_cleanup_gets_it_within_the_job_limits(declare, make_spec, fixture_catalog,
                                                                              settings):
    """The VPN gateway scenario cleans up 70 min before expiry; its job's timeout stays the environment's."""
    names = ["networking-02-vpn-gateway", "compute-01-linux-vm-web-server"]
    run = declare(make_spec(names, duration_hours=10))
    jobs = run.of_type("azure-native:app:Job")
    buffers = {}
    for job in jobs:
        env = {e["name"]: e.get("value") for e in unwrap(job.inputs["template"])["containers"][0]["env"]}
        buffers[env["HAYMAKER_SCENARIO"]] = env["HAYMAKER_CLEANUP_BUFFER_MINUTES"]
        timeout = unwrap(job.inputs["configuration"])["replicaTimeout"]
        assert timeout == 10 * 3600 + settings.cleanup_buffer_minutes * 60 <= 10 * 3600 + 30 * 60  # the policy's max
    assert buffers == {"networking-02-vpn-gateway": "70", "compute-01-linux-vm-web-server": "30"}
    assert fixture_catalog["networking-02-vpn-gateway"].cleanup_minutes == 70


def test_a_run_too_short_for_a_scenarios_cleanup_is_refused(declare, make_spec):
    with pytest.raises(InvalidInput, match="networking-02-vpn-gateway: its cleanup takes 70 min before expiry, "
                                           "which leaves 0 min of work .* give the run a longer --duration"):
        declare(make_spec(["networking-02-vpn-gateway"], duration_hours=1))
