"""Static checks of scenario steps: placeholders, and that a step stays inside its resource group.

The agent runs each step as an argument list (no shell), so these checks look at the arguments
the same way the agent will see them. ``check_argv`` is shared: the catalog validator runs it on
the unrendered step (with the placeholders as the expected values) and the agent runs it again on
the rendered arguments (with the run's real group, subscription and run id) just before a step runs.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache

PLACEHOLDERS = frozenset(
    {"RESOURCE_GROUP", "LOCATION", "RUN_ID", "UNIQUE", "SCENARIO", "SUBSCRIPTION_ID", "TENANT_ID",
     "CLIENT_ID", "AGENT_OBJECT_ID", "PASSWORD", "ADMIN_UNIT_ID"}
)
PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
RG_SCOPE = "/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}"

_RG_FLAGS = {"-g", "--resource-group", "--resource-group-name"}
_FORBIDDEN_FLAGS = {
    "--subscription": "steps run in the run's subscription only: remove --subscription",
    "--management-group": "steps may not touch management groups: remove --management-group",
    "--management-group-id": "steps may not touch management groups: remove --management-group-id",
}
_FORBIDDEN_COMMANDS = {
    ("group", "create"): "the stack owns the resource group: do not create groups",
    ("group", "delete"): "the stack owns the resource group: do not delete it",
    ("account", "set"): "steps run in the run's subscription only: remove az account set",
    ("account", "management-group"): "steps may not touch management groups",
    ("deployment", "sub"): "subscription-scope deployments reach past the resource group: use az deployment group",
    ("deployment", "mg"): "steps may not touch management groups: use az deployment group",
    ("deployment", "tenant"): "tenant-scope deployments reach past the resource group: use az deployment group",
    ("role", "assignment", "create"): "agents may not grant roles: remove az role assignment create",
    ("role", "assignment", "delete"): "agents may not change role assignments",
    ("role", "definition", "create"): "agents may not define roles",
    ("ad", "sp", "create-for-rbac"): "create-for-rbac can grant roles: use az ad app create and az ad sp create",
    # Purging a soft-deleted vault or account is a subscription-scope action; the run's teardown does it.
    ("cognitiveservices", "account", "purge"): "purge is a subscription-scope action agents may not run: "
                                               "remove it, the run's teardown purges deleted accounts",
    ("keyvault", "purge"): "purge is a subscription-scope action agents may not run: remove it, the run's "
                           "teardown purges deleted vaults",
    # With Group.Create, a group created without owners can be changed or deleted by nobody but an admin.
    ("ad", "group", "create"): "az ad group create sets no owner, so the agent could not delete the group: "
                               "az rest --method post --url https://graph.microsoft.com/v1.0/groups with "
                               "\"owners@odata.bind\": [\"https://graph.microsoft.com/v1.0/directoryObjects/"
                               "${AGENT_OBJECT_ID}\"] in --body",
}
# Groups are created in HayMaker's administrative unit (its members endpoint), applications directly.
_GRAPH_CREATE_RE = re.compile(r"^https://graph\.microsoft\.com/v1\.0/(groups|applications|directory/"
                              r"administrativeUnits/[^/]+/members)/?$", re.I)
_SHELL_TOKENS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
# A subscription or resource group named inside any argument: resource ids, scopes, REST URLs, JSON.
_ID_SEGMENT_RE = re.compile(r"/(subscriptions|resourceGroups)/((?:\$\{[^}]*\}|[^/\s\"',;}\]?])+)", re.I)


def split_step(run: str) -> list[str]:
    """Split a step into arguments the way the agent does."""
    return list(_split(run))


@lru_cache(maxsize=4096)  # the catalog checks split each step twice (run checks, expected operations)
def _split(run: str) -> tuple[str, ...]:
    # Without quotes or escapes shlex.split is a plain whitespace split; skip its slow lexer.
    return tuple(shlex.split(run) if any(c in run for c in "'\"\\") else run.split())


def check_step(run: str) -> list[str]:
    """Return what is wrong with one step's command (empty when it is fine)."""
    problems = []
    for name in PLACEHOLDER_RE.findall(run):
        if name not in PLACEHOLDERS:
            problems.append(
                f"unknown placeholder ${{{name}}}: use one of "
                + ", ".join(f"${{{p}}}" for p in sorted(PLACEHOLDERS))
            )
    if re.search(r"\$(?!\{)", run):
        problems.append("a bare '$' (shell variable or $(...)): use only ${PLACEHOLDER} forms")
    if "`" in run:
        problems.append("backticks are not allowed: steps run without a shell")
    try:
        argv = split_step(run)
    except ValueError as e:
        return problems + [f"cannot be split into arguments ({e}): check the quotes"]
    return problems + check_argv(argv)


