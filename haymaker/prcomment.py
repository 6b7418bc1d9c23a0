"""The pull-request comment of `haymaker pr`: Markdown, under GitHub's 65,536-character limit."""

from __future__ import annotations

from haymaker import catalogdiff
from haymaker.draws import EVERY
from haymaker.pr import DRAWS, MARKER, MOST_PROBLEMS, Review, Side
from haymaker.selection import SIZES

LIMIT = 60_000  # GitHub refuses a comment over 65,536 characters; pr.yml adds a line or two
CHANGE = 0.01  # an inclusion share that moves by less than a point is noise of the simulation


def markdown(r: Review) -> str:
    out = [MARKER, "## HayMaker: what this pull request changes in the runs", "", *_verdict(r),
           *_selection(r), *_worst(r), *_inclusion(r), *_policies(r), catalogdiff.markdown(r.changes, r.base)]
    text = "\n".join(out).rstrip("\n") + "\n"
    if len(text) > LIMIT:
        text = text[: LIMIT - 200] + f"\n\n_(cut to fit a comment: `haymaker pr --base {r.base}` shows it all)_\n"
    return text


def _verdict(r: Review) -> list[str]:
    return _warnings(r) + _problems(r)


def _warnings(r: Review) -> list[str]:
    return [f"> **Before and after this change:** `{p.environment}`: {_cell(p.message)}" for p in r.warnings] + \
        ([""] if r.warnings else [])


def _problems(r: Review) -> list[str]:
    envs = ", ".join(f"`{e}`" for e in r.after.tree.environments) or "no environment"
    if r.ok:
        return [f"**Every scheduled and dispatched run still works** in {envs}: each size can be drawn, the most "
                "expensive draws stay within the budget and every scenario passes each environment's mandatory "
                "policies.", ""]
    lines = [f"**This change would make runs fail: {len(r.problems)} problem(s).** The check fails until they "
             "are fixed.", ""]
    lines += [f"- `{p.subject}`{'' if p.environment == EVERY else f' in `{p.environment}`'}: {_cell(p.message)}"
              for p in r.problems[:MOST_PROBLEMS]]
    if len(r.problems) > MOST_PROBLEMS:
        lines.append(f"- …and {len(r.problems) - MOST_PROBLEMS} more: `haymaker pr --base {r.base}` lists them all")
    return lines + [""]


def _selection(r: Review) -> list[str]:
    before, after = r.before.tree.selection, r.after.tree.selection
    lines = [f"### Selection (`scenarios/selection.yaml`) against `{r.base}`", ""]
    if after is None:
        return lines + ["The selection does not load: see the problems above.", ""]

    def row(label, get, fmt=str):
        was, now = (fmt(get(before)) if before else "—"), fmt(get(after))
        return f"| {label} | {was} | {now}{'' if was == now else ' ✏️'} |"

    lines += ["| | before | after |", "|---|---|---|",
              row("sizes (small / medium / large)", lambda s: " / ".join(str(s.sizes[z]) for z in SIZES)),
              row("duration of each agent", lambda s: f"{s.duration_hours} h"),
              row("budget of a run", lambda s: f"${s.budget_usd:,.2f}"),
              f"| scheduled candidates (pinned) | {_pool_size(r.before)} | {_pool_size(r.after)} |"]
    lines.append(f"| size of scheduled runs | {_defaults(r.before)} | {_defaults(r.after)} |")
    lines.append("")
    gained = sorted(set(r.after.pool) - set(r.before.pool))
    lost = sorted(set(r.before.pool) - set(r.after.pool))
    if gained:
        lines.append("Now drawn by scheduled runs: " + ", ".join(f"`{n}`" for n in gained) + ".")
    if lost:
        lines.append("No longer drawn by scheduled runs: " + ", ".join(f"`{n}`" for n in lost) + ".")
    if before:
        areas = sorted(set(before.weights) | set(after.weights))
        moved = [f"`{a}` {before.weights.get(a, 1.0):g} → {after.weights.get(a, 1.0):g}" for a in areas
                 if before.weights.get(a, 1.0) != after.weights.get(a, 1.0)]
        if moved:
            lines.append("Area weights: " + ", ".join(moved) + ".")
    return lines + ([""] if gained or lost or lines[-1] != "" else [])


def _pool_size(side: Side) -> str:
    if side.tree.selection is None:
        return "—"
    return f"{len(side.pool)} ({sum(1 for w in side.pool.values() if w is None)})"


def _defaults(side: Side) -> str:
    return ", ".join(f"{env} {s.simulation_size}" for env, s in sorted(side.tree.settings.items())) or "—"


