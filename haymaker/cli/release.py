"""`haymaker release-env`: which environment a release tag deploys to."""

from __future__ import annotations

import typer

from haymaker.cli.common import out


def release_env(tag: str = typer.Argument(..., help="A git tag such as v1.2.3-rc.1 or refs/tags/v1.2.3.")) -> None:
    """Print the environment a release tag deploys to (dev, staging or prod); refuse other tags."""
    from haymaker.release import release_environment

    out.print(release_environment(tag), markup=False, highlight=False)
