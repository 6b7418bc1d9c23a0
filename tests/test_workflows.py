"""The GitHub Actions workflows: what triggers them, what they may do, and what they run.

Workflows are loaded with pyyaml (which reads the key ``on`` as ``True``) and checked for behaviour:
triggers and cron times, dispatch inputs reaching ``haymaker`` only through ``env:``, least
permissions per job, concurrency, timeouts, pinned actions, report steps that run on failure, and
that every ``haymaker`` command and flag they call exists. The shell of the steps that hold logic
(target resolution, the reaper's exit code, the sticky PR comment, the issue reports) is run here
with stand-ins for ``haymaker`` and ``gh``. ``scripts/lint_workflows.sh`` (check-jsonschema,
zizmor, yamllint) is run too. Each job that logs in to Azure is checked against the trust table
(haymaker/trust.py): the GitHub Environment it names and the client id it logs in with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.config import PLATFORM_STACKS
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
SETUP_ACTION = ROOT / ".github" / "actions" / "setup" / "action.yml"
OURS = ("pr", "run", "reap", "platform", "drift", "canary")
ALL_WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
VENV_BIN = ROOT / ".venv" / "bin"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
LOCAL_ACTION = re.compile(r"^(\./|\$/)")
ALWAYS = re.compile(r"\b(always|failure)\(\)")


# --- loading -----------------------------------------------------------------------------------

def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # pyyaml reads the key `on` as the boolean True
        doc["on"] = doc.pop(True)
    return doc


def workflow(name: str) -> dict:
    return load(WORKFLOWS_DIR / f"{name}.yml")


def jobs(doc: dict) -> dict:
    return doc["jobs"]


def steps_of(job: dict) -> list[dict]:
    return job.get("steps", [])


def step(job: dict, name_part: str) -> dict:
    found = [s for s in steps_of(job) if name_part.lower() in s.get("name", "").lower()]
    assert len(found) == 1, f"expected one step named like {name_part!r}, found {[s.get('name') for s in found]}"
    return found[0]


def all_steps():
    """(where, step) for every step of every workflow and of the composite setup action."""
    for path in ALL_WORKFLOWS:
        for job_id, job in jobs(load(path)).items():
            for s in steps_of(job):
                yield f"{path.name}:{job_id}", s
    for s in load(SETUP_ACTION)["runs"]["steps"]:
        yield SETUP_ACTION.relative_to(ROOT).as_posix(), s


def run_scripts():
    return [(where, s["run"]) for where, s in all_steps() if "run" in s]


def walk(node, path=()):
    """Yield (path, string) for every string in a parsed YAML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))
    elif isinstance(node, str):
        yield path, node


def uses_azure_login(job: dict) -> bool:
    return any(s.get("uses", "").startswith("azure/login@") for s in steps_of(job))


# --- cron ----------------------------------------------------------------------------------------

def cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step_n = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start, end = (int(x) for x in body.split("-"))
        else:
            start = end = int(body)
        values.update(range(start, end + 1, step_n))
    return values


def cron_times(doc: dict) -> tuple[set[int], set[int], list[str]]:
    """Minutes and hours (UTC) of every schedule entry, and the day/month/weekday fields."""
    minutes, hours, rest = set(), set(), []
    for entry in doc["on"]["schedule"]:
        fields = entry["cron"].split()
        assert len(fields) == 5, entry
        minutes |= cron_field(fields[0], 0, 59)
        hours |= cron_field(fields[1], 0, 23)
        rest += fields[2:]
    return minutes, hours, rest


def test_cron_parser():
    assert cron_field("*/30", 0, 59) == {0, 30}
    assert cron_field("0,6,12,18", 0, 23) == {0, 6, 12, 18}
    assert cron_field("1-3", 0, 23) == {1, 2, 3}


# --- rules for every workflow --------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_top_level_permissions_are_empty(path):
    assert load(path)["permissions"] == {}


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_its_own_permissions(path):
    for job_id, job in jobs(load(path)).items():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 180, job_id
        assert isinstance(job.get("permissions"), dict), f"{path.name}:{job_id} has no job-level permissions"


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_id_token_write_only_where_azure_login_is_used(path):
    for job_id, job in jobs(load(path)).items():
        perms = job.get("permissions") or {}
        assert (perms.get("id-token") == "write") == uses_azure_login(job), f"{path.name}:{job_id}"
        assert "write-all" not in str(perms) and "read-all" not in str(perms)


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target(path):
    assert "pull_request_target" not in load(path)["on"]
    assert "workflow_run" not in load(path)["on"]


def test_every_uses_is_pinned_to_a_commit_sha_with_its_version():
    seen = 0
    for where, s in all_steps():
        if "uses" not in s:
            continue
        seen += 1
        ref = s["uses"]
        if LOCAL_ACTION.match(ref):
            assert ref.endswith(".github/actions/setup"), (where, ref)
            continue
        assert SHA_PIN.match(ref), f"{where}: {ref} is not pinned to a 40-hex commit"
    assert seen > 10
    # The version each SHA stands for is written beside it.
    for path in [*ALL_WORKFLOWS, SETUP_ACTION]:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.search(r"uses:\s*([^\s#]+)(.*)$", line)
            if m and not LOCAL_ACTION.match(m.group(1)):
                assert re.search(r"#\s*v\d+(\.\d+)*", m.group(2)), f"{path.name}: no version comment: {line.strip()}"


def test_one_sha_per_action_everywhere():
    pins: dict[str, set[str]] = {}
    for _, s in all_steps():
        if "uses" in s and "@" in s["uses"] and not LOCAL_ACTION.match(s["uses"]):
            action, sha = s["uses"].split("@")
            pins.setdefault(action, set()).add(sha)
    assert {a: shas for a, shas in pins.items() if len(shas) > 1} == {}


