"""Static checks of scenario steps: placeholders, and that a step stays inside its resource group.

The agent runs each step as an argument list (no shell), so these checks look at the arguments
the same way the agent will see them.
"""

from __future__ import annotations

import re
import shlex

PLACEHOLDERS = frozenset(
    {"RESOURCE_GROUP", "LOCATION", "RUN_ID", "UNIQUE", "SCENARIO", "SUBSCRIPTION_ID", "TENANT_ID",
     "CLIENT_ID", "PASSWORD"}
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
    ("role", "assignment", "create"): "agents may not grant roles: remove az role assignment create",
    ("role", "assignment", "delete"): "agents may not change role assignments",
    ("role", "definition", "create"): "agents may not define roles",
    ("ad", "sp", "create-for-rbac"): "create-for-rbac can grant roles: use az ad app create and az ad sp create",
}
_SHELL_TOKENS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


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
        # Without quotes or escapes shlex.split is a plain whitespace split; skip its slow lexer.
        argv = shlex.split(run) if any(c in run for c in "'\"\\") else run.split()
    except ValueError as e:
        return problems + [f"cannot be split into arguments ({e}): check the quotes"]
    if not argv or argv[0] != "az":
        return problems + ["a step runs the Azure CLI only: start it with 'az '"]
    words = [a for a in argv[1:4] if not a.startswith("-")]
    for prefix, why in _FORBIDDEN_COMMANDS.items():
        if tuple(words[: len(prefix)]) == prefix:
            problems.append(why)
    for i, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        value = inline if inline else (argv[i + 1] if i + 1 < len(argv) else "")
        if arg in _SHELL_TOKENS:
            problems.append(f"shell operator {arg!r}: steps run without a shell, split the step")
        if flag in _FORBIDDEN_FLAGS:
            problems.append(_FORBIDDEN_FLAGS[flag])
        if flag in _RG_FLAGS and value != "${RESOURCE_GROUP}":
            problems.append(f"{flag} {value!r} names another resource group: use ${{RESOURCE_GROUP}}")
        if flag in {"--scope", "--scopes"} and not value.startswith(RG_SCOPE):
            problems.append(f"{flag} {value!r} is outside the scenario's resource group: use a scope under {RG_SCOPE}")
    if words[:1] == ["ad"] and "create" in words:
        shown = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in {"--display-name", "--display_name"}]
        if any(not v.startswith("haymaker-${RUN_ID}-") for v in shown):
            problems.append("Entra objects must be named haymaker-${RUN_ID}-<name> so the reaper finds them")
    return problems
