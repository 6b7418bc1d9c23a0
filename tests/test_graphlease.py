"""Leasing the platform's Graph identities: two live runs never share one."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from haymaker.errors import InvalidInput, Refused
from haymaker.graphlease import (LEASE_TAG, lease_graph_identities, leased_identities, offline_graph_identities,
                                 parse_leases, pool_sizes)
from haymaker.mockrun import MOCK_SUBSCRIPTION_ID
from haymaker.runspec import RunSpec

GROUPS = "identity-03-entra-users-groups"
APPS = "identity-01-service-principals"
POOLS = pool_sizes(offline_graph_identities("dev", MOCK_SUBSCRIPTION_ID, pool_size=2))
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    name: str
    tags: dict


def _up(run_id: str, scenarios: list[str], live: list[Stack]) -> Stack:
    """What `up` does: lease against every existing run stack, then create the stack with the spec's tags."""
    spec = RunSpec(run_id=run_id, environment="dev", trigger="dispatch", scenarios=tuple(scenarios))
    graph = [s for s in scenarios if s in POOLS]
    spec = replace(spec, graph_leases=lease_graph_identities(graph, POOLS, live, own_stack=spec.stack_name))
    return Stack(spec.stack_name, spec.stack_tags())


def test_live_runs_naming_the_same_graph_scenario_get_different_identities_until_the_pool_is_used_up():
    assert POOLS[GROUPS] == 2 and len(POOLS) == 5
    live: list[Stack] = []
    live.append(_up("20261121t0600z-aaaa", [GROUPS, APPS, "compute-01-linux-vm-web-server"], live))
    live.append(_up("20261121t1200z-bbbb", [GROUPS], live))
    assert [parse_leases(s.tags[LEASE_TAG]) for s in live] == [{APPS: 0, GROUPS: 0}, {GROUPS: 1}]
    with pytest.raises(Refused) as refused:
        _up("20261121t1300z-cccc", [APPS, GROUPS], live)
    assert refused.value.exit_code == 2
    assert str(refused.value) == (
        f"{GROUPS}: all 2 of its Graph identities are leased by live runs (run-20261121t0600z-aaaa, "
        "run-20261121t1200z-bbbb): wait for one to end, take one down, or raise haymaker:graphIdentityPoolSize "
        "and release the platform")
    # A run without Graph scenarios needs no lease and no tag.
    assert LEASE_TAG not in _up("20261121t1300z-dddd", ["compute-01-linux-vm-web-server"], live).tags
    # Once the first run's stack is gone (teardown removes it last), its slot is free again.
    assert parse_leases(_up("20261121t1300z-eeee", [GROUPS], live[1:]).tags[LEASE_TAG]) == {GROUPS: 0}


def test_a_stack_never_blocks_itself_and_a_retried_up_keeps_its_slot():
    live = [Stack("run-20261121t0600z-aaaa", {LEASE_TAG: f"{GROUPS}=1"}),
            Stack("run-20261121t0700z-bbbb", {LEASE_TAG: f"{GROUPS}=0"})]
    assert lease_graph_identities([GROUPS], POOLS, live, own_stack="run-20261121t0700z-bbbb") == {GROUPS: 0}


def test_a_scenario_the_platform_has_no_identity_for_is_refused_with_what_to_do():
    with pytest.raises(Refused, match="identity-09-new: the platform provisions no Graph identity for it: release "
                                      r"the platform \(platform.yml\)"):
        lease_graph_identities(["identity-09-new"], POOLS, [])


def test_a_malformed_lease_tag_is_an_error_not_a_free_slot():
    with pytest.raises(InvalidInput, match="malformed entry 'identity-03-entra-users-groups=one'"):
        lease_graph_identities([GROUPS], POOLS, [Stack("run-x", {LEASE_TAG: f"{GROUPS}=one"})])


def test_run_spec_carries_its_leases_through_its_stack_config():
    spec = RunSpec(run_id="20261121t0600z-aaaa", environment="dev", trigger="local", scenarios=(GROUPS, APPS),
                   graph_leases={GROUPS: 1})
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert (spec.graph_slot(GROUPS), spec.graph_slot(APPS)) == (1, 0)
    with pytest.raises(InvalidInput, match="graph lease for 'security-02-entra-id-groups', which is not a scenario"):
        replace(spec, graph_leases={"security-02-entra-id-groups": 0})
    with pytest.raises(InvalidInput, match="slot -1 is not a whole number"):
        replace(spec, graph_leases={GROUPS: -1})


