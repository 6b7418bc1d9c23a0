"""haymaker/loganalytics.py with the real azure-monitor-query client against the Log Analytics stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
