"""Queries to the platform's Log Analytics workspace, with azure-monitor-query's LogsQueryClient.

The workspace is named by its ARM id (the platform stack's ``logAnalyticsWorkspaceId`` output; a
resource-centric query) or by its workspace id (a GUID). One query returns at most 500,000 rows; past
that Log Analytics answers with a *partial* result. ``rows`` then halves the time range and asks
again, down to a few minutes, so a long run is read whole or the caller is told exactly what is missing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from haymaker.errors import HayMakerError, InvalidInput
from haymaker.runspec import iso

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
WORKSPACE_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                          r"Microsoft\.OperationalInsights/workspaces/[^/]+$", re.I)
MIN_SPAN = timedelta(minutes=5)  # the narrowest window a partial result is split down to
CLIENT_OPTIONS = {"retry_total": 3, "connection_timeout": 10, "read_timeout": 180}


class LogAnalyticsError(HayMakerError):
    """The workspace could not be read: the message says why and what to change."""


@dataclass
class Rows:
    rows: list[dict] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # what Log Analytics said about rows it left out


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


class LogAnalytics:
    def __init__(self, workspace: str, credential, endpoint: str = "https://api.loganalytics.io", **options):
        from azure.monitor.query import LogsQueryClient

        self.workspace = check_workspace(workspace)
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self._client = LogsQueryClient(credential, endpoint=self.endpoint, **{**CLIENT_OPTIONS, **options})

    @classmethod
    def from_config(cls, config, env=None) -> "LogAnalytics":
        from haymaker.cloud import Endpoints, azure_credential

        workspace = check_workspace(config.get("log_analytics_workspace"))
        endpoints = Endpoints.from_config(config)
        return cls(workspace, azure_credential(endpoints, env), endpoints.log_analytics)

    def query(self, kql: str, start: datetime, end: datetime) -> tuple[list[dict], str | None]:
        """One query over [start, end]: its rows (column name -> value) and, when the answer is partial,
        what Log Analytics said."""
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

    def rows(self, build: Callable[[datetime, datetime], str], start: datetime, end: datetime) -> Rows:
        """All rows of ``build(start, end)``, splitting the window while Log Analytics answers partially."""
        out = Rows()
        windows = [(start, end)]
        while windows:
            low, high = windows.pop(0)
            rows, note = self.query(build(low, high), low, high)
            if note is None:
                out.rows += rows
            elif high - low > MIN_SPAN:
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
            return LogAnalyticsError(f"Log Analytics could not run the query (400 {said})")
        return LogAnalyticsError(f"Log Analytics did not answer ({status} {said}): try again in a few minutes")
