"""Which Azure CLI extension each command group of the catalog comes from.

The agent image installs these extensions at pinned versions when it is built (Dockerfile) and the
agent turns dynamic install off, so a run never fetches tooling. tests/test_agent_image.py derives
the extensions the catalog needs from this map and checks the Dockerfile pins exactly those. Names
were checked against the public extension index (az extension list-available) of azure-cli 2.91.
"""

from __future__ import annotations

from scenarios import steps
from scenarios.steps import split_step

# Command group (one or more words) -> extension; the longest matching group wins.
EXTENSION_GROUPS = {
    "connectedmachine": "connectedmachine",
    "databricks": "databricks",
    "datafactory": "datafactory",
    "ml": "ml",
    "powerbi": "powerbidedicated",
    "site-recovery": "site-recovery",
    "stack-hci": "stack-hci",
    "stream-analytics": "stream-analytics",
    # Core groups whose subgroups come from extensions: named so a step using one is caught.
    "monitor app-insights": "application-insights",
    "monitor log-analytics query": "log-analytics",
    "network bastion": "bastion",
    "network manager": "virtual-network-manager",
    "network firewall": "azure-firewall",
}
# Top-level groups that ship with azure-cli itself.
CORE_GROUPS = frozenset({
    "ad", "aks", "apim", "appservice", "backup", "bot", "cognitiveservices", "container", "containerapp",
    "cosmosdb", "disk", "eventhubs", "functionapp", "identity", "keyvault", "monitor", "mysql", "network",
    "policy", "postgres", "redis", "resource", "rest", "role", "security", "sql", "staticwebapp", "storage",
    "synapse", "tag", "vm", "vmss", "webapp",
})


def command_words(run: str) -> list[str]:
    """The command's words after ``az``, up to the first option."""
    return steps.command_words(split_step(run))


def extension_for(run: str) -> str | None:
    """The extension a step's command needs, or None for a core command."""
    words = command_words(run)
    for n in range(len(words), 0, -1):
        found = EXTENSION_GROUPS.get(" ".join(words[:n]))
        if found:
            return found
    return None


def is_known(run: str) -> bool:
    words = command_words(run)
    return bool(words) and (words[0] in CORE_GROUPS or extension_for(run) is not None)
