"""Queries to the platform's Log Analytics workspace, with azure-monitor-query's LogsQueryClient.

The workspace is named by its ARM id (the platform stack's ``logAnalyticsWorkspaceId`` output; a
resource-centric query) or by its workspace id (a GUID).

Two documented limits shape the reads (https://learn.microsoft.com/azure/azure-monitor/service-limits,
"Log Analytics workspaces: Query API" and "User query throttling"):

- One query returns at most 500,000 records and about 100 MiB; past that the answer is *partial*. Only
  that kind of partial answer is cured by a narrower window, so ``rows`` halves the time range for it,
  down to MIN_SPAN and within MAX_QUERIES per read. Any other partial answer, and a window that cannot
  be narrowed further, is reported as partial with the rows that did arrive: never asked again.
- A user may send 200 queries per 30 s (and run 5 at once; this client sends one at a time). The
  client paces itself under that rate and waits out a 429 (Retry-After when given, else the 30 s
  window) up to THROTTLE_WAIT per read; past that it says it was throttled.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Callable

from haymaker.errors import HayMakerError, InvalidInput
from haymaker.runspec import iso

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
WORKSPACE_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                          r"Microsoft\.OperationalInsights/workspaces/[^/]+$", re.I)
MIN_SPAN = timedelta(minutes=5)  # the narrowest window a cut answer is split down to
MAX_QUERIES = 64  # queries one read may send, splits included
QUERY_RATE = (200, 30.0)  # queries per seconds, per user (documented)
THROTTLE_WAIT = 120.0  # seconds one read waits out 429s at most
# The answer was cut because it passed the record or size limit: a narrower window returns less.
CUT = re.compile(r"exceeded the internal (record count|data size) limit|E_QUERY_RESULT_SET_TOO_LARGE", re.I)
UNKNOWN_NAME = re.compile(r"Failed to resolve table or column expression named '([^']+)'")
CLIENT_OPTIONS = {"retry_total": 3, "connection_timeout": 10, "read_timeout": 180}


class LogAnalyticsError(HayMakerError):
    """The workspace could not be read: the message says why and what to change."""


class Throttled(LogAnalyticsError):
    """Log Analytics kept answering 429 past the wait a read allows."""


class UnknownName(LogAnalyticsError):
    """The query names a table (or column) the workspace does not have: ``name``. A table exists once
    something was sent to it, so for a table this means nothing ever was."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


@dataclass
class Rows:
    rows: list[dict] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # what Log Analytics said about rows it left out
    queries: int = 0


