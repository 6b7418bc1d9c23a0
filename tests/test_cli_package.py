"""The `haymaker` command as a package: no import cycle, nothing heavy at import time, a fast start."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

import haymaker.cli
from tests.azurite import azurite, fresh_service  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("haymaker", "scenarios", "stacks", "components", "policies")
CLI_MODULES = sorted(f"haymaker.cli.{m.name}" for m in pkgutil.iter_modules(haymaker.cli.__path__)
                     if m.name != "__main__")
PROVIDER_SDKS = ("pulumi_azure_native", "pulumi_azuread")
HAYMAKER = Path(sys.executable).parent / "haymaker"  # the console script pyproject.toml declares


def module_files() -> dict[str, Path]:
    files = {}
    for root in FIRST_PARTY:
        for path in (REPO / root).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def import_graph() -> dict[str, set[str]]:
    """First-party module -> the first-party modules it imports, inside functions too. Importing a
    submodule also runs its package's __init__ first; Python orders that itself, so it is no edge."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cli_module_is_part_of_an_import_cycle():
    graph = import_graph()
    assert set(CLI_MODULES) <= set(graph)
    involved = [c for c in cycles(graph) if any(m == "haymaker.cli" or m.startswith("haymaker.cli.") for m in c)]
    assert involved == []


def test_the_cycle_check_sees_imports_inside_functions():
    """The old cycle went through an import inside a function; the graph must see such imports."""
    graph = import_graph()
    assert "haymaker.plan" in graph["haymaker.cli.plan"]  # imported inside `plan()` only
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


ORDERS = [[first] + [m for m in CLI_MODULES if m != first] for first in CLI_MODULES] + [CLI_MODULES[::-1]]
HEAVY = PROVIDER_SDKS + ("pulumi", "pulumi_policy", "azure", "yaml", "jsonschema")


@pytest.mark.parametrize("order", ORDERS, ids=[o[0].rsplit(".", 1)[1] + ("-reversed" if o == ORDERS[-1] else "")
                                              for o in ORDERS])
def test_every_cli_module_imports_first_in_a_fresh_interpreter(order):
    script = (
        "import importlib, json, sys\n"
        f"for name in {order!r}:\n"
        "    importlib.import_module(name)\n"
        "import typer, haymaker.cli\n"
        "print(json.dumps({'commands': sorted(typer.main.get_command(haymaker.cli.app).commands),\n"
        "                  'loaded': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["commands"] == sorted(typer.main.get_command(haymaker.cli.app).commands)  # all, in any order
    # No work at import time beyond the commands' own: the SDKs load only when a command runs.
    assert [m for m in doc["loaded"] if m in HEAVY] == []


def imported_modules(args: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the console script with PYTHONPROFILEIMPORTTIME (python -X importtime); the modules it imported."""
    done = subprocess.run([str(HAYMAKER), *args], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"})
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "haymaker.cli" in modules, done.stderr[-2000:]
    return done, modules


def provider_sdks(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in PROVIDER_SDKS)


def test_help_imports_no_provider_sdk():
    done, modules = imported_modules(["--help"])
    assert done.returncode == 0 and "plan" in done.stdout
    assert provider_sdks(modules) == []


def test_runs_imports_no_provider_sdk(azurite, tmp_path):  # noqa: F811 - the fixture imported above
    from haymaker.ledger import Ledger
    from tests.test_ledger import make_run

    Ledger(fresh_service(azurite), tmp_path / "spool.jsonl").upsert_run(make_run("20261121t0600z-7f3a", "verified"))
    done, modules = imported_modules(["runs", "--json"], {
        "HAYMAKER_LEDGER_CONNECTION_STRING": azurite.connection_string,
        "HAYMAKER_LEDGER_SPOOL": str(tmp_path / "spool.jsonl"), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["run_id"] for r in json.loads(done.stdout)["runs"]] == ["20261121t0600z-7f3a"]
    assert "azure.data.tables" in modules  # the command did read the ledger
    assert provider_sdks(modules) == []


def test_version_names_haymaker_pulumi_and_the_providers_without_importing_them():
    done, modules = imported_modules(["--version"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"{name} {version(name)}" for name in
                                        ("haymaker", "pulumi", "pulumi-azure-native", "pulumi-azuread")]
    assert provider_sdks(modules) == [] and "pulumi" not in modules
    locked = {p["name"]: p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert [line.split()[1] for line in done.stdout.splitlines()[1:]] == [
        locked["pulumi"], locked["pulumi-azure-native"], locked["pulumi-azuread"]]  # what the .venv was built from