def test_every_checkout_drops_its_credentials():
    checkouts = [(w, s) for w, s in all_steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for where, s in checkouts:
        assert (s.get("with") or {}).get("persist-credentials") is False, where


def test_no_expression_inside_any_run_script():
    scripts = run_scripts()
    assert len(scripts) > 20
    for where, script in scripts:
        assert "${{" not in script, f"{where}: move the expression into env: and use the variable"
        assert "inputs." not in script and "github.event." not in script, where


def test_dispatch_inputs_and_event_data_appear_only_in_env():
    """User-controlled values reach a step only as environment variables."""
    for path in [*ALL_WORKFLOWS, SETUP_ACTION]:
        doc = load(path)
        for where, text in walk(doc):
            for expr in re.findall(r"\$\{\{(.*?)\}\}", text):
                if "inputs." in expr and path != SETUP_ACTION or "github.event." in expr:
                    allowed = "env" in where or where[:1] == ("concurrency",) or where[-1] == "if"
                    assert allowed, f"{path.name}: {'/'.join(map(str, where))}: {expr.strip()}"


def test_every_job_and_step_that_runs_has_a_name():
    for where, s in all_steps():
        assert s.get("name"), f"{where}: a step without a name"


def test_repeated_setup_is_the_composite_action():
    """Install steps live once, in .github/actions/setup; jobs only call it."""
    for path in (WORKFLOWS_DIR / f"{n}.yml" for n in OURS):
        for job_id, job in jobs(load(path)).items():
            for s in steps_of(job):
                uses = s.get("uses", "")
                assert not uses.startswith(("actions/setup-python@", "pulumi/actions@")), f"{path.name}:{job_id}"
                assert "bootstrap.sh" not in s.get("run", ""), f"{path.name}:{job_id}"
            if any(s.get("uses", "").startswith("actions/checkout@") for s in steps_of(job)):
                setup = [s for s in steps_of(job) if LOCAL_ACTION.match(s.get("uses", ""))]
                assert len(setup) == 1, f"{path.name}:{job_id}"


def test_every_shell_script_parses():
    for where, script in run_scripts():
        result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, f"{where}: {result.stderr}"


# --- the composite setup action ---------------------------------------------------------------

def test_setup_action_installs_python_uv_the_venv_and_optionally_pulumi():
    action = load(SETUP_ACTION)
    assert action["runs"]["using"] == "composite"
    s = action["runs"]["steps"]
    python = next(x for x in s if x.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    assert any("uv==" in x.get("run", "") for x in s)
    assert any(x.get("run", "").strip() == "bash scripts/bootstrap.sh" for x in s)
    pulumi = next(x for x in s if x.get("uses", "").startswith("pulumi/actions@"))
    assert "command" not in pulumi.get("with", {}), "without `command` the action only installs the CLI"
    assert pulumi["if"] == "inputs.pulumi == 'true'"
    assert action["inputs"]["pulumi"]["default"] == "false"


# --- pr.yml ----------------------------------------------------------------------------------------

def test_pr_runs_on_pull_requests_touching_what_a_run_creates():
    on = workflow("pr")["on"]
    assert set(on) == {"pull_request"}
    paths = set(on["pull_request"]["paths"])
    for p in ("scenarios/**", "stacks/**", "components/**", "policies/**", "haymaker/**", "Pulumi*.yaml",
              "pyproject.toml", "uv.lock", ".github/**"):
        assert p in paths


def test_pr_tests_lint_validate_and_posts_what_haymaker_pr_renders():
    j = jobs(workflow("pr"))
    assert step(j["test"], "tests")["run"] == "bash scripts/test.sh"
    assert step(j["lint"], "lint")["run"] == "bash scripts/lint_workflows.sh"
    plan = j["plan"]
    runs = [s.get("run", "") for s in steps_of(plan)]
    assert ".venv/bin/haymaker scenarios validate" in runs
    # Not a random run of five: every run the change allows, against the base (the merge commit's first
    # parent, so the checkout holds two commits); written before it fails, so it runs either way.
    pr = step(plan, "haymaker pr")
    assert pr["run"] == ".venv/bin/haymaker pr --base HEAD^1 --json --markdown pr.md > pr.json"
    assert ALWAYS.search(pr["if"]) and step(plan, "check out")["with"]["fetch-depth"] == 2
    assert runs.index(".venv/bin/haymaker scenarios validate") < runs.index(pr["run"])
    assert not any("haymaker plan" in r for r in runs)
    summary = step(plan, "job summary")
    assert ALWAYS.search(summary["if"]) and "pr.md" in summary["run"] and "GITHUB_STEP_SUMMARY" in summary["run"]
    keep = step(plan, "keep the comment")
    assert ALWAYS.search(keep["if"]) and keep["with"]["name"] == "pr" and "pr.md" in keep["with"]["path"]
    assert step(j["comment"], "fetch the comment")["with"]["name"] == "pr"


def test_pr_plan_needs_no_credentials():
    pr = workflow("pr")
    for job_id, job in jobs(pr).items():
        assert not uses_azure_login(job)
        assert "id-token" not in job["permissions"]
        text = json.dumps(job)
        assert "secrets." not in text and "AZURE_" not in text and "ARM_" not in text, job_id
    assert jobs(pr)["plan"]["permissions"] == {"contents": "read"}


def test_pr_comment_job_may_only_write_pull_requests():
    j = jobs(workflow("pr"))
    comment = j["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}
    assert ALWAYS.search(comment["if"])
    assert comment["needs"] == "plan"
    for job_id, job in j.items():
        if job_id != "comment":
            assert "pull-requests" not in job["permissions"] and "issues" not in job["permissions"]


# --- run.yml -----------------------------------------------------------------------------------------

def test_run_schedule_is_four_times_a_day_on_the_hour():
    minutes, hours, rest = cron_times(workflow("run"))
    assert minutes == {0}
    assert hours == {0, 6, 12, 18}
    assert set(rest) == {"*"}


def test_run_triggers_and_dispatch_inputs():
    on = workflow("run")["on"]
    assert on["push"] == {"tags": ["v*"]}
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"environment", "scenarios", "size", "duration_hours", "dry_run"}
    assert inputs["environment"]["type"] == "choice" and inputs["environment"]["options"] == ["dev", "staging", "prod"]
    assert inputs["scenarios"]["type"] == "string" and not inputs["scenarios"].get("required", False)
    assert inputs["size"]["type"] == "choice" and inputs["size"]["options"] == ["small", "medium", "large"]
    assert inputs["duration_hours"]["type"] in ("string", "number")
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False


def test_run_job_deploys_with_oidc_into_its_environment_one_at_a_time():
    j = jobs(workflow("run"))
    run = j["run"]
    assert run["needs"] == "target"
    assert run["environment"]["name"] == "${{ needs.target.outputs.environment }}"
    assert run["concurrency"] == {"group": "run-${{ needs.target.outputs.environment }}", "cancel-in-progress": False}
    assert run["permissions"] == {"contents": "read", "id-token": "write"}
    login = next(s for s in steps_of(run) if s.get("uses", "").startswith("azure/login@"))
    assert login["with"] == {"client-id": "${{ vars.AZURE_CLIENT_ID }}", "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
                             "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}"}
    env = run["env"]
    assert env["ARM_USE_OIDC"] == "true"
    for key in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                "AZURE_SUBSCRIPTION_ID", "PULUMI_BACKEND_URL", "HAYMAKER_SECRETS_PROVIDER", "HAYMAKER_LEDGER_ENDPOINT"):
        assert env[key].startswith("${{ vars."), key
    assert "secrets." not in json.dumps(run)
    setup = next(s for s in steps_of(run) if LOCAL_ACTION.match(s.get("uses", "")))
    assert setup["with"]["pulumi"] == "true"
    up = step(run, "deploy")["run"]
    assert "haymaker up --yes --json" in up and '--trigger "$HAYMAKER_TRIGGER"' in up
    assert '"${selection[@]}"' in up


def test_run_reports_the_inventory_and_keeps_the_audit_record_even_on_failure():
    run = jobs(workflow("run"))["run"]
    summary = step(run, "inventory")
    assert ALWAYS.search(summary["if"]) and "GITHUB_STEP_SUMMARY" in summary["run"] and "up.json" in summary["run"]
    upload = next(s for s in steps_of(run) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == run["env"]["HAYMAKER_AUDIT_DIR"]


def test_run_dry_run_plans_instead_of_deploying():
    j = jobs(workflow("run"))
    target = j["target"]
    assert "id-token" not in target["permissions"] and not uses_azure_login(target)
    assert "environment" not in target  # the preflight plan never waits for a reviewer
    assert "haymaker plan" in step(target, "preflight plan")["run"]
    assert j["run"]["if"] == "needs.target.outputs.deploy == 'true'"
    assert "haymaker up" not in json.dumps(target)


# The target job's resolve step, run with a stand-in for `haymaker release-env`.

@pytest.fixture
def resolve_script():
    return step(jobs(workflow("run"))["target"], "resolve")["run"]


def run_resolve(script: str, tmp_path: Path, **env) -> tuple[int, dict, str]:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "haymaker"
    fake.write_text(f'#!/usr/bin/env bash\nexec {shlex.quote(str(VENV_BIN / "haymaker"))} "$@"\n')
    fake.chmod(0o755)
    out = tmp_path / "output"
    out.write_text("")
    base = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "GITHUB_REF_NAME": "main",
            "SCHEDULE_ENVIRONMENT": "", "INPUT_ENVIRONMENT": "", "INPUT_SCENARIOS": "", "INPUT_SIZE": "",
            "INPUT_DURATION": "", "INPUT_DRY_RUN": ""}
    result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env={**base, **env},
                            text=True, capture_output=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return result.returncode, outputs, result.stdout + result.stderr


def test_resolve_dispatch_splits_the_scenarios_into_flags(resolve_script, tmp_path):
    code, out, log = run_resolve(resolve_script, tmp_path, EVENT="workflow_dispatch", INPUT_ENVIRONMENT="staging",
                                 INPUT_SCENARIOS=" compute-01-linux-vm-web-server, data-02-cosmos ,,",
                                 INPUT_SIZE="large", INPUT_DURATION="4", INPUT_DRY_RUN="false")
    assert code == 0, log
    assert out == {"environment": "staging", "trigger": "dispatch", "deploy": "true",
                   "selection": "--scenario compute-01-linux-vm-web-server --scenario data-02-cosmos --duration 4"}


def test_resolve_dispatch_without_scenarios_picks_by_size_and_dry_run_does_not_deploy(resolve_script, tmp_path):
    code, out, log = run_resolve(resolve_script, tmp_path, EVENT="workflow_dispatch", INPUT_ENVIRONMENT="dev",
                                 INPUT_SIZE="medium", INPUT_DRY_RUN="true")
    assert code == 0, log
    assert out["selection"] == "--size medium" and out["deploy"] == "false" and out["trigger"] == "dispatch"


@pytest.mark.parametrize("field,value", [("INPUT_SCENARIOS", "x; rm -rf /"), ("INPUT_SCENARIOS", "--size large"),
                                         ("INPUT_SCENARIOS", "$(id)"), ("INPUT_DURATION", "4h"),
                                         ("INPUT_DURATION", "1 --yes"), ("INPUT_ENVIRONMENT", "qa"),
                                         ("INPUT_SCENARIOS", "compute-01-linux-vm-web-server\n--size large")])
def test_resolve_refuses_inputs_that_are_not_names_or_hours(resolve_script, tmp_path, field, value):
    env = {"EVENT": "workflow_dispatch", "INPUT_ENVIRONMENT": "dev", "INPUT_SIZE": "small", field: value}
    code, out, log = run_resolve(resolve_script, tmp_path, **env)
    assert code == 1, log
    assert "selection" not in out


@pytest.mark.parametrize("tag,environment", [("v1.2.3-dev", "dev"), ("v1.2.3-rc.2", "staging"), ("v1.2.3", "prod")])
def test_resolve_release_tag_uses_release_env(resolve_script, tmp_path, tag, environment):
    code, out, log = run_resolve(resolve_script, tmp_path, EVENT="push", GITHUB_REF_NAME=tag)
    assert code == 0, log
    assert out == {"environment": environment, "trigger": "release", "selection": "", "deploy": "true"}


def test_resolve_refuses_a_tag_that_is_not_a_release(resolve_script, tmp_path):
    code, out, log = run_resolve(resolve_script, tmp_path, EVENT="push", GITHUB_REF_NAME="v1-experiment")
    assert code != 0 and out == {}, log


def test_resolve_schedule_defaults_to_dev(resolve_script, tmp_path):
    code, out, _ = run_resolve(resolve_script, tmp_path, EVENT="schedule")
    assert code == 0 and out["environment"] == "dev" and out["trigger"] == "schedule" and out["selection"] == ""
    code, out, _ = run_resolve(resolve_script, tmp_path, EVENT="schedule", SCHEDULE_ENVIRONMENT="prod")
    assert code == 0 and out["environment"] == "prod"


# --- reap.yml ----------------------------------------------------------------------------------------

def test_reap_every_thirty_minutes_and_on_dispatch():
    doc = workflow("reap")
    minutes, hours, rest = cron_times(doc)
    assert minutes == {0, 30} and hours == set(range(24)) and set(rest) == {"*"}
    assert "workflow_dispatch" in doc["on"]
    assert doc["concurrency"] == {"group": "reap", "cancel-in-progress": False}


def test_reap_runs_once_per_environment_as_its_reaper_and_files_one_issue_from_a_job_that_may_only_write_issues():
    j = jobs(workflow("reap"))
    reap, report = j["reap"], j["report"]
    assert reap["permissions"] == {"contents": "read", "id-token": "write"}
    assert reap["strategy"]["matrix"]["environment"] == list(PLATFORM_STACKS) and reap["strategy"]["fail-fast"] is False
    assert reap["environment"] == {"name": "reap-${{ matrix.environment }}"}  # main only, no reviewer
    assert reap["env"]["HAYMAKER_ENVIRONMENT"] == "${{ matrix.environment }}"
    run = step(reap, "reap (haymaker reap)")["run"]
    assert 'haymaker reap --json --environment "$HAYMAKER_ENVIRONMENT" > reap.json' in run
    assert ALWAYS.search(step(reap, "summary")["if"]) and ALWAYS.search(step(reap, "keep the report")["if"])
    assert step(reap, "keep the report")["with"]["name"] == "reap-${{ matrix.environment }}"
    assert report["permissions"] == {"issues": "write"}
    assert report["if"] == "always() && needs.reap.result == 'failure'"
    assert step(report, "fetch the reports")["with"] == {"pattern": "reap-*"}
    assert not uses_azure_login(report)
    issue = step(report, "issue")
    assert issue["env"]["LABEL"] == "haymaker-orphans"


def test_reap_step_records_the_exit_code_and_still_fails(tmp_path):
    script = step(jobs(workflow("reap"))["reap"], "reap (haymaker reap)")["run"]
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "haymaker").write_text('#!/usr/bin/env bash\necho "$*" > args.txt\n'
                                      'echo \'[{"run_id": "x", "outcome": "failed"}]\'\nexit "${FAKE_EXIT:-0}"\n')
    (bin_dir / "haymaker").chmod(0o755)
    for code in (0, 3, 1):
        result = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, text=True, capture_output=True,
                                env={"PATH": os.environ["PATH"], "FAKE_EXIT": str(code), "HAYMAKER_ENVIRONMENT": "prod"})
        assert result.returncode == code
        assert (tmp_path / "reap.exit").read_text().strip() == str(code)
        assert json.loads((tmp_path / "reap.json").read_text())[0]["outcome"] == "failed"
        assert (tmp_path / "args.txt").read_text().split() == ["reap", "--json", "--environment", "prod"]


