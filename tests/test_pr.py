"""What a pull request changes in every run it allows (`haymaker pr`, `scenarios validate`), on a fixture
repository (tests/fixtures/repo): never the project's own catalog or selection."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from haymaker import draws
from haymaker.draws import EVERY, check, read_tree, up_to_cent, worst_draws
from haymaker.pr import inclusion, review
from haymaker.prcomment import markdown
from haymaker.selection import SIZES

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "repo"
ENVS = "dev, prod, staging"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    """The fixture repository in a git clone of its own, committed: the base a PR is compared with."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return root


def edit_selection(root: Path, **changes) -> None:
    path = root / "scenarios" / "selection.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def add_scenario(root: Path, source: str, name: str, **fields) -> Path:
    """A renamed copy of a catalog file, with top-level fields replaced."""
    doc = yaml.safe_load((root / "scenarios" / f"{source}.yaml").read_text())
    doc.update(name=name, **fields)
    path = root / "scenarios" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def far_site(root: Path, name: str = "webapps-06-eastus-site", location: str = "eastus") -> None:
    """A copy of the static web app scenario whose service is offered only in ``location``."""
    source = (root / "scenarios" / "webapps-04-static-web-apps.yaml").read_text()
    (root / "scenarios" / f"{name}.yaml").write_text(
        source.replace("name: webapps-04-static-web-apps", f"name: {name}").replace("westeurope", location))


def problems_of(root: Path) -> list[str]:
    return [p.line() for p in check(read_tree(root))[1]]


# --- every run the tree allows -----------------------------------------------------------------------

def test_the_fixture_allows_every_run():
    tree = read_tree(FIXTURE)
    judged, problems = check(tree)
    assert problems == [] and tree.environments == ["dev", "prod", "staging"]
    assert {env: sorted(by) for env, by in judged.items()} == {env: tree.catalog.names() for env in tree.environments}
    assert all(v == [] for by in judged.values() for v in by.values())


def test_the_dearest_draw_is_the_pins_and_the_dearest_of_the_pool(repo):
    edit_selection(repo, exclude=["networking-02-vpn-gateway"], weights={"databases": 0})
    tree = read_tree(repo)
    price = draws.scenario_costs(tree.catalog, tree.catalog.names(), tree.selection.duration_hours,
                                 tree.settings["dev"])
    small, medium, large, on_demand = worst_draws(tree.catalog, tree.selection, "dev", tree.settings["dev"])
    pool = [n for n in tree.catalog.names() if n != "networking-02-vpn-gateway" and not n.startswith("databases-")]
    assert set(large.scenarios) == set(pool) and "security-05-security-center-policies" in small.scenarios
    rest = sorted((n for n in pool if n != "security-05-security-center-policies"), key=lambda n: -price[n])
    assert set(small.scenarios) == {"security-05-security-center-policies", *rest[:4]}
    assert small.cost_usd == pytest.approx(sum(price[n] for n in small.scenarios))
    # On demand names anything, excluded or not: the dearest of the whole catalog.
    assert on_demand.scenarios[0] == max(price, key=price.get) == "networking-02-vpn-gateway"
    assert len(on_demand.scenarios) == tree.selection.max_on_demand and medium.kind == "medium"


def test_a_budget_under_the_dearest_large_draw_fails_naming_the_scenario_environments_and_fix(repo):
    tree = read_tree(repo)
    large = worst_draws(tree.catalog, tree.selection, "dev", tree.settings["dev"])[SIZES.index("large")]
    needed = up_to_cent(large.cost_usd)
    edit_selection(repo, budget_usd=needed)  # the smallest budget that admits every draw: no problem
    assert problems_of(repo) == []
    edit_selection(repo, budget_usd=round(needed - 0.01, 2))
    (problem,) = problems_of(repo)
    assert problem.startswith(f"{large.scenarios[0]} in {ENVS}: a large run can cost ${large.cost_usd:.2f} (")
    assert f"raise budget_usd to at least {needed:.2f}, or exclude or lower the weight of {large.scenarios[0]}, " \
           "or lower sizes.large" in problem


def test_a_scenario_in_a_location_no_environment_allows_is_refused_in_each(repo):
    far_site(repo)
    problems = problems_of(repo)
    assert problems == [f"webapps-06-eastus-site in {ENVS}: allowed-locations: scenario webapps-06-eastus-site "
                        "names location 'eastus' in its steps, which this environment does not allow: add it to "
                        "allowed-locations scenarioLocations in policies/config.<env>.json, or leave the scenario out"]
    # Allowed in one environment only: refused in the two others.
    config = repo / "policies" / "config.dev.json"
    config.write_text(config.read_text().replace('"scenarioLocations": ["global", "westeurope"]',
                                                 '"scenarioLocations": ["global", "westeurope", "eastus"]'))
    assert [p.split(": ")[0] for p in problems_of(repo)] == ["webapps-06-eastus-site in prod, staging"]


