"""What the command modules share: the two consoles, JSON output, configuration, and running a Typer
app with HayMaker's exit codes (0 ok, 1 invalid input, 2 refused, 3 something was left behind)."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from haymaker.errors import CatalogError, HayMakerError

out = Console()
err = Console(stderr=True, soft_wrap=True)


def emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def load_cfg(environment: str | None = None):
    """Operator configuration for one command, its warnings on stderr."""
    from haymaker.config import load_config

    cfg = load_config({"environment": environment})
    for warning in cfg.warnings:
        err.print(f"warning: {warning}", markup=False)
    return cfg


def run_app(application: typer.Typer, argv: list[str] | None = None, prog_name: str = "haymaker") -> int:
    """Run a command line; the project's errors become a message on stderr and their exit code."""
    import logging

    # The Azure SDKs log every failed credential attempt as a warning; the command reports failures itself.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    command = typer.main.get_command(application)
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=True)
        return 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return 1 if code == 2 else code  # click exits 2 on a bad flag; here 2 means refused
    except CatalogError as e:
        for line in e.errors:
            err.print(line, markup=False, highlight=False)
        err.print(f"{len(e.errors)} problem(s) found", markup=False)
        return e.exit_code
    except HayMakerError as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        return e.exit_code
