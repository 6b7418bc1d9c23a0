"""`haymaker dispatch` end to end: the real command, azure-core's HTTP pipeline, and a local HTTPS
stand-in of GitHub's REST API (tests/fakes/github.py) that checks each dispatch against the
repository's own run.yml."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from haymaker.cli import dispatch as cli_dispatch
from haymaker.cli import main
from haymaker.dispatch import INPUTS, Clock, Dispatcher, workflow_inputs
from haymaker.github import Repository, find_token, parse_remote, parse_repo
from haymaker.selection import load_selection
from scenarios.catalog import load_catalog
from tests.fakes.github import FakeGitHub, gh_error, hours_ago
from tests.fakes.github import workflow_inputs as declared_inputs
from tests.fakes.server import FakeServer, Reply
from tests.fakes.tls import make_certificates

ROOT = Path(__file__).resolve().parents[1]
RUN_YML = ROOT / ".github" / "workflows" / "run.yml"
SLUG = "haymaker/haymaker"
TOKEN = "github_pat_11AAAAAAA0operator"
VM = "compute-01-linux-vm-web-server"
COSMOS = "databases-02-cosmos-db"


@pytest.fixture(scope="session")
def _github_server(tmp_path_factory):
    server = FakeServer(FakeGitHub(), make_certificates(tmp_path_factory.mktemp("fake-github-tls"))).start()
    yield server
    server.stop()


class FakeClock:
    """Polls without sleeping: each sleep is recorded and moves the clock on."""

    def __init__(self):
        self.t = datetime(2026, 11, 21, 14, 0, 0, tzinfo=timezone.utc)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def github(_github_server, monkeypatch, tmp_path):
    """The stand-in, with one operator who may start workflows in haymaker/haymaker; the command is
    pointed at it (GITHUB_API_URL) and polls on a clock that does not sleep."""
    fake: FakeGitHub = _github_server.service
    fake.reset()
    fake.add_user(TOKEN, "octo-operator", {SLUG: "write"})
    fake.add_repo(SLUG, {"run.yml": declared_inputs(RUN_YML), "reap.yml": None})
    monkeypatch.setenv("GITHUB_API_URL", fake.base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", _github_server.ca_file)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    fake.clock = FakeClock()
    monkeypatch.setattr(cli_dispatch, "build_dispatcher",
                        lambda gh, echo: Dispatcher(gh, clock=Clock(fake.clock.now, fake.clock.sleep), echo=echo))
    return fake


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def dispatch(capsys, *args):
    return run(capsys, "dispatch", "--repo", SLUG, *args)


# --- the request ------------------------------------------------------------------------------------

def test_dispatch_sends_run_yml_its_inputs_and_prints_the_run_url(github, capsys):
    code, out, err = dispatch(capsys, "-s", VM, "-s", COSMOS, "--duration", "2", "-e", "staging")
    assert code == 0, err
    calls = [(s.method, s.path, s.status) for s in github.requests]
    assert calls == [("GET", f"/repos/{SLUG}", 200),
                     ("POST", f"/repos/{SLUG}/actions/workflows/run.yml/dispatches", 200)]
    post = github.requests[1]
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["content-type"].startswith("application/json")
    assert github.dispatches == [{"ref": "main", "return_run_details": True, "inputs": {
        "environment": "staging", "scenarios": f"{VM},{COSMOS}", "size": "small", "duration_hours": "2",
        "dry_run": "false"}}]
    started = github.runs[-1]
    assert out.splitlines()[-1] == f"https://github.com/{SLUG}/actions/runs/{started.id}"
    assert out.splitlines()[0].startswith("plan checked: 2 scenarios · staging · 2 h · $")
    budget = load_selection(load_catalog()).budget_usd  # selection.yaml's, whatever a PR made it
    shown = f"{budget:.0f}" if budget == int(budget) else f"{budget:.2f}"
    assert out.splitlines()[0].endswith(f" of ${shown} budget · policy ok") and "started run.yml on main" in out
    assert TOKEN not in out + err


def test_the_inputs_are_exactly_those_run_yml_declares():
    declared = declared_inputs(RUN_YML)
    sent = workflow_inputs("prod", [VM], None, True)
    assert tuple(declared) == INPUTS and list(sent) == list(declared)
    assert sent == {"environment": "prod", "scenarios": VM, "size": "small", "duration_hours": "", "dry_run": "true"}
    for name, value in sent.items():  # what GitHub checks: choices and booleans take one of their values
        spec = declared[name]
        if spec.get("type") == "choice":
            assert value in spec["options"], name
        assert isinstance(value, str)


def test_ref_and_dry_run_reach_github(github, capsys):
    github.repos[SLUG].refs.add("release/next")
    code, _, err = dispatch(capsys, "-s", VM, "--ref", "release/next", "--dry-run")
    assert code == 0, err
    assert [s.method for s in github.requests] == ["POST"]  # a named ref needs no look-up of the default branch
    assert github.dispatches[0]["ref"] == "release/next" and github.dispatches[0]["inputs"]["dry_run"] == "true"
    assert github.dispatches[0]["inputs"]["duration_hours"] == ""  # the workflow applies selection.yaml's default


def test_json_writes_one_document_and_nothing_else_on_stdout(github, capsys):
    code, out, err = dispatch(capsys, "-s", VM, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["repository"] == SLUG and doc["workflow"] == "run.yml" and doc["ref"] == "main"
    assert doc["run"]["id"] == github.runs[-1].id and doc["run"]["html_url"].endswith(f"/runs/{github.runs[-1].id}")
    assert doc["inputs"]["scenarios"] == VM and doc["plan"]["scenarios"] == [VM]
    assert "plan checked" in err


# --- a bad request never reaches GitHub -------------------------------------------------------------

def _small_budget(monkeypatch):
    import haymaker.plan

    real = haymaker.plan.load_selection
    monkeypatch.setattr(haymaker.plan, "load_selection",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), budget_usd=0.5))


def _one_scenario_policy(monkeypatch):
    import haymaker.plan

    monkeypatch.setattr(haymaker.plan.policycheck, "load_policy_config",
                        lambda env: {"run-scenario-limits": {"maxScenarios": 1}})


@pytest.mark.parametrize("args, setup, exit_code, message", [
    (["-s", "compute-01-linux-vm-web-servr"], None, 1, "compute-01-linux-vm-web-server"),  # a close match
    ([], None, 1, "name 1 to 5 scenarios with --scenario"),
    ([f"-s={n}" for n in ("identity-01-service-principals", "identity-02-rbac-assignments",
                          "identity-03-entra-users-groups", VM, COSMOS, "networking-02-vpn-gateway")],
     None, 1, "names 1 to 5 scenarios; got 6"),
    (["-s", VM, "-s", VM], None, 1, "named twice"),
    (["-s", VM, "--duration", "11"], None, 1, "use a whole number of hours from 1 to 10"),
    (["-s", VM, "-e", "qa"], None, 1, "environment 'qa' is unknown"),
    (["-s", VM, "--duration", "10"], _small_budget, 2, "over the budget"),
    (["-s", VM, "-s", COSMOS], _one_scenario_policy, 2, "mandatory policy violation"),
], ids=["unknown-name", "no-scenario", "six-scenarios", "twice", "duration", "environment", "budget", "policy"])
def test_a_bad_request_is_refused_offline(github, capsys, monkeypatch, args, setup, exit_code, message):
    if setup:
        setup(monkeypatch)
    code, out, err = dispatch(capsys, *args)
    assert code == exit_code, err
    assert message in err
    assert github.requests == [] and github.dispatches == []  # nothing reached the stand-in


# --- finding the run when GitHub does not return its id ---------------------------------------------

def test_without_run_details_the_run_is_found_among_the_workflows_runs(github, capsys):
    github.run_details = "ignored"  # an Enterprise Server that answers 204 and nothing else
    github.listed_after = 2  # the new run shows up in the third listing
    earlier = github.add_run(SLUG, "octo-operator", hours_ago(1))  # the same person's earlier run
    github.add_run(SLUG, "someone-else", datetime.now(timezone.utc) + timedelta(seconds=1))  # another's, just after
    code, out, err = dispatch(capsys, "-s", VM)
    assert code == 0, err
    ours = next(r for r in github.runs if r.actor == "octo-operator" and r is not earlier)
    assert out.splitlines()[-1] == f"https://github.com/{SLUG}/actions/runs/{ours.id}"
    listings = github.seen("GET", r"/actions/workflows/run\.yml/runs$")
    assert len(listings) == 3 and github.clock.sleeps == [3.0, 3.0]  # bounded polling, no real sleep
    query = listings[0].query
    assert query["event"] == "workflow_dispatch" and query["actor"] == "octo-operator"
    created = datetime.fromisoformat(query["created"].removeprefix(">=").replace("Z", "+00:00"))
    assert abs(created - (ours.created - timedelta(seconds=5))) < timedelta(seconds=3)
    assert [s.path for s in github.seen("GET", "^/user$")] == ["/user"]


def test_a_server_that_refuses_return_run_details_gets_the_dispatch_without_it(github, capsys):
    github.run_details = "rejected"
    code, out, err = dispatch(capsys, "-s", VM)
    assert code == 0, err
    assert [("return_run_details" in d) for d in github.dispatches] == [True, False]
    assert len(github.runs) == 1 and out.splitlines()[-1].endswith(f"/actions/runs/{github.runs[0].id}")


def test_a_run_that_never_shows_up_is_reported_with_where_to_look(github, capsys):
    github.run_details, github.listed_after = "ignored", 1000
    code, out, err = dispatch(capsys, "-s", VM)
    assert code == 0  # GitHub accepted the dispatch
    assert out.splitlines()[-1] == f"https://github.com/{SLUG}/actions/workflows/run.yml"
    assert "did not show up" in err and len(github.seen("GET", "/runs$")) == 10
    code, _, err = dispatch(capsys, "-s", VM, "--watch")
    assert code == 1 and f"follow it at https://github.com/{SLUG}/actions/workflows/run.yml" in err


# --- --watch ----------------------------------------------------------------------------------------

def test_watch_follows_the_run_to_success(github, capsys):
    github.run_steps = [("queued", None), ("queued", None), ("waiting", None), ("in_progress", None),
                        ("in_progress", None), ("completed", "success")]
    code, out, err = dispatch(capsys, "-s", VM, "-e", "staging", "--watch")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-4:] == ["14:00:00Z  queued",
                          "14:00:30Z  waiting: a reviewer must approve the GitHub Environment 'staging'",
                          "14:00:45Z  in progress", "14:01:15Z  completed: success"]
    assert len(github.seen("GET", r"/actions/runs/\d+$")) == 6 and github.clock.sleeps == [15.0] * 5


def test_watch_exits_1_when_the_run_fails(github, capsys):
    github.run_steps = [("in_progress", None), ("completed", "failure")]
    code, out, err = dispatch(capsys, "-s", VM, "--watch", "--json")
    assert code == 1
    run_id = github.runs[-1].id
    assert f"run {run_id} ended failure: its jobs' logs are at https://github.com/{SLUG}/actions/runs/{run_id}" in err
    assert json.loads(out)["run"] == {"id": run_id, "html_url": f"https://github.com/{SLUG}/actions/runs/{run_id}",
                                      "status": "completed", "conclusion": "failure"}
    assert "in progress" in err and "completed: failure" in err  # progress goes to stderr with --json


def test_ctrl_c_stops_watching_but_not_the_run(github, capsys, monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(github.clock, "sleep", interrupted)
    code, _, err = dispatch(capsys, "-s", VM, "--watch")
    assert code == 130
    assert f"stopped watching; the run goes on: https://github.com/{SLUG}/actions/runs/{github.runs[-1].id}" in err


def test_watch_retries_a_read_that_github_asks_to_retry(github, capsys):
    github.fail("GET", r"/actions/runs/\d+$", Reply(503, {"message": "Service Unavailable"}, {"Retry-After": "0"}))
    code, _, err = dispatch(capsys, "-s", VM, "--watch")
    assert code == 0, err
    assert [s.status for s in github.seen("GET", r"/actions/runs/\d+$")][:2] == [503, 200]


# --- GitHub's refusals, each with what to change ----------------------------------------------------

def test_401_says_the_token_expired_or_lacks_scope(github, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_expired")
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 1
    assert "GitHub answered 401 'Bad credentials'" in err
    assert "the token from GITHUB_TOKEN has expired, been revoked or is no token of github.com" in err
    assert "make a new one with the scope to start workflows" in err
    assert "Actions: read and write on haymaker/haymaker" in err and "ghp_expired" not in err


def test_404_names_the_repository_or_the_workflow(github, capsys):
    code, _, err = run(capsys, "dispatch", "--repo", "haymaker/nope", "-s", VM)
    assert code == 1 and "GitHub answered 404 'Not Found'" in err
    assert "haymaker/nope does not exist on github.com, or the token from GITHUB_TOKEN cannot see it" in err
    github.add_repo("haymaker/bare", {})  # a repository without run.yml
    github.users[TOKEN].access["haymaker/bare"] = "write"
    code, _, err = run(capsys, "dispatch", "--repo", "haymaker/bare", "-s", VM)
    assert code == 1 and "there is no workflow run.yml in haymaker/bare (it must be on the default branch)" in err


def test_403_says_which_permission_the_token_needs(github, capsys):
    github.users[TOKEN].access[SLUG] = "read"
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 1 and "'Resource not accessible by personal access token'" in err
    assert "use a fine-grained token with Actions: read and write on haymaker/haymaker" in err
    # A rate limit is no missing permission: tests/test_github_limits.py.


@pytest.mark.parametrize("arrange, args, said, fix", [
    (lambda g: g.repos[SLUG].workflows.update({"run.yml": None}), [],
     "Workflow does not have 'workflow_dispatch' trigger", "dispatch a ref whose run.yml has a workflow_dispatch"),
    (lambda g: None, ["--ref", "gone"], "No ref found for: gone", "--ref gone is not a branch or tag"),
    (lambda g: g.repos[SLUG].workflows["run.yml"]["environment"].update(options=["dev"]), ["-e", "staging"],
     "Provided value 'staging' for input 'environment' not in the list of allowed values",
     "run.yml on 'main' declares other inputs than this checkout's"),
    (lambda g: g.repos[SLUG].workflows["run.yml"].pop("dry_run"), [],
     'Unexpected inputs provided: ["dry_run"]', "declares other inputs"),
], ids=["no-dispatch-trigger", "no-such-ref", "choice", "unexpected-input"])
def test_422_gives_githubs_message_and_what_to_change(github, capsys, arrange, args, said, fix):
    github.repos[SLUG].workflows["run.yml"] = declared_inputs(RUN_YML)  # a copy this test may change
    arrange(github)
    code, _, err = dispatch(capsys, "-s", VM, *args)
    assert code == 1, err
    assert f"GitHub answered 422 {said!r}" in err and fix in err
    assert github.runs == []


def test_a_dispatch_that_failed_on_githubs_side_is_never_sent_twice(github, capsys):
    github.fail("POST", "/dispatches$", gh_error(503, "Service Unavailable"), times=5)
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 1 and "a run may or may not have started" in err
    assert f"https://github.com/{SLUG}/actions/workflows/run.yml before dispatching again" in err
    assert len(github.seen("POST")) == 1  # azure-core retries a POST on 500/503/504; a dispatch must not be


# --- which repository -------------------------------------------------------------------------------

@pytest.mark.parametrize("remote, host, slug, api", [
    ("https://github.com/haymaker/haymaker.git", "github.com", SLUG, "https://api.github.com"),
    ("https://github.com/haymaker/haymaker", "github.com", SLUG, "https://api.github.com"),
    ("https://x-access-token:ghs_secret@github.com/haymaker/haymaker.git", "github.com", SLUG,
     "https://api.github.com"),
    ("git@github.com:haymaker/haymaker.git", "github.com", SLUG, "https://api.github.com"),
    ("ssh://git@github.com/haymaker/haymaker.git", "github.com", SLUG, "https://api.github.com"),
    ("ssh://git@ssh.github.com:443/haymaker/haymaker.git", "github.com", SLUG, "https://api.github.com"),
    ("git@ghe.contoso.com:red-team/haymaker.git", "ghe.contoso.com", "red-team/haymaker",
     "https://ghe.contoso.com/api/v3"),
    ("https://ghe.contoso.com/red-team/haymaker/", "ghe.contoso.com", "red-team/haymaker",
     "https://ghe.contoso.com/api/v3"),
    ("https://octo.ghe.com/red-team/haymaker.git", "octo.ghe.com", "red-team/haymaker", "https://api.octo.ghe.com"),
])
def test_remotes_name_their_repository_and_api(remote, host, slug, api):
    repo = parse_remote(remote)
    assert (repo.host, repo.slug, repo.api_url) == (host, slug, api)


@pytest.mark.parametrize("remote", ["/srv/git/haymaker.git", "file:///srv/git/haymaker.git",
                                    "https://github.com/haymaker", "https://u:ghp_secret@github.com/a/b/c"])
def test_a_remote_that_is_no_github_repository_asks_for_repo(remote):
    from haymaker.errors import InvalidInput

    with pytest.raises(InvalidInput, match="give --repo OWNER/REPO") as e:
        parse_remote(remote)
    assert "secret" not in str(e.value)


def test_repo_flag_forms():
    assert parse_repo("haymaker/haymaker") == Repository("github.com", "haymaker", "haymaker")
    assert parse_repo("ghe.contoso.com/red-team/haymaker") == Repository("ghe.contoso.com", "red-team", "haymaker")
    assert parse_repo("https://github.com/haymaker/haymaker") == Repository("github.com", "haymaker", "haymaker")


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_repository_comes_from_the_git_remote(github, capsys, monkeypatch, tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git(checkout, "init", "-q")
    git(checkout, "remote", "add", "origin", "git@github.com:haymaker/haymaker.git")
    monkeypatch.chdir(checkout)
    code, out, err = run(capsys, "dispatch", "-s", VM)
    assert code == 0, err
    assert github.requests[0].path == f"/repos/{SLUG}" and f"started run.yml on main in {SLUG}" in out


def test_a_checkout_without_origin_asks_for_repo(github, capsys, monkeypatch, tmp_path):
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "dispatch", "-s", VM)
    assert code == 1 and "has no git remote 'origin': give --repo OWNER/REPO" in err
    assert github.requests == []


# --- which token ------------------------------------------------------------------------------------

def stand_in_gh(directory: Path, script: str) -> Path:
    """A `gh` on PATH: records its arguments, then runs ``script`` (shell)."""
    directory.mkdir(exist_ok=True)
    gh = directory / "gh"
    gh.write_text(f'#!/bin/sh\necho "$@" >> "{directory}/gh-args"\n{script}\n')
    gh.chmod(0o755)
    return directory


def test_gh_token_when_no_variable_is_set(github, capsys, monkeypatch, tmp_path):
    github.add_user("gho_from_gh_cli", "octo-operator", {SLUG: "write"})
    bin_dir = stand_in_gh(tmp_path / "bin", "echo gho_from_gh_cli")
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 0, err
    assert (bin_dir / "gh-args").read_text() == "auth token --hostname github.com\n"
    assert {s.headers["authorization"] for s in github.requests} == {"Bearer gho_from_gh_cli"}


def test_gh_token_variable_and_its_precedence(github, capsys, monkeypatch):
    github.add_user("ghp_from_gh_token", "octo-operator", {SLUG: "write"})
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GH_TOKEN", "ghp_from_gh_token")
    assert dispatch(capsys, "-s", VM)[0] == 0
    assert github.requests[-1].headers["authorization"] == "Bearer ghp_from_gh_token"
    repo = Repository("github.com", "haymaker", "haymaker")
    assert find_token(repo, {"GITHUB_TOKEN": "a", "GH_TOKEN": "b", "PATH": ""}).source == "GITHUB_TOKEN"


def test_no_token_says_how_to_get_one(github, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no gh
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 1
    assert ("no GitHub token for github.com: set GITHUB_TOKEN to a fine-grained token with Actions: read and write "
            "on haymaker/haymaker, or a classic token with the repo scope, or log in with "
            "`gh auth login --hostname github.com`") in err
    assert github.requests == []


def test_gh_that_is_not_logged_in_is_quoted(tmp_path):
    bin_dir = stand_in_gh(tmp_path / "bin", 'echo "no oauth token found for ghe.contoso.com" >&2; exit 1')
    repo = Repository("ghe.contoso.com", "red-team", "haymaker")
    from haymaker.errors import InvalidInput

    with pytest.raises(InvalidInput, match="said: no oauth token found for ghe.contoso.com") as e:
        find_token(repo, {"PATH": str(bin_dir)})
    assert "gh auth login --hostname ghe.contoso.com" in str(e.value)
    assert (bin_dir / "gh-args").read_text() == "auth token --hostname ghe.contoso.com\n"


def test_the_command_module_imports_no_http_stack_at_startup():
    done = subprocess.run([sys.executable, "-c", "import sys, haymaker.cli.dispatch; "
                                                 "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                                                 "('azure', 'requests', 'pulumi')))"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
