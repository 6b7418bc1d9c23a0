"""What the wire stand-in was taught about particular resource providers, each with the reason: the one
place where tests/wire/standin.py departs from answering every provider alike.

Everything here is a read az needs to get on (a catalogue a create command consults, a child resource
the provider creates with its parent, a property the provider fills in) or the status code an
action's API defines. None of it changes which requests az sends for a step: that is what is measured.
Shapes follow the REST reference of each operation (azure-rest-api-specs, the operation's examples).
"""

from __future__ import annotations

import uuid

from tests.fakes.server import Reply

# Display names ARM gives locations in provider answers; clients compare them without spaces.
LOCATION_NAMES = {"westeurope": "West Europe", "northeurope": "North Europe", "uksouth": "UK South",
                  "swedencentral": "Sweden Central", "germanywestcentral": "Germany West Central",
                  "francecentral": "France Central", "eastus": "East US", "eastus2": "East US 2",
                  "westus2": "West US 2", "centralus": "Central US"}

# Child resources that exist as soon as their parent does: GET answers them without a PUT.
IMPLICIT_CHILDREN = {t.lower(): (props, why) for t, props, why in [
    ("Microsoft.Resources/tags", {"tags": {}}, "every resource has a tags resource (default)"),
    ("Microsoft.Web/sites/config", {}, "an app's configuration (web, appsettings, logs…) exists with the app"),
    ("Microsoft.Web/sites/slots/config", {}, "a slot's configuration exists with the slot"),
    ("Microsoft.Web/sites/basicPublishingCredentialsPolicies", {"allow": True}, "ftp and scm policies exist with the app"),
    ("Microsoft.Web/staticSites/config", {}, "a static site's app settings exist with it"),
    ("Microsoft.Storage/storageAccounts/blobServices", {}, "an account's blob service (default) exists with it"),
    ("Microsoft.Storage/storageAccounts/fileServices", {}, "an account's file service (default) exists with it"),
    ("Microsoft.Storage/storageAccounts/queueServices", {}, "an account's queue service (default) exists with it"),
    ("Microsoft.Storage/storageAccounts/tableServices", {}, "an account's table service (default) exists with it"),
    ("Microsoft.ContainerService/managedClusters/upgradeProfiles",
     {"controlPlaneProfile": {"kubernetesVersion": "1.33.0", "upgrades": [{"kubernetesVersion": "1.34.0"}]},
      "agentPoolProfiles": []}, "a cluster's upgrade profile (default)"),
    ("Microsoft.DBforMySQL/flexibleServers/configurations", {"value": "ON", "source": "system-default"},
     "every server parameter exists with the server"),
    ("Microsoft.DBforPostgreSQL/flexibleServers/configurations", {"value": "on", "source": "system-default"},
     "every server parameter exists with the server"),
    ("Microsoft.RecoveryServices/vaults/backupstorageconfig",
     {"storageModelType": "GeoRedundant", "storageType": "GeoRedundant", "storageTypeState": "Unlocked",
      "crossRegionRestoreFlag": False}, "a vault's storage configuration (vaultstorageconfig) exists with it"),
    ("Microsoft.RecoveryServices/vaults/backupconfig",
     {"storageModelType": "GeoRedundant", "softDeleteFeatureState": "Enabled", "enhancedSecurityState": "Enabled"},
     "a vault's backup configuration (vaultconfig) exists with it"),
    ("Microsoft.Sql/servers/databases", {"status": "Online"}, "every server has its master database"),
    ("Microsoft.BotService/botServices/channels", {"channelName": "WebChatChannel", "properties": {"sites": []}},
     "a bot has its Web Chat channel from the start"),
    ("Microsoft.Web/sites/functions", {"config": {"bindings": [{"type": "httpTrigger", "direction": "in"}]},
                                        "invoke_url_template": "https://app.azurewebsites.net/api/f"},
     "an app's functions come from the code its deployment source put there (not through ARM)"),
]}

