"""Evaluate a Pulumi program under Pulumi's mock runtime and capture what it declares.

This is how `haymaker plan` sees a run without an engine or cloud credentials. The mocks compute
only what the providers would (ids, names, generated object ids); stack transforms are applied
the way the engine applies them, and the dependency graph is taken from the registrations.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from haymaker.errors import HayMakerError
from haymaker.gcpause import paused_gc

MOCK_TENANT_ID = "00000000-0000-0000-0000-00000000aaaa"
MOCK_SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000bbbb"
MOCK_DEPLOYER_OBJECT_ID = "00000000-0000-0000-0000-00000000cccc"
MOCK_GRAPH_SP_OBJECT_ID = "00000000-0000-0000-0000-00000000dddd"
SECRET_MARK = "[secret]"
_NS = uuid.UUID("b3f7c5a2-1d6e-4f3a-8c9b-6861796d6f63")


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def is_secret(value) -> bool:
    return rpc.is_rpc_secret(value)


def secret_leaves(*values) -> set[str]:
    """Every string that is itself a secret (not merely inside a tainted object) in ``values``."""
    found: set[str] = set()

    def walk(v):
        if is_secret(v):
            inner = rpc.unwrap_rpc_secret(v)
            if isinstance(inner, str):
                found.add(inner)
            else:
                walk(inner)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for value in values:
        walk(value)
    return found


def redact(value, secrets: set[str] = frozenset()):
    """Secrets shown as ``[secret]``. A secret scalar is replaced; a secret object (Pulumi taints the
    whole object that holds a secret) keeps its shape with each secret string replaced."""
    if is_secret(value):
        inner = rpc.unwrap_rpc_secret(value)
        return redact(inner, secrets) if isinstance(inner, (dict, list)) else SECRET_MARK
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and value in secrets:
        return SECRET_MARK
    return value


def unwrap(value):
    """Plain values with secrets unwrapped, as a policy validator sees them."""
    if is_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


# Platform resource types: (ARM provider path, input holding the physical name).
_PLATFORM_ARM = {
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces", "workspaceName"),
    "azure-native:app:ManagedEnvironment": ("Microsoft.App/managedEnvironments", "environmentName"),
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName"),
    "azure-native:containerregistry:Registry": ("Microsoft.ContainerRegistry/registries", "registryName"),
    "azure-native:managedidentity:UserAssignedIdentity": ("Microsoft.ManagedIdentity/userAssignedIdentities",
                                                          "resourceName"),
}


@dataclass
class Declared:
    """One resource as the engine would receive it: type token, logical name, camelCase inputs."""

    urn: str
    id: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]] = field(repr=False)
    inputs: dict = field(repr=False)
    outputs: dict = field(repr=False)


class PlanMocks(pulumi.runtime.Mocks):
    """The project's one Mocks: provider-computed outputs only, and engine-applied stack transforms."""

    def __init__(self, platform_outputs: dict | None = None):
        self.transforms: list = []
        self.inputs_by_id: dict[str, dict] = {}
        self.platform_outputs = platform_outputs or {}

    def register_transform(self, transform) -> None:
        self.transforms.append(transform)

    def _transformed(self, args: pulumi.runtime.MockResourceArgs) -> dict:
        props = args.inputs
        for transform in self.transforms:
            result = transform(pulumi.ResourceTransformArgs(
                custom=bool(args.custom), type_=args.typ, name=args.name, props=props,
                opts=pulumi.ResourceOptions()))
            if result is not None:
                props = result.props
        return props

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = self._transformed(args)
        computed = self._computed(args.typ, args.name, inputs)
        resource_id = computed.pop("id", None) or f"{args.typ}::{args.name}_id"
        self.inputs_by_id[resource_id] = inputs
        return resource_id, {**inputs, **computed}

    def _computed(self, typ: str, name: str, inputs: dict) -> dict:
        sub = f"/subscriptions/{MOCK_SUBSCRIPTION_ID}"
        if typ == "azure-native:resources:ResourceGroup":
            rg = inputs.get("resourceGroupName") or name
            return {"id": f"{sub}/resourceGroups/{rg}", "name": rg}
        if typ == "azure-native:app:Job":
            job = inputs.get("jobName") or name
            computed = {"id": f"{sub}/resourceGroups/{inputs.get('resourceGroupName')}/providers/Microsoft.App/jobs/{job}",
                        "name": job, "provisioningState": "Succeeded"}
            identity = inputs.get("identity")
            if isinstance(identity, dict) and identity.get("userAssignedIdentities"):
                # ARM answers the identity list with a map id -> {principalId, clientId}
                computed["identity"] = {**identity, "userAssignedIdentities": {
                    i: {"principalId": _guid(i, "principal"), "clientId": _guid(i, "client")}
                    for i in identity["userAssignedIdentities"]}}
            return computed
        if typ == "azure-native:authorization:RoleAssignment":
            ra = inputs.get("roleAssignmentName") or _guid(typ, name)
            return {"id": f"{inputs.get('scope')}/providers/Microsoft.Authorization/roleAssignments/{ra}", "name": ra}
        if typ == "azuread:index/application:Application":
            object_id = _guid(typ, name, "object")
            return {"id": f"/applications/{object_id}", "objectId": object_id, "clientId": _guid(typ, name, "client")}
        if typ == "azuread:index/servicePrincipal:ServicePrincipal":
            object_id = _guid(typ, name, "object")
            return {"id": f"/servicePrincipals/{object_id}", "objectId": object_id}
        if typ == "azuread:index/applicationPassword:ApplicationPassword":
            key_id = _guid(typ, name, "key")
            return {"id": f"{inputs.get('applicationId')}/password/{key_id}", "keyId": key_id,
                    "value": rpc.wrap_rpc_secret(f"mock-credential-{key_id[:8]}")}
        if typ == "azuread:index/appRoleAssignment:AppRoleAssignment":
            return {"id": f"/servicePrincipals/{inputs.get('resourceObjectId')}/appRoleAssignedTo/{_guid(typ, name)}"}
        if typ == "azure-native:monitor:SubscriptionDiagnosticSetting":  # scoped to the provider's subscription
            setting = inputs.get("name") or name
            return {"id": f"{sub}/providers/Microsoft.Insights/diagnosticSettings/{setting}", "name": setting}
        if typ == "pulumi:pulumi:StackReference":
            return {"outputs": self.platform_outputs}
        if typ in _PLATFORM_ARM:  # platform resources: ARM ids and what the provider computes
            provider, key = _PLATFORM_ARM[typ]
            rname = inputs.get(key) or name
            computed = {"id": f"{sub}/resourceGroups/{inputs.get('resourceGroupName')}/providers/{provider}/{rname}",
                        "name": rname}
            if typ == "azure-native:storage:StorageAccount":
                computed["primaryEndpoints"] = {s: f"https://{rname}.{s}.core.windows.net/"
                                                for s in ("blob", "table", "queue", "file")}
            elif typ == "azure-native:operationalinsights:Workspace":
                computed["customerId"] = _guid(typ, name, "customer")
            elif typ == "azure-native:containerregistry:Registry":
                computed["loginServer"] = f"{rname.lower()}.azurecr.io"
            elif typ == "azure-native:managedidentity:UserAssignedIdentity":
                computed.update(principalId=_guid(typ, name, "principal"), clientId=_guid(typ, name, "client"))
            return computed
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "azure-native:authorization:getClientConfig":
            return {"clientId": _guid("deployer", "client"), "objectId": MOCK_DEPLOYER_OBJECT_ID,
                    "subscriptionId": MOCK_SUBSCRIPTION_ID, "tenantId": MOCK_TENANT_ID}
        if args.token == "azure-native:operationalinsights:getSharedKeys":
            return {"primarySharedKey": f"mock-workspace-key-{_guid(str(args.args.get('workspaceName')))[:8]}"}
        if args.token == "azuread:index/getServicePrincipal:getServicePrincipal":
            return {"objectId": MOCK_GRAPH_SP_OBJECT_ID, "clientId": args.args.get("clientId"),
                    "displayName": "Microsoft Graph", "appRoleIds": {}}
        return {}


