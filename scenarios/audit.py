"""What a directory-plane step leaves in the Entra audit log, and the checks on it.

A ``plane: graph`` step that changes something declares the audit activities it causes, spelled as
Entra writes them in ``activityDisplayName`` (``AuditLogs.ActivityDisplayName`` in the workspace):
``audit: ["Add application"]``. The names come from the Microsoft Entra audit log activity reference
(https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities; MicrosoftDocs/
entra-docs docs/identity/monitoring-health/reference-audit-activities.md), for the categories a Graph
scenario can reach through Core Directory, and from Conditional Access.

Entra's own spelling is not always the reference's: the reference writes "Update application -
Certificates and secrets management" where logs are known to carry an en dash and a trailing space.
Names are therefore compared folded (``fold``): case, dashes and spacing do not count.
"""

from __future__ import annotations

import difflib
import re

from scenarios.expect import az_step, changes_something, command_plane

REFERENCE = "https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities"

# Core Directory, by audit category (the reference's table), then Conditional Access.
ACTIVITIES: dict[str, tuple[str, ...]] = {
    "AdministrativeUnit": (
        "Add administrative unit", "Add member to administrative unit",
        "Add member to restricted management administrative unit", "Delete administrative unit",
        "Hard Delete administrative unit", "Remove member from administrative unit",
        "Remove member from restricted management administrative unit", "Restore administrative unit",
        "Update administrative unit"),
    "ApplicationManagement": (
        "Add app role assignment to service principal", "Add application", "Add delegated permission grant",
        "Add owner to application", "Add owner to service principal", "Add policy to application",
        "Add policy to service principal", "Add service principal", "Add service principal credentials",
        "Consent to application", "Delete application", "Hard Delete application", "Hard delete service principal",
        "Remove app role assignment from service principal", "Remove delegated permission grant",
        "Remove owner from application", "Remove owner from service principal", "Remove policy from application",
        "Remove policy from service principal", "Remove service principal", "Remove service principal credentials",
        "Restore application", "Restore service principal", "Restore consent", "Set verified publisher",
        "Unset verified publisher", "Update application",
        "Update application - Certificates and secrets management", "Update external secrets",
        "Update service principal"),
    "GroupManagement": (
        "Add app role assignment to group", "Add group", "Add member to group", "Add owner to group",
        "Assign label to group", "Create group settings", "Delete group", "Delete group settings",
        "Hard Delete group", "Remove app role assignment from group", "Remove label from group",
        "Remove member from group", "Remove owner from group", "Restore group", "Set group license",
        "Update group", "Update group settings"),
    "RoleManagement": (
        "Add eligible member to role", "Add member to role", "Add role assignment to role definition",
        "Add role definition", "Add scoped member to role", "Delete role definition", "Remove eligible member from role",
        "Remove member from role", "Remove role assignment from role definition", "Remove scoped member from role",
        "Update role", "Update role definition"),
    "UserManagement": (
        "Add user", "Change user license", "Change user password", "Delete user", "Disable account", "Enable account",
        "Hard Delete user", "Remove app role assignment from user", "Reset password", "Restore user",
        "Set force change user password", "Set user manager", "Update user"),
    "Policy": (
        "Add owner to policy", "Add policy", "Delete policy", "Remove owner from policy", "Remove policy credentials",
        "Update policy", "Add Conditional Access policy", "Delete Conditional Access policy",
        "Update Conditional Access policy", "Add named location", "Delete named location", "Update named location"),
}


def fold(name: str) -> str:
    """An activity name as compared: lower case, any dash a hyphen, single spaces, no spaces at the ends."""
    return " ".join(re.sub(r"\s*[-\u2010-\u2015]\s*", " - ", name).split()).casefold()


KNOWN = {fold(name): name for names in ACTIVITIES.values() for name in names}


def audit_problems(step: dict) -> list[tuple[str, str]]:
    """(field, message) for what is wrong with one schema-valid step's ``audit``."""
    audit = step.get("audit")
    found = az_step(step)
    if found is None:
        return []
    argv, command = found
    graph = command_plane(argv) == "graph"
    mutates = changes_something(argv)
    if audit is not None and not graph:
        return [("audit", f"{command!r} does not act on Microsoft Graph: only a plane: graph step causes Entra audit "
                          "activities: remove audit")]
    if not graph or mutates is None or (mutates and (step.get("plane") != "graph" or step.get("expect"))):
        return []  # the expect checks report an unknown verb or a wrong plane first
    if not mutates:
        if audit:
            return [("audit", f"{command!r} only reads: Entra records no audit activity for reads: remove audit")]
        return []
    if not audit:
        if step.get("expect_failure") and audit == []:
            return []  # a mistake refused before anything reaches Graph
        return [("audit", f"{command!r} changes the directory but declares no audit: add audit: [<activity>, …] with "
                          "the Entra audit activities it causes, as Entra names them (e.g. \"Add application\"; "
                          "scenarios/audit.py lists them)")]
    return [(f"audit[{j}]", _unknown(name)) for j, name in enumerate(audit) if fold(name) not in KNOWN]


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(fold(name), KNOWN, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(KNOWN[c]) for c in close)}?" if close else f"see {REFERENCE}"
    return (f"unknown Entra audit activity {name!r}: use the activity as Entra logs it (scenarios/audit.py, from the "
            f"audit log activity reference); {hint}")


def expected_audit(scenario) -> dict[str, dict[str, tuple[str, ...]]]:
    """``{phase: {step name: (activity, …)}}`` for every step of a loaded Scenario."""
    return {phase: {step.name: tuple(step.audit) for step in steps} for phase, steps in scenario.phases.items()}
