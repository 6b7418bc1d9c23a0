"""What each step is expected to leave in the subscription's Activity Log, and the checks on it.

A step that changes something through Azure Resource Manager declares the operations it causes
(``expect: [Microsoft.Network/virtualNetworks/write]``). A step whose effect is not an ARM operation
says where it lands instead: ``plane: graph`` (Microsoft Graph: ``az ad …``, ``az rest`` to Graph;
Entra audit logs) or ``plane: data`` (a service's data plane: ``az storage blob …``, ``az keyvault
secret …``, ``az rest`` to a service endpoint; the service's own logs).

Whether a step changes something is read from its az command: the verb (the last command word,
or its first part before a hyphen, as in ``create-run``) is looked up in ``WRITE_VERBS`` or
``READ_VERBS``; ``az rest`` goes by its ``--method``. A verb in neither set is refused until it is
added to one, so nothing escapes unclassified.
"""

from __future__ import annotations

from urllib.parse import urlparse

from scenarios.operations import ARM_OWN_PREFIXES, is_operation_name, kind_of, load_snapshot, namespace_of
from scenarios.steps import command_words, split_step

WRITE_VERBS = frozenset({
    "add", "apply", "approve", "assign", "attach", "cancel", "config", "create", "deallocate", "delete",
    "deploy", "detach", "disable", "enable", "failover", "force", "grant", "import", "install", "invoke",
    "move", "pause", "purge", "put", "reboot", "redeploy", "regenerate", "reimage", "reject", "remove",
    "renew", "reset", "resize", "restart", "restore", "resume", "revoke", "rotate", "run", "scale", "set",
    "start", "stop", "suspend", "swap", "sync", "tag", "trigger", "uninstall", "update", "upgrade", "upload",
})
READ_VERBS = frozenset({
    "browse", "check", "diagnose", "download", "exists", "get", "list", "logs", "peek", "query", "show",
    "summarize", "tail", "wait",
})
READ_METHODS = frozenset({"get", "head", "options"})
PLANES = ("graph", "data")
# Command groups whose effect is not an ARM operation.
_GRAPH_GROUPS = {("ad",)}
_DATA_GROUPS = {("storage", g) for g in ("blob", "container", "queue", "message", "fs", "file", "share",
                                         "table", "entity", "directory", "copy")} | \
               {("keyvault", g) for g in ("secret", "key", "certificate")}
_ARM_HOSTS = {"management.azure.com"}
_GRAPH_HOSTS = {"graph.microsoft.com"}



