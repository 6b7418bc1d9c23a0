"""The run ledger: run history, agents and audit events in Azure Table Storage (Azurite locally).

Tables and keys, chosen so the common reads touch few partitions:

- ``runs``: PartitionKey = the run's UTC month (``202611``, from the run id); RowKey = the inverted
  start minute + the run id, so a partition lists newest first and ``get_run`` is a point read
  computed from the id alone. Each row carries the run's aggregates (scenarios as JSON, resources
  created/cleaned/orphaned, cost estimate, duration, status), also packed as one JSON column
  ``summary``, so metrics over N days read one column of the month partitions of the window (4 for
  90 days) and never the ``agents`` table.
- ``agents``: PartitionKey = run id, RowKey = scenario. Run ids sort by time, so "agents of the
  runs of the last 30 days" is one PartitionKey range query.
- ``events``: PartitionKey = run id, RowKey = nanosecond time + random suffix (ordered, unique).

A ledger outage never fails a run: a write is retried a few times with backoff (a couple of
seconds in all), then appended to the local spool file (JSONL, one write per line, secrets
redacted). The next write or command replays the spool first (``flush_spool``), so writes land in
the order they were made. Reads during an outage raise ``LedgerUnreachable``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError, ResourceModifiedError,
                                   ResourceNotFoundError, ServiceRequestError, ServiceResponseError)
from azure.data.tables import TableServiceClient, UpdateMode

from haymaker.errors import HayMakerError, InvalidInput
from haymaker.runspec import check_run_id, iso, parse_iso

log = logging.getLogger("haymaker.ledger")

RUNS, AGENTS, EVENTS = "runs", "agents", "events"

# What a run's status means. "verified" is the only success; the last four are final.
STATUSES = {
    "deploying": "`pulumi up` of the run stack is in progress",
    "running": "deployed; the agents are working",
    "failed": "the deploy failed; the stack was torn down",
    "destroying": "teardown is in progress",
    "verified": "destroyed, and verified that nothing tagged with the run remains",
    "forced": "nothing remains, but leftovers had to be force-deleted or the stack could not be destroyed",
    "teardown_failed": "teardown or its verification failed: resources may remain (the reaper tries again)",
    "locked": "teardown found the stack locked by an update that may still run: nothing was deleted (the reaper "
              "looks again)",
}
FINISHED = ("failed", "verified", "forced", "teardown_failed")
SUCCEEDED = ("verified",)

AZURITE = "UseDevelopmentStorage=true"  # Azurite's well-known account on 127.0.0.1:10002
# Our retries replace the SDK's (10 by default, up to minutes); timeouts keep an outage short.
CLIENT_OPTIONS = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 20}
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
CONFLICT_LIMIT = 10
PAGE = 1000  # Table Storage returns at most 1000 entities per page
BATCH = 100  # ... and takes at most 100 operations per transaction
CHUNK = 30_000  # characters per string property (the limit is 64 KiB of UTF-16)
MAX_CHUNKS = 15  # an entity holds at most 1 MiB
INVERT = 999_999_999_999  # RowKey = INVERT - yyyymmddhhmm: newest first
SECRET = "[secret]"
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|connection_?string|account_?key|access_?key|token)")
_SECRET_TEXT = re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|sig|client_secret|password)=[^;&\s\"']+")


class LedgerUnreachable(HayMakerError):
    """The ledger could not be read: it is down, unreachable, or refuses our credentials."""


class LedgerError(HayMakerError):
    """The ledger answered a read with an error that retrying cannot fix."""


@dataclass
class RunRecord:
    run_id: str
    environment: str
    trigger: str
    status: str
    started_at: datetime
    expires_at: datetime
    scenarios: list[str]
    duration_hours: int
    git_sha: str = ""
    actor: str = ""
    size: str | None = None
    ended_at: datetime | None = None
    cost_estimate_usd: float = 0.0
    resources_created: int = 0
    resources_cleaned: int = 0
    resources_orphaned: int = 0
    deploy_seconds: float | None = None
    detail: str = ""
    # The answer key's figures (`haymaker truth`): matched / expected operations, and the Activity Log
    # records the run's agents caused.
    truth_coverage: float | None = None
    truth_events: int | None = None
    # Attempts of `haymaker truth --due` that failed: a run that keeps failing goes behind the others.
    truth_failures: int | None = None

    def to_dict(self) -> dict:
        return _jsonable(self)


@dataclass
class AgentRecord:
    run_id: str
    scenario: str
    status: str
    resource_group: str = ""
    client_id: str = ""
    service_principal_object_id: str = ""
    job_name: str = ""
    job_id: str = ""
    started_at: datetime | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        return _jsonable(self)


_DATETIMES = {"started_at", "expires_at", "ended_at"}
_FLOATS = {"cost_estimate_usd", "deploy_seconds", "truth_coverage"}
_RUN_FIELDS = {f.name for f in fields(RunRecord)}


# --- keys ----------------------------------------------------------------------------------------------

def run_partition(run_id: str) -> str:
    return f"{check_run_id(run_id):%Y%m}"


def _inverted(minute: datetime) -> str:
    return f"{INVERT - int(f'{minute:%Y%m%d%H%M}'):012d}"


def run_row_key(run_id: str) -> str:
    return f"{_inverted(check_run_id(run_id))}-{run_id}"


def month_partitions(newest: datetime, oldest: datetime) -> list[str]:
    """The runs partitions from newest's month back to oldest's month, newest first."""
    year, month, out = newest.year, newest.month, []
    while (year, month) >= (oldest.year, oldest.month):
        out.append(f"{year:04d}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def _id_prefix(t: datetime) -> str:
    """The start of the run ids of runs started in t's minute (run ids sort by time)."""
    return f"{t:%Y%m%d}t{t:%H%M}z"


