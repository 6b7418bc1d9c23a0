"""The README and docs/ as a reader follows them: every link to a repository path opens, every anchor
names a heading that exists, every section a message or a workflow points to exists, every `haymaker`
command and option the docs show exists, and nothing points outside the repository to ``../shared``
(a clone does not have it: the architecture is docs/architecture.md).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.test_workflows import WORKFLOWS_DIR, command_tree, haymaker_invocations

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
CODE_SPAN_ANY = re.compile(r"`([^`]+)`")  # a code span may wrap onto the next line
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def prose(text: str) -> str:
    """The text a reader sees as prose: code blocks and code spans removed (a link inside them is text)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 … for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Each link of ``path`` to a repository path (or to an anchor) that does not resolve, with why."""
    problems = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: …: not a repository path
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        try:
            dest.relative_to(ROOT)
        except ValueError:
            problems.append(f"{_name(path)}: ({target}) leaves the repository")
            continue
        if not dest.exists():
            problems.append(f"{_name(path)}: ({target}) names no file or directory")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(f"{_name(path)}: ({target}) names no heading of {_name(dest)}")
    return problems


# --- links ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_every_link_to_a_repository_path_resolves(path):
    assert broken_links(path) == []


def test_the_docs_link_to_each_other():
    # The README is where a reader starts: it leads to every page of docs/, and no page is an orphan.
    readme = LINK.findall(prose((ROOT / "README.md").read_text(encoding="utf-8")))
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in readme if t.startswith("docs/")}
    assert {p.resolve() for p in DOCS[1:]} <= linked


def test_a_broken_link_or_anchor_is_caught(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Top\n\n## Run lifecycle: `up`, `reap`, `down` (Automation API)\n"
                                            "\n## Top\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/b.md#run-lifecycle-up-reap-down-automation-api) [ok](docs/b.md#top-1) [ok](#here)\n"
                    "[gone](docs/c.md) [bad anchor](docs/b.md#nowhere) [out](../x.md) [web](https://example.com/)\n"
                    "`[in code](docs/none.md)`\n\n```\n[in a block](docs/none.md)\n```\n\n## Here\n")
    assert broken_links(page) == ["README.md: (docs/c.md) names no file or directory",
                                  "README.md: (docs/b.md#nowhere) names no heading of docs/b.md",
                                  "README.md: (../x.md) leaves the repository"]


def test_slugs_follow_github():
    assert slug("Limits: what cannot be verified here") == "limits-what-cannot-be-verified-here"
    assert slug("`haymaker try`: one scenario without the platform") == "haymaker-try-one-scenario-without-the-platform"
    assert slug("Entra audit logs (one-time, before the Graph identities' grants)") == \
        "entra-audit-logs-one-time-before-the-graph-identities-grants"
    assert slug("HayMaker — architecture") == "haymaker--architecture"


# --- pointers by section name, from code, workflows and docs --------------------------------------------

SECTION_POINTER = re.compile(r"\b(README(?:\.md)?|docs/[\w-]+\.md)\s*[,:]\s*\\?\"([^\"\\]+)\\?\"")


UNTRACKED = {".git", ".venv", "node_modules", ".azcli", ".pulumi-state", ".haymaker", "__pycache__", ".pytest_cache"}


def tracked_files() -> list[Path]:
    """The repository's files: git's list in a clone; in a copy without git (scripts/catalog_edits.sh), every
    file but the tooling and state that git ignores."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode == 0:
        return [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    return [p for p in ROOT.rglob("*") if p.is_file() and not UNTRACKED & set(p.relative_to(ROOT).parts)]


def section_pointers(text: str) -> list[tuple[str, str]]:
    return [("README.md" if doc.startswith("README") else doc, title) for doc, title in SECTION_POINTER.findall(text)]


def test_every_section_a_file_points_to_by_name_exists():
    found = 0
    for path in tracked_files():
        if path.suffix not in (".py", ".md", ".yml", ".yaml", ".sh") or not path.is_file():
            continue
        for doc, title in section_pointers(path.read_text(encoding="utf-8")):
            found += 1
            headings = [h.replace("`", "").lower() for h in HEADING.findall((ROOT / doc).read_text(encoding="utf-8"))]
            assert any(h.startswith(title.lower()) for h in headings), \
                f"{_name(path)} points to {doc}, \"{title}\", which has no such section"
    assert found >= 5  # the workflows' issue texts, doctor's fixes, the placeholders' messages


def test_a_section_pointer_is_read_as_written():
    assert section_pointers('echo "What to do: docs/operations.md, \\"Drift\\"."') == [("docs/operations.md", "Drift")]
    assert section_pointers('(README: "Keys you must edit")') == [("README.md", "Keys you must edit")]


# --- nothing outside the repository ---------------------------------------------------------------------

# .ci/run is the CI runner's entry point: its comment describes the CI machine's layout, it reads nothing there.
# This file names what it looks for.
NOT_A_POINTER = {".ci/run", "tests/test_docs.py"}


def test_no_tracked_file_points_to_shared():
    pointing = [_name(p) for p in tracked_files()
                if p.is_file() and _name(p) not in NOT_A_POINTER and b"../shared" in p.read_bytes()]
    assert pointing == [], "point to docs/architecture.md instead of ../shared"


# --- commands -------------------------------------------------------------------------------------------

def doc_invocations(text: str) -> list[list[str]]:
    """Argument lists of every `haymaker …` the text shows, in code blocks and in code spans (tables
    included: `[--resources\\|-v]` is the options --resources and -v)."""
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    spans = [s.replace("\n", " ") for s in CODE_SPAN_ANY.findall(FENCE.sub("", text)) if "haymaker " in s]
    calls = []
    for chunk in [*blocks, *spans]:
        for args in haymaker_invocations(chunk.replace("\\|", " ")):
            words = [w.strip("[]\\,") for w in args]
            calls.append([w for w in words if w and not w.startswith(("<", "$")) and w not in ("…", "...")])
    return [c for c in calls if c]


def check_command(root, args: list[str], where: str) -> None:
    """The command exists and takes each option shown (group options, like --version, at their level)."""
    command, rest = root, list(args)
    while isinstance(getattr(command, "commands", None), dict):
        if rest and rest[0].startswith("-"):
            break
        assert rest, f"{where}: `haymaker` needs a command"
        name = rest.pop(0)
        assert name in command.commands, f"{where}: `haymaker {name}` does not exist"
        command = command.commands[name]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    for token in rest:
        if token.startswith("-") and not token.startswith("-$") and token != "-":
            assert token.split("=")[0] in known, f"{where}: `{command.name}` has no option {token}"


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_every_haymaker_command_in_the_docs_exists(path):
    root = command_tree()
    text = path.read_text(encoding="utf-8")
    calls = doc_invocations(text)
    if "haymaker " in text:
        assert calls, f"{_name(path)} names haymaker commands, none was read"
    if path.name in ("README.md", "commands.md", "lifecycle.md", "operations.md"):
        assert len(calls) > 10, f"{_name(path)}: only {len(calls)} commands read"
    for args in calls:
        check_command(root, args, _name(path))


def test_a_command_or_option_that_does_not_exist_is_caught():
    root = command_tree()
    table = "| `haymaker plan [--size S] [--resources\\|-v] [--no-such]` | … |"
    with pytest.raises(AssertionError, match="has no option --no-such"):
        for args in doc_invocations(table):
            check_command(root, args, "t")
    with pytest.raises(AssertionError, match="`haymaker plann` does not exist"):
        for args in doc_invocations("```bash\n.venv/bin/haymaker plann --json\n```\n"):
            check_command(root, args, "t")
    check_command(root, ["--version"], "t")


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_the_docs_name_only_workflows_and_scripts_that_exist(path):
    text = path.read_text(encoding="utf-8")
    for name in set(re.findall(r"(?<![.\w/-])([a-z_-]+\.yml)\b", text)):
        assert (WORKFLOWS_DIR / name).exists(), f"{_name(path)}: {name}"
    for script in set(re.findall(r"scripts/([a-z_]+\.(?:sh|py))", text)):
        assert (ROOT / "scripts" / script).exists(), f"{_name(path)}: scripts/{script}"
