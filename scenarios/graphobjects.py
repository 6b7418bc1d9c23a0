"""Directory objects a scenario creates must be deleted by its own cleanup steps.

A Graph object (group, application, service principal, user) lives outside the agent's resource group,
so deleting the group at teardown does not remove it; the reaper only reports such leftovers. Each object a
deploy step creates is matched, by the name it is created with, to a cleanup step that deletes it.
"""

from __future__ import annotations

import json
import shlex

GRAPH_URL = "https://graph.microsoft.com/v1.0/"
# az ad <kind> create: the flag that names the object, and the delete command a cleanup step uses.
AD_CREATE = {"group": ("--display-name", "az ad group delete --group {}"),
             "app": ("--display-name", "az ad app delete --id api://${{TENANT_ID}}/{}"),
             "user": ("--user-principal-name", "az ad user delete --id {}"),
             "sp": ("--id", "az ad sp delete --id {}")}
REST_KINDS = {"groups": "group", "applications": "app", "users": "user", "servicePrincipals": "sp"}
# A service principal goes with its application: deleting either removes what `ad sp create` made.
DELETED_BY = {"group": {"group"}, "app": {"app"}, "user": {"user"}, "sp": {"sp", "app"}}


def _words(run: str) -> list[str]:
    try:
        return shlex.split(run)
    except ValueError:
        return []  # catalog.py reports a step that cannot be split


def _flag(words: list[str], flag: str) -> str | None:
    return next((words[i + 1] for i, w in enumerate(words[:-1]) if w == flag), None)


def created(run: str) -> tuple[str, str] | None:
    """(kind, name) of the directory object a step creates, or None."""
    words = _words(run)
    if words[1:2] == ["ad"] and words[3:4] == ["create"] and words[2] in AD_CREATE:
        name = _flag(words, AD_CREATE[words[2]][0])
        return (words[2], name.rsplit("/", 1)[-1]) if name else None
    if words[1:2] == ["rest"] and (_flag(words, "--method") or "").lower() == "post":
        url = _flag(words, "--url") or _flag(words, "--uri") or ""
        kind = REST_KINDS.get(url.removeprefix(GRAPH_URL).rstrip("/")) if url.startswith(GRAPH_URL) else None
        try:
            body = json.loads(_flag(words, "--body") or "{}")
        except ValueError:
            body = {}
        name = body.get("userPrincipalName") or body.get("displayName") if isinstance(body, dict) else None
        return (kind, name) if kind and isinstance(name, str) else None
    return None


def deletes(run: str) -> set[str]:
    """The kinds of directory object a step deletes ('group', 'app', ...)."""
    words = _words(run)
    if words[1:2] == ["ad"] and words[3:4] == ["delete"] and words[2] in AD_CREATE:
        return {words[2]}
    if words[1:2] == ["rest"] and (_flag(words, "--method") or "").lower() == "delete":
        url = (_flag(words, "--url") or _flag(words, "--uri") or "").removeprefix(GRAPH_URL)
        kind = REST_KINDS.get(url.split("/", 1)[0])
        return {kind} if kind else set()
    return set()


def cleanup_problems(doc: dict) -> list[tuple[str, str]]:
    """(where, what to change) for each object a deploy step creates that no cleanup step deletes."""
    cleanup = [(deletes(s["run"]), s["run"]) for s in doc["phases"]["cleanup"]]
    out = []
    for i, step in enumerate(doc["phases"]["deploy"]):
        made = created(step["run"])
        if made is None:
            continue
        kind, name = made
        if not any(kinds & DELETED_BY[kind] and name in run for kinds, run in cleanup):
            out.append((f"phases.deploy[{i}].run",
                        f"creates the directory object {name!r} ({kind}), which outlives the resource group, but "
                        f"no cleanup step deletes it: add one such as `{AD_CREATE[kind][1].format(name)}`"))
    return out