# Lists Network returns in a resource's properties, empty or not; a PUT that carries them creates the
# children too (a VNet created with a subnet has that subnet).
INLINE_LISTS = {
    "microsoft.network/networksecuritygroups": ("securityRules", "defaultSecurityRules"),
    "microsoft.network/virtualnetworks": ("subnets", "virtualNetworkPeerings"),
    "microsoft.network/loadbalancers": ("frontendIPConfigurations", "backendAddressPools", "loadBalancingRules",
                                        "probes", "inboundNatRules", "outboundRules"),
    "microsoft.network/applicationgateways": (),
    "microsoft.network/routetables": ("routes",),
    "microsoft.network/routefilters": ("rules",),
    "microsoft.network/connections": ("ipsecPolicies",),
}
INLINE_CHILD_TYPES = {"rules": "routeFilterRules"}  # where the list's name is not the child type's

# What a provider fills in when a create leaves it out, and later commands read: (top-level, properties)
# for a resource of that name.
DEFAULTS = {t.lower(): (fill, why) for t, fill, why in [
    ("Microsoft.DocumentDB/databaseAccounts",
     lambda name: ({}, {"backupPolicy": {"type": "Periodic", "periodicModeProperties": {
         "backupIntervalInMinutes": 240, "backupRetentionIntervalInHours": 8, "backupStorageRedundancy": "Geo"}}}),
     "an account created without a backup policy gets the periodic one"),
    ("Microsoft.Network/routeFilters/routeFilterRules", lambda name: ({}, {"routeFilterRuleType": "Community"}),
     "Community is the only rule type, filled in when omitted"),
    ("Microsoft.ContainerService/managedClusters",
     lambda name: ({}, {"kubernetesVersion": "1.33.0", "currentKubernetesVersion": "1.33.0",
                        "nodeResourceGroup": f"MC_{name}", "powerState": {"code": "Running"}}),
     "the cluster's version and node resource group are chosen by the provider"),
    ("Microsoft.Web/sites",
     lambda name: ({"kind": "app,linux"}, {"state": "Running", "defaultHostName": f"{name}.azurewebsites.net",
                                          "enabled": True, "sku": "Basic", "hostNames": [f"{name}.azurewebsites.net"],
                                          "serverFarmId": "/subscriptions/{subscription}/resourceGroups/{group}/"
                                                          "providers/Microsoft.Web/serverfarms/WestEuropePlan"}),
     "an app has a kind, runs on a plan (a consumption app on the one the provider makes) and has a host name"),
    ("Microsoft.Sql/managedInstances",
     lambda name: ({"sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 4}}, {}),
     "an instance answers the SKU the create resolved"),
    ("Microsoft.Network/applicationGateways",
     lambda name: ({}, {"sslPolicy": {"policyType": "Predefined", "policyName": "AppGwSslPolicy20220101"}}),
     "a gateway created without an SSL policy gets the default predefined one"),
    ("Microsoft.Storage/storageAccounts",
     lambda name: ({}, {"primaryEndpoints": {s: f"https://{name}.{s}.core.windows.net/"
                                             for s in ("blob", "queue", "table", "file", "dfs", "web")},
                        "statusOfPrimary": "available"}),
     "an account has an endpoint per service (functionapp create requires blob, queue and table)"),
    ("Microsoft.RecoveryServices/vaults",
     lambda name: ({}, {"redundancySettings": {"standardTierStorageRedundancy": "GeoRedundant",
                                               "crossRegionRestore": "Disabled"}}),
     "a vault's storage redundancy is set when it is created"),
    ("Microsoft.App/containerApps",
     lambda name: ({}, {"latestRevisionName": f"{name}--0000001", "latestReadyRevisionName": f"{name}--0000001",
                        "runningStatus": "Running",
                        "eventStreamEndpoint": f"https://{name}.logstream.azurecontainerapps.dev/subscriptions/x/eventstream"}),
     "an app runs a first revision once created, with a log stream endpoint (a data plane)"),
]}


def _container_env(body: dict) -> dict:
    ingress = ((body.get("properties") or {}).get("configuration") or {}).get("ingress")
    if isinstance(ingress, dict) and not ingress.get("traffic"):
        ingress["traffic"] = [{"latestRevision": True, "weight": 100}]
        ingress.setdefault("fqdn", f"{body.get('name', 'app')}.stand-in.azurecontainerapps.io")
    for container in ((body.get("properties") or {}).get("template") or {}).get("containers") or []:
        if isinstance(container, dict) and container.get("env") is None:
            container["env"] = []
    return body


def _rule_lists(body: dict) -> dict:
    props = body.setdefault("properties", {})
    for key in ("sourcePortRanges", "destinationPortRanges", "sourceAddressPrefixes", "destinationAddressPrefixes"):
        props.setdefault(key, [])
    return body


def also_created(type_path: str, sent: dict, answered: dict) -> list[tuple[str, dict]]:
    """(resource id, body) of what a provider creates beside a resource: a consumption function app's plan."""
    if type_path.lower() == "microsoft.web/sites" and not (sent.get("properties") or {}).get("serverFarmId"):
        plan = answered["properties"]["serverFarmId"]
        return [(plan, {"name": plan.rsplit("/", 1)[-1], "type": "Microsoft.Web/serverfarms", "kind": "functionapp",
                        "sku": {"name": "Y1", "tier": "Dynamic"}, "properties": {"reserved": False}})]
    return []


# Changes a provider makes to what it was sent before it answers (beyond filling in DEFAULTS).
NORMALISE = {"microsoft.app/containerapps": (_container_env, "a container's env is answered as a list, empty or not; "
                                                             "ingress answers its traffic split (all to the latest)"),
             "microsoft.network/networksecuritygroups/securityrules": (
                 _rule_lists, "a rule answers its plural port and prefix lists, empty or not")}

# Status codes some operations' APIs define instead of the stand-in's usual ones (PUT 200, DELETE 204):
# (type, method) -> (status, why).
STATUS = {(t.lower(), m): (code, why) for t, m, code, why in [
    ("Microsoft.Authorization/policyAssignments", "PUT", 201, "PolicyAssignments Create answers 201 only"),
    ("Microsoft.Web/staticSites", "DELETE", 200, "StaticSites Delete answers 200 or 202, never 204"),
]}

# Providers whose generated clients accept only 202 for a long-running create, update or action (their
# TypeSpec-generated SDKs list no 200): answered 202 with the operation to poll and the resource as Location.
ACCEPTED_ONLY = {"microsoft.dbforpostgresql": "PostgreSQL flexible servers' client accepts only 202 (LRO)"}


def child_resources_of(type_path: str, body: dict) -> list[tuple[str, str, dict]]:
    """(child type, child name, child body) a provider creates from a parent's PUT body."""
    out = []
    if type_path.lower() == "microsoft.containerservice/managedclusters":
        # The cluster's node pools are its agentPools children.
        for pool in (body.get("properties") or {}).get("agentPoolProfiles") or []:
            if isinstance(pool, dict) and pool.get("name"):
                props = {k: v for k, v in pool.items() if k != "name"}
                out.append(("agentPools", pool["name"], {"properties": props}))
    for key in INLINE_LISTS.get(type_path.lower(), ()):
        for item in (body.get("properties") or {}).get(key) or []:
            if isinstance(item, dict) and item.get("name"):
                out.append((INLINE_CHILD_TYPES.get(key, key), item["name"],
                            {k: v for k, v in item.items() if k in {"properties", "name"}}))
    return out


# --- answers to particular requests -------------------------------------------------------------------

def _keys(stand_in, req, m) -> Reply:
    key = "c3RhbmQtaW4ta2V5LW5vdC1hLXNlY3JldA=="  # base64 "stand-in-key-not-a-secret"
    entries = [{"keyName": n, "value": key, "permissions": "FULL"} for n in ("key1", "key2")]
    return Reply(200, {"keys": entries, "key1": key, "key2": key, "primaryKey": key, "secondaryKey": key,
                       "primaryMasterKey": key, "secondaryMasterKey": key, "primaryReadonlyMasterKey": key,
                       "secondaryReadonlyMasterKey": key, "primaryConnectionString": "Endpoint=sb://x/;Key=" + key,
                       "secondaryConnectionString": "Endpoint=sb://x/;Key=" + key, "value": entries})


def _name_available(stand_in, req, m) -> Reply:
    # Most providers answer nameAvailable; Bot Service answers valid.
    return Reply(200, {"nameAvailable": True, "available": True, "valid": True, "reason": None, "message": None})


def _settings_list(stand_in, req, m) -> Reply:
    return Reply(200, {"id": req.path.rsplit("/", 1)[0], "name": m["name"], "properties": {}})


def _publish_profile(stand_in, req, m) -> Reply:
    return Reply(200, '<publishData><publishProfile profileName="app - Web Deploy" publishMethod="MSDeploy" '
                      'publishUrl="app.scm.azurewebsites.net:443" userName="$app" userPWD="stand-in" '
                      'destinationAppUrl="https://app.azurewebsites.net" /></publishData>')


def _web_app_stacks(stand_in, req, m) -> Reply:
    def stack(name, display, major, minor, linux, windows=None, gh="22.x"):
        settings = {"linuxRuntimeSettings": {"runtimeVersion": linux, "isDeprecated": False, "isHidden": False,
                                             "isEarlyAccess": False, "isAutoUpdate": True,
                                             "endOfLifeDate": "2099-01-01T00:00:00Z",
                                             "gitHubActionSettings": {"isSupported": True, "supportedVersion": gh}}}
        if windows:
            settings["windowsRuntimeSettings"] = {**settings["linuxRuntimeSettings"], "runtimeVersion": windows}
        return {"id": None, "name": name, "type": "Microsoft.Web/webAppStacks",
                "properties": {"displayText": display, "value": name, "preferredOs": "linux",
                               "majorVersions": [{"displayText": f"{display} {major}", "value": major,
                                                  "minorVersions": [{"displayText": f"{display} {minor}", "value": minor,
                                                                     "stackSettings": settings}]}]}}
    return Reply(200, {"value": [stack("node", "Node", "22", "22-lts", "NODE|22-lts", "~22"),
                                 stack("python", "Python", "3", "3.12", "PYTHON|3.12", gh="3.12"),
                                 stack("dotnet", ".NET", "10", "10.0", "DOTNETCORE|10.0", "v10.0", gh="10.0.x")]})


def _function_app_stacks(stand_in, req, m) -> Reply:
    settings = {"runtimeVersion": "~22", "isPreview": False, "isDeprecated": False, "isHidden": False,
                "isDefault": True, "endOfLifeDate": "2099-01-01T00:00:00Z", "remoteDebuggingSupported": False,
                "appInsightsSettings": {"isSupported": True}, "supportedFunctionsExtensionVersions": ["~4"],
                "gitHubActionSettings": {"isSupported": True, "supportedVersion": "22.x"},
                "appSettingsDictionary": {"FUNCTIONS_WORKER_RUNTIME": "node", "WEBSITE_NODE_DEFAULT_VERSION": "~22"},
                "siteConfigPropertiesDictionary": {"use32BitWorkerProcess": False}, "Sku": None}
    linux = {**settings, "runtimeVersion": "Node|22", "siteConfigPropertiesDictionary": {"linuxFxVersion": "Node|22"}}
    return Reply(200, {"value": [{"name": "node", "type": "Microsoft.Web/functionAppStacks", "properties": {
        "displayText": "Node.js", "value": "node", "preferredOs": "windows", "majorVersions": [{
            "displayText": "Node.js 22", "value": "22", "minorVersions": [{
                "displayText": "Node.js 22", "value": "22",
                "stackSettings": {"windowsRuntimeSettings": settings, "linuxRuntimeSettings": linux}}]}]}}]})


def _geo_regions(stand_in, req, m) -> Reply:
    name = LOCATION_NAMES.get(stand_in.location, stand_in.location)
    return Reply(200, {"value": [{"id": f"/subscriptions/{stand_in.subscription_id}/providers/Microsoft.Web/geoRegions/{name}",
                                  "name": name, "type": "Microsoft.Web/geoRegions",
                                  "properties": {"name": name, "displayName": name, "orgDomain": "PUBLIC;DSERIES"}}]})


def _image_versions(stand_in, req, m) -> Reply:
    return Reply(200, [{"name": "1.0.20260101", "location": stand_in.location, "id": req.path + "/1.0.20260101"}])


def _image_version(stand_in, req, m) -> Reply:
    windows = "windows" in req.path.lower()
    return Reply(200, {"name": m["version"], "location": stand_in.location, "id": req.path, "properties": {
        "osDiskImage": {"operatingSystem": "Windows" if windows else "Linux"}, "hyperVGeneration": "V2",
        "architecture": "x64", "dataDiskImages": [],
        "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]}})


def _run_command(stand_in, req, m) -> Reply:
    command = str(uuid.uuid4())
    return Reply(202, None, {"Location": f"https://management.azure.com{m['cluster']}/commandResults/{command}"
                                         "?api-version=2025-01-01", "Retry-After": "1"})


def _command_result(stand_in, req, m) -> Reply:
    return Reply(200, {"id": m["id"], "properties": {"provisioningState": "Succeeded", "exitCode": 0,
                                                     "startedAt": "2026-01-01T00:00:00Z",
                                                     "finishedAt": "2026-01-01T00:00:01Z", "logs": "ok\n"}})


def _boot_log_uris(stand_in, req, m) -> Reply:
    # The log itself is a blob on a storage data plane the stand-ins do not serve.
    return Reply(200, {"consoleScreenshotBlobUri": "https://md-stand-in.blob.storage.azure.net/boot/screen.bmp?sv=x",
                       "serialConsoleLogBlobUri": "https://md-stand-in.blob.storage.azure.net/boot/serial.log?sv=x"})


def _replicas(stand_in, req, m) -> Reply:
    app = m["app"]
    return Reply(200, {"value": [{"name": f"{m['revision']}-replica", "id": req.path + f"/{m['revision']}-replica",
                                  "properties": {"runningState": "Running", "containers": [
                                      {"name": app, "ready": True, "runningState": "Running",
                                       "logStreamEndpoint": f"https://{app}.logstream.azurecontainerapps.dev/logs",
                                       "execEndpoint": f"https://{app}.exec.azurecontainerapps.dev/exec"}]}}]})


def _auth_token(stand_in, req, m) -> Reply:
    return Reply(200, {"properties": {"token": "stand-in-log-token", "expires": "2099-01-01T00:00:00Z"}})


def _sql_capabilities(stand_in, req, m) -> Reply:
    def cap(name, **more):
        return {"name": name, "status": "Default", **more}
    family = cap("Gen5", sku="GP_Gen5", supportedLicenseTypes=[cap("LicenseIncluded"), cap("BasePrice")],
                 supportedVcoresValues=[cap(f"VCores{v}", value=v) for v in (4, 8)],
                 includedMaxSize={"limit": 32768, "unit": "Gigabytes"},
                 supportedStorageSizes=[{"minValue": {"limit": 32, "unit": "Gigabytes"},
                                         "maxValue": {"limit": 16384, "unit": "Gigabytes"},
                                         "stepSize": {"limit": 32, "unit": "Gigabytes"}, "status": "Default"}])
    edition = cap("GeneralPurpose", supportedFamilies=[family], supportedStorageCapabilities=[cap("GRS")])
    return Reply(200, {"name": m["location"], "status": "Available",
                       "supportedManagedInstanceVersions": [cap("12.0", supportedEditions=[edition],
                                                                supportedInstancePoolEditions=[])],
                       "supportedServerVersions": []})


def _policy_summary(stand_in, req, m) -> Reply:
    results = {"nonCompliantResources": 0, "nonCompliantPolicies": 0, "policyDetails": [], "resourceDetails": [],
               "policyGroupDetails": []}
    return Reply(200, {"@odata.context": "https://management.azure.com/$metadata#summary", "@odata.count": 1,
                       "value": [{"results": results, "policyAssignments": []}]})


def _policy_states(stand_in, req, m) -> Reply:
    return Reply(200, {"@odata.context": "https://management.azure.com/$metadata#policyStates", "@odata.count": 0,
                       "value": []})


def _no_content(stand_in, req, m) -> Reply:
    return Reply(204)


def _accepted(stand_in, req, m) -> Reply:
    return Reply(202, None, stand_in.lro_headers("operationResults", req.path))


def _builtin_policy(stand_in, req, m) -> Reply:
    return Reply(200, {"id": req.path, "name": m["name"], "type": "Microsoft.Authorization/policyDefinitions",
                       "properties": {"policyType": "BuiltIn", "mode": "All", "displayName": m["name"],
                                      "parameters": {"effect": {"type": "String", "defaultValue": "Audit",
                                                                "allowedValues": ["Audit", "Deny", "Disabled"]}},
                                      "policyRule": {"if": {"field": "type", "equals": "x"}, "then": {"effect": "audit"}}}})


def _mysql_capabilities(stand_in, req, m) -> Reply:
    skus = [{"name": n, "vCores": c, "supportedIops": 400 * c, "supportedMemoryPerVCoreMB": 2048}
            for n, c in (("Standard_B1ms", 1), ("Standard_B2s", 2))]
    gp = [{"name": "Standard_D2ds_v4", "vCores": 2, "supportedIops": 3200, "supportedMemoryPerVCoreMB": 4096}]
    versions = lambda s: [{"name": v, "supportedSkus": s} for v in ("8.0.21", "8.4")]  # noqa: E731
    storage = [{"name": "Premium", "minStorageSize": 20480, "maxStorageSize": 16777216,
                "minBackupRetentionDays": 1, "maxBackupRetentionDays": 35}]
    return Reply(200, {"value": [{"zone": "none", "supportedHAMode": ["SameZone", "ZoneRedundant"],
                                  "supportedGeoBackupRegions": [],
                                  "supportedFlexibleServerEditions": [
                                      {"name": "Burstable", "supportedStorageEditions": storage,
                                       "supportedServerVersions": versions(skus)},
                                      {"name": "GeneralPurpose", "supportedStorageEditions": storage,
                                       "supportedServerVersions": versions(gp)}]}]})


def _postgres_capabilities(stand_in, req, m) -> Reply:
    def sku(name, cores):
        return {"name": name, "vCores": cores, "supportedHaMode": ["SameZone", "ZoneRedundant"],
                "supportedZones": ["1", "2", "3"], "supportedMemoryPerVcoreMb": 2048, "supportedFeatures": []}
    storage = [{"name": "ManagedDisk", "defaultStorageSizeMb": 32768, "supportedStorageMb": [
        {"storageSizeMb": mb, "supportedIops": 120, "defaultIopsTier": "P4",
         "supportedIopsTiers": [{"name": "P4", "iops": 120}]} for mb in (32768, 65536, 131072)]}]
    return Reply(200, {"value": [{"name": "FlexibleServerCapabilities", "supportedServerEditions": [
        {"name": "Burstable", "defaultSkuName": "Standard_B1ms", "supportedStorageEditions": storage,
         "supportedServerSkus": [sku("Standard_B1ms", 1), sku("Standard_B2s", 2)]},
        {"name": "GeneralPurpose", "defaultSkuName": "Standard_D2ds_v5", "supportedStorageEditions": storage,
         "supportedServerSkus": [sku("Standard_D2ds_v5", 2)]}],
        "supportedServerVersions": [{"name": v, "supportedVersionsToUpgrade": []} for v in ("15", "16", "17")],
        "supportedFeatures": [{"name": "OfferRestricted", "status": "Disabled"},
                              {"name": "ZoneRedundantHa", "status": "Enabled"},
                              {"name": "GeoBackup", "status": "Enabled"}]}]})


_SUB = r"/subscriptions/[^/]+"
_RG = _SUB + r"/resourceGroups/[^/]+"
# (method, path regex, answer, why az needs it). First match wins; paths are matched case-insensitively.
ANSWERS = [
    ("POST", r".*/(listKeys|regenerateKey|listConnectionStrings|listAdminKeys|listQueryKeys|regenerateKeys|"
             r"listAuthKeys|regenerateAuthKey|listKeys/.*|getAuthKeys)", _keys,
     "az prints or uses the keys an action answers (storage keys, connection strings)"),
    ("POST", r".*/checkNameAvailability", _name_available,
     "create commands ask whether a globally unique name is free before they PUT"),
    ("POST", r".*/providers/Microsoft\.Web/sites/[^/]+(/slots/[^/]+)?/config/(?P<name>[^/]+)/list", _settings_list,
     "app settings and connection strings are read with a POST …/config/<name>/list"),
    ("POST", r".*/providers/Microsoft\.Web/staticSites/[^/]+/(?P<name>listAppSettings|listFunctionAppSettings)",
     _settings_list, "a static site's settings are read with a POST list action"),
    ("POST", r".*/providers/Microsoft\.Web/sites/[^/]+(/slots/[^/]+)?/publishxml", _publish_profile,
     "create and show commands read the publish profile, which is XML"),
    ("GET", r"/providers/Microsoft\.Web/webAppStacks", _web_app_stacks,
     "webapp create checks --runtime against the runtimes App Service offers"),
    ("GET", r"/providers/Microsoft\.Web/functionAppStacks", _function_app_stacks,
     "functionapp create checks --runtime against the runtimes Functions offers"),
    ("GET", _SUB + r"/providers/Microsoft\.Web/geoRegions", _geo_regions,
     "functionapp create checks --consumption-plan-location against the regions offering it"),
    ("GET", _SUB + r"/providers/Microsoft\.Compute/locations/[^/]+/publishers/[^/]+/artifacttypes/vmimage/offers/"
                   r"[^/]+/skus/[^/]+/versions", _image_versions,
     "vm create resolves an image alias to its latest version (a bare JSON array)"),
    ("GET", _SUB + r"/providers/Microsoft\.Compute/locations/[^/]+/publishers/[^/]+/artifacttypes/vmimage/offers/"
                   r"[^/]+/skus/[^/]+/versions/(?P<version>[^/]+)", _image_version,
     "vm create reads the image's OS and generation"),
    ("POST", r"(?P<cluster>.*/providers/Microsoft\.ContainerService/managedClusters/[^/]+)/runCommand", _run_command,
     "aks command invoke is long-running: 202 with a Location to its result (RunCommand's only success)"),
    ("GET", r".*/providers/Microsoft\.ContainerService/managedClusters/[^/]+/commandResults/(?P<id>[^/]+)",
     _command_result, "aks command invoke reads the command's exit code and logs"),
    ("POST", r".*/providers/Microsoft\.Compute/virtualMachines/[^/]+/retrieveBootDiagnosticsData", _boot_log_uris,
     "get-boot-log reads where the serial log is, then downloads it"),
    ("GET", r".*/providers/Microsoft\.App/containerApps/(?P<app>[^/]+)/revisions/(?P<revision>[^/]+)/replicas",
     _replicas, "containerapp logs and replica commands read the running replicas of a revision"),
    ("GET", r".*/providers/Microsoft\.App/containerApps/(?P<app>[^/]+)/revisions/(?P<revision>[^/]+)",
     lambda si, req, m: Reply(200, {"id": req.path, "name": m["revision"], "type": "Microsoft.App/containerApps/revisions",
                                    "properties": {"active": True, "replicas": 1, "runningState": "Running",
                                                   "template": {"containers": [{"name": m["app"]}]}}}),
     "an app's first revision exists once the app does, running the app's container"),
    ("GET", r".*/providers/Microsoft\.App/containerApps/(?P<app>[^/]+)/revisions/(?P<revision>[^/]+)/replicas/[^/]+",
     lambda si, req, m: Reply(200, _replicas(si, req.__class__(req.method, req.path.rsplit("/", 1)[0], req.query,
                                                              req.headers), m).body["value"][0]),
     "containerapp logs show reads the replica it streams from"),
    ("POST", r".*/providers/Microsoft\.App/containerApps/[^/]+/getAuthToken", _auth_token,
     "containerapp logs show gets a token for the log stream (a data plane) first"),
    ("GET", _SUB + r"/providers/Microsoft\.Sql/locations/(?P<location>[^/]+)/capabilities", _sql_capabilities,
     "sql mi create resolves --edition and --family to a SKU from the region's capabilities"),
    ("POST", r".*/providers/Microsoft\.PolicyInsights/policyStates/latest/summarize", _policy_summary,
     "policy state summarize reads the compliance summary (Policy Insights answers one summary)"),
    ("POST", r".*/providers/Microsoft\.PolicyInsights/policyStates/latest/queryResults", _policy_states,
     "policy state list reads compliance records (an OData page)"),
    ("GET", _RG + r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/[^/]+/capabilities", _postgres_capabilities,
     "flexible-server update checks the new SKU against the server's capabilities"),
    ("POST", r".*/providers/Microsoft\.ContainerInstance/containerGroups/[^/]+/(restart|stop)", _no_content,
     "ContainerGroups Restart and Stop answer 204 only"),
    ("POST", r".*/providers/Microsoft\.ContainerInstance/containerGroups/[^/]+/start", _accepted,
     "ContainerGroups Start answers 202 only"),
    ("GET", r"(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/policyDefinitions/(?P<name>[0-9a-f-]{36})",
     _builtin_policy, "built-in policy definitions exist in every tenant"),
    ("GET", _SUB + r"/providers/Microsoft\.DBforMySQL/locations/[^/]+/capabilities", _mysql_capabilities,
     "flexible-server create checks the tier, SKU and version against the region's capabilities"),
    ("GET", _SUB + r"/providers/Microsoft\.DBforPostgreSQL/locations/[^/]+/capabilities", _postgres_capabilities,
     "flexible-server create checks the tier, SKU and version against the region's capabilities"),
]

# Resource types az looks for by name in a provider's answer (the published operations spell some in lower case).
PROVIDER_TYPES = {"microsoft.app": ("managedEnvironments", "containerApps", "jobs", "connectedEnvironments")}
