"""`haymaker config get|set|list`: operator settings and where each comes from."""

from __future__ import annotations

import typer
from haymaker.cli.common import emit_json, err, load_cfg, out
from haymaker.errors import InvalidInput

app = typer.Typer(help="Operator settings (~/.haymaker/config.toml) and where each comes from.", no_args_is_help=True)


@app.command("get")
def config_get(key: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print one setting (secrets are never printed)."""
    from haymaker.config import BY_NAME, SECRET_MARK

    if key not in BY_NAME:
        raise InvalidInput(f"unknown key {key!r}: known keys are {', '.join(BY_NAME)}")
    cfg = load_cfg()
    value = cfg.get(key)
    shown = SECRET_MARK if BY_NAME[key].secret and value else value
    if as_json:
        emit_json({"key": key, "value": shown, "source": cfg.source(key)})
        return
    out.print("" if shown is None else str(shown), markup=False, highlight=False, soft_wrap=True)


@app.command("set")
def config_set(key: str, value: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Store a setting in ~/.haymaker/config.toml."""
    from haymaker.config import set_value

    path = set_value(key, value)
    if as_json:
        emit_json({"key": key, "saved_to": str(path)})
    err.print(f"{key} saved to {path}", markup=False)


@app.command("list")
def config_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every setting, its value (secrets hidden) and where it came from."""
    rows = load_cfg().rows()
    if as_json:
        emit_json(rows)
        return
    from haymaker.tables import print_table

    shown = [{"key": r["key"], "value": "" if r["value"] is None else str(r["value"]),
              "source": short_source(r["source"]), "variable": r["env"]} for r in rows]
    if "value" in print_table(out, ["key", "value", "source", "variable"], shown, give_way=[("value", 10)]):
        err.print("a value ending in … is cut to fit: `haymaker config get KEY` prints it whole", markup=False)


def short_source(source: str) -> str:
    """``env:AZURE_TENANT_ID`` -> ``env`` (the variable has its own column); ~/.haymaker/config.toml -> ``file``.
    `config list --json` and `config get --json` say it in full."""
    if source.startswith("env:"):
        return "env"
    return "file" if source.endswith("config.toml") else source
