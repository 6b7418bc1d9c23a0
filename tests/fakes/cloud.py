"""All the stand-ins of one test session, on one certificate, and how to point HayMaker at them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.fakes.arm import FakeArm
from tests.fakes.graph import FakeGraph
from tests.fakes.loganalytics import FakeLogAnalytics
from tests.fakes.login import FakeGitHubOidc, FakeLogin
from tests.fakes.server import FakeServer, Service
from tests.fakes.tls import Certificates, make_certificates

SUBSCRIPTION_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "72f988bf-0000-4000-8000-000000000001"
DEPLOYER_CLIENT_ID = "0d1e2f3a-0000-4000-8000-00000000d3p1"
ADMIN_UNIT_ID = "a0a0a0a0-0000-4000-8000-0000000000a0"  # HayMaker's administrative unit, created once by a person
GITHUB_SUBJECT = "repo:haymaker/haymaker:environment:dev"
WORKSPACE_ID = "5f1b2c3d-0000-4000-8000-00000000a11a"  # the workspace's customer id (a GUID)
WORKSPACE_RESOURCE_ID = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/haymaker-dev-platform/providers/"
                         "Microsoft.OperationalInsights/workspaces/haymaker-dev-logs")


class StandInTime:
    """The stand-ins' clock: real time plus whatever the test skipped. Services measure lags, long operations
    and quota windows in it, so a lifecycle whose sleeps advance it (``sleep``) waits minutes in no time."""

    def __init__(self):
        self._skipped = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return time.monotonic() + self._skipped

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self._skipped)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._skipped += max(seconds, 0.0)

    def reset(self) -> None:
        self._skipped = 0.0

    def clock(self):
        """A lifecycle Clock on this time."""
        from haymaker.lifecycle import Clock

        return Clock(now=self.now, sleep=self.sleep, monotonic=self.monotonic)


@dataclass
class FakeCloud:
    certificates: Certificates
    arm: FakeArm
    graph: FakeGraph
    login: FakeLogin
    github_oidc: FakeGitHubOidc
    log_analytics: FakeLogAnalytics
    servers: list[FakeServer] = field(default_factory=list)
    time: StandInTime = field(default_factory=StandInTime)

    @classmethod
    def start(cls, directory: Path) -> "FakeCloud":
        certificates = make_certificates(directory)
        cloud = cls(certificates, FakeArm(SUBSCRIPTION_ID, TENANT_ID), FakeGraph(), FakeLogin(TENANT_ID),
                    FakeGitHubOidc(GITHUB_SUBJECT), FakeLogAnalytics(WORKSPACE_ID, WORKSPACE_RESOURCE_ID))
        for service in cloud.services:
            service.time = cloud.time
            cloud.servers.append(FakeServer(service, certificates).start())
        return cloud

    @property
    def services(self) -> list[Service]:
        return [self.arm, self.graph, self.login, self.github_oidc, self.log_analytics]

    @property
    def ca_file(self) -> str:
        return str(self.certificates.ca_file)

    def endpoints(self):
        from haymaker.azure import Endpoints

        return Endpoints(arm=self.arm.base_url, graph=self.graph.base_url, login=self.login.base_url,
                         log_analytics=self.log_analytics.base_url)

    def reset(self) -> None:
        self.time.reset()
        for service in self.services:
            service.reset()
        self.trust_deployer()

    def trust_deployer(self) -> None:
        """The run deployer signs in with GitHub's OIDC token (no secret) and holds its Graph permission;
        what a test adds to the directory without an owner is the deployer's (it made the agents' apps)."""
        self.login.federated[DEPLOYER_CLIENT_ID] = GITHUB_SUBJECT
        self.login.roles[(DEPLOYER_CLIENT_ID, self.graph.base_url)] = ["Application.ReadWrite.OwnedBy",
                                                                       "Application.Read.All"]
        self.graph.default_owner = DEPLOYER_CLIENT_ID
        self.graph.units.setdefault(ADMIN_UNIT_ID, set())
        self.arm.default_creator = DEPLOYER_CLIENT_ID  # what a test adds to ARM, Pulumi made as the deployer

    def borrowable_identity(self, client_id: str, graph_permissions: list[str], unit_role: bool = True) -> None:
        """A platform Graph identity: it trusts the deployer's GitHub subject and holds its scenario's roles;
        one that creates groups is Groups Administrator of HayMaker's unit (the documented one-time human step)."""
        self.login.federated[client_id] = GITHUB_SUBJECT
        self.login.roles[(client_id, self.graph.base_url)] = list(graph_permissions)
        if unit_role and "Group.Create" in graph_permissions:
            self.graph.unit_roles.setdefault(client_id, set()).add(ADMIN_UNIT_ID)

    def github_actions_env(self) -> dict[str, str]:
        """What a GitHub Actions job with `id-token: write` and the repository's variables has."""
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.github_oidc.base_url}/_apis/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": FakeGitHubOidc.request_token,
                "AZURE_CLIENT_ID": DEPLOYER_CLIENT_ID, "AZURE_TENANT_ID": TENANT_ID,
                "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID}

    def haymaker_env(self) -> dict[str, str]:
        """Settings that point the `haymaker` command at the stand-ins (the sovereign-cloud seam)."""
        return {"HAYMAKER_ARM_ENDPOINT": self.arm.base_url, "HAYMAKER_GRAPH_ENDPOINT": self.graph.base_url,
                "AZURE_AUTHORITY_HOST": self.login.base_url, "REQUESTS_CA_BUNDLE": self.ca_file,
                "HAYMAKER_LOG_ANALYTICS_ENDPOINT": self.log_analytics.base_url,
                "HAYMAKER_LOG_ANALYTICS_WORKSPACE": WORKSPACE_RESOURCE_ID}

    def unlisted_requests(self) -> list[str]:
        """Requests the stand-ins answered that no row of the permission table (haymaker/permissions.py)
        covers for the identity that sent them: each is an operation the platform may not have granted."""
        from haymaker.permissions import DEPLOYER, GRAPH_IDENTITY, match_request
        from tests.fakes.login import claims_of

        out = []
        for api, service in (("arm", self.arm), ("graph", self.graph)):
            for seen in service.requests:
                if seen.path.startswith("/_stand-in/"):  # the stand-ins' clock, not a service call
                    continue
                token = seen.headers.get("authorization", " ").split(" ", 1)[1]
                appid = claims_of(token).get("appid") if token.count(".") == 2 else None
                principal = DEPLOYER if appid in (DEPLOYER_CLIENT_ID, None) else GRAPH_IDENTITY
                object_id = next((p for p in reversed(seen.path.split("/")) if p in self.graph.kind_of), "")
                kind = {"groups": "group", "applications": "application",
                        "servicePrincipals": "application"}.get(self.graph.kind_of.get(object_id, ""))
                if match_request(seen.method, seen.path, principal=principal, api=api, objects=kind) is None:
                    out.append(f"{principal} {seen.method} {api}{seen.path}")
        return sorted(set(out))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
