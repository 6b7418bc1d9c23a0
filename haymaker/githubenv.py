"""`haymaker doctor --github`: the GitHub Environments have the protection the trust model requires.

Each identity a workflow can obtain trusts one GitHub Environment (haymaker/trust.py), so that
Environment's protection is what stands between a repository writer and the identity: required
reviewers where the table says so (prod, platform-*), and deployment branch and tag policies (release
tags only for platform-* and release-*, main for the reaper and drift). Read through GitHub's REST API
(api version 2022-11-28): "Get an environment" (``protection_rules``, ``deployment_branch_policy``),
"List deployment branch policies", and the repository's and each Environment's variables (an identity's
client id set at repository level would reach every job whose Environment lacks it).
"""

from __future__ import annotations

import urllib.parse

from haymaker import trust
from haymaker.doctor import Check
from haymaker.github import GitHub

BOOTSTRAP = "`haymaker platform bootstrap --print`"


def _get(gh: GitHub, path: str, doing: str):
    answer = gh.call("GET", path)
    if answer.status == 404:
        return None
    if answer.status != 200:
        raise gh.refused(answer, doing)
    return answer.body


def environment_checks(gh: GitHub, table: trust.Table) -> list[Check]:
    repo = gh.repo.slug
    client_ids = {i.variable for i in table.federated() if i.variable}
    checks = []
    for env in table.github:
        name = urllib.parse.quote(env.name, safe="")
        base = f"/repos/{repo}/environments/{name}"
        body = _get(gh, base, f"read GitHub Environment {env.name}")
        if body is None:
            checks.append(Check(f"github {env.name}", False, "does not exist",
                                f"create it with its protection ({BOOTSTRAP}, step 7)"))
            continue
        problems = []
        rules = {r.get("type") for r in body.get("protection_rules") or []}
        if env.reviewers and "required_reviewers" not in rules:
            problems.append("no required reviewers")
        if not env.reviewers and "required_reviewers" in rules:
            problems.append("required reviewers would hold every scheduled job")
        policy = body.get("deployment_branch_policy")
        if not policy or not policy.get("custom_branch_policies"):
            problems.append("any branch may deploy to it (no custom deployment branch policy)"
                            if not policy else "deploys from protected branches, not the named branches and tags")
            allowed = set()
        else:
            found = _get(gh, f"{base}/deployment-branch-policies?per_page=100", f"list {env.name}'s branch policies")
            allowed = {(p.get("type", "branch"), p.get("name")) for p in (found or {}).get("branch_policies") or []}
        wanted = {("branch", b) for b in env.branches} | {("tag", t) for t in env.tags}
        if policy and policy.get("custom_branch_policies") and allowed != wanted:
            problems.append(f"deploys from {_policies(allowed) or 'nothing'}, not {_policies(wanted)}")
        variables = _get(gh, f"{base}/variables?per_page=30", f"list {env.name}'s variables") or {}
        present = {v.get("name") for v in variables.get("variables") or []}
        missing = [v for v in env.variables if v not in present]
        if missing:
            problems.append(f"lacks the variables {', '.join(missing)}")
        detail = "; ".join(problems) or (f"{'reviewers, ' if env.reviewers else ''}deploys from {_policies(wanted)}, "
                                          f"{len(env.variables)} variables")
        checks.append(Check(f"github {env.name}", not problems, detail,
                            f"set it as {BOOTSTRAP} prints (steps 7 and 8)" if problems else ""))
    repository = _get(gh, f"/repos/{repo}/actions/variables?per_page=30", "list the repository's variables") or {}
    leaked = sorted(v.get("name") for v in repository.get("variables") or [] if v.get("name") in client_ids)
    checks.append(Check("github repository variables", not leaked,
                        f"{', '.join(leaked)} set at repository level: any job whose GitHub Environment lacks it "
                        "would use it" if leaked else "no identity's client id at repository level",
                        "delete them at repository level (`gh variable delete NAME`); each is set on its own "
                        "GitHub Environment" if leaked else ""))
    return checks


def _policies(items) -> str:
    return ", ".join(f"{kind} {name}" for kind, name in sorted(items))
