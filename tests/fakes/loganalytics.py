"""The Log Analytics query API as azure-monitor-query's ``LogsQueryClient`` calls it.

``POST /v1/workspaces/{workspaceId}/query`` (``query_workspace``) and ``POST /v1/{resourceId}/query``
(``query_resource``, here the workspace's ARM id), body ``{"query", "timespan"}``. The answer is the
documented shape (azure-rest-api-specs, operationalinsights data-plane v1 examples):
``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[…]]}]}``; with an
``error`` object next to the tables when the result is partial (``PartialError``: the client turns it into
a ``LogsQueryPartialResult``); 403 ``InsufficientAccessError`` for a caller without access; 400
``BadArgumentError`` with an inner ``SyntaxError``/``SemanticError`` for a query it cannot evaluate
(tests/fakes/kql.py is the subset it understands), including a table the workspace does not have; 404
``PathNotFoundError`` for another workspace.

The limits of https://learn.microsoft.com/azure/azure-monitor/service-limits ("Log Analytics workspaces:
Query API", and "User query throttling" from azure-docs includes/azure-monitor-limits-log-queries.md):

- a result is cut at 500,000 records or about 100 MiB, and the answer is partial (a narrower window cures it);
- ``partial_failure``: a partial answer that no narrower window cures (the service can also fail part of
  a query for reasons of its own; the exact wording of such failures is not documented, so the message
  here is this stand-in's and the client must not depend on it);
- 200 queries per 30 s per user (by the token's object id), over all workspaces; past it a 429
  ``ThrottledError``. Whether the real 429 carries Retry-After is not documented: ``retry_after`` picks.
  The 5-queries-at-once limit and its queue are not modelled (this stand-in answers one at a time).

Three tables, with the columns the real ones have: ``ContainerAppConsoleLogs_CL`` as a Container Apps
environment with the ``log-analytics`` destination writes it (custom-log columns with ``_s`` suffixes;
a job's lines carry ``ContainerJobName_s``; JSON lines stay whole in ``Log_s`` because
``dynamicJsonColumns`` is off), ``AzureActivity`` as the subscription diagnostic setting fills it, and
``AuditLogs`` as the tenant's Entra diagnostic setting fills it (present only while that setting sends
it: ``audit_logs`` False models a tenant where nobody did the one-time step).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone

from tests.fakes.kql import KqlError, Table, run
from tests.fakes.login import claims_of
from tests.fakes.server import Reply, Request, Service

CONSOLE_LOGS = "ContainerAppConsoleLogs_CL"
ACTIVITY = "AzureActivity"
AUDIT = "AuditLogs"
ROW_LIMIT = 500_000  # what one query returns at most before the result is cut (the API's documented limit)
BYTE_LIMIT = 100 * 1024 * 1024  # "~104 MB (~100 MiB)" of data returned per query
QUERY_RATE = (200, 30.0)  # queries per seconds, per user

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
# azure-reference-other, azure-monitor-ref/tables/includes/auditlogs-include.md
AUDIT_COLUMNS = {
    "AADOperationType": "string", "AADTenantId": "string", "ActivityDateTime": "datetime",
    "ActivityDisplayName": "string", "AdditionalDetails": "dynamic", "Category": "string", "CorrelationId": "string",
    "DurationMs": "long", "Id": "string", "Identity": "string", "InitiatedBy": "dynamic", "Level": "string",
    "Location": "string", "LoggedByService": "string", "OperationName": "string", "OperationVersion": "string",
    "Resource": "string", "ResourceGroup": "string", "ResourceId": "string", "ResourceProvider": "string",
    "Result": "string", "ResultDescription": "string", "ResultReason": "string", "ResultSignature": "string",
    "ResultType": "string", "SourceSystem": "string", "TargetResources": "dynamic", "TimeGenerated": "datetime",
    "Type": "string",
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
        self.tables = {CONSOLE_LOGS: Table(CONSOLE_COLUMNS, []), ACTIVITY: Table(ACTIVITY_COLUMNS, []),
                       AUDIT: Table(AUDIT_COLUMNS, [])}
        self.row_limit = ROW_LIMIT
        self.byte_limit = BYTE_LIMIT
        self.partial_failure: str | None = None  # a partial answer no narrower window cures
        self.audit_logs = True  # the tenant's Entra diagnostic setting sends AuditLogs here
        self.rate = QUERY_RATE
        self.retry_after = True  # a 429 says how long to wait
        self.clock = time.monotonic  # the rate limit's clock (seconds)
        self._sent: dict[str, deque] = {}  # per user: when its recent queries were accepted
        self.throttled = 0  # 429s answered
        self.denied: set[str] = set()  # application ids refused with 403 InsufficientAccessError
        self.queries: list[dict] = []  # {"query", "timespan"} as received
        self.now = lambda: datetime.now(timezone.utc)
        # A configured tenant has audit records already: the Privileged Role Administrator's grants of the
        # Graph identities' app roles, made after the diagnostic setting (docs/operations.md orders them so).
        self.add_audit(at=self.now() - timedelta(days=1), activity="Add app role assignment to service principal",
                       user="admin@contoso.example", target_type="ServicePrincipal", target_name="haymaker-graph")

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

    def add_audit(self, **fields) -> dict:
        row = audit_event(**fields)
        self.tables[AUDIT].rows.append(row)
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
        busy = self._over_rate(claims.get("oid") or claims.get("appid") or "")
        if busy is not None:
            return busy
        body = r.json() or {}
        self.queries.append({"query": body.get("query", ""), "timespan": body.get("timespan")})
        try:
            window = _timespan(body.get("timespan"), self.now())
        except ValueError:
            return query_error(400, "BadArgumentError", "The request had some invalid properties",
                               {"code": "InvalidTimespan", "message": f"timespan {body.get('timespan')!r}"})

        def in_window(_table: str, row: dict) -> bool:
            return window is None or window[0] <= row["TimeGenerated"] <= window[1]

        tables = {k: v for k, v in self.tables.items() if k != AUDIT or self.audit_logs}
        try:
            columns, rows = run(body.get("query", ""), tables, in_window)
        except KqlError as e:
            inner_code = "SEM0100" if e.code == "SemanticError" else "SYN0002"
            return query_error(400, "BadArgumentError", "The request had some invalid properties",
                               {"code": e.code, "message": e.message,
                                "innererror": {"code": inner_code, "message": e.detail}})
        cells = [[_cell(v, t) for v, (_, t) in zip(row, columns)] for row in rows]
        cut = None
        if len(cells) > self.row_limit:
            cells, cut = cells[:self.row_limit], f"record count limit {self.row_limit} records"
        size = 0
        for n, row in enumerate(cells):
            size += len(json.dumps(row))
            if size > self.byte_limit:
                cells, cut = cells[:n], f"data size limit {self.byte_limit} bytes"
                break
        answer = {"tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns],
                              "rows": cells}]}
        if cut:
            answer["error"] = partial_error(f"Query result set has exceeded the internal {cut}")
        elif self.partial_failure:
            answer["tables"][0]["rows"] = cells[:len(cells) // 2]  # the part that did arrive
            answer["error"] = partial_error(self.partial_failure)
        return Reply(200, answer)

    def _over_rate(self, user: str) -> Reply | None:
        """A 429 when ``user`` sent ``rate`` queries in the last window; a throttled query does not count."""
        limit, window = self.rate
        now = self.clock()
        sent = self._sent.setdefault(user, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) < limit:
            sent.append(now)
            return None
        self.throttled += 1
        reply = query_error(429, "ThrottledError", f"Your request was throttled: more than {limit} queries in "
                                                   f"{window:.0f} seconds by this user")
        if self.retry_after:
            reply.headers["Retry-After"] = str(max(1, round(sent[0] + window - now + 0.5)))
        return reply


def partial_error(message: str) -> dict:
    return {"code": "PartialError", "message": "There were some errors when processing your query.",
            "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the server.",
                         "innererror": {"code": "-2133196797", "message": message, "severity": 2,
                                        "severityName": "Error"}}]}


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



AUDIT_OPERATION_TYPES = (("Add", "Add"), ("Update", "Update"), ("Delete", "Delete"), ("Remove", "Delete"),
                         ("Restore", "Restore"), ("Hard", "Delete"))
AUDIT_CATEGORIES = (("application", "ApplicationManagement"), ("service principal", "ApplicationManagement"),
                    ("group", "GroupManagement"), ("user", "UserManagement"), ("role", "RoleManagement"))


def audit_event(*, at: datetime, activity: str, app_id: str = "", service_principal_id: str = "",
                app_name: str = "", user: str = "", target_type: str = "", target_name: str = "",
                target_id: str | None = None, result: str = "success", correlation_id: str | None = None,
                delay: timedelta = timedelta(minutes=2)) -> dict:
    """One Entra audit record the way the tenant's diagnostic setting writes it into ``AuditLogs``: the
    activity in ``ActivityDisplayName`` (and ``OperationName``), who did it in ``InitiatedBy`` (``app``:
    appId, displayName, servicePrincipalId, as Graph's directoryAudit initiatedBy holds it; or ``user``),
    what it changed in ``TargetResources``; logged by Core Directory. ``TimeGenerated`` follows
    ``ActivityDateTime`` by ``delay``."""
    kind = next((t for word, t in AUDIT_OPERATION_TYPES if activity.startswith(word)), "Other")
    category = next((c for word, c in AUDIT_CATEGORIES if word in activity.lower()), "Other")
    if user:
        initiated = {"user": {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, user)), "displayName": None,
                              "userPrincipalName": user, "ipAddress": "20.105.0.17", "roles": []}}
    else:
        initiated = {"app": {"appId": app_id, "displayName": app_name or None,
                             "servicePrincipalId": service_principal_id, "servicePrincipalName": None}}
    targets = [{"id": target_id or str(uuid.uuid4()), "displayName": target_name or None, "type": target_type,
                "modifiedProperties": [], "administrativeUnits": []}]
    correlation = correlation_id or str(uuid.uuid4())
    return {
        "AADOperationType": kind, "AADTenantId": "72f988bf-0000-4000-8000-000000000001", "ActivityDateTime": at,
        "ActivityDisplayName": activity, "AdditionalDetails": [{"key": "User-Agent", "value": "python/3.11 "
                                                                "(azure-cli)"}],
        "Category": category, "CorrelationId": correlation, "DurationMs": 0,
        "Id": f"Directory_{correlation}_{uuid.uuid4().hex[:5].upper()}_{uuid.uuid4().int % 10**9}",
        "Identity": user or app_name or app_id, "InitiatedBy": initiated, "Level": "4", "Location": "",
        "LoggedByService": "Core Directory", "OperationName": activity, "OperationVersion": "1.0", "Resource":
        "Microsoft.aadiam", "ResourceGroup": "Microsoft.aadiam", "ResourceId": "/tenants/72f988bf-0000-4000-8000-"
        "000000000001/providers/Microsoft.aadiam", "ResourceProvider": "", "Result": result,
        "ResultDescription": "", "ResultReason": "", "ResultSignature": "None", "ResultType": "",
        "SourceSystem": "Azure AD", "TargetResources": targets, "TimeGenerated": at + delay, "Type": AUDIT,
    }
