"""GitHub's deployment environments and Actions variables, as `haymaker doctor --github` reads them. A mixin
of the GitHub stand-in (tests/fakes/github.py), read-only.

Bodies follow the GitHub REST reference (api version 2022-11-28):
- "Get an environment", ``GET /repos/{owner}/{repo}/environments/{environment_name}``
  (https://docs.github.com/rest/deployments/environments#get-an-environment): ``id``, ``node_id``, ``name``,
  ``url``, ``html_url``, ``created_at``, ``updated_at``, ``can_admins_bypass``, ``protection_rules`` (each
  ``{id, node_id, type}``: ``wait_timer`` with ``wait_timer``; ``required_reviewers`` with
  ``prevent_self_review`` and ``reviewers`` ``[{type, reviewer}]``; ``branch_policy`` when deployments are
  limited) and ``deployment_branch_policy`` (``null``: any branch; else ``{protected_branches,
  custom_branch_policies}``). A missing environment is 404 ``Not Found``.
- "List deployment branch policies", ``GET .../environments/{environment_name}/deployment-branch-policies``
  (https://docs.github.com/rest/deployments/branch-policies#list-deployment-branch-policies):
  ``{total_count, branch_policies: [{id, node_id, name, type}]}`` with ``type`` ``branch`` or ``tag``. The
  reference says the endpoint needs ``custom_branch_policies`` true; what it answers otherwise is not
  documented: here 404, and the code never calls it then.
- "List repository variables" (``/repos/{owner}/{repo}/actions/variables``) and "List environment
  variables" (``/repos/{owner}/{repo}/environments/{environment_name}/variables``,
  https://docs.github.com/rest/actions/variables): ``{total_count, variables: [{name, value, created_at,
  updated_at}]}``.
Every answer here needs read access to the repository (404 otherwise, as for a private repository).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

ENVIRONMENTS_DOCS = "https://docs.github.com/rest/deployments/environments#get-an-environment"
POLICIES_DOCS = "https://docs.github.com/rest/deployments/branch-policies#list-deployment-branch-policies"
VARIABLES_DOCS = "https://docs.github.com/rest/actions/variables"
REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
STAMP = "2026-11-01T09:00:00Z"


@dataclass
class Environment:
    name: str
    reviewers: list[str] = field(default_factory=list)  # logins
    wait_timer: int = 0
    policy: dict | None = None  # deployment_branch_policy; None: any branch
    branch_policies: list[tuple[str, str]] = field(default_factory=list)  # (type, name)
    variables: dict[str, str] = field(default_factory=dict)


class Environments:
    """Mixed into FakeGitHub: ``route_environments()`` in its constructor, ``reset_environments()`` with state."""

    def route_environments(self) -> None:
        self.route("GET", REPO + r"/environments/(?P<env>[^/]+)", self._environment)
        self.route("GET", REPO + r"/environments/(?P<env>[^/]+)/deployment-branch-policies", self._branch_policies)
        self.route("GET", REPO + r"/environments/(?P<env>[^/]+)/variables", self._environment_variables)
        self.route("GET", REPO + r"/actions/variables", self._repository_variables)

    def reset_environments(self) -> None:
        self.environments: dict[str, dict[str, Environment]] = {}  # repo slug (lower) -> name -> environment
        self.repository_variables: dict[str, dict[str, str]] = {}
        self._env_ids = itertools.count(161088068)

    def add_environment(self, repo: str, name: str, *, reviewers=(), branches=(), tags=(), any_branch=False,
                        variables=None, wait_timer=0) -> Environment:
        policy = None if any_branch else {"protected_branches": False, "custom_branch_policies": True}
        env = Environment(name, list(reviewers), wait_timer, policy,
                          [("branch", b) for b in branches] + [("tag", t) for t in tags], dict(variables or {}))
        self.environments.setdefault(repo.lower(), {})[name] = env
        return env

    # handlers --------------------------------------------------------------------------------------------
    def _found(self, r):
        from tests.fakes.github import gh_error

        repo = self._visible_repo(r)
        env = self.environments.get(repo.slug.lower(), {}).get(r.params["env"]) if repo else None
        return repo, env, (gh_error(404, "Not Found", ENVIRONMENTS_DOCS) if env is None else None)

    def _environment(self, r):
        from tests.fakes.server import Reply

        repo, env, missing = self._found(r)
        if missing:
            return missing
        rules = []
        if env.wait_timer:
            rules.append({"id": 3736, "node_id": "MDQ6R2F0ZTM3MzY=", "type": "wait_timer", "wait_timer": env.wait_timer})
        if env.reviewers:
            rules.append({"id": 3755, "node_id": "MDQ6R2F0ZTM3NTU=", "prevent_self_review": True,
                          "type": "required_reviewers",
                          "reviewers": [{"type": "User", "reviewer": {"login": login, "id": 1000 + n, "type": "User"}}
                                        for n, login in enumerate(env.reviewers)]})
        if env.policy is not None:
            rules.append({"id": 3756, "node_id": "MDQ6R2F0ZTM3NTY=", "type": "branch_policy"})
        url = f"{self.base_url}/repos/{repo.slug}/environments/{env.name}"
        return Reply(200, {"id": next(self._env_ids), "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4", "name": env.name,
                           "url": url, "html_url": f"https://{self.host}/{repo.slug}/deployments/activity_log?"
                                                   f"environments_filter={env.name}",
                           "created_at": STAMP, "updated_at": STAMP, "can_admins_bypass": True,
                           "protection_rules": rules, "deployment_branch_policy": env.policy})

    def _branch_policies(self, r):
        from tests.fakes.github import gh_error
        from tests.fakes.server import Reply

        _, env, missing = self._found(r)
        if missing:
            return missing
        if not (env.policy or {}).get("custom_branch_policies"):
            return gh_error(404, "Not Found", POLICIES_DOCS)
        return Reply(200, {"total_count": len(env.branch_policies), "branch_policies": [
            {"id": 361471 + n, "node_id": f"MDE2OkdhdGVCcmFuY2hQb2xpY3kzNjE0N{n}", "name": name, "type": kind}
            for n, (kind, name) in enumerate(env.branch_policies)]})

    @staticmethod
    def _variables(values: dict[str, str]):
        from tests.fakes.server import Reply

        return Reply(200, {"total_count": len(values), "variables": [
            {"name": k, "value": v, "created_at": STAMP, "updated_at": STAMP} for k, v in sorted(values.items())]})

    def _environment_variables(self, r):
        _, env, missing = self._found(r)
        return missing or self._variables(env.variables)

    def _repository_variables(self, r):
        from tests.fakes.github import gh_error

        repo = self._visible_repo(r)
        if repo is None:
            return gh_error(404, "Not Found", VARIABLES_DOCS)
        return self._variables(self.repository_variables.get(repo.slug.lower(), {}))
