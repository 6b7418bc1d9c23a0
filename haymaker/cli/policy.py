"""`haymaker policy check`: the policy pack over a saved plan, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from haymaker.cli.common import emit_json, out
from haymaker.cli.plan import report_violations

app = typer.Typer(help="The policy pack, offline.", no_args_is_help=True)


@app.command("check")
def policy_check(
    plan_file: Path = typer.Argument(..., help="A plan written by `haymaker plan --json`."),
    policy_config: Optional[Path] = typer.Option(None, help="Policy config (default: policies/config.<env>.json)."),
    as_json: bool = typer.Option(False, "--json", help="Write the violations as JSON."),
) -> None:
    """Re-check a saved plan against the policy pack: exit 2 on any mandatory violation."""
    from haymaker.errors import InvalidInput
    from haymaker.policycheck import recheck_plan

    try:
        doc = json.loads(plan_file.read_text())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{plan_file}: cannot read a plan ({e}): write one with `haymaker plan --json > FILE`")
    violations = recheck_plan(doc, policy_config)
    if as_json:
        emit_json({"violations": [v.as_dict() for v in violations]})
    report_violations(violations)
    if not as_json:
        out.print(f"policy: {len(doc.get('declared', []))} resources checked, "
                  f"{len(violations)} violation(s), none mandatory")
