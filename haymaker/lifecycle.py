"""Run lifecycle decisions: up (with retries and destroy-on-failure), reap, down and verification.

Everything here works against three narrow interfaces (a stack driver, an Azure adapter, a ledger),
so the decisions are tested with in-memory stand-ins; haymaker/driver.py and haymaker/azure.py are
the real ones.
"""

from __future__ import annotations

import dataclasses
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
from haymaker.graphlease import LEASE_TAG
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
SETTLE_READS = 5  # reads that settle replication; a delete that runs is waited for while the budget lasts
DIRECTORY_QUOTA = 250  # directory objects a non-admin identity may create; deleted ones count until purged
REVISIT_DAYS, REVISIT_LIMIT = 30, 10  # how far back, and how many, removed stacks' runs a reap resumes
DELETED_ITEMS_WAIT = 300.0  # seconds the purge waits for deleted objects to show up in deleted items
WATCH_SECONDS = 0.1  # how often a running `pulumi destroy` is looked at against the budget
UNPURGEABLE = ("deleted_group",)  # Graph lets no application permanently delete a group
LEASE_ROUNDS = 8  # looks at the stacks before a contended Graph identity lease gives up
LEASE_PATIENCE = 3  # of them, how many wait for a younger rival to move before moving itself
# The platform stack's outputs that name an identity whose objects a run may hold (it co-owns the agents'
# applications, or created the groups); the run stack's own `deployer` output names who deployed it.
DEPLOYER_OUTPUTS = ("deployerClientId", "runDeployerClientId", "reaperObjectId")


class BudgetSpent(HayMakerError):
    """The teardown's time budget ran out: the message says what is still in progress."""


class RunFailed(HayMakerError):
    """`up` failed for good; the stack was destroyed (or its teardown result is in the message)."""


@dataclass
class Clock:
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic  # what budgets are measured with


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


def sort_stacks(stacks, environment: str) -> tuple[list, list]:
    """(this environment's run stacks, refusals): a stack whose name is not ``run-<run id>``, or that has
    no ``haymaker:env`` tag, is refused and reported, never acted on; another environment's is skipped
    (its own reaper, with its own identity and platform, tears it down)."""
    mine, refused = [], []
    for s in stacks:
        tags = s.tags or {}
        try:
            check_run_id(s.name.removeprefix("run-"))
        except InvalidInput:
            refused.append(TeardownResult(s.name, "refused", False, error=(
                f"stack {s.name}: its name is not run-<run id>, so it is not a run: nothing was changed; check it "
                f"and remove it by hand (`pulumi stack rm {s.name}`)")))
            continue
        if not tags.get("haymaker:env"):
            refused.append(TeardownResult(s.name.removeprefix("run-"), "refused", False, error=(
                f"stack {s.name} has {'no tags' if not tags else 'no haymaker:env tag'}, so its environment is "
                "unknown: nothing was changed; check it, then tag it (`pulumi stack tag set haymaker:env <env> "
                f"--stack {s.name}`) or remove it by hand")))
        elif tags["haymaker:env"] == environment:
            mine.append(s)
    return mine, refused


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


def _same_environment(stack, environment: str) -> bool:
    """Graph identities are per environment; a stack without an environment tag counts as any (it may hold one)."""
    return (stack.tags or {}).get("haymaker:env") in (None, environment)


