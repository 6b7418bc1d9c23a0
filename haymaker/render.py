"""How a plan is shown: a terminal table, or Markdown for a pull-request comment."""

from __future__ import annotations

import re

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """`plan --resources`: one row per resource, with its Azure name."""
    s = plan.spec
    _print_header(plan, console)
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


# The scenario table's columns that may be shortened with an ellipsis, in the order they give way,
# and the width each keeps: the roles go first, the job name next, the scenario name last.
SHRINK_ORDER = (("roles", 10), ("job", 16), ("scenario", 20))


def print_summary(plan: Plan, console: Console) -> None:
    """The default view: a header, one row per scenario and a footer. No cell ever wraps: what does not
    fit the terminal is shortened with an ellipsis (`--resources` and `--json` show everything)."""
    _print_header(plan, console)
    console.print(scenario_table(plan, console.width))
    _print_totals(plan, console)


def scenario_table(plan: Plan, width: int) -> Table:
    rows = []
    for name, cost in zip(plan.spec.scenarios, plan.costs):
        resources = [resource_json(r) for r in plan.resources_of(name)]
        job = next((r["physical_name"] or "" for r in resources if r["type"] == "azure-native:app:Job"), "")
        rows.append({"scenario": name, "area": plan.catalog[name].area, "res": str(len(resources)),
                     "roles": ", ".join(plan.catalog[name].azure_roles), "job": job, "USD": f"{cost.total_usd:.2f}"})
    columns = ("scenario", "area", "res", "roles", "job", "USD")
    natural = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    limits = _shrink(natural, width - 2 * (len(columns) - 1))  # two spaces between columns
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for c in columns:
        table.add_column(c, no_wrap=True, overflow="ellipsis", max_width=limits.get(c),
                         justify="right" if c in ("res", "USD") else "left")
    for r in rows:
        table.add_row(*(Text(r[c]) for c in columns))
    return table


def _shrink(natural: dict[str, int], room: int) -> dict[str, int]:
    """Widths for the columns that must give way so that the row fits ``room`` characters."""
    excess = sum(natural.values()) - room
    limits = {}
    for column, keep in SHRINK_ORDER:
        if excess <= 0:
            break
        cut = min(excess, max(natural[column] - keep, 0))
        limits[column] = natural[column] - cut
        excess -= cut
    return limits


def _print_header(plan: Plan, console: Console) -> None:
    s = plan.spec
    count = f"{len(s.scenarios)} scenario" + ("s" if len(s.scenarios) != 1 else "")
    _print_fitted(console, [f"[bold]Run {s.run_id}[/bold]", f"environment {s.environment}",
                            f"size {s.size}" if s.size else "on demand", count, f"{s.duration_hours} h",
                            f"expires {iso(s.expires_at)}"])


def _print_fitted(console: Console, parts: list[str], sep: str = " · ") -> None:
    """``parts`` joined by ``sep`` on as few lines as fit the console, never breaking inside a part."""
    lines, line = [], ""
    for part in parts:
        candidate = f"{line}{sep}{part}" if line else part
        if line and Text.from_markup(candidate).cell_len > console.width:
            lines.append(line)
            candidate = part
        line = candidate
    for text in lines + [line]:
        console.print(text, no_wrap=True, overflow="ellipsis", highlight=False)


def _print_totals(plan: Plan, console: Console) -> None:
    budget = f"is over the ${plan.budget_usd:.2f} budget" if plan.over_budget else f"of ${plan.budget_usd:.2f} budget"
    _print_fitted(console, [f"resources: {len(plan.custom_resources)}",
                            f"cost: ${plan.cost_usd:.2f} {budget} (agents ${plan.agents_usd:.2f} + "
                            f"scenario resources ${plan.scenario_resources_usd:.2f})"], sep="   ")
    console.print(f"deploy critical path: ~{plan.critical_path_seconds} s ({_chain(plan)})",
                  no_wrap=True, overflow="ellipsis", highlight=False)
    console.print(_policy_verdict(plan.violations), highlight=False)


def _chain(plan: Plan) -> str:
    """The critical path's resources, a scenario's name said once: ``s: app -> sp -> job``."""
    shown, current = [], None
    for name in plan.critical_path:
        owner = next((s for s in plan.spec.scenarios if name.startswith(f"{s}-")), None)
        if owner and owner == current:
            shown.append(name.removeprefix(f"{owner}-"))
        elif owner:
            shown.append(f"{owner}: {name.removeprefix(f'{owner}-')}")
        else:
            shown.append(name)
        current = owner
    return " -> ".join(shown)


def _policy_verdict(violations) -> str:
    mandatory = sum(v.enforcement == "mandatory" for v in violations)
    advisory = len(violations) - mandatory
    if mandatory:
        return f"policy: refused, {mandatory} mandatory violation(s) and {advisory} warning(s) (listed below)"
    if advisory:
        return f"policy: passed with {advisory} warning(s) (listed below)"
    return "policy: no violations"


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
