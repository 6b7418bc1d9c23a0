"""`haymaker platform bootstrap --print`: every step from an empty subscription to the first run, in order,
derived from the trust table, with no step needing what a later one makes.

The printed script is also run, under bash with `set -euo pipefail`, against stand-ins for `az` and `gh`
that record their arguments and answer with made-up ids: an identity used before it exists, or a
variable set from a value not yet known, fails the run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from haymaker import trust
from haymaker.cli import main

REPO = "acme/haymaker"
SUBS = {"dev": "11111111-2222-3333-4444-5555555555d0", "prod": "11111111-2222-3333-4444-5555555555f0"}


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def printed():
    from haymaker.bootstrap import render
    from scenarios.catalog import load_catalog

    return render(REPO, ["dev", "prod"], SUBS, load_catalog(), reviewer="octocat")


@pytest.mark.parametrize("args, message", [
    (["--repo", REPO, "--subscription", SUBS["dev"]], "bootstrap only prints"),
    (["--print", "--subscription", SUBS["dev"]], "--repo OWNER/REPO is required"),
    (["--print", "--repo", "your-org/haymaker", "--subscription", SUBS["dev"]], "is the placeholder"),
    (["--print", "--repo", "acme", "--subscription", SUBS["dev"]], "is not owner/repo"),
    (["--print", "--repo", REPO, "--environments", "dev"], "no subscription for dev"),
    (["--print", "--repo", REPO, "--environments", "dev", "--subscription", "x"], "is not a subscription id"),
    (["--print", "--repo", REPO, "--environments", "dev", "--subscription", f"qa={SUBS['dev']}"],
     "'qa' is not one of --environments dev"),
    (["--print", "--repo", REPO, "--environments", "", "--subscription", SUBS["dev"]], "--environments is empty"),
])
def test_bad_input_is_refused_with_what_to_change(capsys, args, message):
    code, out, err = run(capsys, "platform", "bootstrap", *args)
    assert code == 1 and message in err and out == "" and "Traceback" not in err


def test_the_steps_come_in_order_and_the_same_input_prints_the_same_bytes(capsys, printed):
    numbers = [int(n) for n in re.findall(r"^# --- Step (\d+) ", printed, re.M)]
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] == 12
    code, out, _ = run(capsys, "platform", "bootstrap", "--print", "--repo", REPO, "--environments", "dev,prod",
                       "--subscription", f"dev={SUBS['dev']}", "--subscription", f"prod={SUBS['prod']}",
                       "--reviewer", "octocat")
    assert code == 0 and out == printed


def test_every_identity_right_and_github_environment_of_the_table_is_a_printed_step(printed, catalog):
    for env in SUBS:
        table = trust.load_table(env, catalog)
        for i in table.federated():
            if i.kind != trust.APPLICATION:
                continue
            assert f"az ad app create --display-name {i.name} " in printed
            for subject in i.subjects(REPO):
                assert f'"subject": "{subject}"' in printed
            for g in i.roles:
                if g.granted_by == trust.PERSON:
                    assert re.search(rf"--assignee-object-id \"\${env.upper()}_{i.key.upper().replace('-', '_')}_SP\" "
                                     rf"--assignee-principal-type ServicePrincipal --role '?{re.escape(g.role)}'? ", printed)
        for role in table.custom_roles.values():
            assert json.dumps(role.as_json(SUBS[env])).replace("'", "'\"'\"'") in printed
        for gh in table.github:
            assert f"repos/{REPO}/environments/{gh.name} --input" in printed
            for name in gh.variables:
                assert f"gh variable set {name} --repo {REPO} --env {gh.name} " in printed
    # Never a branch, a pull request or another environment; never a right that grants rights.
    assert "ref:refs/heads" not in printed and "pull_request" not in printed
    for forbidden in ("--role Owner", "User Access Administrator", "AppRoleAssignment.ReadWrite.All",
                      "RoleManagement", "Directory.ReadWrite.All", "Application.ReadWrite.All"):
        assert forbidden not in printed
    assert "--condition" in printed and printed.count("--condition-version 2.0") == 2 * 3  # 3 conditioned roles per env


FAKE_AZ = r'''#!/usr/bin/env bash
printf '%s\n' "az $*" >> "$CALLS"
args="$*"
case "$args" in
  "account show"*) echo "72f988bf-0000-4000-8000-000000000001" ;;
  "ad signed-in-user show"*) echo "person-object-id" ;;
  "keyvault show"*) echo "/subscriptions/x/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v" ;;
  "ad app create"*) name="${args#*--display-name }"; echo "app-${name%% *}" ;;
  "ad sp create"*) id="${args#*--id }"; echo "sp-of-${id%% *}" ;;
  "ad sp show"*) echo "graph-sp" ;;
esac
'''
FAKE_GH = r'''#!/usr/bin/env bash
printf '%s\n' "gh $*" >> "$CALLS"
if [ "$1" = api ] && [ "${2#users/}" != "$2" ]; then echo 583231; fi
if [ "$1" = api ] && [ "$3" = PUT ]; then cat >> "$CALLS"; fi
'''


def test_the_printed_script_runs_in_order_with_nothing_used_before_it_exists(printed, tmp_path):
    for name, body in (("az", FAKE_AZ), ("gh", FAKE_GH), ("git", "#!/usr/bin/env bash\necho \"git $*\" >> \"$CALLS\"\n"),
                       ("haymaker", "#!/usr/bin/env bash\necho \"haymaker $*\" >> \"$CALLS\"\n")):
        (tmp_path / name).write_text(body)
        (tmp_path / name).chmod(0o755)
    calls = tmp_path / "calls"
    done = subprocess.run(["bash", "-c", printed], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "CALLS": str(calls)})
    assert done.returncode == 0, done.stderr
    log = calls.read_text()
    # Identities exist before any role, Graph grant or variable names them.
    first = {word: log.index(word) for word in ("ad app create", "role assignment create --assignee-object-id",
                                                "appRoleAssignments", "gh variable set", "git tag")}
    assert first["ad app create"] < first["role assignment create --assignee-object-id"] < first["appRoleAssignments"]
    assert first["appRoleAssignments"] < first["gh variable set"] < first["git tag"]
    # Each identity's client id reaches its own GitHub Environment's variable, nowhere else.
    for env in SUBS:
        for key, gh_env in (("deployer", env), ("platform", f"platform-{env}"), ("reaper", f"reap-{env}"),
                            ("drift", f"drift-{env}"), ("publisher", f"release-{env}")):
            assert re.search(rf"gh variable set AZURE_\w*CLIENT_ID --repo {REPO} --env {gh_env} --body "
                             rf"app-haymaker-{env}-{key}$", log, re.M), (env, key)
    assert "\"id\": 583231" in log and "\"prevent_self_review\": true" in log  # a reviewer on protected ones
    # The platform's config names the object ids of the service principals just created.
    assert "run-deployer: sp-of-app-haymaker-dev-deployer" in done.stdout
    assert "image-publisher: sp-of-app-haymaker-prod-publisher" in done.stdout


def test_no_script_of_the_old_single_identity_setup_remains():
    assert not (Path(__file__).resolve().parents[1] / "scripts" / "setup_oidc.sh").exists()


def test_the_printed_platform_config_holds_no_placeholder(printed):
    """Step 9's config is what the platform and the first runs accept: the repository and an image the first
    release pushes, no key `up` or `doctor` would refuse as shipped."""
    import re

    import yaml

    from haymaker.settings import find_placeholders

    blocks = re.findall(r"# Pulumi\.(\w+)\.yaml.*?\ncat <<YAML\n(.*?)\nYAML", printed, re.S)
    assert blocks, "step 9 prints no config"
    for env, block in blocks:
        config = yaml.safe_load(block.replace("$", ""))
        assert config["haymaker:agentImage"].endswith(":v0.1.0-dev" if env == "dev" else
                                                      (":v0.1.0-rc.1" if env == "staging" else ":v0.1.0"))
        assert find_placeholders(config, f"Pulumi.{env}.yaml") == [], (env, block)
