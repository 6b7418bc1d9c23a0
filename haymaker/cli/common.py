"""What the command modules share: the two consoles, JSON output, files a command writes, configuration
and its environment, and running a Typer app with HayMaker's exit codes (0 ok, 1 invalid input, 2 refused,
3 something was left behind)."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from haymaker.errors import CatalogError, HayMakerError, InvalidInput

out = Console()
# Messages wrap between words on a terminal; piped or captured, each stays one line (grep finds it whole).
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
# -h as well as --help on every command (click hands this down to each subcommand's context).
CONTEXT = {"help_option_names": ["-h", "--help"]}
# Writing stdout fails with these when it is full, closed or gone (`> /dev/full`, `| head`).
OUTPUT_ERRORS = (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EBADF, errno.EFBIG, errno.EDQUOT)


def emit_json(doc) -> None:
    """One JSON document on stdout: keys sorted, so the same input gives the same bytes."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def write_file(path: Path, text: str, flag: str) -> None:
    """Write a file a flag names; a path that cannot be written is one line that says why (exit 1)."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        why = "it is a directory: name a file in it" if isinstance(e, IsADirectoryError) or Path(path).is_dir() \
            else "its directory does not exist" if isinstance(e, FileNotFoundError) \
            else (e.strerror or str(e)).lower()
        raise InvalidInput(f"cannot write {flag} {path}: {why}") from None


def complete_scenario(incomplete: str) -> list[str]:
    """Shell completion of a scenario name: the catalog's names that start with what was typed."""
    from scenarios.catalog import load_catalog

    try:
        return [n for n in load_catalog().names() if n.startswith(incomplete.lower())]
    except HayMakerError:  # a broken catalog completes nothing; the command itself says why
        return []


def load_cfg(environment: str | None = None):
    """Operator configuration for one command, its warnings on stderr."""
    from haymaker.config import load_config

    cfg = load_config({"environment": environment})
    for warning in cfg.warnings:
        err.print(f"warning: {warning}", markup=False)
    return cfg


def cfg_and_environment(flag: str | None):
    """Configuration and the environment a command works in, for every command that takes ``-e``:
    ``--environment`` > ``HAYMAKER_ENVIRONMENT`` > ``.env`` > ``~/.haymaker/config.toml`` > dev."""
    from haymaker.runspec import check_environment

    cfg = load_cfg(flag)
    return cfg, check_environment(cfg.get("environment"), cfg.source("environment"))


def run_app(application: typer.Typer, argv: list[str] | None = None, prog_name: str = "haymaker") -> int:
    """Run a command line; the project's errors become a message on stderr and their exit code."""
    import logging

    # The Azure SDKs log every failed credential attempt as a warning; the command reports failures itself.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    command = typer.main.get_command(application)
    try:
        try:
            command.main(args=argv, prog_name=prog_name, standalone_mode=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            code = 1 if code == 2 else code  # click exits 2 on a bad flag; here 2 means refused
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not as a traceback at exit
        return code
    except OSError as e:
        why = (e.strerror or str(e)).lower()
        if e.filename is None and e.errno in OUTPUT_ERRORS:
            _drop_stdout()
            if e.errno != errno.EPIPE:  # a reader that went away (`| head`) is no error to report
                err.print(f"error: cannot write the output: {why}", markup=False, highlight=False)
        else:
            err.print(f"error: {e.filename}: {why}" if e.filename else f"error: {why}", markup=False, highlight=False)
        return 1
    except CatalogError as e:
        for line in e.errors:
            err.print(line, markup=False, highlight=False)
        err.print(f"{len(e.errors)} problem(s) found", markup=False)
        return e.exit_code
    except HayMakerError as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        return e.exit_code


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that what is still buffered is not flushed again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