def test_an_excluded_scenario_is_still_judged_it_can_be_named_on_demand(repo):
    far_site(repo)
    edit_selection(repo, exclude=["webapps-06-eastus-site"])
    assert [p.split(": ")[0] for p in problems_of(repo)] == [f"webapps-06-eastus-site in {ENVS}"]


def test_sizes_that_cannot_be_filled_or_break_the_run_size_policy(repo):
    edit_selection(repo, sizes={"small": 5, "medium": 6, "large": 12})
    assert problems_of(repo) == [
        "sizes.large: size large needs 12 scenarios but selection.yaml allows only 11: widen include, shorten "
        "exclude, raise a zero weight, or choose a smaller size"]
    config = repo / "policies" / "config.prod.json"
    config.write_text(config.read_text().replace('"maxScenarios": 30', '"maxScenarios": 8'))
    edit_selection(repo, sizes={"small": 5, "medium": 6, "large": 9})
    assert problems_of(repo) == [
        "sizes.large in prod: a large run draws 9 scenarios but run-scenario-limits in policies/config.prod.json "
        "allows 8: lower sizes.large in scenarios/selection.yaml to 8 or raise maxScenarios"]


def test_a_broken_selection_or_environment_is_a_problem_not_a_traceback(repo):
    edit_selection(repo, pins=["compute-01-linux-vm"], exclude=["nope"])
    assert problems_of(repo) == [
        "scenarios/selection.yaml: exclude[0]: unknown scenario 'nope': see `haymaker scenarios list`",
        "scenarios/selection.yaml: pins[0]: unknown scenario 'compute-01-linux-vm': did you mean "
        "compute-01-linux-vm-web-server?"]
    (repo / "Pulumi.staging.yaml").write_text("config: [\n")
    assert any(p.startswith("Pulumi.staging.yaml in staging: Pulumi.staging.yaml is not valid YAML")
               for p in problems_of(repo))


# --- chances of being drawn ----------------------------------------------------------------------------

def test_chances_come_from_the_scheduled_pick_itself(repo):
    edit_selection(repo, weights={"compute": 3, "databases": 0}, sizes={"small": 2, "medium": 4, "large": 9})
    tree = read_tree(repo)
    shares = inclusion(tree.catalog, tree.selection, draws=400)
    for size in SIZES:
        s = shares[size]
        assert set(s) == {n for n in tree.catalog.names() if not n.startswith("databases-")}  # weight 0: never drawn
        assert s["security-05-security-center-policies"] == 1.0  # pinned
        assert sum(s.values()) == pytest.approx(tree.selection.sizes[size], abs=0.001)  # each draw picks exactly that many
    assert shares["small"]["compute-01-linux-vm-web-server"] > 2 * shares["small"]["identity-01-service-principals"]
    assert set(shares["large"].values()) == {1.0}  # nine candidates, nine picks
    edit_selection(repo, sizes={"small": 2, "medium": 4, "large": 10})
    assert "large" not in inclusion(read_tree(repo).catalog, read_tree(repo).selection, draws=10)  # cannot be filled


# --- the comment ---------------------------------------------------------------------------------------

def test_a_selection_edit_shows_the_pool_the_chances_and_the_dearest_draws(repo):
    edit_selection(repo, exclude=["networking-02-vpn-gateway"], budget_usd=80,
                   sizes={"small": 5, "medium": 6, "large": 8})
    r = review("HEAD", repo)
    assert r.ok, [p.line() for p in r.problems]
    text = markdown(r)
    assert text.startswith("<!-- haymaker-plan -->\n## HayMaker: what this pull request changes in the runs\n")
    assert "**Every scheduled and dispatched run still works** in `dev`, `prod`, `staging`" in text
    assert "| budget of a run | $100.00 | $80.00 ✏️ |" in text
    assert "| sizes (small / medium / large) | 5 / 6 / 9 | 5 / 6 / 8 ✏️ |" in text
    assert "| scheduled candidates (pinned) | 11 (1) | 10 (1) |" in text
    assert "No longer drawn by scheduled runs: `networking-02-vpn-gateway`." in text
    row = next(line for line in text.splitlines() if line.startswith("| `networking-02-vpn-gateway` | networking |"))
    assert " → —" in row  # its chance drops to nothing
    before, after = r.before.worst["dev"][2], r.after.worst["dev"][2]
    assert f"| large (8) | ${before.cost_usd:,.2f} → ${after.cost_usd:,.2f} |" in text
    assert "All 11 scenarios pass every mandatory policy in dev, prod, staging." in text
    assert "No scenario file differs from `HEAD`." in text and len(text) < 60_000
    doc = r.as_dict()
    assert doc["ok"] and doc["before"]["selection"]["budget_usd"] == 100 and doc["after"]["selection"]["budget_usd"] == 80
    assert "networking-02-vpn-gateway" in doc["before"]["pool"] and "networking-02-vpn-gateway" not in doc["after"]["pool"]


