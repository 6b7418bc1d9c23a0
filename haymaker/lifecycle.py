"""Run lifecycle decisions: up (with retries and destroy-on-failure), reap, down and verification.

Everything here works against three narrow interfaces (a stack driver, an Azure adapter, a ledger),
so the decisions are tested with in-memory stand-ins; haymaker/driver.py and haymaker/azure.py are
the real ones.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from haymaker.errors import HayMakerError, InvalidInput, Refused
from haymaker.grants import verify_borrowed
from haymaker.retry import Backoff, GaveUp, with_retries
from haymaker.runspec import MAX_DURATION_HOURS, RunSpec, check_run_id, iso, parse_iso

log = logging.getLogger("haymaker.lifecycle")
ON_DEMAND_TRIGGERS = ("dispatch", "local")
JOB_START_GRACE = timedelta(minutes=3)
# Live things first (groups take their resources with them; an application its service principal),
# then what the directory and the subscription keep soft-deleted.
DELETE_ORDER = ("resource_group", "resource", "application", "service_principal", "group",
                "deleted_application", "deleted_service_principal", "deleted_group",
                "deleted_key_vault", "deleted_cognitive_account")
SETTLE_READS = 5
UNPURGEABLE = ("deleted_group",)  # Graph lets no application permanently delete a group


class RunFailed(HayMakerError):
    """`up` failed for good; the stack was destroyed (or its teardown result is in the message)."""


@dataclass
class Clock:
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep


# --- pure decisions ---------------------------------------------------------------------------------

def expiry_of(stack) -> datetime:
    """The ``haymaker:expires`` stack tag; without one, the latest a run of that id could live."""
    tag = (stack.tags or {}).get("haymaker:expires")
    if tag:
        try:
            return parse_iso(tag)
        except InvalidInput:
            pass
    try:
        started = check_run_id(stack.name.removeprefix("run-"))
    except InvalidInput:
        return datetime.min.replace(tzinfo=timezone.utc)  # not a run id we made: due now, and reported
    return started + timedelta(hours=MAX_DURATION_HOURS, minutes=30)


def select_expired(stacks, now: datetime) -> list:
    return sorted((s for s in stacks if expiry_of(s) <= now), key=lambda s: s.name)


def live_on_demand(stacks, now: datetime) -> int:
    return sum(1 for s in stacks
               if (s.tags or {}).get("haymaker:trigger") in ON_DEMAND_TRIGGERS and expiry_of(s) > now)


def check_on_demand_limit(spec: RunSpec, stacks, now: datetime, limit: int) -> None:
    if spec.trigger not in ON_DEMAND_TRIGGERS:
        return
    live = live_on_demand(stacks, now)
    if live >= limit:
        raise Refused(f"{live} on-demand runs are live and at most {limit} may be: wait for one to expire "
                      "or take one down with `haymaker down RUN_ID`")


def check_account(expected_subscription: str | None, expected_tenant: str | None, azure,
                  pinned_subscription: str | None = None) -> None:
    """Refuse before touching anything when the target is not the environment's subscription."""
    if not expected_subscription or not expected_tenant:
        raise InvalidInput("set AZURE_SUBSCRIPTION_ID and AZURE_TENANT_ID (environment, .env or "
                           "`haymaker config set`) to the subscription this environment deploys to")
    if pinned_subscription and pinned_subscription != expected_subscription:
        raise InvalidInput(f"AZURE_SUBSCRIPTION_ID {expected_subscription} is not the environment's "
                           f"subscription {pinned_subscription} (haymaker:subscriptionId): switch subscription")
    actual_tenant = azure.subscription_tenant()
    if actual_tenant.lower() != expected_tenant.lower():
        raise InvalidInput(f"subscription {expected_subscription} belongs to tenant {actual_tenant}, not "
                           f"{expected_tenant}: log in to the right tenant (az login --tenant ...) or fix "
                           "AZURE_TENANT_ID")


def lease_identities(spec: RunSpec, stacks, graph_pools: dict[str, int]) -> RunSpec:
    """The spec with a Graph identity slot leased for each of its Graph scenarios (refused when none is free)."""
    import dataclasses

    from haymaker.graphlease import lease_graph_identities

    graph = [s for s in spec.scenarios if s in graph_pools]
    if not graph:
        return spec
    leases = lease_graph_identities(graph, graph_pools, stacks, own_stack=spec.stack_name)
    return dataclasses.replace(spec, graph_leases=tuple(sorted(leases.items())))