def check_argv(argv: list[str], *, resource_group: str = "${RESOURCE_GROUP}",
               subscription: str = "${SUBSCRIPTION_ID}", run_id: str = "${RUN_ID}",
               agent_object_id: str = "${AGENT_OBJECT_ID}") -> list[str]:
    """What is wrong with a step's arguments, given the group, subscription and run id it must keep to."""
    if not argv or argv[0] != "az":
        return ["a step runs the Azure CLI only: start it with 'az '"]
    problems = []
    words = [a for a in argv[1:4] if not a.startswith("-")]
    for prefix, why in _FORBIDDEN_COMMANDS.items():
        if tuple(words[: len(prefix)]) == prefix:
            problems.append(why)
    scope = f"/subscriptions/{subscription}/resourceGroups/{resource_group}".lower()
    group_names = _RG_FLAGS | ({"-n", "--name"} if words[:1] == ["group"] else set())
    for i, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        value = inline if inline else (argv[i + 1] if i + 1 < len(argv) else "")
        if arg in _SHELL_TOKENS:
            problems.append(f"shell operator {arg!r}: steps run without a shell, split the step")
        if flag in _FORBIDDEN_FLAGS:
            problems.append(_FORBIDDEN_FLAGS[flag])
        if flag in group_names and value != resource_group:
            problems.append(f"{flag} {value!r} names another resource group: use ${{RESOURCE_GROUP}}")
        if flag in {"--scope", "--scopes"} and value.lower() != scope and not value.lower().startswith(scope + "/"):
            problems.append(f"{flag} {value!r} is outside the scenario's resource group: use a scope under {RG_SCOPE}")
        problems.extend(_foreign_ids(arg, resource_group, subscription))
        if any(v.startswith("@") and len(v) > 1 for v in (arg, inline)):
            # az replaces '@path' with the file's content: a step could read the agent's own files.
            problems.append(f"{arg!r}: a value starting with '@' makes az read a local file; write the value inline")
    if words[:1] == ["ad"] and "create" in words:
        shown = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in {"--display-name", "--display_name"}]
        if any(not v.startswith(f"haymaker-{run_id}-") for v in shown):
            problems.append("Entra objects must be named haymaker-${RUN_ID}-<name> so the reaper finds them")
    if words[:1] == ["rest"] and _GRAPH_CREATE_RE.match(_value_of(argv, "--url", "--uri", "-u")) \
            and _value_of(argv, "--method", "-m").lower() == "post":
        problems.extend(_graph_create_problems(_value_of(argv, "--body", "-b"), run_id, agent_object_id))
    return problems


def _value_of(argv: list[str], *flags: str) -> str:
    for i, arg in enumerate(argv):
        flag, sep, inline = arg.partition("=")
        if flag in flags:
            return inline if sep else (argv[i + 1] if i + 1 < len(argv) else "")
    return ""


def _graph_create_problems(body: str, run_id: str, agent_object_id: str) -> list[str]:
    """A group or application created through Graph is named for the reaper and owned by the agent."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ["--body of a Graph create is not JSON: write the object inline"]
    problems = []
    if not str(doc.get("displayName", "")).startswith(f"haymaker-{run_id}-"):
        problems.append("Entra objects must be named haymaker-${RUN_ID}-<name> so the reaper finds them")
    if not any(str(o).endswith(f"/{agent_object_id}") for o in doc.get("owners@odata.bind") or []):
        problems.append("a Graph object the agent creates lists the agent as owner, or it cannot delete it: add "
                        "\"owners@odata.bind\": [\"https://graph.microsoft.com/v1.0/directoryObjects/${AGENT_OBJECT_ID}\"]")
    return problems


def _foreign_ids(arg: str, resource_group: str, subscription: str) -> list[str]:
    problems = []
    for kind, name in _ID_SEGMENT_RE.findall(arg):
        if kind.lower() == "subscriptions" and name.lower() != subscription.lower():
            problems.append(f"{arg!r} names subscription {name!r}: ids use /subscriptions/${{SUBSCRIPTION_ID}}")
        if kind.lower() == "resourcegroups" and name.lower() != resource_group.lower():
            problems.append(f"{arg!r} names resource group {name!r}: ids use /resourceGroups/${{RESOURCE_GROUP}}")
    if "managementgroups" in arg.lower():
        problems.append(f"{arg!r} names a management group: steps may not touch management groups")
    return problems
