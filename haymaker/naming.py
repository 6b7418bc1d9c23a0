"""Physical Azure names, all derived from the run id and the scenario name.

Rules checked here (and by property tests for every scenario and run id):
- resource group: 1-90 chars of letters, digits, '-', '_', '.', '(', ')'; not ending in '.'
- Container Apps job: 2-32 chars, lowercase letters, digits and '-', starts with a letter, ends
  alphanumeric, no '--'
- Entra display name: up to 120 chars
"""

from __future__ import annotations

import hashlib
import re
import uuid

JOB_NAME_RE = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,30}[a-z0-9]$")
RESOURCE_GROUP_RE = re.compile(r"^[-\w.()]{0,89}[-\w()]$")

# Namespace for deterministic role assignment names (a fixed, project-owned UUID).
_ASSIGNMENT_NS = uuid.UUID("6f1d2f6e-5b0e-4c2a-9a57-6861796d616b")


def short_hash(*parts: str, length: int = 6) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def resource_group_name(run_id: str, scenario: str) -> str:
    return f"haymaker-{run_id}-{scenario}"[:90]


def run_resource_group_name(run_id: str) -> str:
    """The run's control group: it holds the agent jobs, out of every agent's reach."""
    return f"haymaker-{run_id}-run"


def app_display_name(run_id: str, scenario: str) -> str:
    return f"haymaker-{run_id}-{scenario}"


def job_name(run_id: str, scenario: str) -> str:
    """``hm-<area/number prefix>-<hash>``: 2-32 chars, unique per (run, scenario).

    The run id alone is 20 chars, so the name keeps a readable scenario prefix and a hash of
    run id + scenario that keeps two truncated names apart.
    """
    slug = re.sub(r"[^a-z0-9-]", "", scenario.lower()).strip("-")
    digest = short_hash(run_id, scenario, length=8)
    room = 32 - len("hm--") - len(digest)
    prefix = slug[:room].rstrip("-")
    name = f"hm-{prefix}-{digest}" if prefix else f"hm-{digest}"
    return re.sub("-{2,}", "-", name)


def unique_suffix(run_id: str, scenario: str) -> str:
    """8 lowercase alphanumerics for globally unique names the agent creates (``${UNIQUE}``)."""
    return short_hash("unique", run_id, scenario, length=8)


def role_assignment_name(run_id: str, scenario: str, role_guid: str) -> str:
    """Role assignment names are GUIDs; derive them so a re-run of ``up`` is idempotent."""
    return str(uuid.uuid5(_ASSIGNMENT_NS, f"{run_id}/{scenario}/{role_guid}"))


def is_valid_job_name(name: str) -> bool:
    return bool(JOB_NAME_RE.match(name))


def is_valid_resource_group_name(name: str) -> bool:
    return bool(RESOURCE_GROUP_RE.match(name))