def test_after_the_reaper_answer_keys_in_a_job_that_cannot_fail_the_reapers_result():
    from haymaker.config import KEYS

    j = jobs(workflow("reap"))
    reap, truth = j["reap"], j["truth"]
    # After the reaper whatever it found, unless the workflow was cancelled; its own failure fails only itself.
    assert truth["needs"] == "reap" and truth["if"] == "!cancelled()" and truth["continue-on-error"] is True
    assert truth["permissions"] == {"contents": "read", "id-token": "write"}
    assert truth["environment"] == reap["environment"] and truth["strategy"] == reap["strategy"]
    assert "outputs" not in truth and "truth" not in j["report"]["needs"]
    login = [s for s in steps_of(truth) if s.get("uses", "").startswith("azure/login@")]
    assert login == [s for s in steps_of(reap) if s.get("uses", "").startswith("azure/login@")]
    # The reaper's identity and ledger, and the workspace and container the answer keys need; no Pulumi.
    for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "HAYMAKER_ENVIRONMENT",
                "HAYMAKER_LEDGER_ENDPOINT"):
        assert truth["env"][key] == reap["env"][key], key
    for key in ("HAYMAKER_LOG_ANALYTICS_WORKSPACE", "HAYMAKER_REPORTS_CONTAINER_URL", "HAYMAKER_TRUTH_DUE_LIMIT"):
        assert truth["env"][key] == f"${{{{ vars.{key} }}}}", key
    assert truth["env"]["AZURE_CLIENT_ID"] == "${{ vars.AZURE_REAPER_CLIENT_ID }}"
    assert set(truth["env"]) - {"AZURE_CLIENT_ID"} <= {k.env for k in KEYS}  # each one a setting haymaker reads
    assert "pulumi" not in json.dumps(truth).lower()
    assert step(truth, "haymaker truth --due")["run"].strip() == ".venv/bin/haymaker truth --due --json > truth.json"
    assert ALWAYS.search(step(truth, "job summary")["if"])
    keep = step(truth, "keep the answer-key report")
    assert ALWAYS.search(keep["if"]) and keep["with"]["name"] == "truth-${{ matrix.environment }}"
    assert keep["with"]["path"] == "truth.json"