def _worst(r: Review) -> list[str]:
    if not r.after.worst:
        return []
    envs = sorted(r.after.worst)
    budget = r.after.tree.selection.budget_usd
    lines = [f"### Most expensive possible draw, against the budget of ${budget:,.2f}", "",
             f"The dearest scenarios a draw can hold, at the default {r.after.tree.selection.duration_hours} h "
             "(the agents' Container Apps time and each scenario's hourly estimate).", "",
             "| draw | " + " | ".join(envs) + " |", "|---|" + "---:|" * len(envs)]
    before = {(d.kind, d.environment): d for ds in r.before.worst.values() for d in ds}
    for i, first in enumerate(r.after.worst[envs[0]]):
        label = f"{first.kind} ({len(first.scenarios)} named)" if first.kind == "on demand" \
            else f"{first.kind} ({len(first.scenarios)})"
        cells = []
        for env in envs:
            d = r.after.worst[env][i]
            was = before.get((d.kind, env))
            shown = f"${d.cost_usd:,.2f}"
            if was and f"${was.cost_usd:,.2f}" != shown:
                shown = f"${was.cost_usd:,.2f} → {shown}"
            cells.append(f"**{shown} ❌**" if d.cost_usd > budget else shown)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    dearest = r.after.worst[envs[0]][SIZES.index("large")]
    lines += ["", "Dearest large draw: " + ", ".join(f"`{n}`" for n in dearest.scenarios[:5])
              + (", …" if len(dearest.scenarios) > 5 else "") + ".", ""]
    return lines


def _inclusion(r: Review) -> list[str]:
    after, before = r.after, r.before
    if not after.inclusion:
        return []
    names = sorted(set(after.pool) | set(before.pool))

    def share(side: Side, size: str, name: str) -> float | None:
        if name not in side.pool or size not in side.inclusion:
            return None
        return side.inclusion[size].get(name)

    def cell(size: str, name: str) -> str:
        was, now = share(before, size, name), share(after, size, name)
        if was is None or now is None or abs(now - was) >= CHANGE:
            return f"{_pct(was)} → {_pct(now)}" if was != now else _pct(now)
        return _pct(now)

    def moved(name: str) -> bool:
        return (name in after.pool) != (name in before.pool) or any(
            (share(before, z, name) is None) != (share(after, z, name) is None)
            or abs((share(before, z, name) or 0) - (share(after, z, name) or 0)) >= CHANGE for z in SIZES)

    catalog = after.tree.catalog
    head = ["| scenario | area | weight | " + " | ".join(SIZES) + " |", "|---|---|---:|" + "---:|" * len(SIZES)]

    def row(name: str, full: bool) -> str:
        area = catalog[name].area if name in catalog else before.tree.catalog[name].area
        weight = _weight(after.pool.get(name, 0.0) if name in after.pool else 0.0)
        if name in before.pool and _weight(before.pool[name]) != weight:
            weight = f"{_weight(before.pool[name])} → {weight}"
        cells = [_pct(share(after, z, name)) if full else cell(z, name) for z in SIZES]
        return f"| `{name}` | {area} | {weight} | " + " | ".join(cells) + " |"

    changed = [n for n in names if moved(n)]
    lines = ["### Chance of being drawn by one scheduled run", "",
             f"Share of {DRAWS:,} simulated draws per size, made by the function scheduled runs use "
             "(pinned: always; within about a point).", ""]
    if changed:
        lines += [f"{len(changed)} scenario(s) change:", "", *head, *(row(n, False) for n in changed), ""]
    else:
        lines += ["No scenario's chance changes.", ""]
    lines += [f"<details><summary>All {len(after.pool)} scheduled candidates</summary>", "", *head,
              *(row(n, True) for n in sorted(after.pool)), "", "</details>", ""]
    return lines


def _weight(w: float | None) -> str:
    return "pinned" if w is None else f"{w:g}"


def _pct(p: float | None) -> str:
    if p is None:
        return "—"
    if p >= 1:
        return "always"
    return "<1%" if 0 < p < 0.005 else f"{p:.0%}"


def _policies(r: Review) -> list[str]:
    envs = sorted(r.verdicts)
    if not envs:
        return []
    names = sorted({s for by in r.verdicts.values() for s in by})
    refused = [n for n in names if any(r.verdicts[e].get(n) for e in envs)]
    lines = ["### Policy verdicts: every scenario in every environment", "",
             "Each scenario planned offline in each environment with its `policies/config.<env>.json` and "
             "`Pulumi.<env>.yaml`; one excluded from scheduled runs can still be named on demand.", ""]
    head = ["| scenario | drawn by | " + " | ".join(envs) + " |", "|---|---|" + "---|" * len(envs)]

    def row(name: str) -> str:
        drawn = "schedule, on demand" if name in r.after.pool else "on demand"
        cells = []
        for env in envs:
            if name not in r.verdicts[env]:
                cells.append("not planned")
                continue
            found = r.verdicts[env][name]
            cells.append("✅ passes" if not found else "❌ " + ", ".join(sorted({v.policy for v in found})))
        return f"| `{name}` | {drawn} | " + " | ".join(cells) + " |"

    if refused:
        lines += [f"{len(refused)} scenario(s) refused somewhere:", "", *head, *(row(n) for n in refused), ""]
    else:
        lines += [f"All {len(names)} scenarios pass every mandatory policy in " + ", ".join(envs) + ".", ""]
    lines += [f"<details><summary>All {len(names)} scenarios</summary>", "", *head, *(row(n) for n in names), "",
              "</details>", ""]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

