"""Static checks of scenario steps: placeholders, and that a step stays inside its resource group.

The agent runs each step as an argument list (no shell), so these checks look at the arguments
the same way the agent will see them. ``check_argv`` is shared: the catalog validator runs it on
the unrendered step (with the placeholders as the expected values) and the agent runs it again on
the rendered arguments (with the run's real group, subscription and run id) just before a step runs.

az parses arguments with argparse, which reads more forms than the plain ``--flag value`` these
checks look at: ``-gOTHER`` (an attached short option), ``--resource-gr`` (any unambiguous prefix of a
long option), ``--resource-group=OTHER``; and az itself replaces ``@path`` with a file's content and
reads a file for some arguments whose value names an existing path. So a step may use only the plain
forms (anything else is refused, not interpreted), a shortened option that could stand for a guarded
one is checked as that option or refused, no option that names a file is allowed, and no value may
point at a local file. tests/test_azcli_parser.py checks, with az's own parser, that every catalog
step names its options exactly as az defines them.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache
from urllib.parse import urlsplit

PLACEHOLDERS = frozenset(
    {"RESOURCE_GROUP", "LOCATION", "RUN_ID", "UNIQUE", "SCENARIO", "SUBSCRIPTION_ID", "TENANT_ID",
     "CLIENT_ID", "AGENT_OBJECT_ID", "PASSWORD", "ADMIN_UNIT_ID"}
)
PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")
RG_SCOPE = "/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}"

_RG_FLAGS = {"-g", "--resource-group", "--resource-group-name"}
_SCOPE_FLAGS = {"--scope", "--scopes"}
_FORBIDDEN_FLAGS = {
    "--subscription": "steps run in the run's subscription only: remove --subscription",
    "--management-group": "steps may not touch management groups: remove --management-group",
    "--management-group-id": "steps may not touch management groups: remove --management-group-id",
    "--management-group-name": "steps may not touch management groups: remove --management-group-name",
}
# Options whose meaning a check below depends on: a shortened form of one is read as that option.
_GUARDED = {*_RG_FLAGS, *_SCOPE_FLAGS, *_FORBIDDEN_FLAGS, "--display-name", "--name"}
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
# az rest sends the agent's token to the URL it is given: Resource Manager and Microsoft Graph only,
# with the token az picks for that host (no --resource), and no header but these.
REST_HOSTS = ("management.azure.com", "graph.microsoft.com")
_REST_FLAGS = {"--method", "-m", "--url", "--uri", "-u", "--body", "-b", "--headers", "--query", "--output", "-o"}
_REST_HEADERS = {"content-type", "consistencylevel"}
_SHELL_TOKENS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
# A subscription or resource group named inside any argument: resource ids, scopes, REST URLs, JSON.
_ID_SEGMENT_RE = re.compile(r"/(subscriptions|resourceGroups)/((?:\$\{[^}]*\}|[^/\s\"',;}\]?])+)", re.I)
_PLAIN_OPTION_RE = re.compile(r"^(-[A-Za-z]|--[a-z0-9]+(-[a-z0-9]+)*)$")
_NUMBER_RE = re.compile(r"^-\d+(\.\d+)?$")
# Options that name a file az reads or writes: --file, --template-file, --parameters-files, ...
_FILE_OPTION_RE = re.compile(r"^--(.+-)?files?$")
# An absolute value is a resource id, or a single plain segment (a probe path "/", a partition key "/city").
_SAFE_ABSOLUTE_RE = re.compile(r"^(/subscriptions/.*|/[A-Za-z0-9_-]*)$", re.I)


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


def command_words(argv) -> list[str]:
    """``['network', 'vnet', 'create']`` for ``az network vnet create --name x``."""
    words = []
    for arg in argv[1:]:
        if arg.startswith("-"):
            break
        words.append(arg)
    return words


def options(argv) -> list[tuple[int, str, list[str]]]:
    """(position, option, the values after it up to the next option) for every option of a step."""
    found = []
    for i, arg in enumerate(argv):
        if arg.startswith("-") and not _NUMBER_RE.match(arg):
            found.append((i, arg, []))
        elif found and i > 0:
            found[-1][2].append(arg)
    return found


def check_argv(argv: list[str], *, resource_group: str = "${RESOURCE_GROUP}",
               subscription: str = "${SUBSCRIPTION_ID}", run_id: str = "${RUN_ID}",
               agent_object_id: str = "${AGENT_OBJECT_ID}") -> list[str]:
    """What is wrong with a step's arguments, given the group, subscription and run id it must keep to."""
    if not argv or argv[0] != "az":
        return ["a step runs the Azure CLI only: start it with 'az '"]
    words = command_words(argv)
    if not words:
        return ["the command comes first: write az <group> <command> --option value"]
    problems = []
    for prefix, why in _FORBIDDEN_COMMANDS.items():
        if tuple(words[: len(prefix)]) == prefix:
            problems.append(why)
    scope = f"/subscriptions/{subscription}/resourceGroups/{resource_group}".lower()
    inside = {resource_group.lower(), scope}
    for arg in argv:
        if arg in _SHELL_TOKENS:
            problems.append(f"shell operator {arg!r}: steps run without a shell, split the step")
        problems.extend(_foreign_ids(arg, resource_group, subscription))
        problems.extend(_local_file_problems(arg))
    for _, flag, values in options(argv):
        value = values[0] if values else ""
        form = _form_problem(flag)
        if form:
            problems.append(form)
            continue
        meant = _meanings(flag)
        for forbidden in sorted(meant & set(_FORBIDDEN_FLAGS)):
            problems.append(_FORBIDDEN_FLAGS[forbidden] if flag == forbidden else
                            f"{flag} may be read as {forbidden}: write options in full; " + _FORBIDDEN_FLAGS[forbidden])
        if words[:1] == ["group"] and (flag == "-n" or "--name" in meant):
            meant = meant | {"--resource-group"}  # az group <command> --name is the group
        if flag in _RG_FLAGS or (words[:1] == ["group"] and flag in {"-n", "--name"}):
            if value != resource_group:
                problems.append(f"{flag} {value!r} names another resource group: use ${{RESOURCE_GROUP}}")
        elif flag in _SCOPE_FLAGS:
            if not _within(value, scope):
                problems.append(f"{flag} {value!r} is outside the scenario's resource group: use a scope under "
                                f"{RG_SCOPE}")
        elif meant & (_RG_FLAGS | _SCOPE_FLAGS) and value.lower() not in inside and not _within(value, scope):
            # --resource, --sco: az may read them as --resource-group or --scope when the command has no
            # option of exactly that name; either way the value must stay in the group.
            problems.append(f"{flag} {value!r} may be read as {' or '.join(sorted(meant))}: name the group or "
                            f"something in it (${{RESOURCE_GROUP}}, {RG_SCOPE}/...), or write the option in full")
        if _FILE_OPTION_RE.match(flag):
            problems.append(f"{flag}: steps may not name files (az would read or write a local file); write the "
                            "value inline")
    if words[:1] == ["ad"] and "create" in words:
        shown = [v[0] for _, flag, v in options(argv) if v and "--display-name" in _meanings(flag)]
        if any(not v.startswith(f"haymaker-{run_id}-") for v in shown):
            problems.append("Entra objects must be named haymaker-${RUN_ID}-<name> so the reaper finds them")
    if words[:1] == ["rest"]:
        problems.extend(_rest_problems(argv, run_id, agent_object_id))
    return problems