def test_answer_keys_step_fails_with_haymaker_and_the_summary_shows_its_document(tmp_path):
    truth = jobs(workflow("reap"))["truth"]
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "haymaker").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" > args.txt\n'
                                      'echo \'{"built": 1, "failed": 1, "runs": []}\'\nexit "${FAKE_EXIT:-0}"\n')
    (bin_dir / "haymaker").chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {"PATH": os.environ["PATH"], "GITHUB_STEP_SUMMARY": str(summary)}
    for code in (0, 1):
        result = subprocess.run(["bash", "-e", "-c", step(truth, "haymaker truth --due")["run"]], cwd=tmp_path,
                                text=True, capture_output=True, env={**env, "FAKE_EXIT": str(code)})
        assert result.returncode == code, result.stderr
        assert (tmp_path / "args.txt").read_text().split() == ["truth", "--due", "--json"]
    result = subprocess.run(["bash", "-e", "-c", step(truth, "job summary")["run"]], cwd=tmp_path, text=True,
                            capture_output=True, env=env)
    assert result.returncode == 0, result.stderr
    assert summary.read_text() == '## Answer keys\n```json\n{"built": 1, "failed": 1, "runs": []}\n```\n'
    (tmp_path / "truth.json").write_text("")  # the command never ran
    subprocess.run(["bash", "-e", "-c", step(truth, "job summary")["run"]], cwd=tmp_path, env=env, check=True)
    assert summary.read_text().endswith("## Answer keys\nNo report: see the log of the truth step.\n")


# A stand-in for `gh` that logs its arguments and answers list/api calls from environment variables.
FAKE_GH = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$GH_LOG"
for a in "$@"; do
  case "$a" in body=@*) cp "${a#body=@}" "$GH_BODY" ;; esac
done
prev=""
for a in "$@"; do
  if [ "$prev" = "--body-file" ]; then cp "$a" "$GH_BODY"; fi
  prev="$a"
done
case "$1 $2" in
  "issue list") printf '%s' "${FAKE_ISSUE:-}"; [ -n "${FAKE_ISSUE:-}" ] && echo ;;
  "api --paginate") printf '%s' "${FAKE_COMMENTS:-}" | jq -r "$(for x in "$@"; do [ "$p" = "--jq" ] && echo "$x"; p="$x"; done)" ;;
