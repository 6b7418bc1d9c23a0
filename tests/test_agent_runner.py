"""The agent's loop end to end, against a test `az` on PATH that records each call and can fail on cue."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from haymaker.agent import runner
from haymaker.cli.agent import main
from haymaker.agent.runner import EXIT_DEPLOY_FAILED, MAX_ATTEMPTS, run_agent
from haymaker.agent.transient import transient_reason
from haymaker.errors import InvalidInput
from haymaker.naming import resource_group_name
from haymaker.runspec import iso
from haymaker.agent.schedule import default_seed, operate_slots
from scenarios.calendar import calendar_for
from scenarios.catalog import Catalog, Scenario, Step
from tests.conftest import RUN_ID

WORDPRESS = "databases-01-mysql-wordpress"  # uses ${PASSWORD} in deploy
VM = "compute-01-linux-vm-web-server"
# A Tuesday, 08:50 in Los Angeles: the WordPress team (databases-01) starts work at 09:00.
START = datetime(2026, 11, 24, 16, 50, tzinfo=timezone.utc)
SECRET = "client-secret-value-for-tests~1"
SUB, TENANT, CLIENT = ("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
                       "33333333-3333-3333-3333-333333333333")

FAKE_AZ = """#!{python} -S
import json, os, sys
argv = sys.argv[1:]
record = {{"argv": argv, "user_agent": os.environ.get("AZURE_HTTP_USER_AGENT"),
          "secret_in_env": "AZURE_CLIENT_SECRET" in os.environ,
          "stdin": sys.stdin.read() if "--password=@-" in argv else None}}
with open(os.environ["FAKE_AZ_LOG"], "a") as f:
    f.write(json.dumps(record) + "\\n")
rules_path = os.environ.get("FAKE_AZ_RULES")
rules = json.load(open(rules_path)) if rules_path and os.path.exists(rules_path) else []
for i, rule in enumerate(rules):
    if rule["match"] in " ".join(argv):
        counter = f"{{rules_path}}.{{i}}"
        done = int(open(counter).read()) if os.path.exists(counter) else 0
        if done < rule["times"]:
            open(counter, "w").write(str(done + 1))
            sys.stderr.write(rule["stderr"])
            sys.exit(1)
"""


class FakeClock:
    """Schedule time that jumps instead of sleeping."""

    def __init__(self, start: datetime):
        self.t = start

    def now(self) -> datetime:
        return self.t

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.t += timedelta(seconds=max(0.0, seconds))
        return False

    def real_seconds(self, seconds: float) -> float:
        return seconds


class FakeAz:
    def __init__(self, tmp_path: Path):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "az"
        script.write_text(FAKE_AZ.format(python=sys.executable))
        script.chmod(0o755)
        self.log = tmp_path / "az-calls.jsonl"
        self.rules = tmp_path / "az-rules.json"
        self.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    def fail(self, match: str, stderr: str, times: int = 1) -> None:
        rules = json.loads(self.rules.read_text()) if self.rules.exists() else []
        self.rules.write_text(json.dumps(rules + [{"match": match, "stderr": stderr, "times": times}]))

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def az(tmp_path):
    return FakeAz(tmp_path)


def agent_env(az: FakeAz, scenario: str = WORDPRESS, expires_at: datetime = START + timedelta(hours=2)) -> dict:
    return {"HAYMAKER_RUN_ID": RUN_ID, "HAYMAKER_SCENARIO": scenario, "HAYMAKER_EXPIRES_AT": iso(expires_at),
            "HAYMAKER_RESOURCE_GROUP": resource_group_name(RUN_ID, scenario), "HAYMAKER_LOCATION": "swedencentral",
            "HAYMAKER_CLEANUP_BUFFER_MINUTES": "30", "AZURE_TENANT_ID": TENANT, "AZURE_SUBSCRIPTION_ID": SUB,
            "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": SECRET, "PATH": az.path,
            "HAYMAKER_AGENT_OBJECT_ID": "44444444-4444-4444-4444-444444444444",
            "FAKE_AZ_LOG": str(az.log), "FAKE_AZ_RULES": str(az.rules)}


def run_day(az: FakeAz, catalog, scenario: str = WORDPRESS, **kw):
    out = io.StringIO()
    seed = kw.pop("seed", 5)
    code = run_agent(agent_env(az, scenario, **kw), clock=FakeClock(START), seed=seed, out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, events, out.getvalue()


def step_names(catalog, scenario, phase):
    return [s.name for s in catalog[scenario].phases[phase]]


def phases_called(az: FakeAz, catalog, scenario: str) -> list[str]:
    """Which phase each az call belongs to, recognised by the step's command words."""
    def command(argv):  # the command words, up to the first flag
        return tuple(next((argv[:i] for i, a in enumerate(argv) if a.startswith("-")), argv))

    words = {}
    for phase, steps in catalog[scenario].phases.items():
        for s in steps:
            words.setdefault(command(s.run.split()[1:]), phase)
    out = []
    for call in az.calls():
        key = command(call["argv"])
        out.append("login" if key in (("login",), ("account", "set")) else words.get(key, "?"))
    return out


