"""The agent's working day: log in, deploy, operate until the cleanup time, clean up, exit.

Cleanup always runs once anything may have been deployed: at the end of the day, after a failed
deploy, and after SIGTERM/SIGINT. Container Apps sends SIGTERM at the job's timeout and kills the
container 30 s later, so the day itself ends at ``expires_at - cleanup buffer``; a signal only cuts
the day short, and cleanup then gets the seconds that remain, a short timeout per step.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Mapping, TextIO

from haymaker.agent.az import AzCli, DryRun, Executor, Outcome
from haymaker.agent.clock import Clock, SystemClock
from haymaker.agent.config import LOGIN_MANAGED_IDENTITY, LOGIN_USER, AgentConfig, config_from_env
from haymaker.agent.events import EventLog, tail
from haymaker.agent.render import Command, Day, new_password, placeholder_values, plain_command, prepare_day
from haymaker.agent.schedule import default_seed, operate_slots, retry_delay
from scenarios.calendar import WorkCalendar, calendar_for
from haymaker.agent.transient import transient_reason
from haymaker.errors import InvalidInput
from haymaker.runspec import iso
from haymaker.selection import unknown_name_message
from scenarios.catalog import load_catalog

EXIT_OK = 0
EXIT_DEPLOY_FAILED = 3  # login or deploy failed for good (cleanup ran when anything was deployed)
EXIT_CLEANUP_INCOMPLETE = 4  # a cleanup step failed; the stack's teardown removes the rest

MAX_ATTEMPTS = 5
# Ceilings per command, in real seconds; the time left in the day lowers them. Steps have their own
# limits (timeout_minutes, or the phase's default in scenarios/daychecks.py).
LOGIN_TIMEOUT = 120.0
MIN_CLEANUP_STEP_TIMEOUT = 10.0
# Container Apps kills 30 s after SIGTERM: keep a few seconds to log the end.
SIGNAL_GRACE_SECONDS = 25.0
SIGNAL_STEP_TIMEOUT = 10.0


def login_commands(c: AgentConfig) -> tuple[Command, str | None, Command]:
    """The sign-in, the secret it reads on stdin (only a service principal has one), and the subscription pick."""
    if c.login == LOGIN_USER:
        # The operator's own sign-in: only check it is live and reaches the subscription. `az account set`
        # would change the operator's default subscription; `haymaker try` requires it to be this one.
        return (plain_command("az", "account", "show", "--output", "none"), None,
                plain_command("az", "account", "show", "--subscription", c.subscription_id, "--output", "none"))
    if c.login == LOGIN_MANAGED_IDENTITY:  # a borrowed Graph identity attached to the job: no secret
        login = plain_command("az", "login", "--identity", "--client-id", c.client_id, "--output", "none")
        secret = None
    else:
        # az reads '@-' from stdin: the secret never appears in argv, the environment of az, or a file.
        login = plain_command("az", "login", "--service-principal", "--username", c.client_id,
                              "--tenant", c.tenant_id, "--password=@-", "--output", "none")
        secret = c.client_secret
    return login, secret, plain_command("az", "account", "set", "--subscription", c.subscription_id)


class StopSignal:
    """Set by SIGTERM or SIGINT. The handler only records; the runner reacts between polls."""

    def __init__(self):
        self.event = threading.Event()
        self.signum: int | None = None
        self._at = 0.0

    def __call__(self, signum: int, frame=None) -> None:
        if self.signum is None:
            self.signum, self._at = signum, time.monotonic()
        self.event.set()

    @contextmanager
    def installed(self):
        """Handle SIGTERM and SIGINT while the agent runs; put the previous handlers back after."""
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def seconds_left(self) -> float:
        return SIGNAL_GRACE_SECONDS - (time.monotonic() - self._at)


class Runner:
    def __init__(self, config: AgentConfig, day: Day, az: Executor, clock: Clock, log: EventLog,
                 stop: StopSignal, seed: int, calendar: WorkCalendar):
        self.config, self.day, self.az, self.clock, self.log, self.stop = config, day, az, clock, log, stop
        self.calendar = calendar
        self.seed = seed
        self.rng = random.Random(seed)
        self.started = clock.now()
        self._signal_logged = False

    def run(self) -> int:
        c = self.config
        self.log("agent-start", expires_at=iso(c.expires_at), cleanup_at=iso(c.cleanup_at),
                 resource_group=c.resource_group, user_agent=c.user_agent, seed=self.seed,
                 dry_run=self.az.dry_run, timezone=self.calendar.timezone,
                 working_hours=self.calendar.hours_text(), steps={"deploy": len(self.day.deploy),
                                                 "operate": len(self.day.operate), "cleanup": len(self.day.cleanup)})
        try:
            code, outcome = self._day()
        finally:
            self.az.close()
        self.log("agent-end", exit_code=code, outcome=outcome)
        return code

    def _day(self) -> tuple[int, str]:
        if not self._login():
            return self._stopped_or(EXIT_DEPLOY_FAILED, "login-failed")
        late = self.clock.now() >= self.config.cleanup_at
        if late:
            # A retried job replica that starts after the day: only clean up what an earlier one left.
            self.log("late-start", cleanup_at=iso(self.config.cleanup_at))
        deployed = False
        try:
            deployed = not late and self._deploy()
            if deployed:
                self._operate()
                self.clock.wait(self._until(self.config.cleanup_at), self.stop.event)
        finally:
            # Even a bug in the day must not leave the scenario's resources running.
            cleaned = self._cleanup()
        if not late and not deployed:
            return self._stopped_or(EXIT_DEPLOY_FAILED, "deploy-failed")
        if not cleaned:
            return self._stopped_or(EXIT_CLEANUP_INCOMPLETE, "cleanup-incomplete")
        return self._stopped_or(EXIT_OK, "completed")

    def _stopped_or(self, code: int, outcome: str) -> tuple[int, str]:
        if self.stop.signum is not None:
            self._note_signal()
            return 128 + self.stop.signum, f"{outcome}-after-signal" if code else "stopped-by-signal"
        return code, outcome

    # phases

    def _login(self) -> bool:
        login, secret, account = login_commands(self.config)

        def attempt(n: int) -> Outcome:
            # Logged in but the subscription not yet visible (replication) needs a fresh login: retry both.
            outcome = self._run("login", "login", login, n, self._login_timeout(), stdin=secret)
            return self._run("login", "account-set", account, n, self._login_timeout()) if outcome.ok else outcome

        self.log("phase-start", phase="login")
        ok = self._with_retries("login", "login", attempt, deadline=self.config.expires_at)
        self.log("phase-end", phase="login", ok=ok)
        return ok

    def _deploy(self) -> bool:
        self.log("phase-start", phase="deploy")
        ok = True
        for name, command in self.day.deploy:
            limit = self.day.limit("deploy", name)
            ok = self._step("deploy", name, command, lambda: self._day_timeout(limit),
                            deadline=self.config.cleanup_at, interruptible=True)
            if not ok:
                break
        self.log("phase-end", phase="deploy", ok=ok)
        return ok

    def _operate(self) -> None:
        """The calendar's slots from the agent's start; those that passed during deploy are skipped."""
        end, now = self.config.cleanup_at, self.clock.now()
        slots = operate_slots(self.day.operate_steps, self.calendar, self.started, end, self.seed)
        due = [s for s in slots if s.at >= now]
        self.log("phase-start", phase="operate", slots=len(due), skipped=len(slots) - len(due), until=iso(end),
                 timezone=self.calendar.timezone)
        ran = failed = expected = 0
        for slot in due:
            at = slot.at
            if slot.think_seconds:  # a pause after the previous step of the session, however long it ran
                at = max(at, self.clock.now() + timedelta(seconds=slot.think_seconds))
            if at >= end or self.clock.wait(self._until(at), self.stop.event) or self.clock.now() >= end:
                break
            step = slot.step
            # Run once, never retried: operate steps are a person's commands, benign mistakes among them.
            outcome = self._run("operate", step.name, self.day.operate[step.name], 1,
                                self._day_timeout(self.day.limit("operate", step.name)), interruptible=True,
                                cadence=step.cadence, period=self.calendar.period(self.clock.now()),
                                expected_failure=step.expect_failure or None)
            ran += 1
            if not outcome.ok and not outcome.stopped:
                expected, failed = expected + step.expect_failure, failed + (not step.expect_failure)
            if outcome.stopped:
                break
        self.log("phase-end", phase="operate", ran=ran, failed=failed, expected_failures=expected,
                 stopped=self.stop.event.is_set())

    def _cleanup(self) -> bool:
        self._note_signal()
        self.log("phase-start", phase="cleanup")
        failed = []
        for name, command in self.day.cleanup:
            # Cleanup steps are never cut short by a signal, only by their timeout.
            limit = self.day.limit("cleanup", name)
            ok = self._step("cleanup", name, command, lambda: self._cleanup_timeout(limit),
                            deadline=self.config.expires_at)
            if not ok:
                failed.append(name)
        self.log("phase-end", phase="cleanup", ok=not failed, failed=failed or None)
        return not failed

    # one command, and its retries

    def _run(self, phase: str, step: str, command: Command, attempt: int, timeout: float, *,
             interruptible: bool = False, stdin: str | None = None, **fields) -> Outcome:
        started = self.clock.now()  # with the event's own time (its end), the window the answer key joins on
        if timeout <= 0:
            outcome = Outcome(None, "no time left for this step", 0.0, timed_out=True)
        else:
            outcome = self.az.run(command.argv, timeout=timeout, stdin=stdin,
                                  stop=self.stop.event if interruptible else None)
        self.log("step", phase=phase, step=step, attempt=attempt, started_at=iso(started), command=command.shown,
                 ok=outcome.ok,
                 exit_code=outcome.code, seconds=round(outcome.seconds, 3), timed_out=outcome.timed_out or None,
                 stopped=outcome.stopped or None, stderr=None if outcome.ok else tail(outcome.stderr),
                 dry_run=self.az.dry_run or None, **fields)
        return outcome

    def _step(self, phase: str, name: str, command: Command, timeout: Callable[[], float], *,
              deadline: datetime, interruptible: bool = False) -> bool:
        return self._with_retries(phase, name, lambda n: self._run(
            phase, name, command, n, timeout(), interruptible=interruptible), deadline=deadline)

    def _with_retries(self, phase: str, step: str, attempt: Callable[[int], Outcome], *, deadline: datetime) -> bool:
        for n in range(1, MAX_ATTEMPTS + 1):
            outcome = attempt(n)
            if outcome.ok:
                return True
            if outcome.stopped or n == MAX_ATTEMPTS:
                return False
            reason = "timed out" if outcome.timed_out else transient_reason(
                outcome.stderr, agent_age_seconds=(self.clock.now() - self.started).total_seconds())
            if reason is None:
                return False
            delay = retry_delay(n, self.rng)
            if self.clock.now() + timedelta(seconds=delay) >= deadline:
                return False
            self.log("retry", phase=phase, step=step, attempt=n, delay_seconds=round(delay, 1), reason=reason)
            if self.clock.wait(delay, self.stop.event):
                return False
        return False

    # time

    def _until(self, when: datetime) -> float:
        return (when - self.clock.now()).total_seconds()

    def _day_timeout(self, ceiling: float) -> float:
        """Working-day commands end by the cleanup time."""
        return min(ceiling, self.clock.real_seconds(self._until(self.config.cleanup_at)))

    def _cleanup_timeout(self, ceiling: float) -> float:
        """Cleanup (and the login it needs) gets at least a short try, and only the grace after a signal."""
        if self.stop.signum is not None:
            return min(SIGNAL_STEP_TIMEOUT, self.stop.seconds_left())
        left = self.clock.real_seconds(self._until(self.config.expires_at))
        return max(MIN_CLEANUP_STEP_TIMEOUT, min(ceiling, left))

    def _login_timeout(self) -> float:
        return self._cleanup_timeout(LOGIN_TIMEOUT)

    def _note_signal(self) -> None:
        if self.stop.signum is not None and not self._signal_logged:
            self._signal_logged = True
            self.log("signal", signal=signal.Signals(self.stop.signum).name,
                     grace_seconds=round(max(0.0, self.stop.seconds_left()), 1))


def run_agent(env: Mapping[str, str], *, defaults: Mapping[str, str] | None = None, dry_run: bool = False,
              time_scale: float = 1.0, seed: int | None = None, clock: Clock | None = None,
              stop: StopSignal | None = None, out: TextIO | None = None) -> int:
    """Check every input and every step, then live the day. Returns the exit code."""
    config = config_from_env(env, defaults)
    catalog = load_catalog()
    if config.scenario not in catalog:
        raise InvalidInput(f"HAYMAKER_SCENARIO: {unknown_name_message(config.scenario, catalog)}")
    # The run program passes the larger buffer already; an older one may not: never cut cleanup short.
    config = replace(config, cleanup_buffer_minutes=max(config.cleanup_buffer_minutes,
                                                        catalog[config.scenario].cleanup_minutes))
    password = new_password()
    day = prepare_day(catalog[config.scenario], placeholder_values(
        run_id=config.run_id, scenario=config.scenario, resource_group=config.resource_group,
        location=config.location, subscription_id=config.subscription_id, tenant_id=config.tenant_id,
        client_id=config.client_id, agent_object_id=config.agent_object_id, password=password,
        admin_unit_id=config.admin_unit_id))
    clock = clock or SystemClock(time_scale)
    log = EventLog(out or sys.stdout, clock.now, config.run_id, config.scenario,
                   secrets=(config.client_secret, password))
    az = DryRun() if dry_run else AzCli(env, config.user_agent, private_config=config.login != LOGIN_USER)
    seed = default_seed(config.run_id, config.scenario) if seed is None else seed
    calendar = calendar_for(catalog[config.scenario].company, config.location)
    return Runner(config, day, az, clock, log, stop or StopSignal(), seed, calendar).run()
