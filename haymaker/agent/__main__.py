"""``python -m haymaker.agent run|plan``: the agent's commands without the operator CLI."""

import sys

from haymaker.cli.agent import main

sys.exit(main())