# --- input checks (also used by the CLI before it connects) ----------------------------------------------

def check_days(days: int | None) -> None:
    if days is not None and not 1 <= days <= 3660:
        raise InvalidInput(f"--days {days} is out of range: use 1 to 3660")


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit {limit} is out of range: use 1 or more")


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status {status!r} is unknown: use one of {', '.join(STATUSES)}")


def _check_changes(changes: dict) -> None:
    unknown = sorted(set(changes) - (_RUN_FIELDS - {"run_id"}))
    if unknown:
        raise InvalidInput(f"cannot update {', '.join(unknown)} of a run: fields are {', '.join(sorted(_RUN_FIELDS))}")
    check_status(changes.get("status"))


# --- entities ----------------------------------------------------------------------------------------------

def redact(value):
    """Secret-looking keys and connection-string parts become [secret]: neither the ledger nor the
    spool ever holds a credential."""
    if isinstance(value, dict):
        return {k: SECRET if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(lambda m: f"{m.group(1)}={SECRET}", value)
    return value


def _to_entity(record, partition: str, row: str) -> dict:
    entity = {"PartitionKey": partition, "RowKey": row}
    for name, value in asdict(record).items():
        if value is not None:  # Table Storage has no null: an absent property reads back as None
            entity[name] = json.dumps(value) if name == "scenarios" else redact(value)
    return entity


def _run_entity(run: RunRecord) -> dict:
    entity = _to_entity(run, run_partition(run.run_id), run_row_key(run.run_id))
    entity["summary"] = json.dumps(run_summary(run))  # rewritten with every write of the row: never stale
    return entity


def run_summary(run: RunRecord) -> dict:
    """What metrics need of a run, stored on its row as one JSON column: reading one column
    instead of ten parses about three times faster."""
    return {"run_id": run.run_id, "status": run.status, "started_at": iso(run.started_at),
            "scenarios": list(run.scenarios),
            "hours": round((run.ended_at - run.started_at).total_seconds() / 3600, 4) if run.ended_at else None,
            "deploy_seconds": run.deploy_seconds, "resources_created": run.resources_created,
            "resources_cleaned": run.resources_cleaned, "resources_orphaned": run.resources_orphaned,
            "cost_estimate_usd": run.cost_estimate_usd, "truth_coverage": run.truth_coverage}


def _agent_entity(agent: AgentRecord) -> dict:
    check_run_id(agent.run_id)
    return _to_entity(agent, agent.run_id, agent.scenario)


def _from_entity(cls, entity):
    values = {f.name: entity[f.name] for f in fields(cls) if f.name in entity}
    for name in _DATETIMES & values.keys():
        t = values[name]  # the SDK's datetime subclass, made a plain UTC datetime
        values[name] = datetime.combine(t.date(), t.timetz())
    for name in _FLOATS & values.keys():
        values[name] = float(values[name])
    if "scenarios" in values:
        values["scenarios"] = json.loads(values["scenarios"])
    return cls(**values)


def _jsonable(record) -> dict:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in asdict(record).items()}


