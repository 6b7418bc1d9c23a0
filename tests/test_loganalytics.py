"""haymaker/loganalytics.py with the real azure-monitor-query client against the Log Analytics stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from haymaker.cloud import AzureAuthError, azure_credential
from haymaker.errors import InvalidInput
from haymaker.loganalytics import LogAnalytics, LogAnalyticsError, check_workspace
from haymaker.permissions import match_request
from tests.fakes.cloud import DEPLOYER_CLIENT_ID, WORKSPACE_ID, WORKSPACE_RESOURCE_ID
from tests.fakes.login import aad_error
from tests.fakes.server import Reply

T = datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc)
WINDOW = (T - timedelta(hours=1), T + timedelta(hours=1))


def client(cloud, workspace=WORKSPACE_RESOURCE_ID) -> LogAnalytics:
    return LogAnalytics(workspace, azure_credential(cloud.endpoints(), cloud.github_actions_env()),
                        cloud.log_analytics.base_url)


@pytest.fixture
def activity(fake_cloud):
    la = fake_cloud.log_analytics
    la.add_activity(at=T, operation="MICROSOFT.NETWORK/VIRTUALNETWORKS/WRITE", status="Start", caller="oid-a",
                    app_id="app-a", resource_id="/subscriptions/s/resourceGroups/rg-a/providers/Microsoft.Network/"
                                                "virtualNetworks/v1")
    la.add_activity(at=T + timedelta(minutes=1), operation="Microsoft.Web/sites/write", status="Success",
                    caller="oid-b", app_id="app-b", resource_id="/subscriptions/s/resourceGroups/rg-b/providers/"
                                                                "Microsoft.Web/sites/w1")
    return la


@pytest.mark.parametrize("workspace", [WORKSPACE_ID, WORKSPACE_RESOURCE_ID])
def test_both_workspace_forms_answer_with_typed_rows(fake_cloud, activity, workspace):
    rows, partial = client(fake_cloud, workspace).query(
        "AzureActivity | extend AppId = tostring(Claims_d.appid) | where AppId in~ ('APP-A') "
        "| project TimeGenerated, OperationNameValue, ResourceGroup, AppId", *WINDOW)
    assert partial is None
    assert rows == [{"TimeGenerated": T, "OperationNameValue": "MICROSOFT.NETWORK/VIRTUALNETWORKS/WRITE",
                     "ResourceGroup": "RG-A", "AppId": "app-a"}]
    (seen,) = fake_cloud.log_analytics.seen("POST")
    path = f"/v1/workspaces/{WORKSPACE_ID}/query" if workspace == WORKSPACE_ID else f"/v1{WORKSPACE_RESOURCE_ID}/query"
    assert seen.path == path and seen.status == 200
    assert match_request("POST", seen.path).key == "logs.query"  # the permission table knows this request
    # The token was asked for the Log Analytics endpoint's own scope, so it works in any cloud.
    assert fake_cloud.login.issued[-1]["aud"] == fake_cloud.log_analytics.base_url
    assert fake_cloud.log_analytics.queries[-1]["timespan"] == "2026-11-21T05:00:00.000Z/2026-11-21T07:00:00.000Z"


def test_kusto_semantics_the_queries_rely_on(fake_cloud, activity):
    la = client(fake_cloud)

    def names(where: str, order: str = "") -> list[str]:
        rows, _ = la.query(f"AzureActivity | where {where} | project Resource, TimeGenerated{order}", *WINDOW)
        return [r["Resource"] for r in rows]

    assert names("ResourceGroup in ('rg-a')") == []  # `in` is case-sensitive, `in~` is not
    assert names("ResourceGroup in~ ('rg-a')") == ["v1"]
    assert names("OperationNameValue =~ 'microsoft.web/sites/write'") == ["w1"]
    assert names("_ResourceId has 'sites'") == ["w1"] and names("_ResourceId has 'site'") == []  # whole terms
    assert names("_ResourceId contains 'site'") == ["w1"]
    assert names(f"TimeGenerated between (datetime({T.isoformat()}) .. datetime({T.isoformat()}))") == ["v1"]
    assert names("Caller == 'oid-a' or Caller == 'oid-b'", " | order by TimeGenerated") == ["w1", "v1"]  # desc
    assert names("Caller == 'oid-a' or Caller == 'oid-b'", " | order by TimeGenerated asc") == ["v1", "w1"]


@pytest.mark.parametrize("query, said", [
    ("AzureActivity | summarize count() by Caller", "operator 'summarize' is outside the stand-in's KQL subset"),
    ("AzureActivity | where NoSuchColumn == 'x'", "Failed to resolve scalar expression named 'NoSuchColumn'"),
    ("NoSuchTable | take 1", "Failed to resolve table or column expression named 'NoSuchTable'"),
    ("AzureActivity | where ago(1h) < TimeGenerated", "function ago() is outside the stand-in's KQL subset"),
])
def test_a_query_the_stand_in_cannot_evaluate_fails_with_log_analytics_400(fake_cloud, activity, query, said):
    with pytest.raises(LogAnalyticsError, match="could not run the query") as e:
        client(fake_cloud).query(query, *WINDOW)
    assert "400 BadArgumentError" in str(e.value) and said in str(e.value)


def test_an_identity_without_access_is_told_what_role_it_needs(fake_cloud, activity):
    fake_cloud.log_analytics.denied.add(DEPLOYER_CLIENT_ID)
    with pytest.raises(LogAnalyticsError, match="403 InsufficientAccessError.*needs Log Analytics Reader"):
        client(fake_cloud).query("AzureActivity | take 1", *WINDOW)


def test_no_token_names_log_analytics_and_what_to_check(fake_cloud):
    fake_cloud.login.refuse[fake_cloud.log_analytics.base_url] = aad_error(
        700024, "invalid_client", "Client assertion is not within its valid time range.")
    with pytest.raises(AzureAuthError, match="cannot get a token for Log Analytics: .*AADSTS700024.*id-token: write"):
        client(fake_cloud).query("AzureActivity | take 1", *WINDOW)
    assert fake_cloud.log_analytics.seen("POST") == []  # nothing reached the workspace


def test_another_workspace_is_not_found(fake_cloud):
    other = WORKSPACE_RESOURCE_ID.replace("haymaker-dev-logs", "haymaker-prod-logs")
    with pytest.raises(LogAnalyticsError, match="404 PathNotFoundError.*HAYMAKER_LOG_ANALYTICS_WORKSPACE"):
        client(fake_cloud, other).query("AzureActivity | take 1", *WINDOW)


def test_throttling_is_retried_by_the_client(fake_cloud, activity):
    fake_cloud.log_analytics.fail("POST", "/query$", Reply(429, {"error": {"code": "ThrottledError", "message":
                                  "Your request was throttled"}}, {"Retry-After": "1"}))
    rows, _ = client(fake_cloud).query("AzureActivity | project Caller", *WINDOW)
    assert len(rows) == 2 and [s.status for s in fake_cloud.log_analytics.seen("POST")] == [429, 200]


@pytest.mark.parametrize("value", [None, "", "haymaker-dev-logs", "/subscriptions/x/resourceGroups/y"])
def test_the_workspace_setting_is_checked_before_anything_is_sent(value):
    with pytest.raises(InvalidInput, match="HAYMAKER_LOG_ANALYTICS_WORKSPACE"):
        check_workspace(value)


# --- the documented limits: cut answers, partial failures, the per-user query rate ---------------------

class FakeClock:
    """Monotonic seconds shared by the client's pacing and the stand-in's rate limit; sleeping moves it."""

    def __init__(self):
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def clock(fake_cloud, monkeypatch):
    """The client's clock (haymaker.loganalytics.Clock, what it paces and waits with) and the stand-in's."""
    import haymaker.loganalytics

    clock = FakeClock()
    fake_cloud.log_analytics.clock = clock.now
    monkeypatch.setattr(haymaker.loganalytics, "Clock", lambda: SimpleNamespace(now=clock.now, sleep=clock.sleep),
                        raising=False)
    return clock


def paced(cloud, clock) -> LogAnalytics:
    return client(cloud)


def activity_query(low, high):
    return (f"AzureActivity | where TimeGenerated between (datetime({low.isoformat()}) .. "
            f"datetime({high.isoformat()})) | project Caller, TimeGenerated")


OLD = (T - timedelta(days=9), T)  # an old run read to now: a window many times MIN_SPAN wide


def test_a_partial_answer_no_narrower_window_cures_is_reported_with_its_rows_not_asked_again(fake_cloud, activity,
                                                                                           clock):
    la = fake_cloud.log_analytics
    la.add_activity(at=T - timedelta(days=4), operation="Microsoft.Web/sites/write", status="Start", caller="oid-c",
                    resource_id="/subscriptions/s/resourceGroups/rg-c/providers/Microsoft.Web/sites/w2")
    la.partial_failure = "Partial query failure: one storage shard did not answer"
    got = paced(fake_cloud, clock).rows(activity_query, *OLD)
    assert len(la.queries) == 1  # splitting would not have helped: not tried
    assert len(got.rows) == 1  # of 3: what did arrive is kept
    (note,) = got.partial
    assert note.startswith("2026-11-12T06:00:00Z to 2026-11-21T06:00:00Z: PartialError") and "shard" in note
    assert la.throttled == 0


def test_a_cut_answer_is_split_within_the_reads_query_cap(fake_cloud, clock):
    la = fake_cloud.log_analytics
    t = OLD[0]
    while t < OLD[1]:  # two records in every 5 minutes of nine days, and one record fits an answer
        for n in range(2):
            la.add_activity(at=t + timedelta(seconds=n), operation="Microsoft.Web/sites/write", status="Start",
                            caller="oid-d", resource_id="/subscriptions/s/resourceGroups/rg-d/providers/"
                                                        "Microsoft.Web/sites/w3")
        t += timedelta(minutes=5)
    la.row_limit = 1
    got = paced(fake_cloud, clock).rows(activity_query, *OLD)
    assert len(la.queries) == 64 and la.throttled == 0  # MAX_QUERIES, not one per 5 minutes of nine days
    assert got.partial and all("record count limit" in p or "not read: one read sends at most 64 queries" in p
                               for p in got.partial)
    assert len(got.rows) >= 1  # the rows of every window that answered are kept


def test_the_client_paces_itself_under_the_per_user_query_rate(fake_cloud, activity, clock):
    la = paced(fake_cloud, clock)
    for _ in range(230):
        la.query("AzureActivity | project Caller", *WINDOW)
    assert fake_cloud.log_analytics.throttled == 0  # never over 200 queries in 30 s
    assert len(fake_cloud.log_analytics.queries) == 230 and clock.sleeps and sum(clock.sleeps) <= 30


@pytest.mark.parametrize("retry_after, waited", [("7", [7.0]), (None, [30.0])], ids=["retry-after", "no-header"])
def test_a_429_is_waited_out(fake_cloud, activity, clock, retry_after, waited):
    throttled = Reply(429, {"error": {"code": "ThrottledError", "message": "Your request was throttled"}},
                      {"Retry-After": retry_after} if retry_after else {})
    fake_cloud.log_analytics.fail("POST", "/query$", throttled)
    rows, _ = paced(fake_cloud, clock).query("AzureActivity | project Caller", *WINDOW)
    assert len(rows) == 2 and clock.sleeps == waited  # the 30 s of the documented rate when it does not say


def test_throttling_past_the_bound_is_named_and_not_waited_for(fake_cloud, activity, clock):
    from haymaker.loganalytics import Throttled

    fake_cloud.log_analytics.fail("POST", "/query$", Reply(429, {"error": {
        "code": "ThrottledError", "message": "Your request was throttled"}}, {"Retry-After": "600"}), times=5)
    with pytest.raises(Throttled, match=r"throttled the queries of this identity \(429 ThrottledError.*200 queries "
                                        r"per 30 s.*try again in 600 s"):
        paced(fake_cloud, clock).query("AzureActivity | project Caller", *WINDOW)
    assert clock.sleeps == []