def test_a_day_runs_login_deploy_operate_cleanup_in_order(az, catalog):
    code, events, stdout = run_day(az, catalog)
    assert code == 0
    calls = az.calls()
    assert calls[0]["argv"][:2] == ["login", "--service-principal"] and calls[1]["argv"][:2] == ["account", "set"]
    assert calls[1]["argv"][-1] == SUB
    phases = phases_called(az, catalog, WORDPRESS)
    assert phases == sorted(phases, key=["login", "deploy", "operate", "cleanup"].index)
    steps = [(e["phase"], e["step"]) for e in events if e["event"] == "step"]
    assert [s for p, s in steps if p == "deploy"] == step_names(catalog, WORDPRESS, "deploy")
    assert [s for p, s in steps if p == "cleanup"] == step_names(catalog, WORDPRESS, "cleanup")
    operate = [e for e in events if e["event"] == "step" and e["phase"] == "operate"]
    assert operate and {e["step"] for e in operate} <= set(step_names(catalog, WORDPRESS, "operate"))
    # The working day starts with its morning checks; each step says why and when it ran.
    assert operate[0]["cadence"] == "morning" and {e["period"] for e in operate} == {"work"}
    assert events[-1] == {**events[-1], "event": "agent-end", "exit_code": 0, "outcome": "completed"}
    cleanup_at = iso(START + timedelta(minutes=90))
    assert all(e["time"] < cleanup_at for e in events if e["event"] == "step" and e["phase"] == "operate")
    assert all(e["time"] >= cleanup_at for e in events if e["event"] == "step" and e["phase"] == "cleanup")


def test_every_call_names_its_run_and_no_secret_leaks(az, catalog):
    _, events, stdout = run_day(az, catalog)
    calls = az.calls()
    assert {c["user_agent"] for c in calls} == {f"haymaker/{RUN_ID}/{WORDPRESS}"}
    assert not any(c["secret_in_env"] for c in calls)
    # The client secret reaches az only on the login's stdin.
    assert [c["stdin"] for c in calls if c["stdin"] is not None] == [SECRET]
    assert not any(SECRET in arg for c in calls for arg in c["argv"])
    password = next(c["argv"][c["argv"].index("--admin-password") + 1] for c in calls
                    if "--admin-password" in c["argv"])
    assert len(password) == 24 and "[secret]" not in password
    assert SECRET not in stdout and password not in stdout
    assert "--admin-password '[secret]'" in stdout
    assert all(e["run_id"] == RUN_ID and e["scenario"] == WORDPRESS for e in events)


def test_a_transient_deploy_failure_is_retried(az, catalog):
    az.fail("mysql flexible-server create", "ERROR: (TooManyRequests) Rate limit exceeded. Status: 429", times=2)
    code, events, _ = run_day(az, catalog)
    assert code == 0
    tries = [e for e in events if e["event"] == "step" and e["step"] == "create-mysql-server"]
    assert [e["ok"] for e in tries] == [False, False, True] and "TooManyRequests" in tries[0]["stderr"]
    retries = [e for e in events if e["event"] == "retry"]
    assert [r["reason"] for r in retries] == ["throttled", "throttled"]
    assert retries[1]["delay_seconds"] > 0
    # Each attempt says when it started: a retry starts after its backoff (the answer key's step window).
    assert all(e["started_at"] <= e["time"] for e in tries)
    assert tries[1]["started_at"] >= iso(datetime.fromisoformat(tries[0]["time"]) + timedelta(
        seconds=int(retries[0]["delay_seconds"])))


