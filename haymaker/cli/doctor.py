"""`haymaker doctor`: is everything `up`, `down` and `reap` need in place? Exit 1 when anything is not."""

from __future__ import annotations

from typing import Optional

import typer

from haymaker.cli.common import cfg_and_environment, emit_json, out
from haymaker.errors import HayMakerError


class NotReadyExit(HayMakerError):
    """Some check failed (already printed)."""


def build_github_checks(environment: str, repo: str | None):
    """The GitHub Environment checks of `doctor --github`, through GitHub's REST API (a token that may read
    the repository's environments and variables)."""
    from pathlib import Path

    from haymaker import trust
    from haymaker.github import GitHub, api_url, find_token, parse_repo, repository_from_git
    from haymaker.githubenv import environment_checks

    repository = parse_repo(repo) if repo else repository_from_git(Path.cwd())
    trust.check_repository(repository.slug)
    table = trust.load_table(environment)

    def checks():
        gh = GitHub(repository, find_token(repository), api_url(repository))
        try:
            return environment_checks(gh, table)
        finally:
            gh.close()

    return checks


def build_doctor(cfg, environment: str, github=None):
    """The checks over the real adapters, built from configuration on first use. Tests replace this."""
    from functools import lru_cache

    from haymaker.doctor import Doctor
    from haymaker.settings import load_environment
    from scenarios.catalog import load_catalog

    from haymaker.cloud import Endpoints

    endpoints = Endpoints.from_config(cfg)

    @lru_cache(maxsize=None)
    def azure():
        from haymaker.azure import Azure

        subscription = cfg.get("subscription_id")
        if not subscription:
            raise HayMakerError("needs AZURE_SUBSCRIPTION_ID (see the subscription check)")
        return Azure.connect(subscription, endpoints)

    @lru_cache(maxsize=None)
    def credential():
        from haymaker.cloud import azure_credential

        return azure_credential(endpoints)

    def driver():
        from haymaker.driver import RunStackDriver

        return RunStackDriver(backend=cfg.get("backend_url"), secrets_provider=cfg.get("secrets_provider"))

    def ledger():
        from haymaker.ledger import Ledger

        return Ledger.from_config(cfg, retries=1)

    settings = load_environment(environment)
    return Doctor(cfg, environment, credential=credential, azure=azure, driver=driver, ledger=ledger, endpoints=endpoints,
                  pinned_subscription=settings.subscription_id,
                  needs_graph_identities=any(s.graph_permissions for s in load_catalog().scenarios.values()),
                  github=github)


def config_checks(environment: str) -> list:
    """The keys of Pulumi.<env>.yaml a deployment must set, one check each."""
    from haymaker.doctor import Check
    from haymaker.settings import placeholders

    found = placeholders(environment)
    if not found:
        return [Check("config", True, f"Pulumi.{environment}.yaml: haymaker:agentImage and "
                                      "haymaker:githubRepository are set")]
    return [Check("config", False, p.line().removesuffix(f": {p.fix}"), p.fix) for p in found]


def prerequisites(cfg, environment: str, **extra) -> list:
    """What `up` and `doctor` check: the environment's config first, then every check of the doctor
    (``extra``: the `--github` checks), then that the answer key can read the directory plane (`down` and
    `reap` need none of that)."""
    doctor = build_doctor(cfg, environment, **extra)
    return config_checks(environment) + doctor.run() + doctor.answer_key()


def doctor(environment: Optional[str] = typer.Option(None, "--environment", "-e", help="dev, staging or prod."),
           as_json: bool = typer.Option(False, "--json", help="Write the checks as JSON."),
           github: bool = typer.Option(False, "--github", help="Also check the GitHub Environments' protection."),
           repo: Optional[str] = typer.Option(None, help="OWNER/REPO for --github (default: the git remote origin).")
           ) -> None:
    """Check every prerequisite of up, down and reap; print each as ok or failed with its fix."""
    from haymaker.doctor import as_json as checks_json, print_checks

    cfg, env = cfg_and_environment(environment)
    extra = {"github": build_github_checks(env, repo)} if github else {}
    checks = prerequisites(cfg, env, **extra)
    if as_json:
        emit_json(checks_json(checks))
    else:
        print_checks(checks, out)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise NotReadyExit(f"{len(failed)} of {len(checks)} checks failed: fix them, then run `haymaker doctor` again")
