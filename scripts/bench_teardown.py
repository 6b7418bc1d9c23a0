"""Fault injection: `haymaker down` and `haymaker reap` over runs with leftovers of every kind, under the
faithful stand-ins (tests/fakes: ARM, Resource Graph, Microsoft Graph, Entra sign-in, the Pulumi CLI) and
a real ledger on Azurite. Prints, per command, each run's outcome, the time taken (real, and on the
stand-ins' clock, where ARM operations, replication lags and quota windows pass), and the ledger's row.

Faults injected: a destroy that fails part-way (groups left), pending operations from an interrupted
update, a group delete refused by a CanNotDelete lock, a group delete that runs 45 minutes (longer than the
budget), a Graph agent's group and a service principal left in the directory, an application that shows up
in deleted items only minutes after its delete, a deleted group (unpurgeable), soft-deleted Key Vault and
Cognitive Services accounts, look-alikes (a foreign group with a copied tag, a foreign vault of a look-alike
group, a squatted directory name), a stale lock left by a killed reaper and a young lock, Graph 429s,
a spent Resource Graph quota, short-lived tokens, and an API version not yet rolled out to a region.

    .venv/bin/python scripts/bench_teardown.py
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.azurite import Azurite  # noqa: E402
from tests.fakes.cloud import ADMIN_UNIT_ID, DEPLOYER_CLIENT_ID, FakeCloud  # noqa: E402
from tests.fakes.login import jwt  # noqa: E402
from tests.fakes.pulumi_cli import STATE_ENV, VERSION_ENV, FakePulumi  # noqa: E402
from tests.fakes.server import Reply  # noqa: E402

VM, VPN, VAULTS = "compute-01-linux-vm-web-server", "networking-02-vpn-gateway", "security-01-key-vault-secrets"
LANGUAGE, GROUPS = "ai-ml-02-text-analytics", "identity-03-entra-users-groups"
GROUP_PERMS = ["AdministrativeUnit.Read.All", "Group.Create", "Group.Read.All", "User.Read.All"]
IDENTITY = "graph-identity-0"


class Env:
    """What the online tests' fixture sets, for a process."""

    def __init__(self, cloud: FakeCloud, azurite: Azurite, work: Path):
        self.values = {**cloud.github_actions_env(), **cloud.haymaker_env(), "HOME": str(work),
                       "PULUMI_BACKEND_URL": f"file://{work}/state", "PULUMI_CONFIG_PASSPHRASE": "bench-only",
                       "HAYMAKER_LEDGER_CONNECTION_STRING": azurite.connection_string,
                       "HAYMAKER_AUDIT_DIR": str(work / "audit"), STATE_ENV: str(work / "pulumi"),
                       VERSION_ENV: "3.215.0"}
        bin_dir = work / "pulumi" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        exe = bin_dir / "pulumi"
        exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                       "from tests.fakes.pulumi_cli import main\nsys.exit(main(sys.argv[1:]))\n")
        exe.chmod(0o755)
        self.values["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        os.environ.update(self.values)
        os.chdir(work)


def wire(cloud: FakeCloud) -> None:
    """The real lifecycle, whose waits pass on the stand-ins' clock (as tests/test_online_e2e.py wires it)."""
    from haymaker.cli import lifecycle as cli_lifecycle

    real = cli_lifecycle.build_lifecycle

    def build(*args, **kwargs):
        life = real(*args, **kwargs)
        life.clock = cloud.time.clock()
        life.azure.sleep = cloud.time.sleep
        return life

    cli_lifecycle.build_lifecycle = build


def ledger():
    from haymaker.config import load_config
    from haymaker.ledger import Ledger

    return Ledger.from_config(load_config())


def record_run(run_id: str, scenarios: list[str], agents: list[tuple[str, str, str]]) -> None:
    from haymaker.ledger import AgentRecord, RunRecord
    from haymaker.naming import resource_group_name
    from haymaker.runspec import check_run_id

    started = check_run_id(run_id)
    book = ledger()
    book.upsert_run(RunRecord(run_id, "dev", "schedule", "running", started, started + timedelta(hours=2),
                              scenarios, 2))
    book.upsert_agents([AgentRecord(run_id, s, "started", resource_group=resource_group_name(run_id, s),
                                    client_id=c, service_principal_object_id=o) for s, c, o in agents])


def leftovers_of_every_kind(cloud: FakeCloud, pulumi: FakePulumi, run_id: str, *, interrupted: bool = False) -> None:
    """A run whose destroy fails part-way and leaves something of every kind, beside look-alikes."""
    from haymaker.naming import app_display_name, resource_group_name, run_resource_group_name

    prefix = f"haymaker-{run_id}-"
    tags = {"AzureHayMaker-managed": "true", "haymaker-run": run_id, "haymaker-env": "dev"}
    token = jwt({"appid": DEPLOYER_CLIENT_ID, "roles": ["Application.ReadWrite.OwnedBy", "Application.Read.All"]})
    groups = {s: resource_group_name(run_id, s) for s in (VM, VPN, VAULTS, LANGUAGE, GROUPS)}
    for g in [*groups.values(), run_resource_group_name(run_id)]:
        cloud.arm.add_group(g, {**tags, "haymaker-scenario": g})
    cloud.arm.add_resource(groups[VM], "Microsoft.Network/virtualNetworks", "vnet", tags)
    cloud.arm.locks.add(groups[VAULTS].lower())  # CanNotDelete: refused at once (409 ScopeLocked)
    cloud.arm.delete_plans[groups[VPN].lower()] = ("Succeeded", 45 * 60, None)  # a VPN gateway's group: 45 min
    apps = {}
    for s in (VM, VPN, VAULTS, LANGUAGE):
        app = cloud.graph.add("applications", app_display_name(run_id, s))
        sp = cloud.graph.add("servicePrincipals", app_display_name(run_id, s), appId=app["appId"])
        apps[s] = (app, sp)
    cloud.graph.add("groups", f"{prefix}lift-operations", owner=IDENTITY, unit=ADMIN_UNIT_ID)
    cloud.graph.add_deleted("groups", f"{prefix}rental-desk", owner=IDENTITY)
    cloud.arm.add_deleted("vault", f"kv{run_id[-4:]}", groups[VAULTS])
    cloud.arm.add_deleted("cognitive", f"lang{run_id[-4:]}", groups[LANGUAGE])
    # Look-alikes: a copied tag, a foreign vault of a look-alike group, a squatted name, a loose resource.
    cloud.arm.add_group(f"finance-{run_id[-4:]}", tags, created_by="mallory@contoso.example", created_by_type="User")
    cloud.arm.add_deleted("vault", f"kvfin{run_id[-4:]}", f"{prefix}payroll", tags=tags)
    cloud.graph.add("servicePrincipals", f"{prefix}{VM}-portal", owner="user:5e11a000-0000-4000-8000-00000000ba0d")
    cloud.arm.add_resource("shared-rg", "Microsoft.Web/sites", f"{prefix}site", tags, location="northeurope")
    inventory = [{"scenario": s, "client_id": apps[s][0]["appId"], "service_principal_object_id": apps[s][1]["id"],
                  "resource_group_name": groups[s]} for s in apps]
    inventory.append({"scenario": GROUPS, "client_id": IDENTITY, "resource_group_name": groups[GROUPS]})
    stack_tags = {"haymaker:kind": "run", "haymaker:env": "dev", "haymaker:expires": "2026-11-21T08:00:00Z",
                  "haymaker:trigger": "schedule", "haymaker:graph-identities": f"{GROUPS}=0"}
    resources = [{"urn": f"urn:pulumi:run-{run_id}::haymaker::x::{s}", "type": "azure-native:resources:ResourceGroup"}
                 for s in groups]
    pending = [{"resource": resources[0], "type": "creating"}] if interrupted else []
    pulumi.add_stack(f"run-{run_id}", stack_tags, resources=resources, outputs={"inventory": inventory}, pending=pending)
    # The destroy deletes the VM agent's application, then fails on the next resource: the rest is left.
    pulumi.script(f"run-{run_id}", deletes=[
        {"url": f"{cloud.graph.base_url}/v1.0/applications/{apps[VM][0]['id']}", "token": token},
        {"url": f"{cloud.arm.base_url}/subscriptions/{cloud.arm.subscription_id}/resourcegroups/{groups[LANGUAGE]}"
                "?api-version=2025-04-01", "token": token}], destroy_fail_after=1)
    record_run(run_id, list(groups), [(s, apps[s][0]["appId"], apps[s][1]["id"]) for s in apps] + [(GROUPS, IDENTITY, "")])


def faults(cloud: FakeCloud) -> None:
    """Service behaviour faults, besides the stand-ins' faithful defaults."""
    cloud.login.token_lifetime = 300  # tokens expire during the teardown: azure-core asks again each call
    cloud.graph.deleted_items_lag = 120.0  # an object shows in deleted items two minutes after its delete
    cloud.arm.quota = 4  # Resource Graph: 4 queries per 5-second window per user
    cloud.arm.rollout[("microsoft.web", "sites")] = {"northeurope": ["2023-12-01"]}
    throttled = Reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}, {"Retry-After": "1"})
    cloud.graph.fail("GET", "/applications$", throttled, times=2)


