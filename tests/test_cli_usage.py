"""The command line as a person types it: help, completion, the environment it works in, bad values
refused with what is allowed, files and output that cannot be written, and JSON that diffs cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from haymaker.cli import app, main
from haymaker.runspec import new_run_id

REPO = Path(__file__).resolve().parents[1]
HAYMAKER = Path(sys.executable).parent / "haymaker"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """No developer's ~/.haymaker/config.toml, .env or HAYMAKER_ENVIRONMENT."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HAYMAKER_ENVIRONMENT", raising=False)
    return tmp_path


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- help and completion ------------------------------------------------------------------------------

def commands(group=None, prefix=()):
    """Every command path of the app: ("plan",), ("config", "set"), …"""
    import typer

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", sorted(commands()), ids=" ".join)
def test_minus_h_is_help_everywhere(path, capsys):
    code, out, _ = run(capsys, *path, "-h")
    assert code == 0 and f"Usage: haymaker {' '.join(path)}" in " ".join(out.split())


def test_shell_completion_is_offered_and_completes_commands_flags_and_scenarios(catalog):
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_HAYMAKER_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        done = subprocess.run([str(HAYMAKER)], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
        return done.stdout.split()

    assert complete("haymaker pl") == ["plan", "platform"]
    assert complete("haymaker config s") == ["set"]
    assert "--workflow-dry-run" in complete("haymaker dispatch --w")
    name = catalog.names()[-1]
    assert complete(f"haymaker plan -s {name[:4]}") == [n for n in catalog.names() if n.startswith(name[:4])]
    shown = subprocess.run([str(HAYMAKER), "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "_HAYMAKER_COMPLETE=complete_bash" in shown.stdout
    helped = subprocess.run([str(HAYMAKER), "-h"], capture_output=True, text=True, timeout=60)
    assert "--install-completion" in helped.stdout


# --- the environment: --environment > HAYMAKER_ENVIRONMENT > config > dev ------------------------------

@pytest.mark.parametrize("flag, variable, configured, expected", [
    (None, None, None, "dev"),
    (None, None, "staging", "staging"),  # prod plans refuse the shipped tag image (prod runs by digest)
    (None, "staging", "prod", "staging"),
    ("dev", "staging", "prod", "dev"),
])
def test_plan_and_dispatch_check_work_in_the_environment_up_would(home, capsys, monkeypatch, catalog,
                                                                   flag, variable, configured, expected):
    if configured:
        assert main(["config", "set", "environment", configured]) == 0
    if variable:
        monkeypatch.setenv("HAYMAKER_ENVIRONMENT", variable)
    scenario = catalog.names()[0]
    flags = ["-e", flag] if flag else []
    code, out, err = run(capsys, "plan", "--json", "-s", scenario, *flags)
    assert code == 0, err
    assert json.loads(out)["run"]["environment"] == expected
    code, out, err = run(capsys, "dispatch", "--check", "--json", "-s", scenario, *flags)
    assert code == 0, err
    assert json.loads(out)["inputs"]["environment"] == expected


@pytest.mark.parametrize("where", ["flag", "variable", "config file"])
def test_an_environment_that_is_a_path_is_refused_as_a_name(home, capsys, monkeypatch, where):
    bad = "../../etc/passwd"
    args = ["plan"]
    if where == "flag":
        args += ["-e", bad]
    elif where == "variable":
        monkeypatch.setenv("HAYMAKER_ENVIRONMENT", bad)
    else:
        (home / ".haymaker").mkdir()
        (home / ".haymaker" / "config.toml").write_text(f'environment = "{bad}"\n')
    code, out, err = run(capsys, *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: environment '{bad}'") and "is unknown: use one of dev, staging, prod" in err
    assert "passwd.yaml" not in err and len(err.splitlines()) == 1


# --- config set validates each value -------------------------------------------------------------------

@pytest.mark.parametrize("key, value, allowed", [
    ("subscription_id", "not-a-guid", "use a GUID such as 00000000-0000-0000-0000-000000000000"),
    ("tenant_id", "not a tenant", "use a GUID or a domain such as contoso.onmicrosoft.com"),
    ("environment", "qa", "use one of dev, staging, prod"),
    ("reap_parallel", "0", "use a whole number from 1 to 16"),
    ("reap_parallel", "many", "is 'many', not a whole number"),
    ("truth_due_limit", "1000", "use a whole number from 1 to 100"),
    ("arm_endpoint", "http://management.example.com", "use an https:// URL"),
    ("backend_url", "/var/state", "use a URL starting with file://, azblob://, s3://, gs://, https://"),
    ("secrets_provider", "vault", "use passphrase, default, or a URL"),
    ("log_analytics_workspace", "my-workspace", "use a workspace GUID or the workspace's ARM id"),
    ("ledger_connection_string", "s3cr3t", "use Key=value pairs separated by ';'"),
])
def test_config_set_refuses_a_value_the_key_cannot_hold(home, capsys, key, value, allowed):
    code, out, err = run(capsys, "config", "set", key, value)
    assert (code, out) == (1, "") and allowed in err and len(err.splitlines()) == 1
    assert not (home / ".haymaker" / "config.toml").exists()  # nothing stored
    assert "s3cr3t" not in err  # a secret's value is never echoed


@pytest.mark.parametrize("key, value", [
    ("subscription_id", "11111111-2222-3333-4444-555555555555"),
    ("tenant_id", "contoso.onmicrosoft.com"),
    ("environment", "staging"),
    ("reap_parallel", "16"),
    ("arm_endpoint", "https://management.usgovcloudapi.net"),
    ("ledger_endpoint", "http://127.0.0.1:10002/devstoreaccount1"),
    ("backend_url", "azblob://pulumi-state"),
    ("secrets_provider", "azurekeyvault://vault.vault.azure.net/keys/pulumi"),
    ("log_analytics_workspace", "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/"
                                "workspaces/w"),
    ("platform_stack", "contoso/haymaker/dev"),
])
def test_config_set_stores_a_valid_value(home, capsys, key, value):
    code, _, err = run(capsys, "config", "set", key, value)
    assert code == 0, err
    assert run(capsys, "config", "get", key)[1].strip() == value


# --- run ids and scenario names ------------------------------------------------------------------------

@pytest.mark.parametrize("run_id, said", [
    ("19700101t0000z-abcd", "starts 1970-01-01, before any HayMaker run (2025-01-01)"),
    ("20991231t2359z-abcd", "starts 2099-12-31 23:59Z, more than 7 days from now"),
])
def test_a_run_id_far_in_the_past_or_future_is_refused(home, capsys, run_id, said):
    code, out, err = run(capsys, "plan", "--run-id", run_id)
    assert (code, out) == (1, "") and said in err and "leave --run-id out for a new one" in err


def test_up_refuses_a_run_id_whose_run_has_ended(home, capsys):
    ended = new_run_id(datetime.now(timezone.utc) - timedelta(hours=11))
    code, _, err = run(capsys, "up", "--run-id", ended, "--duration", "10", "--yes")
    assert code == 1 and f"run {ended} would have expired at " in err and "reaper would remove it" in err


NAMES = ["compute-01-linux-vm-web-server", "compute-02-windows-vm-iis", "compute-05-vm-scale-set",
         "networking-01-virtual-network"]


@pytest.mark.parametrize("typed, expected", [
    ("compute-01", ["compute-01-linux-vm-web-server"]),  # a prefix
    ("linux-vm", ["compute-01-linux-vm-web-server"]),  # a part
    ("COMPUTE-01-LINUX-VM-WEB-SERVER", ["compute-01-linux-vm-web-server"]),  # another case
    ("Compute-0", ["compute-01-linux-vm-web-server", "compute-02-windows-vm-iis", "compute-05-vm-scale-set"]),
    ("compute-01-linux-vm-web-sever", ["compute-01-linux-vm-web-server"]),  # a typo
    ("xyzzy", []),
])
def test_suggestions_match_by_prefix_part_case_and_spelling(typed, expected):
    from haymaker.selection import suggestions

    assert suggestions(typed, NAMES)[:len(expected) or None] == expected


def test_an_unknown_scenario_is_answered_with_what_it_may_mean(home, capsys, catalog):
    name = catalog.names()[0]
    code, _, err = run(capsys, "plan", "-s", name.upper())
    assert code == 1 and err == f"error: unknown scenario {name.upper()!r}: did you mean {name}?\n"


# --- files and output that cannot be written: one line and an exit code --------------------------------

def test_markdown_to_a_missing_directory_or_a_directory_is_one_line(home, capsys, catalog):
    name = catalog.names()[0]
    code, out, err = run(capsys, "plan", "-s", name, "--markdown", "/nonexistent/dir/plan.md")
    assert (code, out) == (1, "")
    assert err == "error: cannot write --markdown /nonexistent/dir/plan.md: its directory does not exist\n"
    code, out, err = run(capsys, "plan", "-s", name, "--markdown", str(home))
    assert (code, out) == (1, "")
    assert err == f"error: cannot write --markdown {home}: it is a directory: name a file in it\n"


def test_json_to_a_full_disk_is_one_line(catalog):
    with open("/dev/full", "w") as full:
        done = subprocess.run([str(HAYMAKER), "plan", "--json", "-s", catalog.names()[0]], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "error: cannot write the output: no space left on device"
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_a_reader_that_goes_away_is_no_traceback():
    """`haymaker plan --json --size large | head -c 10`: more than a pipe holds, and no one reads it."""
    plan = subprocess.Popen([str(HAYMAKER), "plan", "--json", "--size", "large"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)
    plan.stdout.read(10)
    plan.stdout.close()
    _, err = plan.communicate(timeout=120)
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()


# --- JSON: the same input, the same bytes ---------------------------------------------------------------

def test_plan_json_is_byte_identical_for_the_same_run_id(catalog):
    """Two processes (each its own hash seed and registration order) print the same bytes, keys sorted."""
    run_id = new_run_id()
    outputs = []
    for seed in ("1", "2"):
        done = subprocess.run([str(HAYMAKER), "plan", "--json", "--size", "small", "--run-id", run_id],
                              capture_output=True, text=True, timeout=120, cwd=REPO,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0] == json.dumps(json.loads(outputs[0]), indent=2, sort_keys=True) + "\n"


# --- dispatch --check: offline only -------------------------------------------------------------------

def test_dispatch_check_validates_without_github(home, capsys, monkeypatch, catalog):
    for variable in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(home))  # no git, no gh: nothing to find a repository or a token with
    name = catalog.names()[0]
    code, out, err = run(capsys, "dispatch", "-s", name, "--check")
    assert code == 0, err
    assert out.startswith("plan checked: 1 scenario · dev · ") and out.count("\n") == 1
    code, _, err = run(capsys, "dispatch", "-s", "not-a-scenario", "--check")
    assert code == 1 and "unknown scenario 'not-a-scenario'" in err
    code, _, err = run(capsys, "dispatch", "-s", name, "--check", "--watch")
    assert code == 1 and "--check validates here and starts nothing" in err