def verification_outcome(found_before: list, remaining: list) -> str:
    """verified: nothing was left; forced: leftovers were deleted; failed: something remains.

    Soft-deleted items (deleted applications, groups, vaults) are purged on every teardown and are not
    leftovers: a clean destroy always leaves some in the directory's deleted items."""
    if remaining:
        return "failed"
    return "forced" if found_before else "verified"


def by_kind(*groups: tuple[str, list]) -> dict[str, dict[str, int]]:
    """``{kind: {"found": n, "remaining": m, "purged": k}}`` so an outcome names each kind."""
    out: dict[str, dict[str, int]] = {}
    for label, items in groups:
        for item in items:
            counts = out.setdefault(item.kind, {"found": 0, "remaining": 0, "purged": 0})
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(out.items()))


# --- results -----------------------------------------------------------------------------------------

@dataclass
class TeardownResult:
    run_id: str
    outcome: str  # verified | forced | failed | planned (dry run)
    destroyed: bool
    leftovers_found: list = field(default_factory=list)  # live things the destroy left
    leftovers_remaining: list = field(default_factory=list)  # what is still there (live or soft-deleted)
    error: str = ""
    purged: list = field(default_factory=list)  # soft-deleted items purged
    # Deleted groups: no application permission may purge one, so they stay in the directory's deleted
    # items for 30 days (counted against the borrowed identity that created them, not the deployer).
    retained: list = field(default_factory=list)

    @property
    def kinds(self) -> dict[str, dict[str, int]]:
        return by_kind(("found", self.leftovers_found), ("remaining", self.leftovers_remaining),
                       ("purged", self.purged), ("retained", self.retained))

    def as_dict(self) -> dict:
        d = asdict(self)
        for key in ("leftovers_found", "leftovers_remaining", "purged", "retained"):
            d[key] = [asdict(x) for x in getattr(self, key)]
        d["by_kind"] = self.kinds
        return d


@dataclass
class UpResult:
    spec: RunSpec
    inventory: list
    jobs: dict
    deploy_seconds: float
    audit_path: Path | None = None


# --- orchestration -----------------------------------------------------------------------------------

