"""CODEOWNERS: every trust-sensitive path needs the security owners' review (issue 16).

GitHub applies the last matching line; the matcher below follows its rules for the pattern forms the
file uses (``*``, ``/dir/``, ``/file``, ``/glob*``), and refuses any other form so it cannot silently
misread one. Ref: docs.github.com, "About code owners" (CODEOWNERS syntax).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODEOWNERS = ROOT / ".github" / "CODEOWNERS"
SECURITY = "@your-org/haymaker-security"
# Paths whose change alters what agents run or which rights anything holds.
SENSITIVE = ["scenarios/compute-01-any.yaml", "scenarios/selection.yaml", "scenarios/steps.py",
             "policies/__main__.py", "policies/config.prod.json", "components/agent.py", "stacks/run.py",
             "haymaker/permissions.py", "haymaker/agent/render.py", ".github/workflows/run.yml",
             ".github/CODEOWNERS", "Dockerfile", "Pulumi.prod.yaml", "haymaker/trust.py"]


def rules(text: str) -> list[tuple[str, list[str]]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pattern, *owners = line.split()
            out.append((pattern, owners))
    return out


def matches(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    if not pattern.startswith("/"):
        raise ValueError(f"{pattern!r}: this test reads only anchored patterns; anchor it with '/'")
    pattern = pattern[1:]
    if pattern.endswith("/"):
        return path.startswith(pattern)
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")  # '*' stops at '/'


def owners_of(path: str, text: str) -> list[str]:
    found: list[str] = []
    for pattern, owners in rules(text):
        if matches(pattern, path):
            found = owners
    return found


@pytest.mark.parametrize("path", SENSITIVE)
def test_trust_sensitive_paths_need_the_security_owners(path):
    assert owners_of(path, CODEOWNERS.read_text()) == [SECURITY]


def test_every_line_names_something_that_exists_and_an_owner():
    for pattern, owners in rules(CODEOWNERS.read_text()):
        assert owners and all(o.startswith("@") for o in owners), pattern
        if pattern != "*":
            assert list(ROOT.glob(pattern.strip("/"))), f"{pattern} matches nothing in the repository"


def test_dropping_the_scenarios_line_leaves_the_catalog_to_the_default_owners():
    """The matcher can fail: without its line, the catalog falls back to the broad default."""
    text = "\n".join(line for line in CODEOWNERS.read_text().splitlines() if not line.startswith("/scenarios/"))
    assert owners_of("scenarios/selection.yaml", text) != [SECURITY]


def test_the_docs_tell_the_user_to_set_the_placeholder_team():
    ops = (ROOT / "docs" / "operations.md").read_text()
    assert "@your-org/haymaker-security" in ops and "Require review from Code Owners" in ops