esac
exit 0
"""


def fake_gh(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "GH_LOG": str(tmp_path / "gh.log"),
            "GH_BODY": str(tmp_path / "body.sent"), "GH_TOKEN": "x", "GH_REPO": "o/r", "GITHUB_REPOSITORY": "o/r"}


def run_step(s: dict, tmp_path: Path, extra: dict) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in s.get("env", {}).items() if "${{" not in v}, **extra}
    return subprocess.run(["bash", "-e", "-c", s["run"]], cwd=tmp_path, env=env, text=True, capture_output=True)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("iconv") is None, reason="needs jq and iconv")
@pytest.mark.parametrize("existing", ["", "17"])
def test_reap_report_opens_one_issue_or_comments_on_the_open_one(tmp_path, existing):
    issue = step(jobs(workflow("reap"))["report"], "issue")
    # As the download step lays the artifacts out: one directory per environment's reaper.
    for env, code, report in (("dev", "3", [
            {"run_id": "a", "outcome": "verified", "leftovers_found": [], "leftovers_remaining": [], "error": ""},
            {"run_id": "b", "outcome": "failed", "leftovers_found": [{"name": "rg"}],
             "leftovers_remaining": [{"name": "rg"}], "error": "conflict"},
            {"run_id": "d", "outcome": "verified", "leftovers_found": [], "leftovers_remaining": [], "error": "",
             "suspicious": [{"name": "finance-prod", "reason": "tagged with run d but not named as one of its groups"}]},
            {"run_id": "e", "outcome": "locked", "error": "stack run-e is locked"}]),
            ("prod", "1", [{"run_id": "c", "outcome": "failed", "error": "not a leftover: a token problem"}])):
        (tmp_path / f"reap-{env}").mkdir()
        (tmp_path / f"reap-{env}" / "reap.json").write_text(json.dumps(report))
        (tmp_path / f"reap-{env}" / "reap.exit").write_text(code + "\n")
    env = fake_gh(tmp_path)
    result = run_step(issue, tmp_path, {**env, "FAKE_ISSUE": existing, "RUN_URL": "https://example/run/1"})
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[0].startswith("label create haymaker-orphans")
    assert calls[1].startswith("issue list --label haymaker-orphans --state open")
    if existing:
        assert calls[2].startswith("issue comment 17 --body-file")
    else:
        assert calls[2].startswith("issue create --title") and "--label haymaker-orphans" in calls[2]
    assert len(calls) == 3
    body = (tmp_path / "body.sent").read_text()
    assert '"run_id": "b"' in body and '"run_id": "a"' not in body  # only the failed teardowns
    assert '"run_id": "d"' in body and "finance-prod" in body  # and look-alikes left alone
    assert '"run_id": "e"' in body  # and locked runs
    assert "### dev" in body and '"run_id": "c"' not in body  # only reapers that left something (exit 3)


def test_reap_report_files_nothing_when_no_reaper_left_anything(tmp_path):
    issue = step(jobs(workflow("reap"))["report"], "issue")
    (tmp_path / "reap-dev").mkdir()
    (tmp_path / "reap-dev" / "reap.exit").write_text("1\n")
    env = fake_gh(tmp_path)
    result = run_step(issue, tmp_path, {**env, "RUN_URL": "https://example/run/1"})
    assert result.returncode == 0 and "nothing to file" in result.stdout
    assert not (tmp_path / "gh.log").exists()


# --- the sticky PR comment -------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("iconv") is None, reason="needs jq and iconv")
@pytest.mark.parametrize("mine", [True, False])
def test_pr_comment_edits_its_own_comment_or_posts_once(tmp_path, mine):
    comment_step = step(jobs(workflow("pr"))["comment"], "post or update")
    written = "<!-- haymaker-plan -->\n## HayMaker: what this pull request changes in the runs\n" + "é" * 40000
    (tmp_path / "pr.md").write_text(written)  # 80,000 bytes: cut as a last guard
    comments = [{"id": 5, "user": {"login": "someone"}, "body": "<!-- haymaker-plan --> quoted by a human"},
                {"id": 9, "user": {"login": "github-actions[bot]" if mine else "other-bot[bot]"},
                 "body": "<!-- haymaker-plan -->\nold plan"}]
    env = fake_gh(tmp_path)
    result = run_step(comment_step, tmp_path, {**env, "PR_NUMBER": "42", "FAKE_COMMENTS": json.dumps(comments)})
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[0].startswith("api --paginate repos/o/r/issues/42/comments")
    if mine:
        assert calls[1].startswith("api --method PATCH repos/o/r/issues/comments/9 -F body=@comment.md")
    else:
        assert calls[1].startswith("api --method POST repos/o/r/issues/42/comments -F body=@comment.md")
    assert len(calls) == 2
    body = (tmp_path / "body.sent").read_text(encoding="utf-8")  # valid UTF-8 after the cut
    assert written.startswith(body) and len(body.encode()) <= 65000 and len(body) > 30000


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("iconv") is None, reason="needs jq and iconv")
def test_pr_comment_without_a_written_comment_says_so(tmp_path):
    env = fake_gh(tmp_path)
    result = run_step(step(jobs(workflow("pr"))["comment"], "post or update"), tmp_path,
                      {**env, "PR_NUMBER": "42", "FAKE_COMMENTS": "[]"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "body.sent").read_text() == ("<!-- haymaker-plan -->\n"
                                                     "No comment was written: see the log of the Plan job.\n")


# --- platform.yml ------------------------------------------------------------------------------------

def test_platform_deploys_the_release_tags_environment_after_a_preview():
    doc = workflow("platform")
    assert doc["on"]["push"] == {"tags": ["v*"]}
    j = jobs(doc)
    assert "haymaker release-env \"$GITHUB_REF_NAME\"" in step(j["target"], "release-env")["run"]
    assert "id-token" not in j["target"]["permissions"]
    deploy = j["deploy"]
    assert deploy["needs"] == "target"
    assert deploy["environment"]["name"] == "platform-${{ needs.target.outputs.environment }}"
    assert deploy["concurrency"] == {"group": "platform-${{ needs.target.outputs.environment }}",
                                     "cancel-in-progress": False}
    assert deploy["env"]["STACK"] == "${{ needs.target.outputs.environment }}"
    assert deploy["env"]["POLICY_CONFIG"] == "policies/config.${{ needs.target.outputs.environment }}.json"
    runs = [s.get("run", "") for s in steps_of(deploy)]
    preview = next(i for i, r in enumerate(runs) if "pulumi preview" in r)
    up = next(i for i, r in enumerate(runs) if "pulumi up" in r)
    assert preview < up
    for i in (preview, up):
        assert "--policy-pack policies" in runs[i] and '[ -f "$POLICY_CONFIG" ]' in runs[i] and "--policy-config" in runs[i]
    assert "--yes" in runs[up]


@pytest.mark.parametrize("tag,environment", [("v2.0.0-rc.1", "staging"), ("v2.0.0", "prod"), ("v2-test", None)])
def test_platform_target_refuses_a_tag_that_is_not_a_release(tmp_path, tag, environment):
    script = step(jobs(workflow("platform"))["target"], "release-env")["run"]
    code, out, log = run_resolve(script, tmp_path, GITHUB_REF_NAME=tag)
    if environment:
        assert code == 0 and out == {"environment": environment}, log
    else:
        assert code != 0 and out == {}, log
    assert jobs(workflow("platform"))["deploy"]["if"] == "github.ref_type == 'tag' && needs.target.outputs.environment != ''"


@pytest.mark.parametrize("name", ["platform", "agent-image"])
@pytest.mark.parametrize("ref_type, code", [("tag", 0), ("branch", 1)])
def test_a_dispatch_from_a_branch_is_refused_before_anything_logs_in(tmp_path, name, ref_type, code):
    """A branch named like a tag (v1.2.3) is still a branch: the first step of the target job refuses it, and
    the job that logs in runs only for a tag."""
    target = jobs(workflow(name))["target"]
    first = steps_of(target)[0]
    assert first["name"] == "Refuse anything but a tag" and first["env"] == {"REF_TYPE": "${{ github.ref_type }}"}
    result = run_step(first, tmp_path, {"PATH": os.environ["PATH"], "REF_TYPE": ref_type, "GITHUB_REF_NAME": "v1.2.3"})
    assert result.returncode == code
    if code:
        assert f"deploys release tags only, not the branch v1.2.3" in result.stdout or \
            "publishes release tags only, not the branch v1.2.3" in result.stdout
        assert "nothing was" in result.stdout
    assert not uses_azure_login(target) and "id-token" not in target["permissions"]
    login_jobs = [j for j in jobs(workflow(name)).values() if uses_azure_login(j)]
    assert login_jobs and all(j["if"].startswith("github.ref_type == 'tag' && ") and j["needs"] == "target"
                              for j in login_jobs)


@pytest.mark.parametrize("exists", [True, False])
def test_platform_passes_the_policy_config_only_when_the_file_exists(tmp_path, exists):
    deploy = jobs(workflow("platform"))["deploy"]
    up = step(deploy, "pulumi up")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" > "$PULUMI_LOG"\n')
    (bin_dir / "pulumi").chmod(0o755)
    (tmp_path / "policies").mkdir()
    if exists:
        (tmp_path / "policies" / "config.staging.json").write_text("{}")
    result = run_step(up, tmp_path, {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STACK": "staging",
                                     "POLICY_CONFIG": "policies/config.staging.json",
                                     "PULUMI_LOG": str(tmp_path / "pulumi.log")})
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "pulumi.log").read_text().split()
    assert args[:5] == ["up", "--stack", "staging", "--yes", "--non-interactive"]
    assert ("--policy-config" in args) == exists and args[5:7] == ["--policy-pack", "policies"]


# --- drift.yml ---------------------------------------------------------------------------------------

def test_drift_previews_each_platform_stack_daily_and_files_one_issue():
    doc = workflow("drift")
    minutes, hours, rest = cron_times(doc)
    assert len(minutes) == 1 and len(hours) == 1 and set(rest) == {"*"}  # once a day
    j = jobs(doc)
    preview = j["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    assert preview["strategy"]["fail-fast"] is False
    assert preview["environment"] == {"name": "drift-${{ matrix.stack }}"}  # main only, never waits for a reviewer
    verify = step(preview, "platform verify")
    assert '--environment "$STACK" --repo "$GITHUB_REPOSITORY"' in verify["run"] and ALWAYS.search(verify["if"])
    cmd = step(preview, "expecting no changes")["run"]
    assert "pulumi preview" in cmd and "--expect-no-changes" in cmd and "--refresh" in cmd
    assert ALWAYS.search(step(preview, "keep the preview")["if"])
    report = j["report"]
    assert report["permissions"] == {"issues": "write"}
    assert ALWAYS.search(report["if"]) and "failure" in report["if"]
    assert step(report, "issue")["env"]["LABEL"] == "haymaker-drift"


# --- canary.yml --------------------------------------------------------------------------------------

def test_canary_runs_nightly_on_release_tags_and_by_hand_one_at_a_time():
    doc = workflow("canary")
    minutes, hours, rest = cron_times(doc)
    assert len(minutes) == 1 and len(hours) == 1 and set(rest) == {"*"}  # once a night
    assert doc["on"]["push"] == {"tags": ["v*"]} and "workflow_dispatch" in doc["on"]
    assert doc["concurrency"] == {"group": "canary", "cancel-in-progress": False}


def test_canary_checks_deploys_the_cheapest_scenario_for_an_hour_then_tears_down_in_dev():
    doc = workflow("canary")
    assert doc["env"]["HAYMAKER_ENVIRONMENT"] == "dev"
    job, teardown = jobs(doc)["canary"], jobs(doc)["teardown"]
    # The identity's variables are the GitHub Environment's: read in the jobs that name it, never workflow-wide.
    assert not any("vars." in v for v in doc["env"].values())
    for j in (job, teardown):
        for key in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                    "AZURE_SUBSCRIPTION_ID", "PULUMI_BACKEND_URL", "HAYMAKER_LEDGER_ENDPOINT"):
            assert j["env"][key].startswith("${{ vars."), key
    for j in (job, teardown):
        assert j["environment"] == {"name": "dev"} and uses_azure_login(j)
        assert j["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["timeout-minutes"] >= 60 + 30  # the agent's hour and the deploy
    runs = [s.get("run", "") for s in steps_of(job)]
    order = [next(i for i, r in enumerate(runs) if needle in r) for needle in (
        "haymaker doctor", "haymaker scenarios list --json", "haymaker up", "sleep")]
    assert order == sorted(order)
    up = step(job, "haymaker up")
    assert "--duration 1" in up["run"] and '--scenario "$SCENARIO"' in up["run"] and "> up.json" in up["run"]
    assert up["env"]["SCENARIO"] == "${{ steps.pick.outputs.scenario }}"
    assert job["outputs"]["run-id"] == "${{ steps.up.outputs.run-id }}"
    assert ALWAYS.search(step(job, "keep the deploy report")["if"])
    # The teardown starts as the run expires: it holds the reaper's group so the two never overlap.
    assert teardown["needs"] == "canary" and teardown["if"] == "always() && needs.canary.outputs.run-id != ''"
    assert teardown["concurrency"] == {"group": workflow("reap")["concurrency"]["group"], "cancel-in-progress": False}
    down = step(teardown, "haymaker down")
    assert down["env"]["RUN_ID"] == "${{ needs.canary.outputs.run-id }}" and "> down.json" in down["run"]
    td_runs = [s.get("run", "") for s in steps_of(teardown)]
    assert td_runs.index(down["run"]) < td_runs.index(step(teardown, "must be verified")["run"])
    assert ALWAYS.search(step(teardown, "must be verified")["if"])
    assert ALWAYS.search(step(teardown, "keep the reports")["if"])


def _run_canary_step(name: str, tmp_path: Path, haymaker: str = "", job: str = "canary",
                     **env) -> subprocess.CompletedProcess:
    s = step(jobs(workflow("canary"))[job], name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "haymaker").write_text(haymaker or f'#!/usr/bin/env bash\nexec {shlex.quote(str(VENV_BIN / "haymaker"))} "$@"\n')
    (bin_dir / "haymaker").chmod(0o755)
    (tmp_path / "output").touch()
    return subprocess.run(["bash", "-e", "-c", s["run"]], cwd=tmp_path, text=True, capture_output=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(tmp_path / "output"), **env})


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
def test_canary_picks_the_cheapest_scenario_of_the_catalog_ties_by_name(tmp_path, catalog):
    result = _run_canary_step("cheapest", tmp_path)
    assert result.returncode == 0, result.stderr
    cheapest = min(catalog.scenarios.values(), key=lambda s: (s.estimated_hourly_cost_usd, s.name)).name
    assert (tmp_path / "output").read_text() == f"scenario={cheapest}\n"
    listing = json.dumps([{"name": "b-02", "estimated_hourly_cost_usd": 0.0},
                          {"name": "c-01", "estimated_hourly_cost_usd": 0.5}, {"name": "a-09", "estimated_hourly_cost_usd": 0}])
    (tmp_path / "output").write_text("")
    result = _run_canary_step("cheapest", tmp_path, f"#!/usr/bin/env bash\necho {shlex.quote(listing)}\n")
    assert (tmp_path / "output").read_text() == "scenario=a-09\n", result.stderr


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
def test_canary_up_step_hands_the_run_id_and_expiry_to_the_next_steps(tmp_path):
    fake = ('#!/usr/bin/env bash\nprintf "%s\\n" "$*" > args.txt\n'
            'echo \'{"run": {"run_id": "20261121t0230z-1a2b", "expires_at": "2026-11-21T03:30:00Z"}}\'\n')
    result = _run_canary_step("haymaker up", tmp_path, fake, SCENARIO="identity-01-service-principals",
                              HAYMAKER_ENVIRONMENT="dev", HAYMAKER_TRIGGER="schedule")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args.txt").read_text().split() == [
        "up", "--yes", "--json", "--environment", "dev", "--trigger", "schedule", "--scenario",
        "identity-01-service-principals", "--duration", "1"]
    assert (tmp_path / "output").read_text() == "run-id=20261121t0230z-1a2b\nexpires-at=2026-11-21T03:30:00Z\n"
    assert _run_canary_step("wait", tmp_path, EXPIRES_AT="2020-01-01T00:00:00Z").returncode == 0  # already past


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
@pytest.mark.parametrize("report, code", [([{"run_id": "r", "outcome": "verified"}], 0),
                                          ([{"run_id": "r", "outcome": "forced"}], 1),
                                          ([{"run_id": "r", "outcome": "failed"}], 1), (None, 1)])
def test_canary_fails_unless_the_teardown_is_verified(tmp_path, report, code):
    (tmp_path / "down.json").write_text(json.dumps(report) if report is not None else "")
    result = _run_canary_step("must be verified", tmp_path, job="teardown")
    assert result.returncode == code, result.stdout + result.stderr
    if code:
        assert "not 'verified'" in result.stdout


def test_canary_files_one_issue_from_a_job_that_may_only_write_issues():
    report = jobs(workflow("canary"))["report"]
    assert report["needs"] == ["canary", "teardown"]
    assert report["if"] == "always() && (needs.canary.result == 'failure' || needs.teardown.result == 'failure')"
    fetch = step(report, "fetch the reports")["with"]
    assert fetch == {"pattern": "canary-*", "merge-multiple": True}  # the deploy's and the teardown's reports
    names = {step(jobs(workflow("canary"))[j], k)["with"]["name"] for j, k in
             (("canary", "keep the deploy report"), ("teardown", "keep the reports"))}
    assert names == {"canary-up", "canary-down"}
    assert report["permissions"] == {"issues": "write"} and not uses_azure_login(report)
    assert step(report, "issue")["env"]["LABEL"] == "haymaker-canary"


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("iconv") is None, reason="needs jq and iconv")
@pytest.mark.parametrize("existing, teardown", [("", True), ("23", False)])
def test_canary_report_opens_one_issue_or_comments_on_the_open_one(tmp_path, existing, teardown):
    issue = step(jobs(workflow("canary"))["report"], "issue")
    if teardown:
        (tmp_path / "down.json").write_text(json.dumps([{"run_id": "r", "outcome": "forced"}]))
    env = fake_gh(tmp_path)
    result = run_step(issue, tmp_path, {**env, "FAKE_ISSUE": existing, "RUN_URL": "https://example/run/2"})
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[0].startswith("label create haymaker-canary")
    assert calls[1].startswith("issue list --label haymaker-canary --state open")
    assert calls[2].startswith("issue comment 23 --body-file" if existing else "issue create --title")
    assert len(calls) == 3
    body = (tmp_path / "body.sent").read_text()
    assert ('"outcome": "forced"' in body) == teardown and ("No teardown report" in body) != teardown


def test_workflows_that_must_not_overlap_have_concurrency():
    assert workflow("reap")["concurrency"]["cancel-in-progress"] is False
    assert workflow("canary")["concurrency"]["cancel-in-progress"] is False
    assert workflow("drift")["concurrency"]["cancel-in-progress"] is False
    assert jobs(workflow("run"))["run"]["concurrency"]["cancel-in-progress"] is False
    assert jobs(workflow("platform"))["deploy"]["concurrency"]["cancel-in-progress"] is False


# --- the commands the workflows and the operations guide call exist ----------------------------

def command_tree():
    import typer

    from haymaker.cli import app

    return typer.main.get_command(app)


def haymaker_invocations(text: str) -> list[list[str]]:
    """Argument lists of every `haymaker ...` call in a shell text (continuation lines joined)."""
    text = text.replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        for m in re.finditer(r"(?:^|[\s/(`])haymaker\s+([^|;&>)`]*)", line):
            try:
                calls.append(shlex.split(m.group(1), comments=True))
            except ValueError:
                calls.append(m.group(1).split())
    return calls


def check_invocation(root, args: list[str], where: str) -> None:
    command, rest = root, list(args)
    while isinstance(getattr(command, "commands", None), dict):  # a group (typer vendors its own click)
        assert rest, f"{where}: `haymaker` needs a command"
        name = rest.pop(0)
        assert name in command.commands, f"{where}: `haymaker {name}` does not exist"
        command = command.commands[name]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    for token in rest:
        if token.startswith("-") and not token.startswith("-$"):
            assert token.split("=")[0] in known, f"{where}: `{command.name}` has no option {token}"


def test_every_haymaker_command_in_the_workflows_exists():
    root = command_tree()
    verbs = set()
    for where, script in run_scripts():
        for args in haymaker_invocations(script):
            check_invocation(root, args, where)
            verbs.add(args[0])
    assert {"plan", "scenarios", "pr", "up", "reap", "release-env"} <= verbs


# The operations guide and the other docs: tests/test_docs.py checks the commands, workflows and scripts they name.


# --- scripts/lint_workflows.sh -----------------------------------------------------------------------

LINT_TOOLS = ("check-jsonschema", "zizmor", "yamllint")
missing_tools = [t for t in LINT_TOOLS if not (VENV_BIN / t).exists()]
needs_lint_tools = pytest.mark.skipif(bool(missing_tools),
                                      reason=f"{', '.join(missing_tools)} missing from .venv: run scripts/bootstrap.sh")


@needs_lint_tools
def test_lint_workflows_passes():
    result = subprocess.run(["bash", str(ROOT / "scripts" / "lint_workflows.sh")], text=True, capture_output=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


@needs_lint_tools
@pytest.mark.parametrize("problem", ["unpinned", "injection", "schema", "style"])
def test_lint_workflows_fails_on_a_finding(tmp_path, problem):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lint_workflows.sh", tmp_path / "scripts")
    shutil.copy(ROOT / ".yamllint.yml", tmp_path)
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    bad = {
        "unpinned": "      - name: Check out\n        uses: actions/checkout@v4\n        with:\n"
                    "          persist-credentials: false\n",
        "injection": "      - name: Echo\n        run: echo \"${{ github.event.issue.title }}\"\n",
        "schema": "      - name: Nothing\n        bogus-key: true\n",
        "style": "      - name: Echo\n        run: echo hi   \n",
    }[problem]
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(
        "name: bad\n\non:\n  workflow_dispatch:\n\npermissions: {}\n\njobs:\n  bad:\n    name: Bad\n"
        "    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n    permissions: {}\n    steps:\n" + bad)
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "lint_workflows.sh")], text=True, capture_output=True,
                            env={**os.environ, "HAYMAKER_VENV_BIN": str(VENV_BIN)}, timeout=300)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "lint_workflows: failed" in result.stderr


# --- each job's identity is the trust table's ----------------------------------------------------------

CLIENT_ID_KEYS = ("AZURE_CLIENT_ID", "ARM_CLIENT_ID")


def _env_template(job: dict) -> str | None:
    """The GitHub Environment a job names, with its expression as {env}: platform-{env}, reap-{env}, dev…"""
    env = job.get("environment")
    name = env.get("name") if isinstance(env, dict) else env
    return re.sub(r"\$\{\{[^}]*\}\}", "{env}", name) if name else None


def _client_id_variables(job: dict) -> set[str]:
    """Every vars.* a job logs in with: azure/login's client-id and the AZURE_/ARM_CLIENT_ID it hands on."""
    found = {v for k, v in (job.get("env") or {}).items() if k in CLIENT_ID_KEYS}
    found |= {s["with"]["client-id"] for s in steps_of(job) if s.get("uses", "").startswith("azure/login@")}
    return {m for v in found for m in re.findall(r"vars\.(\w+)", v)}


