"""The Log Analytics query API as azure-monitor-query's ``LogsQueryClient`` calls it.

``POST /v1/workspaces/{workspaceId}/query`` (``query_workspace``) and ``POST /v1/{resourceId}/query``
(``query_resource``, here the workspace's ARM id), body ``{"query", "timespan"}``. The answer is the
documented shape (azure-rest-api-specs, operationalinsights data-plane v1 examples):
``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[…]]}]}``; with an
``error`` object next to the tables when the result is partial (``PartialError``, as when a result
passes the row limit: the client turns it into a ``LogsQueryPartialResult``); 403
``InsufficientAccessError`` for a caller without access; 400 ``BadArgumentError`` with an inner
``SyntaxError``/``SemanticError`` for a query it cannot evaluate (tests/fakes/kql.py is the subset it
understands); 404 ``PathNotFoundError`` for another workspace.

Two tables, with the columns the real ones have: ``ContainerAppConsoleLogs_CL`` as a Container Apps
environment with the ``log-analytics`` destination writes it (custom-log columns with ``_s`` suffixes;
a job's lines carry ``ContainerJobName_s``; JSON lines stay whole in ``Log_s`` because
``dynamicJsonColumns`` is off), and ``AzureActivity`` as the subscription diagnostic setting fills it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

from tests.fakes.kql import KqlError, Table, run
from tests.fakes.login import claims_of
from tests.fakes.server import Reply, Request, Service

CONSOLE_LOGS = "ContainerAppConsoleLogs_CL"
ACTIVITY = "AzureActivity"
ROW_LIMIT = 500_000  # what one query returns at most before the result is cut (the API's documented limit)

CONSOLE_COLUMNS = {
    "TenantId": "string", "SourceSystem": "string", "TimeGenerated": "datetime", "ContainerAppName_s": "string",
    "ContainerJobName_s": "string", "ContainerGroupName_s": "string", "ContainerGroupId_g": "guid",
    "ContainerName_s": "string", "ContainerImage_s": "string", "ContainerId_s": "string",
    "EnvironmentName_s": "string", "RevisionName_s": "string", "Stream_s": "string", "Log_s": "string",
    "Type": "string", "_ResourceId": "string",
}
# azure-reference-other, azure-monitor-ref/tables/includes/azureactivity-include.md
ACTIVITY_COLUMNS = {
    "TenantId": "string", "SourceSystem": "string", "CallerIpAddress": "string", "CategoryValue": "string",
    "CorrelationId": "string", "Authorization": "string", "Authorization_d": "dynamic", "Claims": "string",
    "Claims_d": "dynamic", "Level": "string", "OperationNameValue": "string", "Properties": "string",
    "Properties_d": "dynamic", "Caller": "string", "EventDataId": "string", "EventSubmissionTimestamp": "datetime",
    "HTTPRequest": "string", "OperationId": "string", "ResourceGroup": "string", "ResourceProviderValue": "string",
    "ActivityStatusValue": "string", "ActivitySubstatusValue": "string", "Hierarchy": "string",
    "TimeGenerated": "datetime", "SubscriptionId": "string", "OperationName": "string", "ActivityStatus": "string",
    "ActivitySubstatus": "string", "Category": "string", "ResourceId": "string", "ResourceProvider": "string",
    "Resource": "string", "Type": "string", "_ResourceId": "string",
}
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_SUBSTATUS = {"Start": "", "Accept": "Accepted (HTTP Status Code: 202)", "Success": "OK (HTTP Status Code: 200)",
              "Failure": "BadRequest (HTTP Status Code: 400)"}


def query_error(status: int, code: str, message: str, inner: dict | None = None) -> Reply:
    error = {"message": message, "code": code, "correlationId": str(uuid.uuid4())}
    if inner:
        error["innererror"] = inner
    return Reply(status, {"error": error})


def _kusto_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # 7 digits, as Kusto writes them


def _cell(value, kind: str):
    if value is None:
        return None
    if kind == "datetime":
        return _kusto_time(value)
    if kind == "dynamic":
        return value if isinstance(value, str) else json.dumps(value)
    return value


def _timespan(value: str | None, now: datetime) -> tuple[datetime, datetime] | None:
    """ISO-8601 interval as the client sends it: ``start/end``, ``start/PT…S`` or ``PT…S`` (ending now)."""
    if not value:
        return None

    def duration(text: str) -> timedelta:
        m = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", text)
        if not m:
            raise ValueError(text)
        return timedelta(seconds=float(m.group(1)))

    def moment(text: str) -> datetime:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    if "/" not in value:
        return now - duration(value), now
    first, second = value.split("/", 1)
    start = moment(first)
    return start, (start + duration(second)) if second.startswith("P") else moment(second)


class FakeLogAnalytics(Service):
    name = "log-analytics"

    def __init__(self, workspace_id: str, workspace_resource_id: str):
        super().__init__()
        self.workspace_id = workspace_id
        self.workspace_resource_id = workspace_resource_id
        self.reset_state()
        self.route("POST", r"/v1/workspaces/(?P<workspace>[^/]+)/query", self._query_workspace)
        self.route("POST", r"/v1/+(?P<resource>subscriptions/.+)/query", self._query_resource)

    def reset_state(self) -> None:
        self.tables = {CONSOLE_LOGS: Table(CONSOLE_COLUMNS, []), ACTIVITY: Table(ACTIVITY_COLUMNS, [])}
        self.row_limit = ROW_LIMIT
        self.denied: set[str] = set()  # application ids refused with 403 InsufficientAccessError
        self.queries: list[dict] = []  # {"query", "timespan"} as received
        self.now = lambda: datetime.now(timezone.utc)

    def reset(self) -> None:
        super().reset()
        self.reset_state()

    # --- data -----------------------------------------------------------------------------------------

    def add_console_line(self, job: str, line: dict | str, at: datetime, *, execution: str | None = None,
                         stream: str = "stdout") -> None:
        execution = execution or f"{job}-x1a2b3c"
        self.tables[CONSOLE_LOGS].rows.append({
            "TenantId": self.workspace_id, "SourceSystem": "RestAPI", "TimeGenerated": at, "ContainerAppName_s": "",
            "ContainerJobName_s": job, "ContainerGroupName_s": f"{execution}-9xk2p",
            "ContainerGroupId_g": str(uuid.uuid5(uuid.NAMESPACE_URL, execution)), "ContainerName_s": job,
            "ContainerImage_s": "haymakeracr.azurecr.io/haymaker-agent@sha256:" + "0" * 64,
            "ContainerId_s": "containerd://" + uuid.uuid5(uuid.NAMESPACE_DNS, execution).hex * 2,
            "EnvironmentName_s": "haymaker-dev", "RevisionName_s": "", "Stream_s": stream,
            "Log_s": line if isinstance(line, str) else json.dumps(line), "Type": CONSOLE_LOGS,
            "_ResourceId": self.workspace_resource_id.lower(),
        })

    def add_activity(self, **fields) -> dict:
        row = activity_event(**fields)
        row["TenantId"] = self.workspace_id
        self.tables[ACTIVITY].rows.append(row)
        return row

    # --- the API --------------------------------------------------------------------------------------

    def _query_workspace(self, r: Request) -> Reply:
        if r.params["workspace"].lower() != self.workspace_id.lower():
            return query_error(404, "PathNotFoundError", "The requested path does not exist")
        return self._query(r)

    def _query_resource(self, r: Request) -> Reply:
        if "/" + r.params["resource"].lower() != self.workspace_resource_id.lower():
            return query_error(404, "PathNotFoundError", "The requested path does not exist")
        return self._query(r)

    def _query(self, r: Request) -> Reply:
        claims = claims_of(r.headers["authorization"].split(" ", 1)[1])
        if claims.get("aud", "").rstrip("/") != self.base_url:
            return query_error(401, "InvalidAuthenticationTokenAudience",
                               f"The access token has an invalid audience: {claims.get('aud')!r}")
        if claims.get("appid") in self.denied:
            return query_error(403, "InsufficientAccessError",
                               "The provided credentials have insufficient access to perform the requested operation")
        body = r.json() or {}
        self.queries.append({"query": body.get("query", ""), "timespan": body.get("timespan")})
        try:
            window = _timespan(body.get("timespan"), self.now())
        except ValueError:
            return query_error(400, "BadArgumentError", "The request had some invalid properties",
                               {"code": "InvalidTimespan", "message": f"timespan {body.get('timespan')!r}"})

        def in_window(_table: str, row: dict) -> bool:
            return window is None or window[0] <= row["TimeGenerated"] <= window[1]

        try:
            columns, rows = run(body.get("query", ""), self.tables, in_window)
        except KqlError as e:
            inner_code = "SEM0100" if e.code == "SemanticError" else "SYN0002"
            return query_error(400, "BadArgumentError", "The request had some invalid properties",
                               {"code": e.code, "message": e.message,
                                "innererror": {"code": inner_code, "message": e.detail}})
        answer = {"tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns],
                              "rows": [[_cell(v, t) for v, (_, t) in zip(row, columns)]
                                       for row in rows[:self.row_limit]]}]}
        if len(rows) > self.row_limit:
            answer["error"] = {
                "code": "PartialError", "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the "
                             "server.", "innererror": {"code": "-2133196797", "message": "Query result set has "
                             f"exceeded the internal record count limit {self.row_limit} records",
                             "severity": 2, "severityName": "Error"}}]}
        return Reply(200, answer)


def activity_event(*, at: datetime, operation: str, status: str, caller: str, app_id: str = "", resource_id: str,
                   correlation_id: str | None = None, subscription_id: str = "", level: str | None = None,
                   category: str = "Administrative") -> dict:
    """One Activity Log record the way the diagnostic setting writes it into ``AzureActivity``:
    ``OperationNameValue`` as ARM logs it, ``ResourceGroup`` upper-case, ``_ResourceId`` lower-case,
    ``Caller`` the object id of a service principal or managed identity, its token's claims in ``Claims_d``.
    Azure Policy's evaluation of a request is recorded with the request's caller and correlation id, in
    category ``Policy``."""
    parts = resource_id.split("/")
    group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    provider = parts[6] if len(parts) > 6 else "Microsoft.Resources"
    subscription = subscription_id or (parts[2] if len(parts) > 2 else "")
    correlation = correlation_id or str(uuid.uuid4())
    claims = {"aud": "https://management.azure.com/", "appid": app_id, "appidacr": "1", "idtyp": "app",
              OBJECT_ID_CLAIM: caller, "http://schemas.microsoft.com/identity/claims/tenantid": str(uuid.uuid4())}
    authorization = {"action": operation, "scope": resource_id}
    method = "DELETE" if operation.lower().endswith("/delete") else "POST" if operation.lower().endswith(
        "/action") else "PUT"
    properties = {"eventCategory": category, "entity": resource_id, "message": operation,
                  "hierarchy": f"{uuid.uuid4()}/{subscription}"}
    if status == "Failure":
        properties["statusCode"] = "BadRequest"
    return {
        "SourceSystem": "Azure", "CallerIpAddress": "20.105.0.17", "CategoryValue": category,
        "CorrelationId": correlation, "Authorization": json.dumps(authorization), "Authorization_d": authorization,
        "Claims": json.dumps(claims), "Claims_d": claims, "Level": level or ("Error" if status == "Failure"
                                                                              else "Informational"),
        "OperationNameValue": operation, "Properties": json.dumps(properties), "Properties_d": properties,
        "Caller": caller, "EventDataId": str(uuid.uuid4()), "EventSubmissionTimestamp": at + timedelta(seconds=12),
        "HTTPRequest": json.dumps({"clientRequestId": str(uuid.uuid4()), "clientIpAddress": "20.105.0.17",
                                   "method": method}),
        "OperationId": str(uuid.uuid4()), "ResourceGroup": group.upper(), "ResourceProviderValue": provider.upper(),
        "ActivityStatusValue": status, "ActivitySubstatusValue": _SUBSTATUS.get(status, ""), "Hierarchy": "",
        "TimeGenerated": at, "SubscriptionId": subscription, "OperationName": operation, "ActivityStatus": status,
        "ActivitySubstatus": "", "Category": category, "ResourceId": resource_id, "ResourceProvider": provider,
        "Resource": parts[-1] if parts else "", "Type": ACTIVITY, "_ResourceId": resource_id.lower(),
    }

