"""The `haymaker` command. Exit codes: 0 ok, 1 invalid input, 2 refused by policy or budget, 3 something
was left behind.

One module per command group; each command is a top-level function, and every command and group is
registered below, one line each. The package imports its command modules, never the other way round.

To add a command (say `haymaker doctor`):

1. Write ``haymaker/cli/doctor.py`` with ``def doctor(...)``: its parameters are ``typer.Option`` /
   ``typer.Argument`` defaults, its docstring the help text. A group of subcommands is a module-level
   ``app = typer.Typer(help=..., no_args_is_help=True)`` with ``@app.command("name")`` functions.
2. Import only light modules at the module's top (typer, rich, ``haymaker.cli.common`` with ``out``,
   ``err``, ``emit_json``, ``load_cfg``, and ``haymaker.errors``); import Pulumi, the Azure SDKs, the ledger
   and the plan inside the command, so `haymaker --help` stays fast. Never import ``haymaker.cli`` itself.
3. Below, add ``from haymaker.cli import doctor`` to the imports and one registration line:
   ``app.command("doctor")(doctor.doctor)``, or ``app.add_typer(doctor.app, name="doctor")`` for a group.
4. Refuse bad input by raising ``InvalidInput`` (exit 1) or ``Refused`` (exit 2) with a message that says
   what to change; ``--json`` writes one document with ``emit_json``.

tests/test_cli_package.py checks every module here: no import cycle, each imports first in a fresh
interpreter without loading Pulumi or an Azure SDK, and `haymaker --help` loads no provider SDK.
"""

from __future__ import annotations

import sys

import typer

from haymaker.cli import agent
from haymaker.cli import config
from haymaker.cli import dispatch
from haymaker.cli import doctor
from haymaker.cli import ledger
from haymaker.cli import lifecycle
from haymaker.cli import logs
from haymaker.cli import plan
from haymaker.cli import platform
from haymaker.cli import policy
from haymaker.cli import pr
from haymaker.cli import release
from haymaker.cli import scenarios
from haymaker.cli import truth
from haymaker.cli import trycmd
from haymaker.cli import version
from haymaker.cli.common import CONTEXT, run_app

# add_completion: Typer's --install-completion and --show-completion (bash, zsh, fish, PowerShell).
app = typer.Typer(help="HayMaker: realistic, benign, attributable activity in an Azure tenant.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False, context_settings=CONTEXT)
app.callback()(version.options)
app.command("plan")(plan.plan)
app.add_typer(scenarios.app, name="scenarios")
app.command("pr")(pr.pr)
app.add_typer(policy.app, name="policy")
app.command("up")(lifecycle.up)
app.command("down")(lifecycle.down)
app.command("reap")(lifecycle.reap)
app.command("status")(lifecycle.status)
app.command("resources")(lifecycle.resources)
app.command("cleanup")(lifecycle.cleanup)
app.command("try")(trycmd.try_scenario)
app.command("doctor")(doctor.doctor)
app.command("dispatch")(dispatch.dispatch)
app.command("runs")(ledger.runs)
app.command("agents")(ledger.agents)
app.command("metrics")(ledger.metrics)
app.command("logs")(logs.logs)
app.command("truth")(truth.truth)
app.add_typer(config.app, name="config")
app.add_typer(agent.app, name="agent")
app.command("release-env")(release.release_env)
app.add_typer(platform.app, name="platform")


def main(argv: list[str] | None = None) -> int:
    return run_app(app, argv)


def entry() -> None:
    sys.exit(main())