def _form_problem(flag: str) -> str | None:
    if _PLAIN_OPTION_RE.match(flag):
        return None
    if "=" in flag:
        name = flag.split("=", 1)[0]
        return f"{flag!r}: write the option and its value as two arguments ({name} <value>), not {name}=<value>"
    if flag.startswith("--"):
        return f"{flag!r} is not an option az defines: write options as --lowercase-words"
    return f"{flag!r}: az would read this as {flag[:2]} with the value {flag[2:]!r}: write {flag[:2]} <value> " \
           "(short options stand alone)"


def _meanings(flag: str) -> set[str]:
    """The guarded options ``flag`` may stand for: itself, or those it is a prefix of (argparse accepts any
    unambiguous prefix of a long option)."""
    if not flag.startswith("--") or len(flag) < 3:
        return {flag} & _GUARDED
    return {g for g in _GUARDED if g.startswith(flag)}


def _within(value: str, scope: str) -> bool:
    return value.lower() == scope or value.lower().startswith(scope + "/")


def _local_file_problems(arg: str) -> list[str]:
    after = arg.split("=", 1)[1] if "=" in arg else ""
    if any(v.startswith("@") and len(v) > 1 for v in (arg, after)):
        # az replaces '@path' (and 'KEY=@path') with the file's content: a step could read the agent's files.
        return [f"{arg!r}: a value starting with '@' makes az read a local file; write the value inline"]
    if arg.startswith(("~", "./", "../", "file:")) or arg in {".", ".."} or "/../" in arg \
            or arg.endswith("/..") or (arg.startswith("/") and not _SAFE_ABSOLUTE_RE.match(arg)):
        return [f"{arg!r} looks like a local path, which az may read (and send to Azure): steps may not name "
                "local files"]
    return []


