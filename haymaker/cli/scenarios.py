"""`haymaker scenarios list|show|validate`: the scenario catalog."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from haymaker.cli.common import emit_json, err, out

app = typer.Typer(help="The scenario catalog.", no_args_is_help=True)


@app.command("list")
def scenarios_list(
    area: Optional[str] = typer.Option(None, help="Only this area."),
    as_json: bool = typer.Option(False, "--json", help="Write JSON to stdout."),
) -> None:
    """List the catalog."""
    from haymaker.errors import InvalidInput
    from scenarios.catalog import AREAS, load_catalog

    if area is not None and area not in AREAS:
        raise InvalidInput(f"area {area!r} is unknown: use one of {', '.join(AREAS)}")
    items = load_catalog().by_area(area)
    if as_json:
        emit_json([{"name": s.name, "area": s.area, "title": s.title,
                    "estimated_hourly_cost_usd": s.estimated_hourly_cost_usd} for s in items])
        return
    from haymaker.tables import print_table

    rows = [{"name": s.name, "area": s.area, "USD/h": f"{s.estimated_hourly_cost_usd:.2f}", "title": s.title,
             "roles": ", ".join(s.azure_roles)} for s in items]
    print_table(out, ["name", "area", "USD/h", "title", "roles"], rows, right=("USD/h",),
                give_way=[("roles", 0), ("title", 12), ("title", 0)])


@app.command("show")
def scenarios_show(name: str, as_json: bool = typer.Option(False, "--json", help="Write JSON to stdout.")) -> None:
    """Show one scenario: its team, rights and steps."""
    from dataclasses import asdict

    from haymaker.errors import InvalidInput
    from haymaker.selection import unknown_name_message
    from scenarios.catalog import load_catalog

    catalog = load_catalog()
    if name not in catalog:
        raise InvalidInput(unknown_name_message(name, catalog))
    s = catalog[name]
    if as_json:
        emit_json(asdict(s))
        return
    out.print(f"[bold]{s.name}[/bold] — {s.title} ({s.area})")
    out.print(s.description)
    c = s.company
    out.print(f"company: {c['name']} ({c['industry']}, {c['employees']} people), team {c['team']}")
    out.print(f"Azure roles at its resource group: {', '.join(s.azure_roles)}")
    if s.graph_permissions:
        out.print(f"Graph permissions: {', '.join(s.graph_permissions)}")
    out.print(f"services: {', '.join(s.services)}")
    out.print(f"agent: {s.cpu} vCPU, {s.memory}; scenario resources ~${s.estimated_hourly_cost_usd:.2f}/h")
    for phase, steps in s.phases.items():
        out.print(f"[bold]{phase}[/bold]")
        for step in steps:
            out.print(f"  {step.name}: {step.run}", markup=False, highlight=False)


@app.command("validate")
def scenarios_validate(
    paths: List[Path] = typer.Argument(None, help="Files to check (default: the catalog)."),
    selection: Optional[Path] = typer.Option(None, help="Selection file (default: scenarios/selection.yaml)."),
) -> None:
    """Check what a pull request can change: the scenario files, selection.yaml, every scenario against every
    environment's policies and locations, each size's dearest run against the budget, and, with the local
    Azure CLI (.azcli), every az command. Exit 1 listing every problem."""
    from haymaker import azparse
    from haymaker.draws import check, read_tree
    from haymaker.errors import CatalogError, InvalidInput
    from scenarios.catalog import Catalog, check_files, display_path, scenario_files

    if paths and selection:
        raise InvalidInput("--selection checks a selection against the catalog: name no files with it")
    files = list(paths) if paths else scenario_files()
    scenarios, errors = check_files(files)
    shown = {p.stem: display_path(p) for p in files}
    skipped = azparse.skipped_because()
    if skipped is None:
        refused = azparse.refused(scenarios.values())
        errors += [f"{shown[name]}: phases.{phase}[{i}].run: az refuses it: {why}"
                   for (name, phase, i), why in sorted(refused.items())]
    if skipped:
        err.print(f"az commands not checked: {skipped}", markup=False, highlight=False)
    if errors:
        raise CatalogError(errors)
    # Only the catalog has a selection; files named on the command line are judged on their own.
    tree = read_tree(catalog=Catalog(scenarios) if paths else None, selection=selection, with_selection=not paths)
    judged, problems = check(tree)
    if problems:
        raise CatalogError([p.line() for p in problems])
    out.print(f"{len(scenarios)} scenario files valid", highlight=False, soft_wrap=True)
    if tree.selection is not None:
        out.print(f"{selection or 'scenarios/selection.yaml'} valid: every size can be drawn within the budget of "
                  f"${tree.selection.budget_usd:,.2f} in {', '.join(tree.environments)}", highlight=False, soft_wrap=True)
    out.print(f"every scenario passes every mandatory policy in {', '.join(sorted(judged))}", highlight=False,
              soft_wrap=True)
    if not skipped:
        out.print("az commands: every step parsed by the local Azure CLI", highlight=False, soft_wrap=True)


@app.command("diff")
def scenarios_diff(
    base: str = typer.Option(..., "--base", help="Git revision to compare with, such as origin/main or HEAD^1."),
    markdown_file: Optional[Path] = typer.Option(None, "--markdown", help="Also write a pull-request section here."),
    as_json: bool = typer.Option(False, "--json", help="Write JSON to stdout."),
) -> None:
    """What a catalog change does to the Activity Log: each changed scenario's expected operations."""
    from haymaker.catalogdiff import base_documents, compare, head_documents, markdown, trust_changes

    before, after = base_documents(base), head_documents()
    changes, asks = compare(before, after), trust_changes(before, after)
    if markdown_file is not None:
        markdown_file.write_text(markdown(changes, base, asks))
    if as_json:
        emit_json({"base": base, "changes": [c.as_dict() for c in changes], "one_time_steps": asks})
        return
    for line in asks:
        out.print(line.replace("**", ""), markup=False, highlight=False)
    if not changes:
        out.print(f"no scenario file differs from {base}")
    for c in changes:
        out.print(f"{c.name}: {c.status}, expected operations {c.before} -> {c.after}"
                  + (f"; new: {', '.join(c.new)}" if c.new else "")
                  + (f"; no longer: {', '.join(c.gone)}" if c.gone else ""), markup=False, highlight=False)
