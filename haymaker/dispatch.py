"""Start `run.yml` through GitHub's workflow_dispatch API, find the run it started, and follow it.

The run id comes back with the dispatch when GitHub supports ``return_run_details`` (github.com since
February 2026). Where it does not (older Enterprise Servers answer 204, or refuse the parameter), the
run is the earliest ``workflow_dispatch`` run of the workflow created by the token's user at or after
the dispatch, by GitHub's own clock; the listing is polled a bounded number of times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from haymaker.errors import HayMakerError
from haymaker.github import GitHub, GitHubError

WORKFLOW = "run.yml"
# Inputs of run.yml's workflow_dispatch trigger; tests/test_dispatch.py holds the two together.
INPUTS = ("environment", "scenarios", "size", "duration_hours", "dry_run")
# A run created before GitHub answered the dispatch still counts (its clock has whole seconds).
CREATED_SLACK = timedelta(seconds=5)


class RunNotSuccessful(HayMakerError):
    """A watched run ended with another conclusion than success (exit 1)."""

    def __init__(self, message: str, run: "Run"):
        super().__init__(message)
        self.run = run


@dataclass
class Clock:
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Run:
    id: int
    html_url: str
    status: str | None = None
    conclusion: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "html_url": self.html_url, "status": self.status, "conclusion": self.conclusion}


@dataclass
class Started:
    at: datetime  # when GitHub took the dispatch, by its own clock when it says
    run: Run | None  # None when GitHub did not say which run it started


def workflow_inputs(environment: str, scenarios: list[str], duration: int | None, dry_run: bool) -> dict[str, str]:
    """Exactly the inputs run.yml declares, as strings (what GitHub's form sends). ``size`` only matters
    for a pick by size; run.yml ignores it when scenarios are named, but a choice input may not be empty."""
    return {"environment": environment, "scenarios": ",".join(scenarios), "size": "small",
            "duration_hours": "" if duration is None else str(duration), "dry_run": "true" if dry_run else "false"}


def describe(status: str | None, conclusion: str | None, environment: str) -> str:
    if status == "completed":
        return f"completed: {conclusion}"
    if status == "waiting":
        return f"waiting: a reviewer must approve the GitHub Environment {environment!r}"
    return (status or "unknown").replace("_", " ")


class Dispatcher:
    def __init__(self, github: GitHub, clock: Clock | None = None, echo: Callable[[str], None] = print,
                 find_attempts: int = 10, poll_seconds: float = 3.0, watch_seconds: float = 15.0):
        self.github, self.clock, self.echo = github, clock or Clock(), echo
        self.find_attempts, self.poll_seconds, self.watch_seconds = find_attempts, poll_seconds, watch_seconds
        self._slug = github.repo.slug

    @property
    def workflow_page(self) -> str:
        return f"{self.github.repo.web_url}/actions/workflows/{WORKFLOW}"

    def default_branch(self) -> str:
        answer = self.github.call("GET", f"/repos/{self._slug}")
        if answer.status != 200:
            raise self.github.refused(answer, f"read the repository {self._slug}")
        return answer.body["default_branch"]

    def start(self, ref: str, inputs: dict[str, str]) -> Started:
        """Dispatch run.yml on ``ref``: the run when GitHub says which it is, and when GitHub took the request."""
        path = f"/repos/{self._slug}/actions/workflows/{WORKFLOW}/dispatches"
        body = {"ref": ref, "inputs": inputs, "return_run_details": True}
        answer = self.github.call("POST", path, body=body)
        if answer.status == 422 and "return_run_details" in answer.message:  # an older Enterprise Server
            del body["return_run_details"]
            answer = self.github.call("POST", path, body=body)
        if answer.status not in (200, 204):
            raise self.github.refused(answer, f"start {WORKFLOW} on {ref!r} in {self._slug}",
                                      self._dispatch_hints(ref, answer))
        at = answer.date or self.clock.now()
        details = answer.body if isinstance(answer.body, dict) else {}
        if details.get("workflow_run_id"):
            run_id = int(details["workflow_run_id"])
            page = details.get("html_url") or f"{self.github.repo.web_url}/actions/runs/{run_id}"
            return Started(at, Run(run_id, page))
        return Started(at, None)

    def _dispatch_hints(self, ref: str, answer) -> dict[int, str]:
        said = answer.message
        if "workflow_dispatch" in said:
            fix = f"dispatch a ref whose {WORKFLOW} has a workflow_dispatch trigger (--ref)"
        elif said.startswith("No ref found"):
            fix = f"--ref {ref} is not a branch or tag of {self._slug}: push it, or name one that exists"
        else:
            fix = (f"{WORKFLOW} on {ref!r} declares other inputs than this checkout's: dispatch a ref whose {WORKFLOW} "
                   f"matches this checkout (--ref), or update haymaker")
        return {404: f"there is no workflow {WORKFLOW} in {self._slug} (it must be on the default branch), or the "
                     f"token from {self.github.token.source} cannot see it",
                422: fix,
                **{s: f"a run may or may not have started: look at {self.workflow_page} before dispatching again"
                   for s in range(500, 600)}}

    def actor(self) -> str | None:
        """The token's user; None for a token that is no user's (a GitHub App's): then any actor's run counts."""
        answer = self.github.call("GET", "/user")
        return answer.body.get("login") if answer.status == 200 and isinstance(answer.body, dict) else None

    def find(self, ref: str, dispatched_at: datetime) -> Run | None:
        """The earliest workflow_dispatch run of run.yml by the token's user since the dispatch (None: none
        showed up within the bounded polling)."""
        since = dispatched_at - CREATED_SLACK
        params = {"event": "workflow_dispatch", "created": f">={since.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                  "per_page": "50"}
        login = self.actor()
        if login:
            params["actor"] = login
        path = f"/repos/{self._slug}/actions/workflows/{WORKFLOW}/runs"
        short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        for attempt in range(self.find_attempts):
            if attempt:
                self.clock.sleep(self.poll_seconds)
            answer = self.github.call("GET", path, params=params)
            if answer.status != 200:
                raise self.github.refused(answer, f"list the runs of {WORKFLOW} in {self._slug}")
            runs = answer.body.get("workflow_runs", [])
            on_ref = [r for r in runs if r.get("head_branch") == short]
            if runs:
                first = min(on_ref or runs, key=lambda r: (r["created_at"], r["id"]))
                return Run(int(first["id"]), first["html_url"], first.get("status"), first.get("conclusion"))
        return None

    def get(self, run_id: int) -> Run:
        answer = self.github.call("GET", f"/repos/{self._slug}/actions/runs/{run_id}")
        if answer.status != 200:
            raise self.github.refused(answer, f"read run {run_id} of {self._slug}",
                                      {404: f"run {run_id} is not in {self._slug}, or the token from "
                                            f"{self.github.token.source} cannot see it"})
        b = answer.body
        return Run(int(b["id"]), b["html_url"], b.get("status"), b.get("conclusion"))

    def watch(self, run: Run, environment: str) -> Run:
        """Poll until the run completes, echoing each change of status; raise unless it succeeded."""
        last = None
        while True:
            run = self.get(run.id)
            if run.status != last:
                self.echo(f"{self.clock.now():%H:%M:%S}Z  {describe(run.status, run.conclusion, environment)}")
                last = run.status
            if run.status == "completed":
                break
            self.clock.sleep(self.watch_seconds)
        if run.conclusion != "success":
            raise RunNotSuccessful(f"run {run.id} ended {run.conclusion}: its jobs' logs are at {run.html_url}", run)
        return run


def raise_unless_found(run: Run | None, dispatcher: Dispatcher) -> Run:
    if run is None:
        raise GitHubError(f"GitHub accepted the dispatch, but its run did not show up in "
                          f"{dispatcher.find_attempts * dispatcher.poll_seconds:.0f} s: follow it at "
                          f"{dispatcher.workflow_page}")
    return run