def _flag(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        if flag in names:
            return inline or (argv[i + 1] if i + 1 < len(argv) else "")
    return None


def command_plane(argv: list[str]) -> str:
    """``arm``, ``graph`` or ``data``: where the command's requests go."""
    words = command_words(argv)
    if words[:1] == ["rest"]:
        host = (urlparse(_flag(argv, "--url", "--uri", "-u") or "").hostname or "").lower()
        return "arm" if host in _ARM_HOSTS else "graph" if host in _GRAPH_HOSTS else "data"
    if tuple(words[:1]) in _GRAPH_GROUPS:
        return "graph"
    return "data" if tuple(words[:2]) in _DATA_GROUPS else "arm"


def changes_something(argv: list[str]) -> bool | None:
    """True (mutating), False (read-only) or None (a verb neither list knows)."""
    words = command_words(argv)
    if words[:1] == ["rest"]:
        return (_flag(argv, "--method", "-m") or "get").lower() not in READ_METHODS
    verb = (words[-1] if words else "").lower()
    head = verb.split("-", 1)[0]
    for v in (verb, head):
        if v in WRITE_VERBS:
            return True
        if v in READ_VERBS:
            return False
    return None


def az_step(step: dict) -> tuple[list[str], str] | None:
    """A step's arguments and its command (``az network vnet create``); None when it is no az command or
    cannot be split (the run checks report that)."""
    try:
        argv = split_step(step["run"])
    except ValueError:
        return None
    if not argv or argv[0] != "az" or not command_words(argv):
        return None
    return argv, "az " + " ".join(command_words(argv))


def step_problems(step: dict, services) -> list[tuple[str, str]]:
    """(field, message) for what is wrong with one step's ``expect`` and ``plane``; ``step`` is the
    schema-valid document. Field is ``expect``, ``expect[j]`` or ``plane``."""
    found = az_step(step)
    if found is None:
        return []
    argv, command = found
    expect, plane = step.get("expect") or [], step.get("plane")
    where, mutates = command_plane(argv), changes_something(argv)
    if mutates is None:
        return [("expect", f"cannot tell whether {command!r} changes anything: add its verb to WRITE_VERBS or "
                           "READ_VERBS in scenarios/expect.py")]
    if plane is not None:
        if plane != where:
            fix = "declare the ARM operations it causes in expect" if where == "arm" else f"use plane: {where}"
            return [("plane", f"{command!r} is not a {plane}-plane command: {fix}")]
        if expect:
            return [("expect", f"a plane: {plane} step causes no ARM operation: remove expect")]
        return _storage_auth_problems(argv, command)
    if where != "arm":
        if mutates or expect:
            return [("plane", f"{command!r} acts on {'Microsoft Graph' if where == 'graph' else 'a data plane'}, "
                              f"not ARM: add plane: {where} (and no expect)")]
        return []
    if mutates and not expect:
        if step.get("expect_failure") and step.get("expect") == []:
            return []  # a mistake az itself refuses: nothing reaches ARM (tests/test_azcli_parser.py proves it)
        return [("expect", f"{command!r} changes resources but declares no operations: add expect: "
                           "[<Provider>/<type>/<write|delete|action>] listing what it causes in the Activity Log "
                           "(or, for an expect_failure step that az refuses before sending anything, expect: [])")]
    return [(f"expect[{j}]", msg) for j, op in enumerate(expect)
            for msg in operation_problems(op, services, mutates, command)]


def operation_problems(op: str, services, mutates: bool, command: str) -> list[str]:
    if not is_operation_name(op):
        return [f"{op!r} is not an operation name: use <Provider>/<type>/<write|delete|action>, "
                "e.g. Microsoft.Network/virtualNetworks/write"]
    if kind_of(op) == "read":
        return [f"{op!r}: reads never reach the Activity Log: declare only write, delete or action operations"]
    snapshot = load_snapshot()
    if op not in snapshot:
        close = snapshot.close_matches(op)
        hint = f"did you mean {', '.join(close)}?" if close else "check the az reference for what it calls"
        if not snapshot.covers(namespace_of(op)):
            hint = (f"{namespace_of(op)} is not in the snapshot: add it to the scenario's services and run "
                    "scripts/refresh_operations.py")
        return [f"unknown operation {op!r}: not in Azure's published operations (snapshot taken {snapshot.taken}); "
                + hint]
    problems = []
    if not mutates and kind_of(op) != "action":
        problems.append(f"{command!r} only reads: it cannot cause {op!r} (a list or show command may declare "
                        "only action operations, such as listKeys, that ARM records)")
    namespaces = {namespace_of(s).lower() for s in services}
    if namespace_of(op).lower() not in namespaces and not op.lower().startswith(ARM_OWN_PREFIXES):
        problems.append(f"{op!r} belongs to {namespace_of(op)}, which the scenario's services do not list: add the "
                        f"{namespace_of(op)}/<type> it creates to services, or fix the operation")
    return problems


def _storage_auth_problems(argv: list[str], command: str) -> list[tuple[str, str]]:
    # Without --auth-mode login az lists the account keys through ARM first: an operation nobody declared.
    if command.startswith("az storage ") and (_flag(argv, "--auth-mode") or "").lower() != "login":
        return [("plane", f"{command!r} without --auth-mode login reads the account key through ARM "
                          "(Microsoft.Storage/storageAccounts/listKeys/action): add --auth-mode login")]
    return []


def expected_operations(scenario) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{phase: {step name: (operation, …)}}`` for every step of a loaded Scenario, in order; steps that
    declare nothing (reads, Graph or data-plane steps) map to ``()``."""
    return {phase: {step.name: tuple(step.expect) for step in steps} for phase, steps in scenario.phases.items()}


def expected_count(scenario) -> int:
    """Operations declared over one pass of the scenario's steps (operate steps repeat during a run)."""
    return sum(len(step.expect) for steps in scenario.phases.values() for step in steps)
