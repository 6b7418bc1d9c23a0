"""Role definitions as Resource Manager answers them ("Role Definitions - Get By Id",
https://learn.microsoft.com/rest/api/authorization/role-definitions/get-by-id, api 2022-04-01): built-in
roles by their fixed GUIDs (components/roles.py) and the custom roles a person created. A mixin of the ARM
stand-in (tests/fakes/arm.py); read-only, as HayMaker only reads them (doctor: which role the deployer holds).
"""

from __future__ import annotations


class RoleDefinitions:
    """Mixed into FakeArm: ``route_role_definitions()`` in its constructor, ``custom_roles`` with its state."""

    def route_role_definitions(self) -> None:
        self.route("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Authorization/roleDefinitions/(?P<id>[^/]+)",
                   self._role_definition)

    def reset_role_definitions(self) -> None:
        self.custom_roles: dict[str, str] = {}  # GUID -> name of a custom role a person created

    def _role_definition(self, r):
        from components.roles import BUILTIN_ROLES
        from tests.fakes.server import Reply, error

        guid = r.params["id"].lower()
        builtin = next((role.name for role in BUILTIN_ROLES.values() if role.guid == guid), None)
        name = builtin or self.custom_roles.get(guid)
        if name is None:
            return error(404, "RoleDefinitionDoesNotExist", "The specified role definition with ID "
                                                              f"'{r.params['id']}' does not exist.")
        return Reply(200, {"id": r.path, "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
                           "properties": {"roleName": name, "type": "BuiltInRole" if builtin else "CustomRole",
                                          "description": "", "assignableScopes": ["/"], "permissions": []}})