def test_a_deploy_failing_for_good_cleans_up_and_exits_non_zero(az, catalog):
    az.fail("mysql flexible-server create", "ERROR: (InternalServerError) Something went wrong.", times=99)
    code, events, _ = run_day(az, catalog)
    assert code == EXIT_DEPLOY_FAILED
    tries = [e for e in events if e["event"] == "step" and e["step"] == "create-mysql-server"]
    assert len(tries) == MAX_ATTEMPTS
    cleanup = step_names(catalog, WORDPRESS, "cleanup")
    phases = phases_called(az, catalog, WORDPRESS)
    assert "operate" not in phases and phases[-len(cleanup):] == ["cleanup"] * len(cleanup)
    assert events[-1]["outcome"] == "deploy-failed"


def test_login_is_retried_whole_while_the_subscription_replicates(az, catalog):
    az.fail("account set", "ERROR: The subscription of '1111' doesn't exist in cloud 'AzureCloud'.", times=1)
    code, events, _ = run_day(az, catalog)
    assert code == 0
    logins = [c for c in az.calls() if c["argv"][0] == "login"]
    assert len(logins) == 2 and [e["reason"] for e in events if e["event"] == "retry"] == [
        "identity or role not replicated yet"]


def test_a_login_refused_for_good_deploys_nothing(az, catalog):
    az.fail("login", "ERROR: AADSTS7000215: Invalid client secret provided.", times=99)
    code, events, stdout = run_day(az, catalog)
    assert code == EXIT_DEPLOY_FAILED and events[-1]["outcome"] == "login-failed"
    assert phases_called(az, catalog, WORDPRESS) == ["login"]
    assert SECRET not in stdout


def test_a_logic_error_is_not_retried(az, catalog):
    az.fail("mysql flexible-server create", "ERROR: (InvalidParameter) The sku Standard_B1ms is not valid.",
            times=99)
    code, events, _ = run_day(az, catalog)
    assert code == EXIT_DEPLOY_FAILED
    assert len([e for e in events if e["event"] == "step" and e["step"] == "create-mysql-server"]) == 1
    assert not [e for e in events if e["event"] == "retry"]
    assert [e["step"] for e in events if e["event"] == "step" and e["phase"] == "cleanup"] == \
        step_names(catalog, WORDPRESS, "cleanup")


def test_a_failing_operate_step_is_logged_and_the_day_goes_on(az, catalog):
    first = next(s for s in catalog[WORDPRESS].phases["operate"] if s.cadence == "morning")
    az.fail(" ".join(first.run.split()[1:4]), "ERROR: (ResourceNotFound) not there", times=1)
    code, events, _ = run_day(az, catalog, expires_at=START + timedelta(hours=8))
    assert code == 0
    operate = [e for e in events if e["event"] == "step" and e["phase"] == "operate"]
    assert operate[0]["step"] == first.name
    assert not operate[0]["ok"] and all(e["ok"] for e in operate[1:]) and len(operate) >= 10
    end = next(e for e in events if e["event"] == "phase-end" and e["phase"] == "operate")
    assert (end["failed"], end["expected_failures"]) == (1, 0)


