"""Entry point of `pulumi up`: picks the program by stack name. No work beyond that here."""

import pulumi

from stacks.config import PLATFORM_STACKS

stack = pulumi.get_stack()
if stack.startswith("run-"):
    from stacks.config import run_inputs_from_config
    from stacks.run import run_program

    run_program(*run_inputs_from_config(stack))
elif stack in PLATFORM_STACKS:
    from stacks.config import platform_settings_from_config
    from stacks.platform import platform_program

    platform_program(platform_settings_from_config(stack))
else:
    raise pulumi.RunError(
        f"stack {stack!r} is neither a platform stack ({', '.join(PLATFORM_STACKS)}) nor a run stack "
        "(run-<run_id>): select one of those (`pulumi stack select dev`), or create a run stack with "
        "`haymaker plan --write-stack-config` and `pulumi stack init run-<run_id>`."
    )