def test_teardown_resolves_a_stacks_lease_through_the_platform_output_as_up_did():
    platform = offline_graph_identities("dev", MOCK_SUBSCRIPTION_ID, pool_size=2)
    assert leased_identities(f"{APPS}=0,{GROUPS}=1", platform) == {
        APPS: (platform[APPS]["identities"][0]["clientId"], tuple(platform[APPS]["permissions"])),
        GROUPS: (platform[GROUPS]["identities"][1]["clientId"], tuple(platform[GROUPS]["permissions"]))}
    assert leased_identities(None, None) == {}  # a run without Graph scenarios needs no platform output
    with pytest.raises(InvalidInput, match="the platform stack exports no graphIdentities"):
        leased_identities(f"{GROUPS}=0", None)
    with pytest.raises(InvalidInput, match=f"has no identity for the lease {GROUPS}=2"):
        leased_identities(f"{GROUPS}=2", platform)


# --- two `up`s at once, with the real driver and a stand-in `pulumi` (one file per stack, as diy keeps them) ---

@pytest.mark.parametrize("pool", [2, 1])
def test_two_ups_that_start_together_never_hold_the_same_slot(tmp_path, monkeypatch, settings, pool):
    """A canary and a run started by the same tag both list the stacks before either has written its lease
    tag: both pick slot 0. Each re-checks after writing; only a clean look lets it deploy."""
    import random
    import threading

    from haymaker.driver import RunStackDriver
    from haymaker.lifecycle import Clock, Lifecycle
    from haymaker.retry import Backoff
    from tests.fakes.pulumi_cli import FakePulumi
    from tests.test_lifecycle import FakeAzure, FakeLedger

    pulumi = FakePulumi.install(tmp_path / "pulumi", monkeypatch)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    monkeypatch.setattr("haymaker.lifecycle.verify_borrowed", lambda *a: None)  # grants: tests/test_grants.py
    together = threading.Barrier(2)

    class Racing(RunStackDriver):
        """The real driver; its first listing waits until the other `up` has listed too."""

        listed = False

        def list_run_stacks(self):
            stacks = super().list_run_stacks()
            if not self.listed:
                self.listed = True
                together.wait(timeout=120)
            return stacks

    def up(run_id: str, results: dict) -> None:
        spec = RunSpec(run_id=run_id, environment="dev", trigger="dispatch", scenarios=(GROUPS,))
        pulumi.script(spec.stack_name, outputs={"inventory": [], "run": {}})
        driver = Racing(backend=f"file://{tmp_path}/state", work_dir=ROOT, on_output=lambda line: None)
        life = Lifecycle(driver=driver, azure=FakeAzure(), ledger=FakeLedger(), clock=Clock(sleep=lambda s: None),
                         backoff=Backoff(attempts=2, base_seconds=0), rng=random.Random(run_id), echo=lambda *_: None)
        try:
            results[run_id] = life.up(spec, settings, on_demand_limit=3, cost_usd=0,
                                      graph_pools={GROUPS: pool}).spec.graph_slot(GROUPS)
        except Refused as e:
            results[run_id] = e

    results: dict = {}
    threads = [threading.Thread(target=up, args=(r, results)) for r in ("20261121t0230z-aaaa", "20261121t0230z-bbbb")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    slots = [v for v in results.values() if isinstance(v, int)]
    refused = [v for v in results.values() if isinstance(v, Refused)]
    assert len(results) == 2
    assert sorted(slots) == list(range(pool)) and len(refused) == 2 - pool, results  # one holder per slot
    stacks = pulumi.state["stacks"]
    assert sorted(parse_leases(s["tags"][LEASE_TAG])[GROUPS] for s in stacks.values()) == sorted(slots)
    for name, s in stacks.items():  # what the program deploys with is what the tag says
        assert json.loads(s["config"]["haymaker:runSpec"])["graph_leases"] == parse_leases(s["tags"][LEASE_TAG])
    assert len(stacks) == pool  # a run that found no slot left removed its empty stack
    assert not any(pulumi.locks(name) for name in stacks)
