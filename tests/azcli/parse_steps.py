"""Parse az command lines with the real Azure CLI's parser, without running them.

Run with the Azure CLI's own Python (scripts/azcli.sh makes it): reads a JSON list of argument lists
(without the leading ``az``) on stdin and prints, for each, ``{"ok": bool, "error": str}``. It follows
``AzCliCommandInvoker.execute`` up to ``parse_args``: the command table, the arguments of the commands
asked about, the same invoker events (they add ``--subscription``, ``--ids`` and the like), the parser,
then each parse. Nothing reaches Azure: argument validators and the command itself never run.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    from azure.cli.core import get_default_cli
    from azure.cli.core.commands.events import EVENT_INVOKER_POST_LOAD_ARGUMENTS, EVENT_INVOKER_PRE_LOAD_ARGUMENTS
    from knack.events import EVENT_INVOKER_CMD_TBL_LOADED, EVENT_INVOKER_POST_CMD_TBL_CREATE

    argvs: list[list[str]] = json.load(sys.stdin)
    cli = get_default_cli()
    invoker = cli.invocation_cls(cli_ctx=cli, parser_cls=cli.parser_cls,
                                 commands_loader_cls=cli.commands_loader_cls, help_cls=cli.help_cls)
    cli.invocation = invoker
    loader = invoker.commands_loader
    loader.load_command_table(None)
    wanted = {name for name in map(command_of(loader.command_table), argvs) if name}
    loader.command_table = {name: loader.command_table[name] for name in wanted}
    cli.raise_event(EVENT_INVOKER_PRE_LOAD_ARGUMENTS, commands_loader=loader)
    load_arguments(loader, wanted)
    cli.raise_event(EVENT_INVOKER_POST_LOAD_ARGUMENTS, commands_loader=loader)
    cli.raise_event(EVENT_INVOKER_POST_CMD_TBL_CREATE, commands_loader=loader)
    invoker.parser.cli_ctx = cli
    invoker.parser.load_command_table(loader)
    cli.raise_event(EVENT_INVOKER_CMD_TBL_LOADED, cmd_tbl=loader.command_table, parser=invoker.parser)

    results = []
    find = command_of(loader.command_table)
    for argv in argvs:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                namespace = invoker.parser.parse_args(list(argv))
            results.append({"ok": True, "error": "", "inexact": inexact_options(invoker.parser, find(argv), argv),
                            "values": {k: getattr(namespace, k) for k in SHOWN if isinstance(getattr(namespace, k, None), str)}})
        except SystemExit:  # argparse's way of refusing: the reason went to stderr
            results.append({"ok": False, "error": first_lines(err.getvalue()), "inexact": [], "values": {}})
    json.dump(results, sys.stdout)


# Parsed values a test may ask about: where the command acts.
SHOWN = ("resource_group_name", "_subscription", "scope", "url", "resource")


def inexact_options(parser, command: str | None, argv: list[str]) -> list[str]:
    """Options of ``argv`` that are not, letter for letter, an option string of the command (argparse
    also reads prefixes, ``--opt=value`` and ``-xVALUE``)."""
    if not command:
        return []
    words = command.split()
    group = parser.subparsers.get(tuple(words[:-1]))
    command_parser = group.choices.get(words[-1]) if group is not None else None
    if command_parser is None:
        return []
    exact = command_parser._option_string_actions  # noqa: SLF001 - argparse keeps the option strings here
    return [a for a in argv if a.startswith("-") and a not in exact and not a.lstrip("-").replace(".", "").isdigit()]


def load_arguments(loader, wanted: set[str]) -> None:
    """``MainCommandsLoader.load_arguments`` for several commands at once.

    Its one-command form registers only the argument contexts of that command's scope, so a second
    command would miss its own; this is its all-commands form (the one az's docs are built with),
    narrowed to the module loaders of the wanted commands.
    """
    from azure.cli.core.commands.parameters import (deployment_name_type, get_location_type,
                                                    resource_group_name_type, subnet_name_type, vnet_name_type)
    from knack.arguments import ignore_type

    module_loaders = []
    for name in sorted(wanted):
        for module_loader in loader.cmd_to_loader_map.get(name, []):
            if module_loader not in module_loaders:
                module_loaders.append(module_loader)
    for module_loader in module_loaders:
        with module_loader.argument_context("") as c:
            c.argument("resource_group_name", resource_group_name_type)
            c.argument("location", get_location_type(loader.cli_ctx))
            c.argument("vnet_name", vnet_name_type)
            c.argument("subnet", subnet_name_type)
            c.argument("deployment_name", deployment_name_type)
            c.argument("cmd", ignore_type)
        for name, command in module_loader.command_table.items():
            if name in wanted:
                command.load_arguments()
        module_loader.skip_applicability = True
        module_loader.load_arguments("")
        loader.argument_registry.arguments.update(module_loader.argument_registry.arguments)
        loader.extra_argument_registry.update(module_loader.extra_argument_registry)
        module_loader._update_command_definitions()  # noqa: SLF001 - as load_arguments does


def command_of(table):
    """The longest command name the words before the first option make, or None."""
    def find(argv: list[str]) -> str | None:
        words = []
        for arg in argv:
            if arg.startswith("-"):
                break
            words.append(arg)
        for n in range(len(words), 0, -1):
            if " ".join(words[:n]) in table:
                return " ".join(words[:n])
        return None
    return find


def first_lines(text: str) -> str:
    """The parser's complaint, without the examples it prints after it."""
    kept = []
    for line in text.strip().splitlines():
        if line.startswith("Examples from") or line.startswith("Try this"):
            break
        if line.strip() and line.strip() not in kept:  # az prints some complaints twice
            kept.append(line.strip())
    return " ".join(kept)[:500]


if __name__ == "__main__":
    main()
