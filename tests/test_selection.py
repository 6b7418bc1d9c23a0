"""Scheduled and on-demand selection, RunSpec validation and physical names."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from haymaker import naming
from haymaker.errors import CatalogError, InvalidInput
from haymaker.runspec import RunSpec, new_run_id
from haymaker.selection import SIZES, load_selection, pick_on_demand, pick_scheduled, resolve_duration

run_ids = st.builds(
    new_run_id,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)),
    st.text("0123456789abcdef", min_size=4, max_size=4),
)
quick = hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def selection(catalog):
    return load_selection(catalog)


@quick
@given(run_id=run_ids, size=st.sampled_from(SIZES))
def test_scheduled_picks_are_deterministic_sized_unique_and_honour_the_file(catalog, selection, run_id, size):
    picks = pick_scheduled(catalog, selection, run_id, size)
    assert picks == pick_scheduled(catalog, selection, run_id, size)
    assert len(picks) == selection.sizes[size] == len(set(picks))
    assert set(selection.pins) <= set(picks)
    assert picks[: len(selection.pins)] == selection.pins
    assert not set(selection.exclude) & set(picks)
    assert all(p in catalog for p in picks)


@quick
@given(run_id=run_ids, data=st.data())
def test_include_exclude_pins_and_zero_weights(catalog, selection, run_id, data):
    names = catalog.names()
    include = data.draw(st.lists(st.sampled_from(names), min_size=12, max_size=30, unique=True))
    pins = data.draw(st.lists(st.sampled_from(include), max_size=3, unique=True))
    exclude = data.draw(st.lists(st.sampled_from([n for n in include if n not in pins]), max_size=3, unique=True))
    zero_area = data.draw(st.sampled_from(sorted({catalog[n].area for n in names})))
    custom = dataclasses.replace(selection, include=tuple(include), pins=tuple(pins), exclude=tuple(exclude),
                                 weights={zero_area: 0.0}, sizes={"small": 5, "medium": 5, "large": 5})
    allowed = [n for n in include if n not in exclude and (n in pins or catalog[n].area != zero_area)]
    if len(allowed) < 5:
        with pytest.raises(InvalidInput, match="needs 5 scenarios"):
            pick_scheduled(catalog, custom, run_id, "small")
        return
    picks = pick_scheduled(catalog, custom, run_id, "small")
    assert set(picks) <= set(allowed) and set(pins) <= set(picks) and len(set(picks)) == 5


def test_weights_shift_the_picks(catalog, selection):
    heavy = dataclasses.replace(selection, exclude=(), pins=(), weights={"security": 50.0})
    counts = sum(catalog[p].area == "security"
                 for i in range(40) for p in pick_scheduled(catalog, heavy, new_run_id(suffix=f"{i:04x}"), "small"))
    assert counts > 40 * 5 * 0.5  # uniform would give about 10 %


def test_different_run_ids_pick_differently(catalog, selection):
    picks = {pick_scheduled(catalog, selection, f"20261121t0600z-{i:04x}", "medium") for i in range(10)}
    assert len(picks) > 1


def test_unknown_size(catalog, selection):
    with pytest.raises(InvalidInput, match="size 'huge' is unknown: use one of small, medium, large"):
        pick_scheduled(catalog, selection, "20261121t0600z-7f3a", "huge")


def test_on_demand_names_and_close_matches(catalog, selection):
    assert pick_on_demand(catalog, selection, ["compute-01-linux-vm-web-server"]) == ("compute-01-linux-vm-web-server",)
    with pytest.raises(InvalidInput, match="unknown scenario 'compute-01-linux-vm' : did you mean".replace(" :", ":")):
        pick_on_demand(catalog, selection, ["compute-01-linux-vm"])
    with pytest.raises(InvalidInput, match="names 1 to 5 scenarios; got 6"):
        pick_on_demand(catalog, selection, catalog.names()[:6])
    with pytest.raises(InvalidInput, match="named twice"):
        pick_on_demand(catalog, selection, ["compute-01-linux-vm-web-server"] * 2)


@pytest.mark.parametrize("hours", [0, 11, -1, True])
def test_duration_out_of_range(selection, hours):
    with pytest.raises(InvalidInput, match="use a whole number of hours from 1 to 10"):
        resolve_duration(selection, hours)


def test_selection_file_errors_are_all_reported(catalog, tmp_path):
    p = tmp_path / "selection.yaml"
    p.write_text("sizes: {small: 5, medium: 15, large: 30}\nduration_hours: 8\nbudget_usd: 10\n"
                 "on_demand: {min_scenarios: 1, max_scenarios: 5, max_live_runs: 3}\n"
                 "pins: [compute-01-linux-vm-web-servr]\nexclude: [compute-01-linux-vm-web-servr]\n")
    with pytest.raises(CatalogError) as e:
        load_selection(catalog, p)
    assert e.value.errors[0].startswith(f"{p}: exclude[0]: unknown scenario 'compute-01-linux-vm-web-servr': "
                                 "did you mean compute-01-linux-vm-web-server")
    assert len(e.value.errors) == 3  # pins, exclude, and the pin/exclude conflict


@pytest.mark.parametrize("run_id", ["20261121T0600Z-7f3a", "20261121t0600z", "20261321t0600z-7f3a", "x" * 20])
def test_bad_run_ids(run_id):
    with pytest.raises(InvalidInput, match="run id|does not exist"):
        RunSpec(run_id=run_id, environment="dev", trigger="local", scenarios=("a",))


def test_runspec_fields():
    spec = RunSpec(run_id="20261121t0600z-7f3a", environment="dev", trigger="schedule", scenarios=("a", "b"),
                   duration_hours=3)
    assert spec.stack_name == "run-20261121t0600z-7f3a"
    assert spec.to_dict()["expires_at"] == "2026-11-21T09:00:00Z"
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(InvalidInput, match="environment 'qa' is unknown"):
        dataclasses.replace(spec, environment="qa")
    with pytest.raises(InvalidInput, match="trigger 'cron' is unknown"):
        dataclasses.replace(spec, trigger="cron")


@quick
@given(run_id=run_ids, data=st.data())
def test_every_physical_name_follows_azure_rules(catalog, run_id, data):
    scenario = data.draw(st.sampled_from(catalog.names()))
    job = naming.job_name(run_id, scenario)
    assert naming.is_valid_job_name(job) and 2 <= len(job) <= 32, job
    rg = naming.resource_group_name(run_id, scenario)
    assert naming.is_valid_resource_group_name(rg) and len(rg) <= 90
    assert naming.is_valid_resource_group_name(naming.run_resource_group_name(run_id))
    assert len(naming.app_display_name(run_id, scenario)) <= 120
    assert naming.unique_suffix(run_id, scenario).isalnum()


@quick
@given(run_id=run_ids, scenario=st.from_regex(r"\A[a-z]{2,9}-[0-9]{2}-[a-z0-9]{1,20}(-[a-z0-9]{1,10}){0,3}\Z"))
def test_job_names_hold_for_any_schema_valid_name(run_id, scenario):
    job = naming.job_name(run_id, scenario[:48])
    assert naming.is_valid_job_name(job), job


def test_job_names_do_not_collide_when_truncated(catalog):
    run_id = "20261121t0600z-7f3a"
    jobs = [naming.job_name(run_id, n) for n in catalog.names()]
    assert len(set(jobs)) == len(jobs)
    long_a, long_b = "networking-05-private-endpoint-aaaa", "networking-05-private-endpoint-bbbb"
    assert naming.job_name(run_id, long_a) != naming.job_name(run_id, long_b)