def _event_entity(run_id: str, kind: str, data: dict, at: datetime) -> dict:
    text = json.dumps(redact(data), default=str, sort_keys=True)
    chunks = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    entity = {"PartitionKey": run_id, "RowKey": f"{time.time_ns():020d}-{secrets.token_hex(4)}",
              "kind": kind, "at": at, "parts": min(len(chunks), MAX_CHUNKS)}
    if len(chunks) > MAX_CHUNKS:
        entity["truncated"] = True
    for i, chunk in enumerate(chunks[:MAX_CHUNKS]):
        entity[f"data{i}"] = chunk
    return entity


def _event_from_entity(entity) -> dict:
    text = "".join(entity[f"data{i}"] for i in range(entity["parts"]))
    return {"kind": entity["kind"], "at": iso(entity["at"]),
            "data": {"truncated": text} if entity.get("truncated") else json.loads(text)}


# --- spool lines: JSON with datetimes marked --------------------------------------------------------------

def _encode(value):
    if isinstance(value, datetime):
        return {"$datetime": value.astimezone(timezone.utc).isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _spool_lines(ops: list[dict]) -> str:
    return "".join(json.dumps(_encode(redact(op)), sort_keys=True) + "\n" for op in ops)


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return parse_iso(value["$datetime"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# --- errors ----------------------------------------------------------------------------------------------

def _status(e: AzureError) -> int | None:
    return getattr(e, "status_code", None)


def _transient(e: AzureError) -> bool:
    return (isinstance(e, (ServiceRequestError, ServiceResponseError, ResourceModifiedError))
            or _status(e) in TRANSIENT_STATUS)


def _unavailable(e: AzureError) -> bool:
    """Down, unreachable or refusing our credentials: a write will land once that is fixed."""
    return _transient(e) or isinstance(e, ClientAuthenticationError) or _status(e) in (401, 403)


def _table_missing(e: AzureError) -> bool:
    return _status(e) == 404 and getattr(e, "error_code", None) == "TableNotFound"


def _reason(e: AzureError) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return redact(f"{type(e).__name__}: {first}")[:300]


# --- the ledger ------------------------------------------------------------------------------------------

class Ledger:
    def __init__(self, service: TableServiceClient, spool_path: Path, retries: int = 3, backoff: float = 0.25):
        """retries: attempts after the first for a transient error; backoff: the first wait in
        seconds, doubled each time (0.25 s: 1.75 s of waiting at most)."""
        self._service = service
        self.spool_path = Path(spool_path)
        self.retries = retries
        self.backoff = backoff
        self.conflicts = 0  # ETag conflicts met and retried (another writer got there first)
        self._known: dict[str, RunRecord] = {}  # what this process last wrote, for updates spooled during an outage

    @classmethod
    def from_config(cls, config, **options) -> "Ledger":
        """The connection string if set, else the endpoint with DefaultAzureCredential, else Azurite."""
        connection_string, endpoint = config.get("ledger_connection_string"), config.get("ledger_endpoint")
        try:
            if connection_string:
                service = TableServiceClient.from_connection_string(connection_string, **CLIENT_OPTIONS)
            elif endpoint:
                # GitHub OIDC client assertions in Actions (tokens outlive the job's first ten minutes),
                # DefaultAzureCredential elsewhere: the same credential as the lifecycle's.
                from haymaker.cloud import Endpoints, azure_credential

                service = TableServiceClient(endpoint, credential=azure_credential(Endpoints.from_config(config)),
                                             **CLIENT_OPTIONS)
            else:
                service = TableServiceClient.from_connection_string(AZURITE, **CLIENT_OPTIONS)
        except ValueError:  # the SDK's message could quote the string: say where it came from instead
            which, what = (("ledger_connection_string", "connection string") if connection_string
                           else ("ledger_endpoint", "endpoint URL"))
            raise InvalidInput(f"{which} from {config.source(which)} is not a Table Storage {what}: "
                               "see .env.example") from None
        return cls(service, Path(config.get("ledger_spool")).expanduser(), **options)

    @property
    def where(self) -> str:
        """The service URL without any query string (a SAS token would be there)."""
        url = urlsplit(self._service.url)
        return f"{url.scheme}://{url.netloc}{url.path}"

    def _table(self, name: str):
        return self._service.get_table_client(name)

    # --- calls with retries -----------------------------------------------------------------------------

    def _with_retries(self, operation: Callable, retries: int | None = None):
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return operation()
            except AzureError as e:
                if not _transient(e) or attempt == retries:
                    raise
                wait = self.backoff * 2 ** attempt * random.uniform(0.5, 1.0)
                log.debug("ledger: %s, retrying in %.2f s", _reason(e), wait)
                time.sleep(wait)

    def _write_call(self, table: str, operation: Callable, retries: int | None = None):
        def once():
            try:
                return operation(self._table(table))
            except HttpResponseError as e:
                if not _table_missing(e):
                    raise
            self._service.create_table_if_not_exists(table)  # the first write to a new ledger
            return operation(self._table(table))

        return self._with_retries(once, retries)

    def _read(self, table: str, operation: Callable, missing=None):
        """``missing`` when the table or entity does not exist; LedgerUnreachable when the ledger is down."""
        try:
            return self._with_retries(lambda: operation(self._table(table)))
        except ResourceNotFoundError:
            return missing
        except AzureError as e:
            if _unavailable(e):
                raise LedgerUnreachable(
                    f"the ledger at {self.where} is unreachable ({_reason(e)})",
                    fix="locally, start Azurite with `bash scripts/azurite.sh`; in Azure, set HAYMAKER_LEDGER_ENDPOINT "
                        "(with an identity that has Storage Table Data Contributor) or "
                        "HAYMAKER_LEDGER_CONNECTION_STRING") from None
            raise LedgerError(f"the ledger at {self.where} refused a read of {table} ({_reason(e)})") from None

    # --- writes ----------------------------------------------------------------------------------------

    def upsert_run(self, run: RunRecord) -> None:
        check_status(run.status)
        self._known[run.run_id] = run
        self._write([{"op": "upsert", "table": RUNS, "entity": _run_entity(run)}])

    def upsert_runs(self, runs: list[RunRecord]) -> None:
        """Many runs at once (imports, benchmarks): one transaction per month and 100 runs."""
        for run in runs:
            check_status(run.status)
        entities = sorted((_run_entity(r) for r in runs), key=lambda e: e["PartitionKey"])
        self._write([{"op": "upsert", "table": RUNS, "entity": e} for e in entities])

    def upsert_agents(self, agents: list[AgentRecord]) -> None:
        latest = {(a.run_id, a.scenario): a for a in agents}  # a transaction may name an entity once
        entities = sorted((_agent_entity(a) for a in latest.values()), key=lambda e: e["PartitionKey"])
        self._write([{"op": "upsert", "table": AGENTS, "entity": e} for e in entities])

    def add_event(self, run_id: str, kind: str, data: dict) -> None:
        check_run_id(run_id)
        self._write([{"op": "upsert", "table": EVENTS,
                      "entity": _event_entity(run_id, kind, data, datetime.now(timezone.utc))}])

    def update_run(self, run_id: str, **changes) -> RunRecord | None:
        """Read-modify-write guarded by the row's ETag: a writer that lost the race reads again and
        re-applies its changes, so two writers never lose each other's changes.

        Returns the updated record; during an outage, the record this process last knew with the
        changes applied (None if it knew none) while the update waits in the spool. A run that is
        not in the ledger is logged and None returned: the ledger never fails a run."""
        check_run_id(run_id)
        _check_changes(changes)
        if self._write([{"op": "update", "run_id": run_id, "changes": changes}]):
            return self._known.get(run_id)
        known = self._known.get(run_id)
        return replace(known, **changes) if known else None

    def _update(self, run_id: str, changes: dict, table) -> RunRecord | None:
        partition, row = run_partition(run_id), run_row_key(run_id)
        for _ in range(CONFLICT_LIMIT):
            try:
                entity = table.get_entity(partition, row)
            except ResourceNotFoundError:
                return None
            record = replace(_from_entity(RunRecord, entity), **changes)
            try:
                table.update_entity(_run_entity(record), mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                                    match_condition=MatchConditions.IfNotModified)
                return record
            except ResourceModifiedError:
                self.conflicts += 1  # another writer changed the row since we read it: read again
                log.debug("ledger: run %s changed under us, re-reading", run_id)
        raise ResourceModifiedError(f"run {run_id}: {CONFLICT_LIMIT} conflicting writes in a row")

    def _apply(self, group: list[dict], retries: int | None = None) -> bool:
        """One update, or upserts into one table partition (one transaction). False: the run to
        update is not in the ledger."""
        op = group[0]
        if op["op"] == "upsert":
            self._write_call(op["table"], lambda t: _upsert(t, [o["entity"] for o in group]), retries)
            return True
        record = self._write_call(RUNS, lambda t: self._update(op["run_id"], op["changes"], t), retries)
        if record is None:
            self._known.pop(op["run_id"], None)
            log.warning("ledger: run %s is not in the ledger; update of %s not recorded",
                        op["run_id"], ", ".join(sorted(op["changes"])))
            return False
        self._known[record.run_id] = record
        return True

    def _apply_all(self, ops: list[dict], retries: int | None = None) -> tuple[int, list[dict], AzureError | None]:
        """Apply ops in order. Returns how many landed, and the ops left (with the error) once the
        ledger turned out unreachable. A write the ledger refuses is logged and skipped: it never would land."""
        landed, groups = 0, list(_groups(ops))
        for n, group in enumerate(groups):
            try:
                landed += len(group) if self._apply(group, retries) else 0
            except AzureError as e:
                if _unavailable(e):
                    return landed, [op for g in groups[n:] for op in g], e
                log.error("ledger: the ledger at %s refused a write to %s (%s): not recorded",
                          self.where, group[0].get("table", RUNS), _reason(e))
        return landed, [], None

    def _write(self, ops: list[dict]) -> bool:
        """Apply ops now, or keep them in the spool; True unless they were spooled."""
        if self._spool_pending():
            self.flush_spool()
            if self._spool_pending():  # still down: queue behind the older writes, keeping their order
                self._spool(ops, "earlier writes are still waiting in the spool")
                return False
        _, rest, error = self._apply_all(ops)
        if rest:
            self._spool(rest, f"the ledger at {self.where} is unreachable ({_reason(error)})")
        return not rest

    # --- the spool --------------------------------------------------------------------------------------

    def _spool_pending(self) -> bool:
        try:
            return self.spool_path.stat().st_size > 0
        except FileNotFoundError:
            return False

    @contextmanager
    def _locked_spool(self) -> Iterator:
        """The spool file, locked against other threads and processes (flock is per open file)."""
        import fcntl

        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.spool_path.touch(mode=0o600, exist_ok=True)
        with open(self.spool_path, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield f
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _spool(self, ops: list[dict], why: str) -> None:
        with self._locked_spool() as f:
            f.seek(0, 2)
            f.write(_spool_lines(ops))
        log.warning("ledger: %s; %d write(s) kept in %s, replayed by the next haymaker command",
                    why, len(ops), self.spool_path)

    def flush_spool(self) -> int:
        """Replay spooled writes in order, one attempt each; stop at the first the ledger still
        cannot take and keep it and the rest. Returns how many landed."""
        if not self._spool_pending():
            return 0
        with self._locked_spool() as f:
            ops = []
            for n, line in enumerate(f.read().splitlines()):
                if not line.strip():
                    continue
                try:
                    ops.append(_decode(json.loads(line)))
                except ValueError:
                    log.error("ledger: %s line %d is not a write, dropped: %.80s", self.spool_path, n + 1, line)
            landed, rest, _ = self._apply_all(ops, retries=0)  # one quick try: the next command flushes again
            f.seek(0)
            f.truncate()
            f.write(_spool_lines(rest))
        if landed:
            log.info("ledger: %d spooled write(s) landed, %d still waiting", landed, len(rest))
        return landed

    # --- reads -----------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        entity = self._read(RUNS, lambda t: t.get_entity(run_partition(run_id), run_row_key(run_id)))
        return None if entity is None else _from_entity(RunRecord, entity)

    def list_runs(self, *, days: int | None = None, status: str | None = None, limit: int | None = None,
                  now: datetime | None = None) -> list[RunRecord]:
        """Newest first: month partitions from now's back, stopping once ``limit`` runs are found.
        With ``days``, runs started in the last ``days`` days; without, all runs."""
        check_days(days)
        check_limit(limit)
        check_status(status)
        now = _utc(now)
        since = now - timedelta(days=days) if days else None
        runs: list[RunRecord] = []
        for partition in self._months(now, since):
            want = None if limit is None else limit - len(runs)
            runs += [_from_entity(RunRecord, e) for e in self._query_runs(partition, since, now, status, want)]
            if limit is not None and len(runs) >= limit:
                break
        return runs

    def _months(self, now: datetime, since: datetime | None) -> Iterator[str]:
        if since is not None:
            yield from month_partitions(now, since)
            return
        yield f"{now:%Y%m}"
        oldest = self._read(RUNS, lambda t: next(iter(t.list_entities(results_per_page=1, select=["PartitionKey"])),
                                                 None))  # the first row of the table is the oldest month's
        if oldest is not None and oldest["PartitionKey"] < f"{now:%Y%m}":
            yield from month_partitions(now, datetime.strptime(oldest["PartitionKey"], "%Y%m"))[1:]

    def _query_runs(self, partition: str, since: datetime | None, until: datetime, status: str | None,
                    limit: int | None, select: list[str] | None = None) -> list:
        """Runs rows of one month started in [since, until], newest first."""
        query = ["PartitionKey eq @pk", "RowKey ge @newest"]
        params = {"pk": partition, "newest": _inverted(until)}
        if since is not None:  # RowKeys of runs started at or after `since` are below since's inverted minute + 1
            query.append("RowKey lt @oldest")
            params["oldest"] = f"{int(_inverted(since)) + 1:012d}"
        if status is not None:
            query.append("status eq @status")
            params["status"] = status
        page = min(limit, PAGE) if limit else None
        return self._read(RUNS, lambda t: list(islice(t.query_entities(
            " and ".join(query), parameters=params, results_per_page=page, select=select), limit)), [])

    def list_agents(self, run_id: str | None = None, *, now: datetime | None = None,
                    days: int = 30) -> list[AgentRecord]:
        """One run's agents (one partition), or, without run_id, the agents of every run started in
        the last ``days`` days (one PartitionKey range: run ids sort by time), newest run first."""
        if run_id is not None:
            check_run_id(run_id)
            query, params = "PartitionKey eq @pk", {"pk": run_id}
        else:
            check_days(days)
            now = _utc(now)
            query = "PartitionKey ge @since and PartitionKey lt @until"
            params = {"since": _id_prefix(now - timedelta(days=days)), "until": _id_prefix(now) + "."}  # '.' > '-'
        agents = self._read(AGENTS, lambda t: [_from_entity(AgentRecord, e) for e in
                                               t.query_entities(query, parameters=params, results_per_page=PAGE)], [])
        agents.sort(key=lambda a: a.scenario)
        agents.sort(key=lambda a: a.run_id, reverse=True)
        return agents

    def list_events(self, run_id: str) -> list[dict]:
        """A run's events, oldest first: ``{kind, at, data}``."""
        check_run_id(run_id)
        return self._read(EVENTS, lambda t: [_event_from_entity(e) for e in t.query_entities(
            "PartitionKey eq @pk", parameters={"pk": run_id}, results_per_page=PAGE)], [])

    def metrics(self, days: int, now: datetime | None = None) -> dict:
        """Figures over the runs started in the last ``days`` days. Reads only those months' runs
        partitions, at once (they are independent), and only their summary column."""
        check_days(days)
        now = _utc(now)
        since = now - timedelta(days=days)
        months = month_partitions(now, since)
        from concurrent.futures import ThreadPoolExecutor  # here: only metrics needs it, and commands start faster

        with ThreadPoolExecutor(max_workers=len(months)) as pool:
            parts = list(pool.map(lambda m: self._query_runs(m, since, now, None, None, ["summary"]), months))
        return summarize([json.loads(row["summary"]) for part in parts for row in part], days=days, now=now)


def _groups(ops: list[dict]) -> Iterator[list[dict]]:
    """Consecutive upserts into one table partition, at most BATCH, go together; an update goes alone."""
    group, key = [], None
    for op in ops:
        op_key = (op["table"], op["entity"]["PartitionKey"]) if op["op"] == "upsert" else None
        if group and (op_key is None or op_key != key or len(group) == BATCH):
            yield group
            group = []
        group.append(op)
        key = op_key
    if group:
        yield group


def _upsert(table, entities: list[dict]) -> None:
    if len(entities) == 1:
        table.upsert_entity(entities[0], mode=UpdateMode.REPLACE)
    else:
        table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entities])


def _utc(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInput("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc)


def summarize(runs: list[dict], *, days: int, now: datetime) -> dict:
    """Metrics of runs (``run_summary`` dicts, newest first). Success rate = verified / finished
    runs; duration = ended_at - started_at of the runs that ended."""
    statuses = [r["status"] for r in runs]
    finished = sum(s in FINISHED for s in statuses)
    succeeded = sum(s in SUCCEEDED for s in statuses)
    hours = [r["hours"] for r in runs if r["hours"] is not None]
    deploys = [r["deploy_seconds"] for r in runs if r["deploy_seconds"] is not None]
    coverages = [r["truth_coverage"] for r in runs if r.get("truth_coverage") is not None]  # older rows lack it
    counts: dict[str, int] = {}
    for r in runs:
        for name in r["scenarios"]:
            counts[name] = counts.get(name, 0) + 1
    by_status = {s: n for s in STATUSES if (n := statuses.count(s))}
    return {
        "days": days, "since": iso(now - timedelta(days=days)), "until": iso(now),
        "runs": len(runs), "by_status": by_status, "finished": finished, "succeeded": succeeded,
        "success_rate": round(succeeded / finished, 4) if finished else None,
        "average_duration_hours": round(sum(hours) / len(hours), 2) if hours else None,
        "average_deploy_seconds": round(sum(deploys) / len(deploys), 1) if deploys else None,
        "average_coverage": round(sum(coverages) / len(coverages), 4) if coverages else None,
        "runs_with_answer_key": len(coverages),
        "scenarios_executed": sum(counts.values()),
        "most_executed": [{"scenario": name, "runs": n}
                          for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]],
        **{name: sum(r[name] for r in runs)
           for name in ("resources_created", "resources_cleaned", "resources_orphaned")},
        "cost_estimate_usd": round(sum(r["cost_estimate_usd"] for r in runs), 2),
        "last_runs": [{"run_id": r["run_id"], "status": r["status"], "started_at": r["started_at"],
                       "scenarios": len(r["scenarios"]), "cost_estimate_usd": r["cost_estimate_usd"]}
                      for r in runs[:5]],
    }
