"""`haymaker doctor --github`: the GitHub Environments exist with the protection the trust model requires,
read with HayMaker's GitHub client against the GitHub stand-in (tests/fakes/githubenvs.py)."""

from __future__ import annotations

import json

import pytest

from haymaker import trust
from haymaker.cli import doctor as cli_doctor
from haymaker.cli import main
from haymaker.github import GitHub, Repository, Token
from tests.fakes.github import FakeGitHub
from tests.fakes.server import FakeServer
from tests.fakes.tls import make_certificates

SLUG = "acme/haymaker"
TOKEN = "github_pat_11AAAAAAA0reviewer"


@pytest.fixture(scope="module")
def _server(tmp_path_factory):
    server = FakeServer(FakeGitHub(), make_certificates(tmp_path_factory.mktemp("fake-github-envs-tls"))).start()
    yield server
    server.stop()


@pytest.fixture
def github(_server, monkeypatch):
    fake: FakeGitHub = _server.service
    fake.reset()
    fake.add_user(TOKEN, "octo-reviewer", {SLUG: "read"})
    fake.add_repo(SLUG, {})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _server.ca_file)
    monkeypatch.setenv("GITHUB_API_URL", fake.base_url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return fake


@pytest.fixture(scope="module")
def table():
    return trust.load_table("prod")


def as_required(fake, table, skip=(), **over):
    """Every GitHub Environment of the table as the bootstrap makes it; ``over[name]``: changes to one."""
    for gh in table.github:
        if gh.name in skip:
            continue
        spec = {"reviewers": ["octo-reviewer"] if gh.reviewers else [], "branches": gh.branches, "tags": gh.tags,
                "variables": {v: "x" for v in gh.variables}, **over.get(gh.name.replace("-", "_"), {})}
        fake.add_environment(SLUG, gh.name, **spec)


def checks(fake, table):
    from haymaker.githubenv import environment_checks

    gh = GitHub(Repository("github.com", "acme", "haymaker"), Token(TOKEN, "GITHUB_TOKEN"), fake.base_url)
    try:
        return {c.name: c for c in environment_checks(gh, table)}
    finally:
        gh.close()


def test_environments_as_the_bootstrap_makes_them_pass(github, table):
    as_required(github, table)
    found = checks(github, table)
    assert all(c.ok for c in found.values()), [c.line() for c in found.values() if not c.ok]
    assert set(found) == {f"github {g.name}" for g in table.github} | {"github repository variables"}
    assert found["github platform-prod"].detail == "reviewers, deploys from tag v*, 6 variables"
    assert {s.method for s in github.requests} == {"GET"}  # read-only
    paths = {s.path for s in github.requests}
    assert f"/repos/{SLUG}/environments/prod" in paths and f"/repos/{SLUG}/actions/variables" in paths
    assert f"/repos/{SLUG}/environments/reap-prod/deployment-branch-policies" in paths


@pytest.mark.parametrize("setup, name, fragment", [
    (dict(skip=("drift-prod",)), "github drift-prod", "does not exist"),
    (dict(prod={"reviewers": []}), "github prod", "no required reviewers"),
    (dict(platform_prod={"reviewers": []}), "github platform-prod", "no required reviewers"),
    (dict(release_prod={"reviewers": []}), "github release-prod", "no required reviewers"),
    (dict(reap_prod={"reviewers": ["octo-reviewer"]}), "github reap-prod", "would hold every scheduled job"),
    (dict(platform_prod={"branches": ("main",)}), "github platform-prod", "deploys from branch main, tag v*, not tag v*"),
    (dict(platform_prod={"any_branch": True}), "github platform-prod", "any branch may deploy to it"),
    (dict(reap_prod={"branches": ("*",)}), "github reap-prod", "deploys from branch *, not branch main"),
    (dict(prod={"variables": {"AZURE_CLIENT_ID": "x"}}), "github prod", "lacks the variables AZURE_TENANT_ID"),
])
def test_each_missing_protection_is_a_failed_check_that_names_it(github, table, setup, name, fragment):
    as_required(github, table, **setup)
    found = checks(github, table)
    assert not found[name].ok and fragment in found[name].detail, found[name].detail
    assert "haymaker platform bootstrap --print" in found[name].fix
    assert [n for n, c in found.items() if not c.ok] == [name]


def test_an_identitys_client_id_at_repository_level_is_a_failed_check(github, table):
    as_required(github, table)
    github.repository_variables[SLUG] = {"AZURE_CLIENT_ID": "x", "HAYMAKER_SCHEDULE_ENVIRONMENT": "dev"}
    found = checks(github, table)["github repository variables"]
    assert not found.ok and found.detail.startswith("AZURE_CLIENT_ID set at repository level")


def test_doctor_github_runs_the_checks_and_fails_on_a_missing_protection(github, table, capsys, monkeypatch, tmp_path):
    from haymaker.doctor import Check

    class OnlyGitHub:
        def __init__(self, github_checks):
            self.github_checks = github_checks

        def run(self):
            return [Check("azure", True, "stand-in")] + self.github_checks()

        def answer_key(self):
            return []

    monkeypatch.setattr(cli_doctor, "build_doctor", lambda cfg, env, github=None: OnlyGitHub(github))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    as_required(github, table, prod={"reviewers": []})
    code = main(["doctor", "-e", "prod", "--github", "--repo", SLUG, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and not doc["ok"]
    # (the shipped Pulumi.prod.yaml's placeholders fail their own `config` checks too)
    assert [c["name"] for c in doc["checks"] if not c["ok"] and c["name"] != "config"] == ["github prod"]


@pytest.mark.parametrize("args, message", [
    (["--repo", "your-org/haymaker"], "is the placeholder this repository ships with"),
    ([], "has no git remote 'origin': give --repo OWNER/REPO"),
])
def test_doctor_github_refuses_a_missing_or_placeholder_repository(github, capsys, monkeypatch, tmp_path, args, message):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["doctor", "-e", "prod", "--github", *args])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err
