"""GitHub's REST API, as `haymaker dispatch` meets it: the token's user, a repository, the
workflow_dispatch endpoint, a workflow's runs and one run.

Bodies follow the GitHub REST reference (api version 2022-11-28): errors are
``{"message", "documentation_url", "status"}``; a dispatch answers 204, or, when asked with
``return_run_details`` (github.com since 2026-02-19), 200 ``{"workflow_run_id", "run_url", "html_url"}``.
The 422 texts are the ones GitHub sends ("Workflow does not have 'workflow_dispatch' trigger", "No ref
found for: x", "Unexpected inputs provided: [...]", "Provided value 'x' for input 'y' not in the list of
allowed values", "Required input 'x' not provided"). A workflow's inputs are read from the workflow file
itself, so a dispatch is checked against the repository's real run.yml.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from tests.fakes.githubenvs import Environments
from tests.fakes.github_limits import RateLimits
from tests.fakes.server import Reply, Request, Service

DOCS = "https://docs.github.com/rest"
DISPATCH_DOCS = f"{DOCS}/actions/workflows#create-a-workflow-dispatch-event"
RUN_DOCS = f"{DOCS}/actions/workflow-runs#get-a-workflow-run"
REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def gh_error(status: int, message: str, documentation_url: str = DOCS) -> Reply:
    return Reply(status, {"message": message, "documentation_url": documentation_url, "status": str(status)})


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def workflow_inputs(path: Path) -> dict | None:
    """The workflow_dispatch inputs a workflow file declares; None when it has no such trigger."""
    doc = yaml.safe_load(path.read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True
    if not isinstance(triggers, dict) or "workflow_dispatch" not in triggers:
        return None
    return (triggers["workflow_dispatch"] or {}).get("inputs") or {}


@dataclass
class User:
    login: str
    id: int
    access: dict[str, str] = field(default_factory=dict)  # "owner/repo" -> "read" | "write"
    app: bool = False  # a GitHub App's installation token: GET /user is refused


@dataclass
class Run:
    id: int
    repo: str
    workflow: str
    ref: str
    actor: str
    created: datetime
    inputs: dict
    steps: list[tuple[str, str | None]]  # (status, conclusion) it goes through, one per read
    listed_after: int = 0  # listings that do not show it yet (a run appears a few seconds late)
    reads: int = 0

    @property
    def state(self) -> tuple[str, str | None]:
        return self.steps[min(self.reads, len(self.steps) - 1)]

    def body(self, api: str, host: str) -> dict:
        status, conclusion = self.state
        url = f"{api}/repos/{self.repo}/actions/runs/{self.id}"
        actor = {"login": self.actor, "id": 1000 + len(self.actor), "type": "User"}
        return {"id": self.id, "name": "run", "node_id": f"WFR_kwLO{self.id}", "head_branch": self.ref,
                "head_sha": "0123456789abcdef0123456789abcdef01234567", "path": f".github/workflows/{self.workflow}",
                "display_title": "run", "run_number": self.id % 1000, "event": "workflow_dispatch", "status": status,
                "conclusion": conclusion, "workflow_id": 161335, "check_suite_id": 414944374, "url": url,
                "html_url": f"https://{host}/{self.repo}/actions/runs/{self.id}", "pull_requests": [],
                "created_at": iso(self.created), "updated_at": iso(self.created), "actor": actor,
                "triggering_actor": actor, "run_attempt": 1, "run_started_at": iso(self.created),
                "jobs_url": f"{url}/jobs", "logs_url": f"{url}/logs", "cancel_url": f"{url}/cancel",
                "rerun_url": f"{url}/rerun", "workflow_url": f"{api}/repos/{self.repo}/actions/workflows/161335",
                "repository": {"id": 1296269, "name": self.repo.split("/")[1], "full_name": self.repo}}


@dataclass
class Repo:
    slug: str
    default_branch: str = "main"
    refs: set[str] = field(default_factory=lambda: {"main"})
    workflows: dict[str, dict | None] = field(default_factory=dict)  # file name -> inputs (None: no dispatch)


class FakeGitHub(Environments, Service):
    name = "github"
    host = "github.com"  # the web host of html_url

    def __init__(self):
        super().__init__()
        self._ids = itertools.count(30433642)
        self.reset_state()
        s = self.route
        s("GET", r"/user", self._user)
        s("GET", REPO, self._repo)
        s("POST", REPO + r"/actions/workflows/(?P<wf>[^/]+)/dispatches", self._dispatch)
        s("GET", REPO + r"/actions/workflows/(?P<wf>[^/]+)/runs", self._list_runs)
        s("GET", REPO + r"/actions/runs/(?P<id>[0-9]+)", self._get_run)
        self.route_environments()  # doctor --github (tests/fakes/githubenvs.py)

    def reset_state(self) -> None:
        self.limits = RateLimits()  # primary and secondary rate limits, as documented (github_limits.py)
        self.users: dict[str, User] = {}  # token -> user
        self.repos: dict[str, Repo] = {}
        self.runs: list[Run] = []
        self.dispatches: list[dict] = []  # each dispatch's JSON body, as received
        self.run_details = "returned"  # "returned" | "ignored" (204 always) | "rejected" (422, older servers)
        self.run_steps: list[tuple[str, str | None]] = [("queued", None), ("in_progress", None),
                                                        ("completed", "success")]
        self.listed_after = 0
        self.reset_environments()

    def reset(self) -> None:
        super().reset()
        self.reset_state()

    # --- rate limits: every authenticated request is counted and answered with its x-ratelimit-* headers ---
    def _handle(self, request: Request) -> Reply:
        token = request.headers.get("authorization", "").partition(" ")[2]
        user = self.users.get(token)
        if user is None:
            return super()._handle(request)  # refused before any limit applies
        limited = self.limits.check(token, user.id, request.method, request.path)
        if limited:
            return Reply(limited.status, limited.body, limited.headers)
        reply = super()._handle(request)
        return Reply(reply.status, reply.body, {**self.limits.headers(token), **reply.headers})

    # --- what a test sets up ----------------------------------------------------------------------

    def add_user(self, token: str, login: str, access: dict[str, str], app: bool = False) -> User:
        self.users[token] = User(login, 583231 + len(self.users), access, app)
        return self.users[token]

    def add_repo(self, slug: str, workflows: dict[str, dict | None], refs=("main",), default_branch="main") -> Repo:
        self.repos[slug.lower()] = Repo(slug, default_branch, set(refs), workflows)
        return self.repos[slug.lower()]

    def add_run(self, repo: str, actor: str, created: datetime, ref: str = "main", workflow: str = "run.yml") -> Run:
        run = Run(next(self._ids), repo, workflow, ref, actor, created, {}, [("completed", "success")])
        self.runs.append(run)
        return run

    # --- the service ------------------------------------------------------------------------------

    def authorize(self, request: Request) -> Reply | None:
        header = request.headers.get("authorization", "")
        if not header:
            return gh_error(401, "Requires authentication")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token not in self.users:
            return gh_error(401, "Bad credentials")
        if not request.headers.get("user-agent"):
            return gh_error(403, "Request forbidden by administrative rules. Please make sure your request has a "
                                 "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
                                 "#user-agent-required). Check https://developer.github.com for other possible causes.")
        return None

    def not_found(self, request: Request) -> Reply:
        return gh_error(404, "Not Found")

    def _caller(self, r: Request) -> User:
        return self.users[r.headers["authorization"].partition(" ")[2]]

    def _visible_repo(self, r: Request) -> Repo | None:
        slug = f"{r.params['owner']}/{r.params['repo']}".lower()
        repo = self.repos.get(slug)
        if repo is None or repo.slug.lower() not in {k.lower() for k in self._caller(r).access}:
            return None  # GitHub answers 404, not 403, for a private repository the token cannot see
        return repo

    def _access(self, r: Request, repo: Repo) -> str:
        return {k.lower(): v for k, v in self._caller(r).access.items()}[repo.slug.lower()]

    def _user(self, r: Request) -> Reply:
        user = self._caller(r)
        if user.app:
            return gh_error(403, "Resource not accessible by integration",
                            f"{DOCS}/users/users#get-the-authenticated-user")
        return Reply(200, {"login": user.login, "id": user.id, "node_id": f"MDQ6VXNlcj{user.id}", "type": "User",
                           "site_admin": False, "url": f"{self.base_url}/users/{user.login}",
                           "html_url": f"https://{self.host}/{user.login}"})

    def _repo(self, r: Request) -> Reply:
        repo = self._visible_repo(r)
        if repo is None:
            return gh_error(404, "Not Found", f"{DOCS}/repos/repos#get-a-repository")
        owner, name = repo.slug.split("/")
        return Reply(200, {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name,
                           "full_name": repo.slug, "owner": {"login": owner, "type": "Organization"},
                           "private": True, "html_url": f"https://{self.host}/{repo.slug}",
                           "url": f"{self.base_url}/repos/{repo.slug}", "default_branch": repo.default_branch,
                           "permissions": {"admin": False, "push": self._access(r, repo) == "write", "pull": True}})

    def _dispatch(self, r: Request) -> Reply:
        repo = self._visible_repo(r)
        if repo is None or r.params["wf"] not in repo.workflows:
            return gh_error(404, "Not Found", DISPATCH_DOCS)
        if self._access(r, repo) != "write":
            return gh_error(403, "Resource not accessible by personal access token", DISPATCH_DOCS)
        try:
            body = r.json()
        except ValueError:
            return gh_error(400, "Problems parsing JSON", DISPATCH_DOCS)
        self.dispatches.append(body)
        allowed = {"ref", "inputs"} | ({"return_run_details"} if self.run_details != "rejected" else set())
        extra = sorted(set(body) - allowed)
        if extra:
            return gh_error(422, f'Invalid request.\n\n"{extra[0]}" is not a permitted key.', DISPATCH_DOCS)
        if "ref" not in body:
            return gh_error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.', DISPATCH_DOCS)
        declared = repo.workflows[r.params["wf"]]
        if declared is None:
            return gh_error(422, "Workflow does not have 'workflow_dispatch' trigger", DISPATCH_DOCS)
        ref = str(body["ref"]).removeprefix("refs/heads/").removeprefix("refs/tags/")
        if ref not in repo.refs:
            return gh_error(422, f"No ref found for: {body['ref']}", DISPATCH_DOCS)
        refused = self._check_inputs(declared, body.get("inputs") or {})
        if refused:
            return refused
        run = Run(next(self._ids), repo.slug, r.params["wf"], ref, self._caller(r).login,
                  datetime.now(timezone.utc), body.get("inputs") or {}, list(self.run_steps), self.listed_after)
        self.runs.append(run)
        if body.get("return_run_details") and self.run_details == "returned":
            return Reply(200, {"workflow_run_id": run.id, "run_url": f"{self.base_url}/repos/{repo.slug}/actions/"
                                                                     f"runs/{run.id}",
                               "html_url": f"https://{self.host}/{repo.slug}/actions/runs/{run.id}"})
        return Reply(204, b"")

    @staticmethod
    def _check_inputs(declared: dict, given: dict) -> Reply | None:
        unexpected = [k for k in given if k not in declared]
        if unexpected:
            return gh_error(422, f"Unexpected inputs provided: {json.dumps(unexpected)}", DISPATCH_DOCS)
        for name, spec in declared.items():
            value = given.get(name)
            if value is None:
                if spec.get("required") and spec.get("default") is None:
                    return gh_error(422, f"Required input '{name}' not provided", DISPATCH_DOCS)
                continue
            kind = spec.get("type", "string")
            allowed = spec.get("options") if kind == "choice" else (["true", "false"] if kind == "boolean" else None)
            if allowed is not None and str(value).lower() not in [str(a).lower() for a in allowed]:
                return gh_error(422, f"Provided value '{value}' for input '{name}' not in the list of allowed values",
                                DISPATCH_DOCS)
        return None

    def _list_runs(self, r: Request) -> Reply:
        repo = self._visible_repo(r)
        if repo is None or r.params["wf"] not in repo.workflows:
            return gh_error(404, "Not Found", f"{DOCS}/actions/workflow-runs#list-workflow-runs-for-a-workflow")
        q = r.query
        runs = [run for run in self.runs if run.repo == repo.slug and run.workflow == r.params["wf"]]
        for run in runs:
            run.listed_after -= 1
        runs = [run for run in runs if run.listed_after < 0]
        if q.get("event"):
            runs = [run for run in runs if q["event"] == "workflow_dispatch"]
        if q.get("actor"):
            runs = [run for run in runs if run.actor == q["actor"]]
        if q.get("branch"):
            runs = [run for run in runs if run.ref == q["branch"]]
        if q.get("created"):
            runs = [run for run in runs if _created_matches(run.created, q["created"])]
        runs.sort(key=lambda run: run.created, reverse=True)  # newest first, as GitHub lists them
        page = runs[: int(q.get("per_page", 30))]
        return Reply(200, {"total_count": len(runs), "workflow_runs": [run.body(self.base_url, self.host)
                                                                       for run in page]})

    def _get_run(self, r: Request) -> Reply:
        repo = self._visible_repo(r)
        run = next((x for x in self.runs if repo and x.repo == repo.slug and x.id == int(r.params["id"])), None)
        if run is None:
            return gh_error(404, "Not Found", RUN_DOCS)
        body = run.body(self.base_url, self.host)
        run.reads += 1  # the next read sees the run one step further
        return Reply(200, body)


def _created_matches(created: datetime, qualifier: str) -> bool:
    """GitHub's date qualifiers: >=T, >T, <=T, <T, A..B, or a bare date-time (that second)."""
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    created = created.replace(microsecond=0)
    for op, test in ((">=", created.__ge__), ("<=", created.__le__), (">", created.__gt__), ("<", created.__lt__)):
        if qualifier.startswith(op):
            return test(at(qualifier[len(op):]))
    if ".." in qualifier:
        low, high = qualifier.split("..")
        return at(low) <= created <= at(high)
    return created == at(qualifier)


def hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)
