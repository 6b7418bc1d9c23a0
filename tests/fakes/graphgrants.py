"""What Microsoft Graph answers about the rights a person granted: app role assignments of a service
principal, Microsoft Graph's own service principal by its appId, and an application's federated
identity credentials. A mixin of the Graph stand-in (tests/fakes/graph.py), read-only, as HayMaker only
reads these.

Follows the Graph v1.0 reference: "List appRoleAssignments granted to a service principal"
(https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignments: least privileged
application permission Application.Read.All; the body is a collection of appRoleAssignment with
``principalId``, ``resourceId``, ``appRoleId``, ``resourceDisplayName``); "Get servicePrincipal" by the
``appId`` alternate key (``/servicePrincipals(appId='{appId}')``, Application.Read.All); "List
federatedIdentityCredentials" (https://learn.microsoft.com/graph/api/application-list-federatedidentitycredentials,
Application.Read.All; ``name``, ``issuer``, ``subject``, ``audiences``). A missing object is 404
``Request_ResourceNotFound``; a caller without the permission gets 403 ``Authorization_RequestDenied``.
Graph notes that assignments granted moments ago may not be listed yet (replication); the stand-in
lists them at once.
"""

from __future__ import annotations

import uuid

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
READERS = {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}


class DirectoryGrants:
    """Mixed into FakeGraph: ``route_grants()`` in its constructor, ``reset_grants()`` with its state."""

    def route_grants(self) -> None:
        self.route("GET", r"/v1\.0/servicePrincipals\(appId='(?P<app>[^']+)'\)", self._sp_by_app_id)
        self.route("GET", r"/v1\.0/servicePrincipals/(?P<id>[^/]+)/appRoleAssignments", self._app_role_assignments)
        self.route("GET", r"/v1\.0/applications/(?P<id>[^/]+)/federatedIdentityCredentials", self._federated)

    def reset_grants(self) -> None:
        self.graph_sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "microsoft-graph-service-principal"))
        self.assignments: dict[str, list[dict]] = {}  # service principal id -> its app role assignments
        self.identities: set[str] = set()  # managed identities' service principal ids (Azure makes them)
        self.credentials: dict[str, list[dict]] = {}  # application object id -> its federated credentials

    # what a test sets up (what a person granted) --------------------------------------------------------
    def add_identity(self, principal_id: str) -> None:
        """A managed identity's service principal, which Azure creates with the identity (no rights yet)."""
        self.identities.add(principal_id)

    def grant_app_roles(self, principal_id: str, app_role_ids, resource_id: str | None = None) -> None:
        self.identities.add(principal_id)
        for role in app_role_ids:
            self.assignments.setdefault(principal_id, []).append({
                "id": str(uuid.uuid4()), "appRoleId": role, "principalId": principal_id,
                "principalType": "ServicePrincipal", "resourceId": resource_id or self.graph_sp_id,
                "resourceDisplayName": "Microsoft Graph", "createdDateTime": "2026-11-01T09:00:00Z"})

    def add_federated_credential(self, application_id: str, name: str, subject: str, issuer: str) -> None:
        self.credentials.setdefault(application_id, []).append({
            "id": str(uuid.uuid4()), "name": name, "issuer": issuer, "subject": subject,
            "audiences": ["api://AzureADTokenExchange"], "description": None})

    # handlers ---------------------------------------------------------------------------------------------
    def _reader(self, r) -> bool:
        return bool(self._caller(r)[1] & READERS)

    def _sp_by_app_id(self, r):
        from tests.fakes.graph import DENIED, graph_error
        from tests.fakes.server import Reply

        if not self._reader(r):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        if r.params["app"] != MICROSOFT_GRAPH_APP_ID:
            return self._missing(f"appId={r.params['app']}")
        return Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
                           "id": self.graph_sp_id, "appId": MICROSOFT_GRAPH_APP_ID, "displayName": "Microsoft Graph"})

    def _app_role_assignments(self, r):
        from tests.fakes.graph import DENIED, graph_error
        from tests.fakes.server import Reply

        if not self._reader(r):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        principal = r.params["id"]
        known = principal in self.identities or principal in self.objects["servicePrincipals"]
        if not known:
            return self._missing(principal)
        return Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('"
                                             f"{principal}')/appRoleAssignments",
                           "value": list(self.assignments.get(principal, []))})

    def _federated(self, r):
        from tests.fakes.graph import DENIED, graph_error
        from tests.fakes.server import Reply

        if not self._reader(r):
            return graph_error(403, "Authorization_RequestDenied", DENIED)
        if r.params["id"] not in self.objects["applications"]:
            return self._missing(r.params["id"])
        return Reply(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications('"
                                             f"{r.params['id']}')/federatedIdentityCredentials",
                           "value": list(self.credentials.get(r.params["id"], []))})
