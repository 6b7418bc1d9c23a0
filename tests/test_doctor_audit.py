"""`doctor` verifies, read-only, the one-time step that sends the tenant's Entra audit logs to the platform's
workspace (docs/operations.md, "Entra audit logs"): by its effect, recent records in the AuditLogs table,
read with the rights `truth` has. The real command against the stand-ins (tests/test_online_e2e.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.fakes.cloud import WORKSPACE_RESOURCE_ID
from tests.test_online_e2e import online, run  # noqa: F401 - the fixture

CHECK = "entra audit logs"


def check(capsys) -> tuple[int, dict]:
    code, out, _ = run(capsys, "doctor", "--json")
    return code, {c["name"]: c for c in json.loads(out)["checks"]}[CHECK]


def test_recent_audit_records_in_the_workspace_pass(online, capsys):  # noqa: F811
    code, found = check(capsys)
    assert code == 0 and found["ok"] and found["detail"].startswith("Entra audit logs reach the workspace (latest ")
    assert [q["query"].split("\n")[0] for q in online[0].log_analytics.queries] == ["AuditLogs"]


def test_a_workspace_that_never_received_them_fails_with_the_one_time_step(online, capsys):  # noqa: F811
    online[0].log_analytics.audit_logs = False
    code, found = check(capsys)
    assert code == 1 and not found["ok"]
    assert found["detail"] == ("the workspace has no AuditLogs table: the tenant's Entra audit logs are not sent to it, "
                               "so truth cannot observe the directory plane")
    assert "a Security Administrator (or Global Administrator) adds a diagnostic setting of Microsoft Entra ID " \
           f"(microsoft.aadiam/diagnosticSettings) that sends AuditLogs to {WORKSPACE_RESOURCE_ID}" in found["fix"]
    assert 'docs/operations.md, "Entra audit logs"' in found["fix"]


def test_a_setting_removed_since_shows_as_a_week_without_records(online, capsys):  # noqa: F811
    la = online[0].log_analytics
    la.tables["AuditLogs"].rows.clear()
    la.add_audit(at=datetime.now(timezone.utc) - timedelta(days=12), activity="Add application",
                 app_id="app-x", service_principal_id="sp-x", target_type="Application", target_name="haymaker-x")
    code, found = check(capsys)
    assert code == 1 and found["detail"].startswith("no Entra audit record reached the workspace in 7 days")


def test_the_workspace_comes_from_the_platform_stack_when_not_configured(online, capsys, monkeypatch):  # noqa: F811
    _, pulumi, _ = online
    monkeypatch.delenv("HAYMAKER_LOG_ANALYTICS_WORKSPACE")
    code, found = check(capsys)
    assert code == 1 and found["fix"].startswith("set HAYMAKER_LOG_ANALYTICS_WORKSPACE")
    outputs = {**pulumi.state["stacks"]["dev"]["outputs"], "logAnalyticsWorkspaceId": WORKSPACE_RESOURCE_ID}
    pulumi.add_stack("dev", {}, outputs=outputs)
    code, found = check(capsys)
    assert code == 0 and found["ok"]