def lease_identities(spec: RunSpec, stacks, graph_pools: dict[str, int]) -> RunSpec:
    """The spec with a Graph identity slot chosen for each of its Graph scenarios (refused when none is free);
    `up` then holds it (``Lifecycle._hold_leases``)."""
    from haymaker.graphlease import lease_graph_identities

    graph = [s for s in spec.scenarios if s in graph_pools]
    if not graph:
        return spec
    stacks = [s for s in stacks if _same_environment(s, spec.environment)]
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
    # Tagged or named like the run's, but not provably its (haymaker/ownership.py): left alone, reported.
    suspicious: list = field(default_factory=list)
    # Deleted, but not in the directory's deleted items yet when the teardown stopped looking: the next reap
    # purges them (the ledger keeps them: resources_orphaned, and a pending-purge event).
    pending: list = field(default_factory=list)

    @property
    def kinds(self) -> dict[str, dict[str, int]]:
        return by_kind(("found", self.leftovers_found), ("remaining", self.leftovers_remaining),
                       ("purged", self.purged), ("retained", self.retained), ("suspicious", self.suspicious),
                       ("pending", self.pending))

    def as_dict(self) -> dict:
        d = asdict(self)
        for key in ("leftovers_found", "leftovers_remaining", "purged", "retained", "suspicious", "pending"):
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
                 platform_stack: str | None = None, environment: str = "dev",
                 stale_lock_after: timedelta = timedelta(minutes=150), budget: timedelta = timedelta(minutes=20)):
        """``progress``: a haymaker.progress.Progress that shows each scenario's state (None: nothing);
        ``platform_stack``: the stack whose ``graphIdentities`` output resolves a run's identity leases;
        ``environment``: the one this lifecycle acts in (its runs carry it as their haymaker-env tag);
        ``stale_lock_after``: a stack lock older than this outlived every job that may hold one (the longest
        job timeout of the workflows that run `up`, `down` or `reap`): the job was killed, and the lock is
        cleared; ``budget``: how long a `down`, or a whole `reap`, may take (it must end, with its report,
        before the job that runs it times out)."""
        self.driver, self.azure, self.ledger = driver, azure, ledger
        self.environment = environment
        self.stale_lock_after = stale_lock_after
        self.budget = budget
        self._local = threading.local()  # per teardown (reap runs them in threads): its deadline, why items stay
        self.platform_stack = platform_stack
        self._platform_outputs: dict | None = None  # read once: a reap resolves every run's leases with it
        self._platform_lock = threading.Lock()
        self.progress = progress
        self.clock = clock or Clock()
        self.backoff = backoff
        self.audit_dir = audit_dir
        self.rng = rng or random.Random()
        self.echo = echo

    def _retry(self, what: str, operation, give_up_on: tuple[type, ...] = ()):
        def on_retry(attempt, error, wait):
            self.echo(f"{what}: transient error (attempt {attempt}), retrying in {wait:.0f} s: "
                      f"{getattr(error, 'text', str(error)).strip().splitlines()[-1][:200]}")

        return with_retries(operation, backoff=self.backoff, sleep=self.clock.sleep, rng=self.rng,
                            on_retry=on_retry, message_of=lambda e: getattr(e, "text", str(e)), give_up_on=give_up_on)

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
            if spec.graph_leases:
                spec, stack = self._hold_leases(spec, settings, stack, graph_pools or {})
            outputs, created = self._retry("up", lambda: self.driver.up(stack))
        except Refused as e:  # every slot went to runs that started at the same time: nothing was deployed
            self._retry(f"remove {spec.stack_name}", lambda: self.driver.remove(spec.stack_name))
            self.ledger.update_run(spec.run_id, status="failed", ended_at=self.clock.now(), detail=f"refused: {e}")
            raise
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
        path = self._audit(spec, "running", inventory, seconds, jobs=jobs, deployer=outputs.get("deployer") or {})
        return UpResult(spec, inventory, jobs, seconds, path)

    def _hold_leases(self, spec: RunSpec, settings, stack, pools: dict[str, int]):
        """Make the run's Graph identity leases its own, as a file backend takes a lock (pkg/backend/diy/
        lock.go): the lease tag is written, then the stacks are listed again. `up` goes on only after a
        listing that shows no other stack holding one of its slots; two runs cannot both see that, since
        each wrote its tag before it listed. On a conflict the run yields to an older holder at once (it
        moves to a slot free in that listing); a younger one is given a few looks to move first. Returns the
        spec and stack as held; Refused when no slot is left."""
        from haymaker.graphlease import lease_graph_identities, parse_leases

        for attempt in range(LEASE_ROUNDS):
            stacks = [s for s in self._retry("list run stacks", self.driver.list_run_stacks)
                      if s.name != spec.stack_name and _same_environment(s, spec.environment)]
            held = {(sc, slot): s.name for s in stacks for sc, slot in parse_leases((s.tags or {}).get(LEASE_TAG)).items()}
            rivals = sorted({held[lease] for lease in spec.graph_leases if lease in held})
            if not rivals:
                return spec, stack
            if all(r > spec.stack_name for r in rivals) and attempt < LEASE_PATIENCE:
                self.echo(f"{spec.stack_name}: {', '.join(rivals)} claimed the same Graph identity slot; waiting "
                          "for it to move")
            else:
                graph = [sc for sc, _ in spec.graph_leases]
                leases = lease_graph_identities(graph, pools, stacks, own_stack=spec.stack_name)
                self.echo(f"{spec.stack_name}: {', '.join(rivals)} holds a Graph identity slot it claimed too; moving "
                          f"to {', '.join(f'{sc}={n}' for sc, n in sorted(leases.items()))}")
                spec = dataclasses.replace(spec, graph_leases=tuple(sorted(leases.items())))
                verify_borrowed(self.azure, spec, self._platform)  # the new slot's grants, as for the first
                stack = self._retry("prepare", lambda s=spec: self.driver.prepare(s, settings))
            self.clock.sleep(self.backoff.delay(attempt, self.rng))
        raise Refused(f"{spec.stack_name}: other runs kept claiming the same Graph identity slots; try again")

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
        directory and the subscription keep soft-deleted, and confirm each by direct reads. Only what is
        provably the run's is deleted; look-alikes are reported as suspicious.
        ``tags``: the run stack's tags when the caller has just listed them (None: read them)."""
        if dry_run:
            return TeardownResult(run_id, "planned", False)
        own_deadline = getattr(self._local, "deadline", None) is None
        if own_deadline:
            self._local.deadline = self.clock.monotonic() + self.budget.total_seconds()
        self._local.why, self._local.gone = {}, set()
        try:
            return self._teardown(run_id, tags)
        except BudgetSpent as e:
            return self._record_teardown(TeardownResult(run_id, "failed", False, error=str(e)))
        except Exception as e:  # noqa: BLE001 - a teardown always ends recorded, never in a traceback
            return self._record_teardown(TeardownResult(run_id, "failed", False,
                                                        error=f"the teardown stopped: {reason_of(e)}"))
        finally:
            if own_deadline:
                self._local.deadline = None

    def _teardown(self, run_id: str, tags: dict | None) -> TeardownResult:
        from haymaker.driver import StackLocked, StackMissing

        stack = f"run-{run_id}"
        if tags is None:
            tags = self._stack_tags(stack)
        if tags is not None and tags.get("haymaker:env") != self.environment:
            env = tags.get("haymaker:env")
            return TeardownResult(run_id, "refused", False, error=(
                f"stack {stack} belongs to environment {env}: tear it down there (`haymaker down {run_id} -e {env}`), "
                "with that environment's identity and platform; nothing was changed" if env else
                f"stack {stack} has no haymaker:env tag, so its environment is unknown: nothing was changed; tag it "
                f"(`pulumi stack tag set haymaker:env <env> --stack {stack}`) or remove it by hand"))
        destroyed, error, stack_gone = True, "", False
        agents = self._agents(run_id)
        borrowed, unknown = self._borrowed(run_id, agents, tags)
        outputs = self._stack_outputs(stack)  # before the destroy, which empties them
        self._show_runs(run_id, [a.scenario for a in agents or []] or ["(run)"], "destroying")
        for attempt in range(2):  # a second try only after a stale lock was cleared
            try:
                self._destroy(stack)
            except GaveUp as e:
                if isinstance(e.error, StackLocked):
                    locked = self._clear_stale_lock(run_id, stack, e.error) if attempt == 0 else None
                    if locked is None and attempt == 0:
                        continue
                    return self._record_teardown(locked or self._locked(run_id, stack, e.error))
                if isinstance(e.error, StackMissing):  # torn down already (a reap, a second `down`): verify anyway
                    stack_gone = True
                else:
                    destroyed, error = False, str(e.error)
            break
        self._show(run_id, None, "verifying")
        suspicious: dict[str, object] = {}
        found: list = []
        try:
            proof = self.proof(run_id, agents, outputs, borrowed)
            survey = self.azure.survey(proof)
            found = survey.targets
            suspicious.update((x.id, x) for x in survey.suspicious)
            remaining = self.force_delete_items(found) if found else []
            if found:  # a second look, to catch what the first one missed
                again = self.azure.survey(proof)
                remaining += [x for x in again.targets if x not in remaining]
                suspicious.update((x.id, x) for x in again.suspicious)
            # Listed (Entra lags after the destroy's deletes) but gone when deleted: not a leftover.
            expected_gone = [x for x in found if x.id in self._local.gone]
            found = [x for x in found if x.id not in self._local.gone]
            purged, unpurged, retained, odd, pending = self._purge(
                proof, {x.id for x in found}, self._expected_deleted(proof, [x for x in found if x not in remaining] + expected_gone, outputs,
                                                                     destroyed and not stack_gone))
            suspicious.update((x.id, x) for x in odd)
        except (HayMakerError, GaveUp) as e:  # a lasting error (a refused token, a 403, a 5xx): nothing is proven
            return self._record_teardown(TeardownResult(run_id, "failed", destroyed, leftovers_found=found,
                                                        error="\n".join(filter(None, (error, unknown, reason_of(e)))),
                                                        suspicious=list(suspicious.values())))
        remaining += unpurged
        if remaining:
            error = "\n".join(filter(None, (error, self._why_remaining(remaining))))  # one reason a line
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
                                                     retained, sorted(suspicious.values(), key=lambda x: x.id), pending))

    @staticmethod
    def _expected_deleted(proof, found: list, outputs: dict, destroyed: bool) -> list:
        """What should show up in deleted items: the directory objects this teardown deleted (an agent's
        application takes its service principal along) and, when it ran the destroy, the agents' own."""
        from haymaker import naming

        expect = [(f"deleted_{x.kind}", x.id) for x in found if x.kind in ("application", "service_principal")]
        if destroyed:  # the stack's inventory names what its destroy deleted (the ledger's agents may not all exist)
            borrowed = {b.scenario for b in proof.borrowed}
            for e in (outputs or {}).get("inventory") or []:
                # Only an agent's own application and its service principal: a borrowed identity is the
                # platform's, and a try's agent (no client id) is the operator, so the destroy deleted neither.
                if not (e.get("scenario") and e.get("client_id")) or e["scenario"] in borrowed:
                    continue
                expect.append(("deleted_application", naming.app_display_name(proof.run_id, e["scenario"])))
                if e.get("service_principal_object_id"):
                    expect.append(("deleted_service_principal", e["service_principal_object_id"]))
        return list(dict.fromkeys(expect))

    def proof(self, run_id: str, agents: list | None = None, outputs: dict | None = None, borrowed: tuple = ()):
        """What the run is known to own (haymaker/ownership.py): its scenarios from the stack's outputs and
        the ledger's inventory (every scenario of the catalog when neither can be read), the deployer (this
        caller and the platform's deployer) and its agents' identities."""
        from haymaker.ownership import RunProof, ids_of

        scenarios, agent_ids = set(), set()
        for entry in (outputs or {}).get("inventory") or []:
            scenarios.add(entry.get("scenario", ""))
            agent_ids |= ids_of(entry.get("client_id"), entry.get("service_principal_object_id"))
        for a in agents or []:
            scenarios.add(a.scenario)
            agent_ids |= ids_of(a.client_id, a.service_principal_object_id)
        try:
            record = self.ledger.get_run(run_id)
            scenarios |= set(record.scenarios if record else ())
        except Exception as e:  # noqa: BLE001 - the stack's outputs may still say; else the catalog's names stand in
            self.echo(f"{run_id}: cannot read the run from the ledger ({e})")
        scenarios.discard("")
        if not scenarios:
            from scenarios.catalog import load_catalog

            scenarios = set(load_catalog().scenarios)
        platform, who = self._platform_quiet(), (outputs or {}).get("deployer") or self._deployer_of(run_id)
        deployer = (self.azure.caller_ids() | ids_of(*(platform.get(k) for k in DEPLOYER_OUTPUTS))
                    | ids_of(who.get("client_id"), who.get("object_id")))
        return RunProof(run_id, self.environment, frozenset(scenarios), frozenset(deployer), frozenset(agent_ids),
                        tuple(borrowed))

    def soft_deleted_quota(self) -> dict[str, int]:
        """HayMaker's objects the directory keeps deleted, per identity that creates them: the deployer (agent
        applications and service principals) and each Graph scenario's identities (deleted items do not name a
        creator: what one of them lists of its kinds is the most any of them holds). Each counts against its
        creator's 250-object quota until purged; deleted groups cannot be purged and stay 30 days."""
        from haymaker.azure import identity_kinds

        counts = {"deployer": self.azure.count_deleted()}
        pools = (self._platform_quiet().get("graphIdentities") or {})
        for scenario, pool in sorted(pools.items()):
            kinds = identity_kinds(pool.get("permissions") or ())
            clients = [i.get("clientId") for i in pool.get("identities") or [] if i.get("clientId")]
            if kinds and clients:
                counts[f"{scenario} identities"] = self.azure.count_deleted(clients[0], kinds)
        return counts

    def _unfinished(self, stacks, now: datetime) -> list[str]:
        """Runs of this environment whose stack is gone but whose teardown the ledger says is not finished: it
        failed or was locked, left soft-deleted objects to purge (resources_orphaned), or never ran (the run
        ended `running`). The reaper resumes them: without a stack a teardown only looks and purges."""
        try:
            runs = self.ledger.list_runs(days=REVISIT_DAYS)
        except Exception as e:  # noqa: BLE001 - the ledger never stops a reap
            self.echo(f"cannot read the ledger's runs ({e}): unfinished teardowns of removed stacks wait")
            return []
        names, out = {s.name for s in stacks}, []
        for r in runs:
            unfinished = (r.status in ("teardown_failed", "locked") or (r.resources_orphaned or 0) > 0
                          or (r.status in ("running", "deploying", "destroying") and r.expires_at <= now))
            if r.environment == self.environment and f"run-{r.run_id}" not in names and unfinished:
                out.append(r.run_id)
        return sorted(set(out))[:REVISIT_LIMIT]

    def orphaned_runs(self) -> tuple[list[str], list[TeardownResult]]:
        """Runs of this environment whose stack is gone but whose tag is still on something (Resource
        Graph), and refusals for tags that hold no run id (never a run's, reported as suspicious)."""
        from dataclasses import replace

        from haymaker.azure import leftover_of_row, orphans_query

        alive = [s.name.removeprefix("run-") for s in self.driver.list_run_stacks()]
        runs, refused = set(), {}
        for row in self.azure.query(orphans_query(alive, self.environment)):
            run = str(row.get("run", ""))
            try:
                check_run_id(run)
                runs.add(run)
            except InvalidInput:
                result = refused.setdefault(run, TeardownResult(run, "refused", False, error=(
                    f"haymaker-run={run!r} is not a run id: what carries it is not a run's and was left alone")))
                result.suspicious.append(replace(leftover_of_row(row), reason="its haymaker-run tag is not a run id"))
        return sorted(runs), list(refused.values())

    def _deployer_of(self, run_id: str) -> dict:
        """Who deployed the run, as its audit record in the ledger says (the stack, and its outputs, may be gone)."""
        try:
            audits = [e["data"] for e in self.ledger.list_events(run_id) if e.get("kind") == "audit"]
        except Exception:  # noqa: BLE001 - the caller and the platform's identities still count
            return {}
        return next((a["deployer"] for a in reversed(audits) if isinstance(a.get("deployer"), dict)), {})

    def survey(self, run_id: str):
        """What a teardown of the run would delete and what it would only report (a dry run)."""
        agents = self._agents(run_id)
        borrowed, _ = self._borrowed(run_id, agents, None)
        proof = self.proof(run_id, agents, self._stack_outputs(f"run-{run_id}"), borrowed)
        live, deleted = self.azure.survey(proof), self.azure.soft_deleted(proof)
        return live.targets + deleted.targets, live.suspicious + deleted.suspicious

    def _time_left(self) -> float:
        deadline = getattr(self._local, "deadline", None)
        return float("inf") if deadline is None else deadline - self.clock.monotonic()

    def _destroy(self, stack: str) -> None:
        """`pulumi destroy`, watched: when it outlives its share of the budget (three quarters; the rest is
        for verifying), the teardown ends with what is still in progress and the next reap resumes."""
        from haymaker.driver import StackLocked

        done: dict = {}

        def work():
            try:
                self._retry(f"destroy {stack}", lambda: self.driver.destroy(stack, remove=False),
                            give_up_on=(StackLocked,))
            except BaseException as e:  # noqa: BLE001 - handed to the teardown below
                done["error"] = e
            done["over"] = True

        reserve = self.budget.total_seconds() / 4
        worker = threading.Thread(target=work, name=f"destroy {stack}", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(WATCH_SECONDS)
            if worker.is_alive() and self._time_left() <= reserve:
                raise BudgetSpent(f"`pulumi destroy` of {stack} was still running when the teardown's budget "
                                  f"({self.budget.total_seconds() / 60:.0f} min, HAYMAKER_TEARDOWN_BUDGET_MINUTES) was "
                                  "three quarters spent: what it deletes is still in progress; the next reap resumes "
                                  "(its lock, once stale, is cleared)")
        if "error" in done:
            raise done["error"]

    def _why_remaining(self, items: list) -> str:
        """What keeps each remaining item: its delete still running, failed, or refused."""
        why = getattr(self._local, "why", {})
        running, other = [], []
        for x in items:
            try:
                status, words = self.azure.operation(x)
            except Exception as e:  # noqa: BLE001 - the reason is a courtesy; the item stays remaining anyway
                status, words = "", reason_of(e)
            label = f"{x.kind} {x.name}"
            if status == "InProgress" or x.state == "Deleting":
                running.append(label)
            elif status == "Failed":
                other.append(f"the delete of {label} failed: {words}")
            elif x.id in why:
                other.append(f"{label}: {why[x.id]}")
        parts = other
        if running:
            parts = [f"still being deleted when the teardown stopped waiting within its budget "
                     f"(HAYMAKER_TEARDOWN_BUDGET_MINUTES; the next reap resumes): {', '.join(running)}"] + other
        return "; ".join(parts)

    def _clear_stale_lock(self, run_id: str, stack: str, locked) -> TeardownResult | None:
        """Clear the stack's lock with `pulumi cancel` when every lock on it is older than any HayMaker job may
        run (its holder was killed) and record that; otherwise the `locked` result."""
        now = self.clock.now()
        if not locked.locked_at or any(now - t < self.stale_lock_after for t in locked.locked_at):
            return self._locked(run_id, stack, locked)
        self._retry(f"cancel {stack}", lambda: self.driver.cancel(stack))
        self.echo(f"{stack}: cleared a stale lock (taken {', '.join(iso(t) for t in locked.locked_at)}) with "
                  "`pulumi cancel`")
        self.ledger.add_event(run_id, "lock-cleared", {"stack": stack, "locked_at": [iso(t) for t in locked.locked_at],
                                                       "stale_after_minutes": self.stale_lock_after.total_seconds() / 60,
                                                       "lock": locked.text[-2000:]})
        return None

    def _locked(self, run_id: str, stack: str, locked) -> TeardownResult:
        now, limit = self.clock.now(), self.stale_lock_after.total_seconds() / 60
        why = (f"locked by an update that began {', '.join(f'{(now - t).total_seconds() / 60:.0f} min' for t in locked.locked_at)}"
               f" ago, less than the {limit:.0f} min a HayMaker job may run" if locked.locked_at else
               "locked, and its backend (Pulumi Cloud) does not say since when")
        return TeardownResult(run_id, "locked", False, error=(
            f"stack {stack} is {why}: nothing was deleted under it; the next reap looks again (if no update is "
            f"running, clear it with `pulumi cancel --stack {stack}`)"))

    def _stack_tags(self, stack: str) -> dict | None:
        """The run stack's tags; None when it does not exist or the stacks cannot be listed (then the
        teardown's own look at the lease reports why)."""
        try:
            return next((s.tags or {} for s in self.driver.list_run_stacks() if s.name == stack), None)
        except Exception:  # noqa: BLE001 - _borrowed lists again and says what failed
            return None

    def _stack_outputs(self, stack: str) -> dict:
        """The run stack's outputs (its inventory); {} when the stack is gone or cannot be read."""
        try:
            return self.driver.outputs(stack) or {}
        except Exception as e:  # noqa: BLE001 - the ledger's inventory and the catalog still name the scenarios
            if type(e).__name__ != "StackMissing":
                self.echo(f"cannot read the outputs of {stack} ({getattr(e, 'text', e)})")
            return {}

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
        from haymaker.graphlease import leased_identities

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

    def _platform_quiet(self) -> dict:
        """The platform's outputs, or {} when they cannot be read (the caller's own ids still count)."""
        if not self.platform_stack:
            return {}
        try:
            return self._platform()
        except Exception as e:  # noqa: BLE001 - only the platform's deployer id is lost
            self.echo(f"cannot read the outputs of platform stack {self.platform_stack} ({getattr(e, 'error', e)})")
            return {}

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
        return self._delete_all(leftovers, reserve=self.budget.total_seconds() / 4)[0]

    def _delete_all(self, leftovers: list, proven: set = frozenset(), reserve: float = 0.0) -> tuple[list, list]:
        """(still there, refused): a deleted directory object the teardown did not delete itself names no
        owner; when Graph refuses its purge to every identity of the run, it is not the run's (refused)."""
        from haymaker.azure import GraphDenied

        groups = [x for x in leftovers if x.kind == "resource_group"]
        group_ids = {g.id.lower() for g in groups}
        inside = [x for x in leftovers if x.kind == "resource" and any(x.id.lower().startswith(g + "/") for g in group_ids)]
        order = {kind: i for i, kind in enumerate(DELETE_ORDER)}
        todo = sorted((x for x in leftovers if x not in inside), key=lambda x: order.get(x.kind, len(order)))
        failed, refused = [], []
        why = getattr(self._local, "why", {})
        gone = getattr(self._local, "gone", set())
        for item in todo:
            try:
                if self._retry(f"delete {item.name}", lambda i=item: self.azure.delete(i)) is False:
                    gone.add(item.id)  # a read still showed it, the delete found it gone: replication
            except GaveUp as e:
                if isinstance(e.error, GraphDenied) and item.kind.startswith("deleted_") and item.id not in proven:
                    refused.append(item)
                    continue
                self.echo(f"could not delete {item.kind} {item.name}: {e}")
                why[item.id] = reason_of(e)
                failed.append(item)
        return failed + self._settle([x for x in leftovers if x not in failed and x not in refused], reserve), refused

    def _settle(self, items: list, reserve: float = 0.0) -> list:
        """Direct reads until every deleted item is gone: deletes and the directory replicate, so one
        read right after a delete may still see it. Bounded; what stays is returned."""
        pending, unreadable, attempt = list(items), {}, 0
        while pending:
            still, moving = [], False
            for x in pending:
                try:
                    state = self._retry(f"read {x.name}", lambda i=x: self.azure.exists(i))
                    if state:
                        still.append(x)
                        moving = moving or self._moving(x, state)
                except GaveUp as e:
                    unreadable[x.id] = (x, e)
            pending, attempt = still, attempt + 1
            left = self._time_left() - reserve  # live deletes leave the purges a quarter of the budget
            # A delete that runs is waited for while the budget lasts; otherwise a few reads settle replication.
            if not pending or left <= 0 or (attempt >= SETTLE_READS and not moving):
                break
            self.clock.sleep(min(max(self.backoff.delay(attempt, self.rng), 1.0), left))
        if unreadable:  # whether they are gone cannot be told: nothing is proven
            (x, e), n = next(iter(unreadable.values())), len(unreadable)
            raise HayMakerError(f"cannot confirm that {n} deleted item(s) are gone ({x.kind} {x.name}: {reason_of(e)})")
        return pending

    def _moving(self, item, state) -> bool:
        """Whether an item that is still there is being deleted (its operation runs)."""
        if state == "Deleting":
            return True
        try:
            return self.azure.operation(item)[0] == "InProgress"
        except Exception:  # noqa: BLE001 - unknown: not waited for beyond the usual reads
            return False

    def _purge(self, proof, proven: set, expect: list) -> tuple[list, list, list, list, list]:
        """Purge the run's soft-deleted items. Entra shows a deleted object in deleted items a while after its
        delete: the purge looks again (a bounded time, within the budget) until every object the teardown or the
        destroy deleted (``expect``: (kind, id or name)) has shown up. Returns (purged, still there, retained,
        suspicious, pending): deleted groups are retained (no one here may purge them); a deleted object Graph
        will not let any run identity purge is not the run's; pending ones had not shown up when it stopped."""
        from dataclasses import replace

        from haymaker.azure import Leftover

        purged, refused, seen, tried, rounds = [], [], [], [], 0
        started = self.clock.monotonic()
        while True:
            soft = self.azure.soft_deleted(proof)
            seen += [x for x in soft.targets if x not in seen]
            batch = [x for x in soft.targets if x not in tried and x.kind not in UNPURGEABLE]  # each one purge
            tried += batch
            if batch:
                remaining, denied = self._delete_all(batch, proven)
                refused += denied
                purged += [x for x in batch if x not in remaining and x not in denied]
            missing = [(k, key) for k, key in expect if not any(_shows(x, k, key) for x in seen)]
            rounds += 1
            waited = self.clock.monotonic() - started
            if (not missing and not batch) or (missing and (
                    waited >= DELETED_ITEMS_WAIT or self._time_left() <= 0)):
                break
            if not batch:
                self.clock.sleep(min(max(self.backoff.delay(rounds, self.rng), 1.0), max(self._time_left(), 0)))
        left = self.azure.soft_deleted(proof)
        retained = [x for x in left.targets if x.kind in UNPURGEABLE]
        still = [x for x in left.targets if x.kind not in UNPURGEABLE and x not in refused]
        odd = left.suspicious + [replace(x, reason="Graph refused its purge to every identity of the run: not its own")
                                 for x in refused]
        pending = [Leftover(k, key if _is_id(key) else "", "" if _is_id(key) else key,
                            reason="deleted, not in the directory's deleted items yet: the next reap purges it")
                   for k, key in missing]
        return [x for x in purged if x not in left.targets], still, retained, odd, pending

    def _record_teardown(self, result: TeardownResult) -> TeardownResult:
        self._show(result.run_id, None, result.outcome)
        status = {"verified": "verified", "forced": "forced", "locked": "locked"}.get(result.outcome, "teardown_failed")
        kinds = ", ".join(f"{k} {v['found']}/{v['remaining']}/{v['purged']}" for k, v in result.kinds.items())
        self.ledger.update_run(result.run_id, status=status, ended_at=self.clock.now(),
                               resources_orphaned=len(result.leftovers_remaining) + len(result.pending),
                               detail=result.error or (f"{len(result.leftovers_found)} leftover(s) found, "
                                                       f"{len(result.purged)} soft-deleted purged"
                                                       + (f", {len(result.suspicious)} suspicious left alone"
                                                          if result.suspicious else "")
                                                       + (f" (kind found/remaining/purged: {kinds})" if kinds else "")))
        self.ledger.add_event(result.run_id, "teardown", result.as_dict())
        if result.pending:
            self.ledger.add_event(result.run_id, "pending-purge", {"items": [asdict(x) for x in result.pending]})
        return result

    def reap(self, *, now: datetime | None = None, parallel: int = 4, dry_run: bool = False) -> list[TeardownResult]:
        """Tear down every expired run stack of this environment; one failure never stops the others.
        Stacks that cannot be told to be a run of an environment are refused and reported, untouched."""
        if parallel < 1:
            raise InvalidInput("--parallel must be at least 1")
        from haymaker.driver import RunStack

        stacks = self.driver.list_run_stacks()
        mine, refused = sort_stacks(stacks, self.environment)
        due = select_expired(mine, now or self.clock.now())
        due += [RunStack(f"run-{r}", {}) for r in self._unfinished(stacks, now or self.clock.now())]

        deadline = self.clock.monotonic() + self.budget.total_seconds()

        def one(stack) -> TeardownResult:
            run_id = stack.name.removeprefix("run-")
            if dry_run:
                return self.teardown(run_id, dry_run=True)
            if deadline - self.clock.monotonic() <= self.budget.total_seconds() / 4:
                return self._record_teardown(TeardownResult(run_id, "failed", False, error=(
                    "not started: the reap's budget was spent on the runs before it; the next reap takes it")))
            self._local.deadline = deadline
            try:  # a resumed run has no stack: its tags are None
                return self.teardown(run_id, tags=stack.tags if stack.tags else None)
            finally:
                self._local.deadline = None

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return refused + list(pool.map(one, due))

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


def _is_id(key: str) -> bool:
    return not key.lower().startswith("haymaker-")


def _shows(item, kind: str, key: str) -> bool:
    """Whether a deleted item is the expected one (by object id, or by name when the id is not known)."""
    return item.kind == kind and (item.id == key or item.name.lower() == key.lower())


def reason_of(e: Exception) -> str:
    """The words of what went wrong: a retried operation's last error, else the error itself."""
    return str(e.error) if isinstance(e, GaveUp) else (str(e) or type(e).__name__)


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
