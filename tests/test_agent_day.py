"""The shape of an agent's day: working calendars, cadences, density, and the catalog's checks of them."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings as hsettings, strategies as st
from typer.testing import CliRunner

from haymaker.cli.agent import app as agent_app
from haymaker.agent.plan import plan_day
from haymaker.agent.schedule import THINK_SECONDS, default_seed, operate_slots
from haymaker.runspec import new_run_id
from scenarios.calendar import calendar_for
from scenarios.catalog import check_file
from tests.conftest import FIXTURE_REPO

FIXTURE_CATALOG = FIXTURE_REPO / "scenarios"

MONDAY = datetime(2026, 11, 23, tzinfo=timezone.utc)
WORKING = ("work", "lunch")


def day(catalog, name, start, hours=10, buffer=30, seed=None, location="swedencentral"):
    scenario = catalog[name]
    cal = calendar_for(scenario.company, location)
    end = start + timedelta(hours=hours, minutes=-buffer)
    seed = default_seed(new_run_id(start, "0000"), name) if seed is None else seed
    return cal, end, operate_slots(scenario.phases["operate"], cal, start, end, seed)


# calendars

def test_calendars_come_from_the_company_then_its_country_then_the_region():
    assert calendar_for({"country": "AT"}, "eastus").timezone == "Europe/Vienna"
    chicago = calendar_for({"country": "US", "timezone": "America/Chicago"}, "swedencentral")
    assert (chicago.timezone, chicago.source) == ("America/Chicago", "company.timezone")
    region = calendar_for({}, "swedencentral")
    assert (region.timezone, region.country, region.source) == ("Europe/Stockholm", "SE", "region swedencentral")
    assert calendar_for({}, "westus2").timezone == "America/Los_Angeles"
    assert calendar_for({}, "nowhere").timezone == "UTC"
    israel = calendar_for({"country": "IL"}, "swedencentral")
    assert israel.is_workday(datetime(2026, 11, 22).date()) and not israel.is_workday(datetime(2026, 11, 27).date())
    resort = calendar_for({"country": "AT", "hours": {"start": "07:00", "end": "16:00", "lunch": "11:30-12:00",
                                                       "days": ["wed", "thu", "fri", "sat", "sun"]}}, "")
    assert resort.hours_text() == "Wed-Sun 07:00-16:00, lunch 11:30-12:00"
    # 10:00 UTC on a Saturday: a working morning at the resort, a weekend for its Swedish neighbour.
    saturday = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)
    assert resort.period(saturday) == "work" and region.period(saturday) == "weekend"


def test_summer_time_moves_the_utc_hours(fixture_catalog, settings):
    catalog = fixture_catalog
    summer = plan_day(catalog["compute-01-linux-vm-web-server"], run_id="20260622t0600z-7f3a", duration_hours=2,
                      settings=settings, seed=1)["calendar"]["days"][0]
    winter = plan_day(catalog["compute-01-linux-vm-web-server"], run_id="20261123t0600z-7f3a", duration_hours=2,
                      settings=settings, seed=1)["calendar"]["days"][0]
    assert (summer["local"], summer["utc"]) == ("08:00-17:00", "06:00-15:00")
    assert (winter["local"], winter["utc"]) == ("08:00-17:00", "07:00-16:00")


# the day's shape

def test_density_over_many_run_ids(catalog):
    """Working hours at least 3x as busy as the rest; days off sparse; nothing past cleanup."""
    rng = random.Random(12)
    steps, hours = Counter(), Counter()
    for _ in range(400):
        name = rng.choice(catalog.names())
        start = MONDAY + timedelta(minutes=rng.randrange(0, 14 * 24 * 60, 15))
        cal, end, slots = day(catalog, name, start, hours=rng.randint(1, 10), seed=rng.getrandbits(64))
        assert all(start <= s.at < end for s in slots)
        steps.update(cal.period(s.at) for s in slots)
        t = start
        while t < end:
            hours[cal.period(t)] += 1 / 12
            t += timedelta(minutes=5)
    density = {p: steps[p] / hours[p] for p in hours}
    working = sum(steps[p] for p in WORKING) / sum(hours[p] for p in WORKING)
    outside = sum(steps[p] for p in hours if p not in WORKING) / sum(hours[p] for p in hours if p not in WORKING)
    assert working >= 3 * outside
    assert density["weekend"] <= working / 10 and density["night"] <= density["evening"]
    assert density["lunch"] < density["work"] / 2


@hsettings(max_examples=60, deadline=None)
@given(minutes=st.integers(0, 14 * 24 * 60), hours=st.integers(1, 10), buffer=st.integers(1, 120),
       index=st.integers(0, 49), seed=st.integers(0, 2 ** 64 - 1))
def test_a_day_never_crosses_the_cleanup_time_and_repeats_for_its_seed(catalog, minutes, hours, buffer, index, seed):
    name = catalog.names()[index]
    start = MONDAY + timedelta(minutes=minutes)
    cal, end, slots = day(catalog, name, start, hours=hours, buffer=buffer, seed=seed)
    assert all(start <= s.at < end for s in slots)
    assert slots == day(catalog, name, start, hours=hours, buffer=buffer, seed=seed)[2]
    assert all(s.think_seconds == 0 or THINK_SECONDS[0] <= s.think_seconds <= THINK_SECONDS[1] for s in slots)
    assert [s.at for s in slots] == sorted(s.at for s in slots)


def test_the_same_day_whatever_the_window_start(catalog):
    """The runner and the plan may start the window seconds apart: the same slots inside both."""
    cal, end, early = day(catalog, "networking-02-vpn-gateway", MONDAY + timedelta(hours=5), seed=7)
    cut = MONDAY + timedelta(hours=5, minutes=50)
    _, _, late = day(catalog, "networking-02-vpn-gateway", cut, hours=10, seed=7)
    assert [s for s in early if s.at >= cut] == [s for s in late if s.at < end]


def test_a_working_morning_starts_with_its_morning_checks_and_ends_with_end_of_day_steps(catalog):
    # Coho Winery works 07:30-16:30 in Rome: 06:30-15:30 UTC in November.
    cal, end, slots = day(catalog, "networking-02-vpn-gateway", MONDAY + timedelta(hours=6), hours=10, seed=3)
    first = slots[0]
    assert first.step.cadence == "morning"
    assert MONDAY + timedelta(hours=6, minutes=30) <= first.at <= MONDAY + timedelta(hours=7)
    compute = day(catalog, "compute-01-linux-vm-web-server", MONDAY + timedelta(hours=6), hours=12, seed=3)[2]
    last_day = [s for s in compute if s.step.cadence == "end-of-day"]
    assert last_day and all(timedelta(hours=15) <= s.at - MONDAY < timedelta(hours=16) for s in last_day)


def test_an_evening_start_for_a_european_company_is_an_evening_on_call(catalog):
    for k in range(30):
        cal, end, slots = day(catalog, "networking-02-vpn-gateway", MONDAY + timedelta(hours=18), hours=10, seed=k)
        assert {cal.period(s.at) for s in slots} <= {"evening", "night"}
        assert all(s.step.cadence not in ("end-of-day", "weekly", "rare") for s in slots)
        # On call only looks: show, list.
        assert all({"show", "list", "list-learned-routes"} & set(s.step.run.split()[3:5]) for s in slots)


def test_benign_mistakes_come_now_and_then(catalog):
    seen = [any(s.step.expect_failure for s in day(catalog, "networking-02-vpn-gateway", MONDAY + timedelta(hours=6),
                                                    seed=k)[2]) for k in range(200)]
    assert 0.2 < sum(seen) / len(seen) < 0.5


# the plan

def test_plan_json_carries_the_calendar_and_each_entrys_cadence():
    args = ["plan", "networking-02-vpn-gateway", "--run-id", "20261123t1800z-7f3a", "--duration", "10", "--json"]
    result = CliRunner().invoke(agent_app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cal = doc["calendar"]
    assert (cal["timezone"], cal["country"], cal["workdays"]) == ("Europe/Rome", "IT", ["mon", "tue", "wed", "thu", "fri"])
    assert cal["hours"] == {"start": "07:30", "end": "16:30", "lunch": "12:30-13:30"}
    assert cal["days"][0] == {"date": "2026-11-23", "weekday": "Mon", "working": True, "local": "07:30-16:30",
                              "utc": "06:30-15:30"}
    assert doc["cleanup_buffer_minutes"] == 70 and doc["cleanup_at"] == "2026-11-24T02:50:00Z"
    operate = [e for e in doc["entries"] if e["phase"] == "operate"]
    assert all(e["cadence"] and e["period"] in ("evening", "night") for e in operate)
    assert all(e["cadence"] is None for e in doc["entries"] if e["phase"] != "operate")


# the catalog's checks of the new fields

def write(tmp_path: Path, name: str, edit) -> Path:
    doc = yaml.safe_load((FIXTURE_CATALOG / f"{name}.yaml").read_text())
    edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["company"].update(timezone="Europe/Atlantis"),
     "company.timezone: 'Europe/Atlantis' is not an IANA time zone"),
    (lambda d: d["company"].update(country="XX"), "company.country: no office customs for 'XX'"),
    (lambda d: d["company"].update(hours={"start": "17:00", "end": "09:00"}), "start 17:00 is not before end 09:00"),
    (lambda d: d["phases"]["deploy"][0].update(cadence="hourly"),
     "phases.deploy[0].cadence: cadence is for operate steps only"),
    (lambda d: d["phases"]["cleanup"][0].update(expect_failure=True),
     "phases.cleanup[0].expect_failure: expect_failure is for operate steps only"),
    (lambda d: d["phases"]["operate"][0].update(timeout_minutes=90),
     "phases.operate[0].timeout_minutes: 90 is over the operate limit of 60 minutes"),
    (lambda d: d["phases"]["cleanup"][1].update(timeout_minutes=40),
     "phases.cleanup[1]: step 'delete-network' does not fit the cleanup buffer: the cleanup steps' limits reach 45 min"),
    (lambda d: d["phases"]["operate"].append(
        {"name": "peek-next-door", "expect_failure": True, "run": "az vm show -g other-rg --name vm-web"}),
     "names another resource group"),
    (lambda d: d["phases"]["deploy"][0].update(run=d["phases"]["deploy"][0]["run"].replace("${LOCATION}", "eastus")),
     "location eastus is not the run's location: use ${LOCATION}, or, when the service is offered only "
     "there, add eastus to the scenario's locations:"),
    (lambda d: d.update(locations=["eastus"]), "locations: 'eastus' is named by no step's --location: remove it"),
])
def test_the_validator_says_what_to_change(tmp_path, edit, message):
    scenario, problems = check_file(write(tmp_path, "compute-01-linux-vm-web-server", edit))
    assert scenario is None and any(message in p for p in problems), problems


def test_a_region_in_a_locations_list_is_a_location_too(tmp_path):
    def elsewhere(d):
        d["phases"]["deploy"][0]["run"] = d["phases"]["deploy"][0]["run"].replace("regionName=${LOCATION}",
                                                                                  "regionName=eastus")

    scenario, problems = check_file(write(tmp_path, "databases-02-cosmos-db", elsewhere))
    assert scenario is None and any("location eastus is not the run's location" in p for p in problems), problems


def test_a_declared_buffer_makes_room_for_long_cleanup_steps(tmp_path):
    def longer(d):
        d["phases"]["cleanup"][1]["timeout_minutes"] = 40
        d["cleanup_buffer_minutes"] = 45

    scenario, problems = check_file(write(tmp_path, "compute-01-linux-vm-web-server", longer))
    assert problems == [] and scenario.cleanup_minutes == 45


def test_the_catalog_uses_the_new_fields(catalog):
    mistakes = [n for n in catalog.names() if any(s.expect_failure for s in catalog[n].phases["operate"])]
    assert len(mistakes) >= 10
    assert all(s.cadence == "rare" for n in mistakes for s in catalog[n].phases["operate"] if s.expect_failure)
    slow = {n: {s.name: s.timeout_minutes for p in ("deploy", "cleanup") for s in catalog[n].phases[p]
                if s.timeout_minutes} for n in ("networking-02-vpn-gateway", "networking-04-application-gateway",
                                                 "databases-05-sql-managed-instance", "containers-02-aks-cluster")}
    assert all(slow.values()), slow
    assert {c for n in catalog.names() for c in (s.cadence for s in catalog[n].phases["operate"])} == {
        "morning", "routine", "hourly", "end-of-day", "weekly", "rare"}