def test_a_benign_mistake_fails_as_expected_is_never_retried_and_the_run_succeeds(az, catalog):
    """networking-02 declares show-mistyped-gateway (expect_failure): pick a seed whose day includes it."""
    name = "networking-02-vpn-gateway"
    scenario = catalog[name]
    cal = calendar_for(scenario.company, "swedencentral")
    start, cleanup_at = START - timedelta(hours=9), START - timedelta(hours=9) + timedelta(hours=10, minutes=-70)
    seed = next(k for k in range(100) if any(
        s.step.expect_failure for s in operate_slots(scenario.phases["operate"], cal, start, cleanup_at, k)))
    az.fail("--name vgw-hbu", "ERROR: (TooManyRequests) and (ResourceNotFound) vgw-hbu was not found", times=99)
    out = io.StringIO()
    env = {**agent_env(az, name, expires_at=start + timedelta(hours=10)), "HAYMAKER_CLEANUP_BUFFER_MINUTES": "30"}
    code = run_agent(env, clock=FakeClock(start), seed=seed, out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0 and events[-1]["outcome"] == "completed"
    mistakes = [e for e in events if e["event"] == "step" and e["step"] == "show-mistyped-gateway"]
    assert mistakes and all(e["expected_failure"] is True and e["ok"] is False and e["attempt"] == 1
                            for e in mistakes)
    assert all("expected_failure" not in e for e in events if e["event"] == "step" and e not in mistakes)
    assert not [e for e in events if e["event"] == "retry"]
    end = next(e for e in events if e["event"] == "phase-end" and e["phase"] == "operate")
    assert (end["failed"], end["expected_failures"]) == (0, len(mistakes))


def test_steps_get_their_own_time_limits_and_the_scenarios_cleanup_buffer(az, catalog, monkeypatch):
    """The VPN gateway: 75 min to create, 45 to wait for its deletion; cleanup starts 70 min before expiry."""
    timeouts = {}

    class Recording(runner.AzCli):
        def run(self, argv, *, timeout, stop=None, stdin=None):
            timeouts.setdefault(" ".join(argv[1:4]), timeout)
            return super().run(argv, timeout=timeout, stop=stop, stdin=stdin)

    monkeypatch.setattr(runner, "AzCli", Recording)
    name = "networking-02-vpn-gateway"
    code, events, _ = run_day(az, catalog, name, expires_at=START + timedelta(hours=4))
    assert code == 0
    start = events[0]
    assert start["cleanup_at"] == iso(START + timedelta(hours=4, minutes=-70))  # the job said 30; it needs 70
    assert timeouts["network vnet-gateway create"] == 75 * 60
    assert timeouts["network vnet-gateway wait"] == 45 * 60
    assert timeouts["network local-gateway delete"] == 5 * 60


def test_a_failed_cleanup_step_does_not_stop_the_others(az, catalog):
    az.fail("webapp delete", "ERROR: (BadRequest) no", times=99)
    code, events, _ = run_day(az, catalog)
    assert code == runner.EXIT_CLEANUP_INCOMPLETE
    end = next(e for e in events if e["event"] == "phase-end" and e["phase"] == "cleanup")
    assert end["failed"] == ["delete-wordpress-webapp"]
    assert [e["step"] for e in events if e["event"] == "step" and e["phase"] == "cleanup"] == \
        step_names(catalog, WORDPRESS, "cleanup")


def test_an_agent_started_after_its_day_only_cleans_up(az, catalog):
    code, events, _ = run_day(az, catalog, expires_at=START + timedelta(minutes=10))
    assert code == 0
    assert [e["event"] for e in events if e["event"] == "late-start"] == ["late-start"]
    assert set(phases_called(az, catalog, WORDPRESS)) == {"login", "cleanup"}


def test_a_borrowed_graph_identity_signs_in_as_the_jobs_managed_identity_without_a_secret(az, catalog):
    env = {k: v for k, v in agent_env(az, VM).items() if k != "AZURE_CLIENT_SECRET"}
    code = run_agent({**env, "HAYMAKER_LOGIN": "managed-identity"}, clock=FakeClock(START), seed=5, out=io.StringIO())
    assert code == 0
    login, account = az.calls()[:2]
    assert login["argv"] == ["login", "--identity", "--client-id", CLIENT, "--output", "none"]
    assert login["stdin"] is None and not login["secret_in_env"]
    assert account["argv"] == ["account", "set", "--subscription", SUB]


def test_a_step_outside_the_group_is_refused_before_anything_runs(az, catalog, monkeypatch):
    base = catalog[VM]
    bad = Scenario(**{**base.__dict__, "phases": {**base.phases, "operate": base.phases["operate"] + (
        Step("peek-next-door", "az vm list --resource-group someone-elses-rg"),)}})
    monkeypatch.setattr(runner, "load_catalog", lambda: Catalog({VM: bad}))
    with pytest.raises(InvalidInput, match="peek-next-door.*names another resource group"):
        run_agent(agent_env(az, VM), clock=FakeClock(START), out=io.StringIO())
    assert az.calls() == []


@pytest.mark.parametrize("change, message", [
    ({"HAYMAKER_RUN_ID": "run-1"}, "HAYMAKER_RUN_ID: run id 'run-1' is not valid"),
    ({"HAYMAKER_EXPIRES_AT": "tomorrow"}, "HAYMAKER_EXPIRES_AT: 'tomorrow' is not an ISO-8601 time"),
    ({"AZURE_SUBSCRIPTION_ID": "prod"}, "AZURE_SUBSCRIPTION_ID: 'prod' is not a GUID"),
    ({"HAYMAKER_CLEANUP_BUFFER_MINUTES": "0"}, "HAYMAKER_CLEANUP_BUFFER_MINUTES: '0' must be"),
    ({"AZURE_CLIENT_SECRET": ""}, "AZURE_CLIENT_SECRET is not set"),
    ({"HAYMAKER_AGENT_OBJECT_ID": ""}, "HAYMAKER_AGENT_OBJECT_ID is not set"),
    ({"HAYMAKER_LOGIN": "password"}, "HAYMAKER_LOGIN 'password' is not one of service-principal, managed-identity"),
    ({"HAYMAKER_SCENARIO": "compute-01-linux-vm"}, "did you mean compute-01-linux-vm-web-server"),
])
def test_bad_input_is_a_clear_error_with_exit_code_1(az, monkeypatch, capsys, change, message):
    for key, value in {**agent_env(az), **change}.items():
        monkeypatch.setenv(key, value)
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and SECRET not in err
    assert az.calls() == []


def test_dry_run_needs_no_azure_and_runs_nothing(az, monkeypatch, capsys):
    monkeypatch.setenv("PATH", az.path)
    for key in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "HAYMAKER_RUN_ID", "HAYMAKER_EXPIRES_AT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["run", "--dry-run", "--scenario", VM, "--duration", "1", "--time-scale", "7200"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert az.calls() == []
    assert events[0]["dry_run"] is True and events[-1]["outcome"] == "completed"
    assert {"login", "deploy", "cleanup"} <= {e["phase"] for e in events if e["event"] == "step"}


def test_flags_without_dry_run_are_refused(capsys):
    assert main(["run", "--scenario", VM]) == 1
    assert "are for --dry-run" in capsys.readouterr().err


def busy_scenario(catalog, start: datetime, hours: int) -> str:
    """A scenario whose calendar has an operate step soon after ``start`` (the real clock's now)."""
    for name in catalog.names():
        scenario = catalog[name]
        slots = operate_slots(scenario.phases["operate"], calendar_for(scenario.company, "swedencentral"), start,
                              start + timedelta(hours=hours, minutes=-scenario.cleanup_minutes - 30),
                              default_seed(RUN_ID, name))
        if any(timedelta(minutes=10) < s.at - start < timedelta(hours=hours - 2) for s in slots):
            return name
    raise AssertionError("no scenario works in the next hours")


def test_sigterm_during_operate_cleans_up_and_exits_within_the_buffer(az, catalog):
    """The real process: compressed 3600-fold, the day is seconds long; SIGTERM cuts it short."""
    now = datetime.now(timezone.utc)
    VM = busy_scenario(catalog, now, 8)  # noqa: N806 - the scenario of this test
    env = {**os.environ, **agent_env(az, VM, expires_at=now + timedelta(hours=8))}
    proc = subprocess.Popen([sys.executable, "-m", "haymaker.agent", "run", "--time-scale", "3600"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            event = json.loads(line)
            if event["event"] == "step" and event["phase"] == "operate":
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    events = [json.loads(line) for line in lines + out.splitlines()]
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert [e["signal"] for e in events if e["event"] == "signal"] == ["SIGTERM"]
    cleanup = [e["step"] for e in events if e["event"] == "step" and e["phase"] == "cleanup"]
    assert cleanup == step_names(catalog, VM, "cleanup")
    assert events[-1]["outcome"] == "stopped-by-signal"
    phases = phases_called(az, catalog, VM)
    assert phases[-len(cleanup):] == ["cleanup"] * len(cleanup) and phases.count("operate") < 22
    assert SECRET not in out and "Traceback" not in err


@pytest.mark.parametrize("stderr, age, reason", [
    ("ERROR: (TooManyRequests) slow down", 0, "throttled"),
    ("Operation returned an invalid status 'Service Unavailable'", 3600, "server error"),
    ("(AnotherOperationInProgress) Another operation on this resource is in progress", 3600,
     "another operation in progress"),
    ("(Conflict) The operation could not be completed: an update is in progress", 3600,
     "another operation in progress"),
    ("ReadTimeout: HTTPSConnectionPool: Read timed out.", 3600, "timeout or connection error"),
    ("(PrincipalNotFound) Principal abc does not exist in the directory", 60, "identity or role not replicated yet"),
    ("(AuthorizationFailed) The client does not have authorization", 120, "identity or role not replicated yet"),
    ("(AuthorizationFailed) The client does not have authorization", 3600, None),
    ("ERROR: No subscriptions found for 3333.", 30, "identity or role not replicated yet"),
    ("(InvalidParameter) bad sku", 0, None),
    ("(BadRequest) The request is invalid. Status: 500", 0, None),
    ("(QuotaExceeded) Operation could not be completed as it results in exceeding approved quota", 0, None),
    ("(Conflict) A resource with this name already exists", 0, None),
])
def test_transient_and_logic_errors_are_told_apart(stderr, age, reason):
    assert transient_reason(stderr, agent_age_seconds=age) == reason
