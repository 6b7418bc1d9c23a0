"""Entry point of `pulumi up`: picks the program by stack kind. No work beyond that here."""

import pulumi

from stacks.config import run_inputs_from_config

stack = pulumi.get_stack()
if stack.startswith("run-"):
    from stacks.run import run_program

    run_program(*run_inputs_from_config(stack))
else:
    raise pulumi.RunError(
        f"stack {stack!r} is a platform stack, and the platform program (stacks/platform.py) does not "
        "exist yet. Only run stacks (run-<run_id>) can be deployed now: create one with "
        "`haymaker plan --write-stack-config` and `pulumi stack init run-<run_id>`."
    )