class RecordingMonitor(MockMonitor):
    """Mock monitor that also keeps each registration's parent and dependencies."""

    def __init__(self, mocks: PlanMocks):
        super().__init__(mocks)
        self.declared: dict[str, Declared] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources.get(response.urn)
        inputs = self.mocks.inputs_by_id.get(response.id, {}) if request.custom else {}
        record = Declared(
            urn=response.urn, id=response.id, type=request.type, name=request.name, custom=bool(request.custom),
            parent=request.parent, dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            inputs=inputs,
            outputs=registration.state if registration else {},
        )
        with self._lock:
            self.declared[response.urn] = record
        return response


def evaluate(program, *, project: str, stack: str, platform_outputs: dict | None = None):
    """Run ``program()`` under mocks; return (declared resources in order, resolved program result)."""
    mocks = PlanMocks(platform_outputs)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    result: dict = {}

    def body():
        return pulumi.Output.from_input(program()).apply(lambda value: result.update(value=value))

    with paused_gc():
        try:
            pulumi.runtime.test(body)()
        except HayMakerError as e:
            _quiet_copies(e)
            raise
    return list(monitor.declared.values()), result.get("value")


def _quiet_copies(raised: Exception) -> None:
    """The engine hands an error raised in the program to several futures; the caller reports it once, so
    the copies nobody awaits must not print tracebacks ("Future exception was never retrieved") at exit."""
    import asyncio

    loop = asyncio.get_event_loop()
    previous = loop.get_exception_handler()

    def handler(loop, context):
        seen = context.get("exception")
        if seen is raised or (type(seen) is type(raised) and str(seen) == str(raised)):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