def _rest_problems(argv: list[str], run_id: str, agent_object_id: str) -> list[str]:
    """az rest: only to Resource Manager or Microsoft Graph, with az's own token for that host."""
    problems, urls, methods, bodies = [], [], [], []
    for _, flag, values in options(argv):
        if flag not in _REST_FLAGS:
            problems.append(f"az rest {flag}: steps may use only {', '.join(sorted(_REST_FLAGS))} with az rest "
                            "(az picks the token for the URL's host)")
        elif flag in {"--url", "--uri", "-u"}:
            urls += values[:1]
        elif flag in {"--method", "-m"}:
            methods += values[:1]
        elif flag in {"--body", "-b"}:
            bodies += values[:1]
        elif flag == "--headers":
            for header in values:
                name = header.split("=", 1)[0].split(":", 1)[0].strip().lower()
                if name not in _REST_HEADERS:
                    problems.append(f"az rest --headers {header!r}: only "
                                    f"{', '.join(sorted(_REST_HEADERS))} headers, as Name=value")
    if not urls:
        problems.append("az rest needs --url https://management.azure.com/... or https://graph.microsoft.com/...")
    for url in urls:
        problems.extend(_rest_url_problems(url))
    if any(_GRAPH_CREATE_RE.match(u) for u in urls) and any(m.lower() == "post" for m in methods):
        for body in bodies or [""]:
            problems.extend(_graph_create_problems(body, run_id, agent_object_id))
    return problems


def _rest_url_problems(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, -1
    if parts is not None and not parts.scheme and not parts.netloc and url.startswith("/subscriptions/"):
        return []  # az rest sends a bare resource id to Resource Manager
    if parts is None or parts.scheme != "https" or parts.hostname not in REST_HOSTS or port is not None \
            or "@" in parts.netloc or parts.netloc != parts.hostname or re.search(r"[\s\\]", url):
        return [f"az rest --url {url!r}: az rest may call only https://management.azure.com/... and "
                "https://graph.microsoft.com/... (it sends the agent's token to the URL)"]
    return []


def _graph_create_problems(body: str, run_id: str, agent_object_id: str) -> list[str]:
    """A group or application created through Graph is named for the reaper and owned by the agent."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ["--body of a Graph create is not JSON: write the object inline"]
    if not isinstance(doc, dict):
        return ["--body of a Graph create is not a JSON object: write the object inline"]
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