class Lifecycle:
    def __init__(self, *, driver, azure, ledger, clock: Clock | None = None, backoff: Backoff = Backoff(),
                 audit_dir: Path | None = None, rng: random.Random | None = None, echo=log.info, progress=None,
                 platform_stack: str | None = None):
        """``progress``: a haymaker.progress.Progress that shows each scenario's state (None: nothing);
        ``platform_stack``: the stack whose ``graphIdentities`` output resolves a run's identity leases."""
        self.driver, self.azure, self.ledger = driver, azure, ledger
        self.platform_stack = platform_stack
        self._platform_outputs: dict | None = None  # read once: a reap resolves every run's leases with it
        self._platform_lock = threading.Lock()
        self.progress = progress
        self.clock = clock or Clock()
        self.backoff = backoff
        self.audit_dir = audit_dir
        self.rng = rng or random.Random()
        self.echo = echo

    def _retry(self, what: str, operation):
        def on_retry(attempt, error, wait):
            self.echo(f"{what}: transient error (attempt {attempt}), retrying in {wait:.0f} s: "
                      f"{getattr(error, 'text', str(error)).strip().splitlines()[-1][:200]}")

        return with_retries(operation, backoff=self.backoff, sleep=self.clock.sleep, rng=self.rng,
                            on_retry=on_retry, message_of=lambda e: getattr(e, "text", str(e)))

    # up -----------------------------------------------------------------------------------------------
    def up(self, spec: RunSpec, settings, *, on_demand_limit: int, cost_usd: float,
           graph_pools: dict[str, int] | None = None) -> UpResult:
        """``graph_pools``: slots per Graph scenario (the platform's pool size); the run leases one of
        each of its Graph scenarios' identities, so no two live runs share an agent identity."""
        now = self.clock.now()
        stacks = self.driver.list_run_stacks()
        check_on_demand_limit(spec, stacks, now, on_demand_limit)
        spec = lease_identities(spec, stacks, graph_pools or {})
        verify_borrowed(self.azure, spec, self._platform)  # read-only: a person granted their Graph rights
        self._show_runs(spec.run_id, list(spec.scenarios))
        record = _run_record(spec, status="deploying", cost_usd=cost_usd)
        self.ledger.upsert_run(record)
        started = time.monotonic()
        try:
            stack = self._retry("prepare", lambda: self.driver.prepare(spec, settings))
            outputs, created = self._retry("up", lambda: self.driver.up(stack))
        except GaveUp as e:
            seconds = time.monotonic() - started
            self._show(spec.run_id, None, "deploy failed")
            teardown = self.teardown(spec.run_id)
            self.ledger.update_run(spec.run_id, status="failed", deploy_seconds=seconds,
                                   ended_at=self.clock.now(), detail=f"up failed: {e.error}; teardown {teardown.outcome}")
            self._audit(spec, "failed", [], seconds, teardown=teardown, error=str(e.error))
            raise RunFailed(f"{spec.stack_name} failed to deploy ({e}); the stack was destroyed "
                            f"(teardown {teardown.outcome})") from e
        seconds = time.monotonic() - started
        inventory = outputs.get("inventory") or []
        run_rg = (outputs.get("run") or {}).get("run_resource_group", "")
        jobs = self.check_jobs(inventory, run_rg, spec.started_at + timedelta(minutes=settings.start_delay_minutes))
        for scenario, state in jobs.items():
            self._show(spec.run_id, scenario, state)
        self.ledger.update_run(spec.run_id, status="running", deploy_seconds=seconds,
                               resources_created=created)
        self.ledger.upsert_agents([_agent_record(spec.run_id, entry, jobs.get(entry["scenario"], ""))
                                   for entry in inventory])
        path = self._audit(spec, "running", inventory, seconds, jobs=jobs)
        return UpResult(spec, inventory, jobs, seconds, path)

    def check_jobs(self, inventory: list, run_rg: str, start_at: datetime) -> dict[str, str]:
        """Each agent job must start by itself at ``start_at``; one whose minute passed unstarted
        (deploy took longer than the start delay) is started now."""
        now, status = self.clock.now(), {}
        for entry in inventory:
            name = entry["scenario"]
            try:
                executions = self.azure.job_executions(run_rg, entry["job_name"])
                if executions:
                    status[name] = "started"
                elif now < start_at + JOB_START_GRACE:
                    status[name] = f"scheduled {iso(start_at)}"
                else:
                    self._retry(f"start {entry['job_name']}", lambda e=entry: self.azure.start_job(run_rg, e["job_name"]))
                    status[name] = "started by haymaker"
            except (HayMakerError, GaveUp) as e:
                status[name] = f"unknown: {e}"
        return status

    # teardown -----------------------------------------------------------------------------------------
    def teardown(self, run_id: str, *, dry_run: bool = False, tags: dict | None = None) -> TeardownResult:
        """Destroy the stack, then prove nothing is left: force-delete what remains, purge what the
        directory and the subscription keep soft-deleted, and confirm each by direct reads.
        ``tags``: the run stack's tags when the caller has just listed them (None: read them)."""
        stack = f"run-{run_id}"
        if dry_run:
            return TeardownResult(run_id, "planned", False)
        from haymaker.driver import StackMissing

        destroyed, error, stack_gone = True, "", False
        agents = self._agents(run_id)
        borrowed, unknown = self._borrowed(run_id, agents, tags)
        self._show_runs(run_id, [a.scenario for a in agents or []] or ["(run)"], "destroying")
        try:
            self._retry(f"destroy {stack}", lambda: self.driver.destroy(stack, remove=False))
        except GaveUp as e:
            if isinstance(e.error, StackMissing):  # torn down already (a reap, a second `down`): verify anyway
                stack_gone = True
            else:
                destroyed, error = False, str(e.error)
        self._show(run_id, None, "verifying")
        try:
            found = self.azure.run_leftovers(run_id, borrowed)
            remaining = self.force_delete_items(found) if found else []
            # A repeat look with every source that is not an index, to catch what the first one missed.
            remaining += [x for x in self.azure.run_leftovers(run_id, borrowed) if x not in remaining] if found else []
            purged, unpurged, retained = self._purge(run_id, borrowed)
        except HayMakerError as e:
            return self._record_teardown(TeardownResult(run_id, "failed", destroyed,
                                                        error="\n".join(filter(None, (error, unknown, str(e))))))
        remaining += unpurged
        outcome = verification_outcome(found, remaining)
        if not destroyed and outcome == "verified":
            outcome = "forced"  # nothing is left in Azure, but the stack could not be destroyed cleanly
        if unknown:  # what the run's Graph identities created was never looked for: nothing is proven
            outcome, error = "failed", "\n".join(filter(None, (error, unknown)))  # one reason a line
        # The stack goes last: while it exists, its Graph identity lease holds (haymaker/graphlease.py).
        if not remaining and not unknown and not stack_gone:
            try:
                self._retry(f"remove {stack}", lambda: self.driver.remove(stack, force=not destroyed))
            except GaveUp as e:
                error = f"{error}; stack not removed: {e.error}".lstrip("; ")
        return self._record_teardown(TeardownResult(run_id, outcome, destroyed, found, remaining, error, purged,
                                                     retained))

    def _agents(self, run_id: str) -> list | None:
        """The run's agents from the ledger (their scenarios and identities); None when it cannot be read."""
        try:
            return list(self.ledger.list_agents(run_id))
        except Exception as e:  # noqa: BLE001 - the stack's lease tag still says which identities the run used
            self.echo(f"{run_id}: cannot read the run's agents from the ledger ({e})")
            return None

    def _borrowed(self, run_id: str, agents: list | None, tags: dict | None) -> tuple[tuple, str]:
        """The Graph identities the run borrowed (teardown signs in as each to remove the directory objects
        its agent created), and why they cannot be known ("" when they can).

        The record is the run stack's lease tag, resolved through the platform's ``graphIdentities``
        output as `up` resolved it; the ledger's agents only once the stack is gone."""
        from haymaker.azure import Borrowed
        from haymaker.graphlease import LEASE_TAG, leased_identities

        stack, doing = f"run-{run_id}", "list the run stacks"
        try:
            if tags is None:
                tags = next((s.tags or {} for s in self.driver.list_run_stacks() if s.name == stack), None)
            if tags is None:
                if agents is None:
                    return (), (f"the Graph identities {stack} borrowed are unknown (its stack is gone and the ledger's "
                                "agents cannot be read): the directory objects their agents created were not looked for")
                return self._ledger_borrowed(agents), ""
            if not tags.get(LEASE_TAG):
                return (), ""
            doing = f"read the graphIdentities output of platform stack {self.platform_stack or '(none configured)'}"
            if not self.platform_stack:
                raise InvalidInput("set HAYMAKER_PLATFORM_STACK or the environment")
            outputs = self._platform()
            doing = f"resolve the lease {LEASE_TAG}={tags[LEASE_TAG]}"
            leased = leased_identities(tags[LEASE_TAG], outputs.get("graphIdentities"))
        except Exception as e:  # noqa: BLE001 - reported in the outcome, never a crash of the teardown
            return (), (f"cannot {doing}: {getattr(e, 'error', e)}: the Graph identities {stack} borrowed are unknown, "
                        "so the directory objects their agents created were not looked for; the stack is kept (its "
                        "lease holds) for the next reap")
        return tuple(Borrowed(s, client_id, perms) for s, (client_id, perms) in leased.items()), ""

    def _platform(self) -> dict:
        """The platform stack's outputs, read on first use (reap's teardowns run in threads)."""
        with self._platform_lock:
            if self._platform_outputs is None:
                self._platform_outputs = self._retry(f"read {self.platform_stack}",
                                                     lambda: self.driver.outputs(self.platform_stack))
            return self._platform_outputs

    @staticmethod
    def _ledger_borrowed(agents: list) -> tuple:
        """The borrowed identities the ledger's agents name (client id, the catalog's Graph permissions)."""
        from haymaker.azure import Borrowed
        from scenarios.catalog import load_catalog

        catalog = load_catalog()
        return tuple(Borrowed(a.scenario, a.client_id, catalog[a.scenario].graph_permissions) for a in agents
                     if a.scenario in catalog and catalog[a.scenario].graph_permissions and a.client_id)

    def _show_runs(self, run_id: str, scenarios: list[str], state: str = "waiting") -> None:
        if self.progress is not None:
            self.progress.runs(run_id, scenarios, state)

    def _show(self, run_id: str, scenario: str | None, state: str) -> None:
        if self.progress is not None:
            self.progress.set(run_id, scenario, state)

    def force_delete_items(self, leftovers: list) -> list:
        """Delete groups first (their resources go with them), then loose resources, then Entra
        objects (an application takes its service principal along), retrying transient errors;
        then re-read each until it is gone. Return what is still there."""
        groups = [x for x in leftovers if x.kind == "resource_group"]
        group_ids = {g.id.lower() for g in groups}
        inside = [x for x in leftovers if x.kind == "resource" and any(x.id.lower().startswith(g + "/") for g in group_ids)]
        order = {kind: i for i, kind in enumerate(DELETE_ORDER)}
        todo = sorted((x for x in leftovers if x not in inside), key=lambda x: order.get(x.kind, len(order)))
        failed = []
        for item in todo:
            try:
                self._retry(f"delete {item.name}", lambda i=item: self.azure.delete(i))
            except GaveUp as e:
                self.echo(f"could not delete {item.kind} {item.name}: {e}")
                failed.append(item)
        return failed + self._settle([x for x in leftovers if x not in failed])

    def _settle(self, items: list) -> list:
        """Direct reads until every deleted item is gone: deletes and the directory replicate, so one
        read right after a delete may still see it. Bounded; what stays is returned."""
        pending = list(items)
        for attempt in range(SETTLE_READS):
            pending = [x for x in pending if self._retry(f"read {x.name}", lambda i=x: self.azure.exists(i))]
            if not pending or attempt == SETTLE_READS - 1:
                break
            self.clock.sleep(self.backoff.delay(attempt, self.rng))
        return pending

    def _purge(self, run_id: str, borrowed: tuple = ()) -> tuple[list, list, list]:
        """Purge the run's soft-deleted items; a second look catches what the deletes just put there.
        Returns (purged, still there, retained): deleted groups are retained, no one here may purge them."""
        purged: list = []
        for _ in range(2):
            batch = [x for x in self.azure.soft_deleted(run_id, borrowed)
                     if x not in purged and x.kind not in UNPURGEABLE]
            if not batch:
                break
            remaining = self.force_delete_items(batch)
            purged += [x for x in batch if x not in remaining]
        left = self.azure.soft_deleted(run_id, borrowed)
        retained = [x for x in left if x.kind in UNPURGEABLE]
        return [x for x in purged if x not in left], [x for x in left if x.kind not in UNPURGEABLE], retained

    def _record_teardown(self, result: TeardownResult) -> TeardownResult:
        self._show(result.run_id, None, result.outcome)
        status = {"verified": "verified", "forced": "forced"}.get(result.outcome, "teardown_failed")
        kinds = ", ".join(f"{k} {v['found']}/{v['remaining']}/{v['purged']}" for k, v in result.kinds.items())
        self.ledger.update_run(result.run_id, status=status, ended_at=self.clock.now(),
                               resources_orphaned=len(result.leftovers_remaining),
                               detail=result.error or (f"{len(result.leftovers_found)} leftover(s) found, "
                                                       f"{len(result.purged)} soft-deleted purged"
                                                       + (f" (kind found/remaining/purged: {kinds})" if kinds else "")))
        self.ledger.add_event(result.run_id, "teardown", result.as_dict())
        return result

    def reap(self, *, now: datetime | None = None, parallel: int = 4, dry_run: bool = False) -> list[TeardownResult]:
        """Tear down every expired run stack; one failure never stops the others."""
        if parallel < 1:
            raise InvalidInput("--parallel must be at least 1")
        due = select_expired(self.driver.list_run_stacks(), now or self.clock.now())

        def one(stack) -> TeardownResult:
            run_id = stack.name.removeprefix("run-")
            try:
                return self.teardown(run_id, dry_run=dry_run, tags=stack.tags or {})
            except Exception as e:  # noqa: BLE001 - one run's failure is reported, not propagated
                return TeardownResult(run_id, "failed", False, error=str(e))

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(one, due))

    # audit ---------------------------------------------------------------------------------------------
    def _audit(self, spec: RunSpec, outcome: str, inventory: list, seconds: float, **extra) -> Path | None:
        record = {"run_id": spec.run_id, "actor": spec.actor, "trigger": spec.trigger, "git_sha": spec.git_sha,
                  "run_spec": spec.to_dict(), "outcome": outcome, "inventory": inventory,
                  "durations": {"deploy_seconds": round(seconds, 1)}, "recorded_at": iso(self.clock.now())}
        for key, value in extra.items():
            record[key] = value.as_dict() if hasattr(value, "as_dict") else value
        self.ledger.add_event(spec.run_id, "audit", record)
        if self.audit_dir is None:
            return None
        self.audit_dir.mkdir(parents=True, exist_ok=True)
        path = self.audit_dir / f"{spec.run_id}.json"
        path.write_text(json.dumps(record, indent=2, default=str))
        return path


def _run_record(spec: RunSpec, *, status: str, cost_usd: float):
    from haymaker.ledger import RunRecord

    return RunRecord(run_id=spec.run_id, environment=spec.environment, trigger=spec.trigger, status=status,
                     started_at=spec.started_at, expires_at=spec.expires_at, scenarios=list(spec.scenarios),
                     duration_hours=spec.duration_hours, git_sha=spec.git_sha, actor=spec.actor, size=spec.size,
                     cost_estimate_usd=round(cost_usd, 2))


def _agent_record(run_id: str, entry: dict, job_status: str):
    from haymaker.ledger import AgentRecord

    return AgentRecord(run_id=run_id, scenario=entry["scenario"], status=job_status,
                       resource_group=entry.get("resource_group_name", ""), client_id=entry.get("client_id", ""),
                       service_principal_object_id=entry.get("service_principal_object_id", ""),
                       job_name=entry.get("job_name", ""), job_id=entry.get("job_id", ""))