@dataclass
class Clock:
    """Monotonic seconds and a sleep; tests replace it to pace without waiting."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class Pace:
    """At most ``limit`` queries in any ``window`` seconds (a sliding window, as the limit is stated)."""

    def __init__(self, clock: Clock, limit: int = QUERY_RATE[0], window: float = QUERY_RATE[1]):
        self.clock, self.limit, self.window = clock, limit, window
        self.sent: deque[float] = deque()

    def wait(self) -> float:
        """Sleep until one more query fits; returns the seconds slept."""
        now = self.clock.now()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        slept = 0.0
        if len(self.sent) >= self.limit:
            slept = self.sent[0] + self.window - now
            self.clock.sleep(slept)
            self.sent.popleft()
        self.sent.append(self.clock.now())
        return slept


def check_workspace(value: str | None) -> str:
    if not value:
        raise InvalidInput("no Log Analytics workspace configured: set HAYMAKER_LOG_ANALYTICS_WORKSPACE to the "
                           "platform stack's logAnalyticsWorkspaceId output (`pulumi stack output "
                           "logAnalyticsWorkspaceId --stack <env>`) or to the workspace id (a GUID)")
    value = value.strip().rstrip("/")
    if not (GUID.match(value) or WORKSPACE_ID.match(value)):
        raise InvalidInput(f"HAYMAKER_LOG_ANALYTICS_WORKSPACE {value!r} is neither a workspace's ARM id "
                           "(/subscriptions/…/providers/Microsoft.OperationalInsights/workspaces/<name>) nor a "
                           "workspace id (a GUID)")
    return value


def quote(value: str) -> str:
    """A KQL string literal (Kusto reads JSON's escapes; other characters stay as they are)."""
    return json.dumps(str(value), ensure_ascii=False)


def kql_time(t: datetime) -> str:
    return f"datetime({iso(t)})"


def _body(error) -> dict:
    try:
        return (json.loads(error.response.text()) or {}).get("error") or {}
    except (AttributeError, ValueError, TypeError):
        return {}


def _innermost(error: dict) -> str:
    """``code: message`` of the error and its inner errors, innermost last (where Kusto says what is wrong)."""
    parts, node = [], error
    while isinstance(node, dict) and node:
        text = ": ".join(x for x in (node.get("code"), node.get("message")) if x)
        if text:
            parts.append(text)
        node = node.get("innererror")
    return "; ".join(parts)


def retry_after(headers) -> float | None:
    """Retry-After in seconds (a number or an HTTP date); None when absent or unreadable."""
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import timezone

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _retry_policy(**options):
    from azure.core.pipeline.policies import RetryPolicy

    class NotOn429(RetryPolicy):
        """azure-core waits out any Retry-After, however long; 429s are left to ``LogAnalytics`` to bound."""

        def is_retry(self, settings, response):
            return response.http_response.status_code != 429 and super().is_retry(settings, response)

    return NotOn429(**options)


class LogAnalytics:
    def __init__(self, workspace: str, credential, endpoint: str = "https://api.loganalytics.io", *,
                 clock: Clock | None = None, **options):
        from azure.monitor.query import LogsQueryClient

        self.workspace = check_workspace(workspace)
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self.clock = clock or Clock()
        self.pace = Pace(self.clock)  # one per client: `logs --follow` and `truth --due` reuse it
        self.throttled = 0.0  # seconds spent waiting out 429s, over the client's life
        options = {**CLIENT_OPTIONS, **options}
        self._client = LogsQueryClient(credential, endpoint=self.endpoint, retry_policy=_retry_policy(**options),
                                       **options)

    @classmethod
    def from_config(cls, config, env=None) -> "LogAnalytics":
        from haymaker.cloud import Endpoints, azure_credential

        workspace = check_workspace(config.get("log_analytics_workspace"))
        endpoints = Endpoints.from_config(config)
        return cls(workspace, azure_credential(endpoints, env), endpoints.log_analytics)

    def query(self, kql: str, start: datetime, end: datetime, *, wait: float = THROTTLE_WAIT
              ) -> tuple[list[dict], str | None]:
        """One query over [start, end]: its rows (column name -> value) and, when the answer is partial,
        what Log Analytics said. A 429 is waited out up to ``wait`` seconds."""
        waited = 0.0
        while True:
            self.pace.wait()
            try:
                return self._send(kql, start, end)
            except _Busy as busy:
                pause = busy.after if busy.after is not None else QUERY_RATE[1]
                if waited + pause > wait:
                    raise Throttled(
                        f"Log Analytics throttled the queries of this identity (429 {busy.said}) and "
                        f"{waited:.0f} s of waiting did not end it: its documented limit is {QUERY_RATE[0]} "
                        f"queries per {QUERY_RATE[1]:.0f} s and 5 at once per user, shared by everything that "
                        f"queries as it; try again in {max(pause, 1):.0f} s") from None
                self.clock.sleep(pause)
                waited += pause
                self.throttled += pause

    def _send(self, kql: str, start: datetime, end: datetime) -> tuple[list[dict], str | None]:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError
        from azure.monitor.query import LogsQueryPartialResult

        try:
            if GUID.match(self.workspace):
                result = self._client.query_workspace(self.workspace, kql, timespan=(start, end))
            else:
                result = self._client.query_resource(self.workspace, kql, timespan=(start, end))
        except HttpResponseError as e:
            if not self._answered(e):  # the credential got no token: nothing reached Log Analytics
                from haymaker.cloud import token_failure

                raise token_failure("Log Analytics", e, self.credential) from None
            if getattr(e, "status_code", None) == 429:
                raise _Busy(retry_after(getattr(e.response, "headers", None)),
                            _innermost(_body(e)) or "Too Many Requests") from None
            raise self._refused(e) from None
        except ServiceRequestError as e:
            raise LogAnalyticsError(f"cannot reach Log Analytics at {self.endpoint}: {str(e).splitlines()[0]}: "
                                    "check the network and HAYMAKER_LOG_ANALYTICS_ENDPOINT") from None
        if isinstance(result, LogsQueryPartialResult):
            tables, error = result.partial_data or [], result.partial_error
            note = "; ".join(x for x in (getattr(error, "code", ""), getattr(error, "message", "")) if x)
            details = getattr(error, "details", None) or []
            # Details are dicts or the client's models (mappings too): the innermost message says what happened.
            inner = [(d.get("innererror") or {}).get("message") or d.get("message") for d in details if hasattr(d, "get")]
            note = "; ".join([note, *filter(None, inner)])
        else:
            tables, note = result.tables, None
        rows = [dict(zip(table.columns, row)) for table in tables[:1] for row in table.rows]
        return rows, note

    def rows(self, build: Callable[[datetime, datetime], str], start: datetime, end: datetime, *,
             max_queries: int = MAX_QUERIES) -> Rows:
        """All rows of ``build(start, end)``. A window whose answer was cut at the size limits is split in
        halves and asked again, while it is wider than MIN_SPAN and the read has queries left; any other
        partial answer is kept as it came (its rows, and the note in ``partial``)."""
        out = Rows()
        windows = [(start, end)]
        throttled = self.throttled
        while windows:
            low, high = windows.pop(0)
            if out.queries >= max_queries:
                out.partial.append(f"{iso(low)} to {iso(high)}: not read: one read sends at most {max_queries} "
                                   "queries (narrow the window)")
                continue
            # The wait for 429s is allowed once per read, not once per query.
            rows, note = self.query(build(low, high), low, high,
                                    wait=max(0.0, THROTTLE_WAIT - (self.throttled - throttled)))
            out.queries += 1
            if note is None:
                out.rows += rows
            elif CUT.search(note) and high - low > MIN_SPAN and out.queries + 2 <= max_queries:
                middle = low + (high - low) / 2
                # Halves must not share a row: the second starts a microsecond after the first ends.
                windows[:0] = [(low, middle), (middle + timedelta(microseconds=1), high)]
            else:
                out.rows += rows
                out.partial.append(f"{iso(low)} to {iso(high)}: {note}")
        return out

    def _answered(self, e) -> bool:
        """Whether Log Analytics itself answered (the client wraps a credential's failure in the same error)."""
        request = getattr(getattr(e, "response", None), "request", None)
        return request is not None and str(request.url).startswith(self.endpoint)

    def _refused(self, e) -> LogAnalyticsError:
        status = getattr(e, "status_code", None)
        error = _body(e)
        said = _innermost(error) or str(e).strip().splitlines()[0]
        where = f"workspace {self.workspace}"
        if status == 403:
            return LogAnalyticsError(f"Log Analytics refused the query on {where} (403 {said}): the signed-in identity "
                                     "needs Log Analytics Reader (or Microsoft.OperationalInsights/workspaces/query/"
                                     "*/read) on it")
        if status == 401:
            return LogAnalyticsError(f"Log Analytics did not accept the token (401 {said}): check "
                                     "HAYMAKER_LOG_ANALYTICS_ENDPOINT matches the cloud you sign in to")
        if status == 404:
            return LogAnalyticsError(f"Log Analytics has no {where} (404 {said}): set HAYMAKER_LOG_ANALYTICS_WORKSPACE "
                                     "to the platform stack's logAnalyticsWorkspaceId output")
        if status == 400:
            unknown = UNKNOWN_NAME.search(said)
            if unknown:
                return UnknownName(f"Log Analytics could not run the query (400 {said})", unknown.group(1))
            return LogAnalyticsError(f"Log Analytics could not run the query (400 {said})")
        return LogAnalyticsError(f"Log Analytics did not answer ({status} {said}): try again in a few minutes")


class _Busy(Exception):
    """One 429: how long Log Analytics asked to wait (None: it did not say) and what it said."""

    def __init__(self, after: float | None, said: str):
        super().__init__(said)
        self.after, self.said = after, said
