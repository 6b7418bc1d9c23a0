"""How a plan is shown: a terminal table, or Markdown for a pull-request comment."""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

from haymaker.plan import Plan, resource_json
from haymaker.runspec import iso
from haymaker.tables import lines, tsv, write_rows
from scenarios.expect import expected_count

MARKDOWN_LIMIT = 60_000


def short_type(token: str) -> str:
    """``azure-native:app:Job`` -> ``app:Job``; ``azuread:index/application:Application`` -> ``azuread:Application``."""
    pkg, _, rest = token.partition(":")
    module, _, name = rest.partition(":")
    return f"azuread:{name}" if pkg == "azuread" else f"{module}:{name}"


def in_deploy_order(resources: list) -> list:
    """Resources in the order the engine can create them (what each depends on first), ties by name."""
    urns = {r.urn for r in resources}
    waiting = {r.urn: {d for d in r.dependencies if d in urns and d != r.urn} for r in resources}
    by_urn = {r.urn: r for r in resources}
    ordered = []
    while waiting:
        ready = sorted((u for u, deps in waiting.items() if not deps), key=lambda u: by_urn[u].name) \
            or sorted(waiting, key=lambda u: by_urn[u].name)[:1]  # a cycle cannot happen; never loop on one
        ordered.append(by_urn[ready[0]])
        del waiting[ready[0]]
        for deps in waiting.values():
            deps.discard(ready[0])
    return ordered


def resource_groups(plan: Plan) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(heading, [(part, type, Azure name)]): the run's own resources under its stack name, then each
    scenario's, its children named without the scenario in front."""
    groups = []
    for heading, owner in [(plan.spec.stack_name, None), *((s, s) for s in plan.spec.scenarios)]:
        items = [(j["name"].removeprefix(f"{owner}-") if owner else j["name"], short_type(j["type"]),
                  j["physical_name"] or "") for j in map(resource_json, in_deploy_order(plan.resources_of(owner)))]
        if items:
            groups.append((heading, items))
    return groups


def resource_tree(plan: Plan, width: int) -> list[str]:
    """`plan --resources` in a terminal: a tree, one branch per scenario. Nothing is cut: when a branch's
    rows do not fit the width, each of its Azure names goes on its own line under its resource."""
    groups = resource_groups(plan)
    widths = [(max(len(p) for p, _, _ in g), max(len(t) for _, t, _ in g)) for _, g in groups]
    lines = []
    for (heading, group), (part_w, type_w) in zip(groups, widths):
        one_line = all(3 + part_w + 2 + type_w + 2 + len(name) <= width for *_, name in group)
        lines.append(heading)
        for i, (part, kind, name) in enumerate(group):
            branch, stem = ("└─ ", "   ") if i == len(group) - 1 else ("├─ ", "│  ")
            if one_line:
                lines.append(f"{branch}{part:<{part_w}}  {kind:<{type_w}}  {name}".rstrip())
                continue
            lines.append(f"{branch}{part:<{part_w}}  {kind}")
            if name:
                lines.append(f"{stem}   {name}")
    return lines


def print_resources(plan: Plan, console: Console, plain: bool = False) -> None:
    """`plan --resources`: every resource with its Azure name; ``plain``: tab-separated rows
    (scenario or stack, part, type, Azure name) for a pipe."""
    if plain:
        write_rows(console, tsv(["scenario", "part", "type", "name"],
                                [{"scenario": heading, "part": p, "type": t, "name": n}
                                 for heading, group in resource_groups(plan) for p, t, n in group]))
        return
    _print_header(plan, console)
    for text in resource_tree(plan, console.width):
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    _print_totals(plan, console)


# When a scenario row does not fit, these columns give way, in this order (0: dropped). The scenario
# name, the thing one types into --scenario, never does.
GIVE_WAY = (("roles", 10), ("job", 0), ("roles", 0), ("area", 0))
SUMMARY_COLUMNS = ("scenario", "area", "res", "roles", "job", "USD")


def print_summary(plan: Plan, console: Console, plain: bool = False) -> None:
    """The default view: a header, one row per scenario and a footer; no cell wraps, and what gives way
    to fit the terminal is listed in GIVE_WAY (`--resources` and `--json` show everything). ``plain``:
    the rows tab-separated, for a pipe."""
    _print_header(plan, console)
    rows = scenario_rows(plan)
    if plain:
        write_rows(console, tsv(SUMMARY_COLUMNS, rows))
    else:
        header, *body = lines(SUMMARY_COLUMNS, rows, console.width, GIVE_WAY, right=("res", "USD"))
        console.print(Text(header, style="bold"), soft_wrap=True)
        for text in body:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
    _print_totals(plan, console)


def scenario_rows(plan: Plan) -> list[dict]:
    rows = []
    for name, cost in zip(plan.spec.scenarios, plan.costs):
        resources = [resource_json(r) for r in plan.resources_of(name)]
        job = next((r["physical_name"] or "" for r in resources if r["type"] == "azure-native:app:Job"), "")
        rows.append({"scenario": name, "area": plan.catalog[name].area, "res": str(len(resources)),
                     "roles": ", ".join(plan.catalog[name].azure_roles), "job": job, "USD": f"{cost.total_usd:.2f}"})
    return rows


def _print_header(plan: Plan, console: Console) -> None:
    s = plan.spec
    count = f"{len(s.scenarios)} scenario" + ("s" if len(s.scenarios) != 1 else "")
    _print_fitted(console, [f"[bold]Run {s.run_id}[/bold]", f"environment {s.environment}",
                            f"size {s.size}" if s.size else "on demand", count, f"{s.duration_hours} h",
                            f"expires {iso(s.expires_at)}"])


def _print_fitted(console: Console, parts: list[str], sep: str = " · ", indent: str = "") -> None:
    """``parts`` joined by ``sep`` on as few lines as fit the console, never breaking inside a part (a
    part longer than the line goes whole on a line of its own)."""
    done, line = [], ""
    for part in parts:
        candidate = f"{line}{sep}{part}" if line else part
        if line and Text.from_markup(candidate).cell_len > console.width:
            done.append(line)
            candidate = f"{indent}{sep.lstrip()}{part}" if indent else part
        line = candidate
    for text in done + [line]:
        console.print(text, soft_wrap=True, highlight=False)


def _print_totals(plan: Plan, console: Console) -> None:
    budget = f"is over the ${plan.budget_usd:.2f} budget" if plan.over_budget else f"of ${plan.budget_usd:.2f} budget"
    _print_fitted(console, [f"resources: {len(plan.custom_resources)}",
                            f"cost: ${plan.cost_usd:.2f} {budget} (agents ${plan.agents_usd:.2f} + "
                            f"scenario resources ${plan.scenario_resources_usd:.2f})"], sep="   ")
    chain = _chain(plan)
    _print_fitted(console, [f"deploy critical path: ~{plan.critical_path_seconds} s ({chain[0]}", *chain[1:-1],
                            f"{chain[-1]})"] if len(chain) > 1 else
                  [f"deploy critical path: ~{plan.critical_path_seconds} s ({''.join(chain)})"],
                  sep=" -> ", indent="  ")
    console.print(_policy_verdict(plan.violations), highlight=False)


def _chain(plan: Plan) -> list[str]:
    """The critical path's resources, a scenario's name said once: ``s: app``, ``sp``, ``job``."""
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
    return shown


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
