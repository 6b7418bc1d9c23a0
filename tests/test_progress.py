"""Live progress: each scenario's state from the engine's events and the lifecycle's steps, shown in
place in a terminal, as timestamped lines elsewhere, and not at all with --json."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

from pulumi.automation.events import EngineEvent
from rich.console import Console

from haymaker.progress import Progress, scenario_of

RUN = "20261121t0600z-7f3a"
VM, GROUPS = "compute-01-linux-vm-web-server", "identity-03-entra-users-groups"
AGENT = f"urn:pulumi:run-{RUN}::haymaker::haymaker:index:ScenarioAgent"


def event(kind: str, op: str, type_: str, name: str) -> EngineEvent:
    meta = {"op": op, "urn": f"{AGENT}${type_}::{name}", "type": type_, "provider": ""}
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": meta}})


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=terminal, color_system=None), buffer


def clock():
    return datetime(2026, 11, 21, 6, 15, 2, tzinfo=timezone.utc)


def test_a_resource_belongs_to_the_scenario_whose_component_holds_it():
    scenarios = ["compute-01-linux-vm", VM]  # one name the prefix of another
    assert scenario_of(f"{AGENT}$azure-native:app:Job::{VM}-job", scenarios) == VM
    assert scenario_of(f"{AGENT}::{VM}", scenarios) == VM
    assert scenario_of(f"urn:pulumi:run-{RUN}::haymaker::azure-native:resources:ResourceGroup::run-rg", scenarios) is None


def test_without_a_terminal_each_change_is_one_timestamped_line():
    out, buffer = console(terminal=False)
    progress = Progress(out, now=clock)
    with progress:
        progress.runs(RUN, [VM, GROUPS])
        for e in (event("resourcePreEvent", "create", "azure-native:resources:ResourceGroup", f"{VM}-rg"),
                  event("resourcePreEvent", "create", "azuread:index/application:Application", f"{VM}-app"),
                  event("resOutputsEvent", "create", "azuread:index/application:Application", f"{VM}-app"),
                  event("resourcePreEvent", "create", "azure-native:authorization:RoleAssignment", f"{VM}-role-x"),
                  event("resourcePreEvent", "create", "azure-native:app:Job", f"{GROUPS}-job"),
                  event("resOpFailedEvent", "create", "azure-native:app:Job", f"{VM}-job")):
            progress.engine_event(f"run-{RUN}", e)
        progress.set(RUN, GROUPS, "scheduled 2026-11-21T06:15:00Z")
    assert buffer.getvalue().splitlines() == [
        f"06:15:02Z {VM}: waiting", f"06:15:02Z {GROUPS}: waiting", f"06:15:02Z {VM}: group",
        f"06:15:02Z {VM}: identity",  # an outputs event of the same state adds no line
        f"06:15:02Z {VM}: roles", f"06:15:02Z {GROUPS}: job", f"06:15:02Z {VM}: failed: Job",
        f"06:15:02Z {GROUPS}: scheduled 2026-11-21T06:15:00Z"]


def test_a_teardown_moves_every_scenario_of_the_run_and_names_runs_when_there_are_several():
    out, buffer = console(terminal=False)
    progress = Progress(out, now=clock)
    progress.runs(RUN, [VM], "destroying")
    progress.runs("20261121t0600z-0b0b", [GROUPS], "destroying")
    progress.engine_event(f"run-{RUN}", event("resourcePreEvent", "delete", "azure-native:app:Job", f"{VM}-job"))
    progress.set(RUN, None, "verifying")
    progress.set(RUN, None, "forced")
    assert buffer.getvalue().splitlines()[-2:] == [f"06:15:02Z {RUN} {VM}: verifying", f"06:15:02Z {RUN} {VM}: forced"]


def test_in_a_terminal_the_lines_update_in_place_and_fit_80_columns():
    out, buffer = console(terminal=True)
    with Progress(out, now=clock) as progress:
        progress.runs(RUN, [VM, GROUPS])
        progress.set(RUN, VM, "roles")
        progress.set(RUN, None, "verified")
    text = buffer.getvalue()
    assert "06:15:02Z" not in text  # no log lines: one live table, redrawn
    frame = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text.rsplit("\x1b[1A", 1)[-1]).strip("\r\n").splitlines()
    assert [line.split() for line in frame] == [[VM, "verified"], [GROUPS, "verified"]]
    assert all(len(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)) <= 80 for line in text.splitlines())


def test_with_json_nothing_is_shown():
    out, buffer = console(terminal=True)
    with Progress(out, enabled=False) as progress:
        progress.runs(RUN, [VM])
        progress.set(RUN, VM, "job")
    assert buffer.getvalue() == "" and progress.rows == {(RUN, VM): "job"}