def _azure_jobs():
    for path in ALL_WORKFLOWS:
        for job_id, job in jobs(load(path)).items():
            if uses_azure_login(job):
                yield path.name, job_id, job


@pytest.fixture(scope="module")
def trust_tables():
    from haymaker import trust

    return {env: trust.load_table(env) for env in PLATFORM_STACKS}


def test_each_job_that_logs_in_names_the_github_environment_and_client_id_of_its_identity(trust_tables):
    from haymaker import trust

    dev = trust_tables["dev"]
    seen = set()
    for workflow_name, job_id, job in _azure_jobs():
        users = [i for i in dev.federated() if i.key != trust.GRAPH_IDENTITY
                 and any((u.workflow, u.job) == (workflow_name, job_id) for u in i.uses)]
        assert len(users) == 1, f"{workflow_name}:{job_id} is no identity's job in the trust table"
        identity = users[0]
        use = next(u for u in identity.uses if (u.workflow, u.job) == (workflow_name, job_id))
        (expected,) = identity.github_environments
        template = expected.replace("dev", "{env}", 1) if expected.endswith("dev") else expected
        if use.only:  # a job of one environment (the canary: dev) names it literally
            assert _env_template(job) == trust_tables[use.only][identity.key].github_environments[0], job_id
        else:
            assert _env_template(job) == template, f"{workflow_name}:{job_id}"
        assert _client_id_variables(job) == {identity.variable}, f"{workflow_name}:{job_id}"
        seen.add((workflow_name, job_id))
    wanted = {(u.workflow, u.job) for i in dev.federated() if i.key != trust.GRAPH_IDENTITY for u in i.uses}
    assert seen == wanted  # and every job the table names exists, and logs in


