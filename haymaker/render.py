"""How a plan is shown: a terminal table, or Markdown for a pull-request comment."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

from haymaker.plan import Plan, resource_json
from haymaker.runspec import iso
from scenarios.expect import expected_count

MARKDOWN_LIMIT = 60_000


def short_type(token: str) -> str:
    """``azure-native:app:Job`` -> ``app:Job``; ``azuread:index/application:Application`` -> ``azuread:Application``."""
    pkg, _, rest = token.partition(":")
    module, _, name = rest.partition(":")
    return f"azuread:{name}" if pkg == "azuread" else f"{module}:{name}"


def print_table(plan: Plan, console: Console) -> None:
    s = plan.spec
    console.print(f"[bold]Run {s.run_id}[/bold]  stack {s.stack_name}  environment {s.environment}  "
                  f"{len(s.scenarios)} scenarios  {s.duration_hours} h  expires {iso(s.expires_at)}")
    table = Table(show_lines=False)
    for col in ("scenario", "part", "type", "Azure name"):
        table.add_column(col, overflow="fold")
    for r in plan.resources_of(None):
        j = resource_json(r)
        table.add_row("(run)", j["name"], short_type(j["type"]), j["physical_name"] or "")
    for name in s.scenarios:
        for i, r in enumerate(plan.resources_of(name)):
            j = resource_json(r)
            # Children are named <scenario>-<part>; the scenario is in the first column already.
            table.add_row(name if i == 0 else "", j["name"].removeprefix(f"{name}-"), short_type(j["type"]),
                          j["physical_name"] or "")
    console.print(table)
    _print_totals(plan, console)


def _print_totals(plan: Plan, console: Console) -> None:
    console.print(f"resources: {len(plan.custom_resources)}   cost: ${plan.cost_usd:.2f} "
                  f"(agents ${plan.agents_usd:.2f} + scenario resources "
                  f"${plan.scenario_resources_usd:.2f}; budget ${plan.budget_usd:.2f})")
    console.print(f"deploy critical path: ~{plan.critical_path_seconds} s ({' -> '.join(plan.critical_path)})")
    if not plan.violations:
        console.print("policy: no violations")


def _mermaid_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def mermaid(plan: Plan, scenario: str) -> str:
    resources = plan.resources_of(scenario)
    urns = {r.urn for r in resources}
    run_level = {r.urn: r for r in plan.resources_of(None)}
    lines = ["```mermaid", "graph LR"]
    for r in resources + list(run_level.values()):
        lines.append(f'  {_mermaid_id(r.name)}["{short_type(r.type)}<br/>{r.name}"]')
    for r in resources:
        for dep in r.dependencies:
            if dep in urns or dep in run_level:
                dep_name = dep.rsplit("::", 1)[1]
                lines.append(f"  {_mermaid_id(dep_name)} --> {_mermaid_id(r.name)}")
    lines.append("```")
    return "\n".join(lines)


def _violations_markdown(plan: Plan) -> list[str]:
    if not plan.violations:
        return []
    lines = ["### Policy violations", "", "| policy | resource | enforcement | message |", "|---|---|---|---|"]
    for v in plan.violations[:50]:
        message = v.message.replace("|", r"\|")
        lines.append(f"| `{v.policy}` | `{v.resource}` | {v.enforcement} | {message} |")
    if len(plan.violations) > 50:
        lines.append(f"| … | {len(plan.violations) - 50} more | | |")
    return lines + [""]


def markdown(plan: Plan) -> str:
    s = plan.spec
    out = [
        f"## HayMaker plan: run `{s.run_id}` ({s.environment})",
        "",
        f"**{len(s.scenarios)} scenarios**, {len(plan.custom_resources)} resources, {s.duration_hours} h "
        f"(expires {iso(s.expires_at)}), trigger `{s.trigger}`"
        + (f", size `{s.size}`" if s.size else ""),
        "",
        f"- Estimated cost: **${plan.cost_usd:.2f}** (agents ${plan.agents_usd:.2f}, scenario resources "
        f"${plan.scenario_resources_usd:.2f}; budget ${plan.budget_usd:.2f})",
        f"- Estimated deploy critical path: **~{plan.critical_path_seconds} s** "
        f"({' → '.join(f'`{n}`' for n in plan.critical_path)})",
        f"- Policy: {'no violations' if not plan.violations else str(len(plan.violations)) + ' violations'}",
        "",
        *_violations_markdown(plan),
        f"### Resources of `{s.scenarios[0]}`",
        "",
        mermaid(plan, s.scenarios[0]),
        "",
        "### All scenarios",
        "",
        "| scenario | area | resources | expected ops | roles | resource group | job | cost (USD) |",
        "|---|---|---:|---:|---|---|---|---:|",
    ]
    for name, cost in zip(s.scenarios, plan.costs):
        sc = plan.catalog[name]
        resources = [resource_json(r) for r in plan.resources_of(name)]
        rg = next((r["physical_name"] for r in resources if r["type"].endswith("ResourceGroup")), "")
        job = next((r["physical_name"] for r in resources if r["type"].endswith(":Job")), "")
        out.append(f"| `{name}` | {sc.area} | {len(resources)} | {expected_count(sc)} | {', '.join(sc.azure_roles)} "
                   f"| `{rg}` | `{job}` | {cost.total_usd:.2f} |")
    text = "\n".join(out) + "\n"
    if len(text) > MARKDOWN_LIMIT:  # a hard guard; 50 scenarios come to well under it
        text = text[: MARKDOWN_LIMIT - 200] + "\n\n_(truncated to fit a pull-request comment)_\n"
    return text