def run_cli(*argv: str) -> tuple[int, list, str]:
    from haymaker.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, json.loads(out.getvalue() or "[]"), err.getvalue()


def show(title: str, cloud: FakeCloud, code: int, results: list, real: float, standin: float, err: str = "") -> None:
    print(f"\n== {title}: exit {code}, {real:.1f} s real, {standin / 60:.1f} min on the stand-ins' clock")
    if not results:
        print("  " + "\n  ".join(err.strip().splitlines()[-5:]))
    book = ledger()
    for r in results:
        kinds = {k: {n: c for n, c in v.items() if c} for k, v in r.get("by_kind", {}).items()}
        print(f"  {r['run_id']}: {r['outcome']}")
        if r.get("error"):
            print(f"    reason: {r['error'][:400]}")
        print(f"    by kind: {json.dumps(kinds, sort_keys=True)}")
        row = book.get_run(r["run_id"]) if len(r["run_id"]) == 19 else None
        if row:
            print(f"    ledger: status={row.status} resources_orphaned={row.resources_orphaned} "
                  f"detail={row.detail[:200]!r}")
            events = [e["kind"] for e in book.list_events(r["run_id"])]
            print(f"    ledger events: {', '.join(events)}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="haymaker-bench-") as tmp:
        work = Path(tmp)
        cloud, azurite = FakeCloud.start(work / "tls"), Azurite()
        azurite.start()
        try:
            cloud.reset()
            os.environ["REQUESTS_CA_BUNDLE"] = cloud.ca_file
            Env(cloud, azurite, work)
            pulumi = FakePulumi(work / "pulumi")
            cloud.borrowable_identity(IDENTITY, GROUP_PERMS)
            pulumi.add_stack("dev", {}, outputs={"deployerClientId": DEPLOYER_CLIENT_ID, "graphIdentities": {GROUPS: {
                "permissions": GROUP_PERMS, "identities": [{"id": "/identities/g0", "clientId": IDENTITY,
                                                            "principalId": "p0"}]}}})
            wire(cloud)
            faults(cloud)

            down_run = "20261121t0600z-d0e1"
            leftovers_of_every_kind(cloud, pulumi, down_run)
            t0, s0 = time.monotonic(), cloud.time.monotonic()
            code, results, err = run_cli("down", down_run, "--yes", "--json")
            show("down (leftovers of every kind)", cloud, code, results, time.monotonic() - t0,
                 cloud.time.monotonic() - s0, err)

            reap_runs = {"20261121t0600z-4e01": "stale lock", "20261121t0600z-4e02": "young lock",
                         "20261121t0600z-4e03": "interrupted update"}
            for run_id, fault in reap_runs.items():
                leftovers_of_every_kind(cloud, pulumi, run_id, interrupted=fault == "interrupted update")
                if fault == "stale lock":
                    pulumi.leave_lock(f"run-{run_id}", timedelta(hours=3))
                elif fault == "young lock":
                    pulumi.leave_lock(f"run-{run_id}", timedelta(minutes=10))
            cloud.time.sleep(30 * 60)  # the next reap, half an hour later
            t0, s0 = time.monotonic(), cloud.time.monotonic()
            code, results, err = run_cli("reap", "--json", "--now", "2026-11-22T00:00:00Z")
            show(f"reap ({', '.join(f'{k[-4:]}: {v}' for k, v in reap_runs.items())}; and the run `down` left)",
                 cloud, code, results, time.monotonic() - t0, cloud.time.monotonic() - s0)
            print("  " + "\n  ".join(l for l in err.splitlines() if l.startswith("soft-deleted")))

            cloud.time.sleep(60 * 60)  # an hour later: the long delete has ended, the locks are an hour older
            for g in list(cloud.arm.locks):
                cloud.arm.locks.discard(g)  # a person removed the CanNotDelete lock the first report named
            for run_id in [down_run, *reap_runs]:
                pulumi.script(f"run-{run_id}")  # so the destroy, failing on that lock before, completes now
            t0, s0 = time.monotonic(), cloud.time.monotonic()
            code, results, err = run_cli("reap", "--json", "--now", "2026-11-22T01:30:00Z")
            show("reap again (resumes what was in progress or pending)", cloud, code, results,
                 time.monotonic() - t0, cloud.time.monotonic() - s0)
            left = sorted(g for g in cloud.arm.groups if g.startswith("haymaker-"))
            print(f"\nleft in ARM: {left or 'none'}; look-alikes kept: "
                  f"{sorted(g for g in cloud.arm.groups if g.startswith('finance-'))}")
            print(f"left in the directory: live {[n for n in cloud.graph.live_names() if n.startswith('haymaker-')]}, "
                  f"deleted {sorted(o['displayName'] for o in cloud.graph.deleted.values())}")
        finally:
            cloud.stop()
            azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
