"""`haymaker --version`: this package's version and the Pulumi SDK and providers it was installed with."""

from __future__ import annotations

from typing import Optional

import typer

# Read from the installed distributions' metadata: importing the provider SDKs would cost seconds.
DISTRIBUTIONS = ("haymaker", "pulumi", "pulumi-azure-native", "pulumi-azuread")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def show_version(value: bool) -> None:
    if value:
        for name, number in versions().items():
            typer.echo(f"{name} {number}")
        raise typer.Exit()


def options(
    version: Optional[bool] = typer.Option(None, "--version", callback=show_version, is_eager=True,
                                           help="Print the versions of haymaker, Pulumi and its providers, then exit."),
) -> None:
    """The options every `haymaker` command line may start with."""