def test_a_breaking_edit_fails_with_the_problem_first_in_the_comment(repo):
    edit_selection(repo, budget_usd=1)
    far_site(repo)
    r = review("HEAD", repo)
    text = markdown(r)
    assert not r.ok and "**This change would make runs fail: 5 problem(s).**" in text
    assert "- `webapps-06-eastus-site` in `dev, prod, staging`: allowed-locations: scenario webapps-06-eastus-site" in text
    assert "| `webapps-06-eastus-site` | schedule, on demand | ❌ allowed-locations | ❌ allowed-locations |" in text
    assert "Now drawn by scheduled runs: `webapps-06-eastus-site`." in text
    assert "| `webapps-06-eastus-site` | added | 0 → " in text  # the scenario diff, as `scenarios diff` shows it
    assert "❌**" in text  # the dearest draws over the budget


def test_the_comment_stays_under_githubs_limit_with_many_problems(repo):
    for i in range(40):
        far_site(repo, f"webapps-{10 + i}-far-site", f"far{i}")
    r = review("HEAD", repo)
    text = markdown(r)
    assert len(r.problems) == 40 and len(text) <= 60_000
    assert "- …and 10 more: `haymaker pr --base HEAD` lists them all" in text


def test_the_base_is_read_leniently_a_file_todays_checks_refuse_still_counts(repo):
    path = repo / "scenarios" / "compute-01-linux-vm-web-server.yaml"
    path.write_text(path.read_text().replace("title: ", "unknown_key: 1\ntitle: ", 1))
    git(repo, "commit", "-qam", "a base today's schema refuses")
    path.write_text(path.read_text().replace("unknown_key: 1\n", ""))
    r = review("HEAD", repo)
    assert r.ok and "compute-01-linux-vm-web-server" in r.before.pool
    assert r.before.tree.problems == []


def test_problems_name_every_environment_once():
    p = draws.Problem("x", EVERY, "m")
    assert p.line() == "x: m" and draws.Problem("x", "dev, prod", "m").line() == "x in dev, prod: m"


def test_selection_yaml_promises_what_the_comment_shows(repo):
    """The header of scenarios/selection.yaml tells its editor what the PR comment shows: it does."""
    header = (Path(__file__).resolve().parent.parent / "scenarios" / "selection.yaml").read_text().split("\n\n")[0]
    assert "haymaker pr --base origin/main" in header
    text = markdown(review("HEAD", repo))
    for promise, section in (("now\n# or no longer drawn", "### Selection (`scenarios/selection.yaml`)"),
                             ("chance per size", "### Chance of being drawn by one scheduled run"),
                             ("most expensive run of each size against the budget",
                              "### Most expensive possible draw, against the budget"),
                             ("policy verdict in each environment", "### Policy verdicts: every scenario in every")):
        assert promise in header and section in text, promise


def _set_prod_image(root: Path, image: str) -> None:
    path = root / "Pulumi.prod.yaml"
    text = path.read_text()
    current = yaml.safe_load(text)["config"]["haymaker:agentImage"]
    path.write_text(text.replace(current, image))


def test_an_unpinned_prod_image_is_shown_before_and_after_and_fails_only_the_change_that_unpins_it(repo):
    """Prod runs only images pinned by digest. A repository that has not pinned one yet is warned, not
    failed, on every PR (the image is no scenario's doing); a PR that replaces a digest by a tag fails."""
    tagged = yaml.safe_load((repo / "Pulumi.prod.yaml").read_text())["config"]["haymaker:agentImage"]
    assert "@sha256:" not in tagged
    r = review("HEAD", repo)
    assert r.ok and [(p.subject, p.environment) for p in r.warnings] == [("agent image", "prod")]
    assert "Before and after this change" in markdown(r) and "Pulumi.prod.yaml is a tag" in markdown(r)

    pinned = tagged.rsplit(":", 1)[0] + "@sha256:" + "ab" * 32
    _set_prod_image(repo, pinned)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "pin")
    assert review("HEAD", repo).warnings == [] and review("HEAD", repo).ok

    _set_prod_image(repo, tagged)
    r = review("HEAD", repo)
    assert not r.ok and [(p.subject, p.environment) for p in r.problems] == [("agent image", "prod")]
    assert "set it to <registry>/haymaker-agent@sha256:<digest>" in r.problems[0].message