def test_every_variable_a_job_reads_is_set_on_its_github_environment_or_the_repository(trust_tables):
    from haymaker import trust

    dev = trust_tables["dev"]
    by_template = {gh.name.replace("dev", "{env}", 1) if gh.name.endswith("dev") else gh.name: gh for gh in dev.github}
    by_template["dev"] = next(g for g in dev.github if g.name == "dev")
    for workflow_name, job_id, job in _azure_jobs():
        gh = by_template[_env_template(job) if _env_template(job) != "dev" else "dev"]
        text = json.dumps({k: v for k, v in job.items() if k != "outputs"})
        used = set(re.findall(r"vars\.(\w+)", text))
        stray = used - set(gh.variables) - set(trust.REPOSITORY_VARIABLES)
        assert not stray, f"{workflow_name}:{job_id} reads {stray}, set on no GitHub Environment it names"


def test_no_workflow_logs_in_without_a_github_environment_or_as_an_identity_of_the_table(trust_tables):
    """The subjects a job's token carries: a job with no environment would present ref:refs/heads/main."""
    variables = {i.variable for t in trust_tables.values() for i in t.federated() if i.variable}
    for workflow_name, job_id, job in _azure_jobs():
        assert _env_template(job), f"{workflow_name}:{job_id} logs in without naming a GitHub Environment"
        assert _client_id_variables(job) <= variables
    for path in ALL_WORKFLOWS:
        assert not {k for k in (load(path).get("env") or {}) if k in CLIENT_ID_KEYS}, path.name


