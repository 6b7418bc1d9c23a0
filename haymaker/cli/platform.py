"""`haymaker platform`: the one-time steps a person does (printed, never performed) and their read-only check.

- ``bootstrap --print``: every step from an empty subscription to the first run, in order (haymaker/bootstrap.py).
- ``grants``: the Graph rights of an environment's Graph identities, for a Privileged Role Administrator.
- ``verify``: reads back what those steps made (applications and their trust, Graph identities' app roles).
"""

from __future__ import annotations

from typing import List, Optional

import typer

from haymaker.cli.common import emit_json, load_cfg, out
from haymaker.errors import HayMakerError, InvalidInput

app = typer.Typer(help="One-time steps a person does (printed), and their read-only check.", no_args_is_help=True)


class NotVerified(HayMakerError):
    """What the one-time steps should have made is not there (already printed)."""


def _subscriptions(given: List[str], environments: list[str]) -> dict[str, str]:
    out_: dict[str, str] = {}
    for item in given:
        env, sep, sub = item.partition("=")
        if not sep:
            out_.update({e: item for e in environments if e not in out_})
        elif env not in environments:
            raise InvalidInput(f"--subscription {item}: {env!r} is not one of --environments {','.join(environments)}")
        else:
            out_[env] = sub
    return out_


@app.command("bootstrap")
def bootstrap(
    print_: bool = typer.Option(False, "--print", help="Print the steps (HayMaker performs none of them)."),
    repo: Optional[str] = typer.Option(None, help="OWNER/REPO whose workflows obtain the identities."),
    subscription: List[str] = typer.Option([], help="Subscription id for every environment, or ENV=ID (repeat)."),
    environments: str = typer.Option("dev,staging,prod", help="Comma-separated environments."),
    reviewer: Optional[str] = typer.Option(None, help="GitHub login that approves platform and prod deployments."),
) -> None:
    """Print, in order, every step a person performs once, from an empty subscription to the first run."""
    from haymaker import bootstrap as steps
    from scenarios.catalog import load_catalog

    if not print_:
        raise InvalidInput("bootstrap only prints: its steps can grant rights, so a person runs them; add --print")
    if not repo:
        raise InvalidInput("--repo OWNER/REPO is required: the repository whose GitHub Environments the identities trust")
    envs = [e.strip() for e in environments.split(",") if e.strip()]
    text = steps.render(repo, envs, _subscriptions(subscription, envs), load_catalog(), reviewer=reviewer)
    out.file.write(text)


@app.command("grants")
def grants(environment: Optional[str] = typer.Option(None, "--environment", "-e", help="dev, staging or prod."),
           as_json: bool = typer.Option(False, "--json", help="Write the grants as JSON.")) -> None:
    """Print the Graph rights a Privileged Role Administrator grants the environment's Graph identities, once."""
    from haymaker import grants as g
    from haymaker import trust
    from haymaker.policycheck import load_policy_config
    from stacks.config import load_platform_settings

    env = environment or load_cfg().get("environment")
    pool = load_platform_settings(env).graph_identity_pool_size
    table = trust.load_table(env, pool_size=pool)
    g.check_allowlist(table, load_policy_config(env))
    if as_json:
        emit_json(g.as_json(table, pool))
    else:
        out.file.write(g.render(table, pool))


@app.command("verify")
def verify(environment: Optional[str] = typer.Option(None, "--environment", "-e", help="dev, staging or prod."),
           repo: Optional[str] = typer.Option(None, help="OWNER/REPO (default: haymaker:githubRepository)."),
           as_json: bool = typer.Option(False, "--json", help="Write the problems as JSON.")) -> None:
    """Read back, as the signed-in identity, what the one-time steps made; exit 1 when anything differs."""
    from haymaker import grants as g
    from haymaker import trust
    from haymaker.azure import Azure
    from haymaker.cloud import Endpoints
    from haymaker.driver import RunStackDriver
    from stacks.config import load_platform_settings

    cfg = load_cfg(environment)
    env = cfg.get("environment")
    settings = load_platform_settings(env)
    repository = repo or settings.github_repository
    trust.check_repository(repository)
    if not cfg.get("subscription_id"):
        raise InvalidInput("set AZURE_SUBSCRIPTION_ID to the environment's subscription")
    graph = Azure.connect(cfg.get("subscription_id"), Endpoints.from_config(cfg)).graph_reader()
    table = trust.load_table(env, pool_size=settings.graph_identity_pool_size)
    problems = g.verify_applications(graph, table, repository)
    driver = RunStackDriver(backend=cfg.get("backend_url"), secrets_provider=cfg.get("secrets_provider"))
    outputs = driver.outputs(cfg.get("platform_stack") or env)
    problems += g.verify_identities(graph, outputs.get("graphIdentities") or {})
    if as_json:
        emit_json({"ok": not problems, "problems": problems})
    else:
        for line in problems or [f"{env}: every application trusts exactly its subjects; every Graph identity holds "
                                 "its Graph permissions"]:
            out.print(line, markup=False, highlight=False)
    if problems:
        raise NotVerified(f"{len(problems)} difference(s) from the trust table: redo the step each names "
                          "(`haymaker platform bootstrap --print`, `haymaker platform grants`)")