def test_agent_image_publishes_a_digest_a_run_can_pin(tmp_path):
    job = jobs(workflow("agent-image"))["build-and-push"]
    assert job["outputs"]["image"] == "${{ steps.digest.outputs.image }}"
    publish = step(job, "publish the digest")
    assert publish["env"] == {"DIGEST": "${{ steps.build.outputs.digest }}"}
    summary = tmp_path / "summary.md"
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(summary),
           "REPOSITORY": "haymakerprod.azurecr.io/haymaker-agent", "ENVIRONMENT": "prod", "GITHUB_REF_NAME": "v1.0.0"}
    digest = "sha256:" + "ab" * 32
    result = run_step(publish, tmp_path, {**env, "DIGEST": digest})
    assert result.returncode == 0, result.stderr
    image = f"haymakerprod.azurecr.io/haymaker-agent@{digest}"
    assert (tmp_path / "out").read_text() == f"image={image}\n" and (tmp_path / "image.txt").read_text() == image + "\n"
    assert f"  haymaker:agentImage: {image}" in summary.read_text()
    # What it prints is what prod's policy accepts.
    from policies.rules import DIGEST_RE

    assert DIGEST_RE.search(image)
    assert run_step(publish, tmp_path, {**env, "DIGEST": ""}).returncode == 1
    assert step(job, "keep the digest")["with"]["path"] == "image.txt"


def test_the_base_image_is_pinned_by_digest():
    froms = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")]
    assert froms and all(re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", f) for f in froms), froms
