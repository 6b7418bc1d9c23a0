"""Live progress of `up`, `down` and `reap`: one line per scenario that moves through its states.

Deploy: group → identity → roles → job → started (or scheduled HH:MMZ); teardown: destroying →
verifying → verified / forced / failed. The engine's events (what Pulumi is creating or deleting right
now) and the lifecycle's own steps feed it. In a terminal the lines update in place (Rich's live
display); otherwise (CI) each change is one timestamped line; with ``--json`` nothing is shown.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Callable

# What the engine is doing to a resource of this type, as a scenario's state.
STEP_OF_TYPE = {
    "azure-native:resources:ResourceGroup": "group",
    "azuread:index/application:Application": "identity",
    "azuread:index/servicePrincipal:ServicePrincipal": "identity",
    "azuread:index/applicationPassword:ApplicationPassword": "identity",
    "azure-native:authorization:RoleAssignment": "roles",
    "azure-native:app:Job": "job",
}
# The components a scenario's resources sit under: a run's agent, or a try's sandbox (components/sandbox.py).
AGENT_TYPES = ("haymaker:index:ScenarioAgent", "haymaker:index:ScenarioSandbox")
FINAL = ("verified", "forced", "failed")
# The row haymaker/lifecycle.py shows for a run whose scenarios it cannot know (no ledger record: a
# stack made by hand, or a run that never existed); it is named by its stack.
WHOLE_RUN = "(run)"


def scenario_of(urn: str, scenarios: list[str]) -> str | None:
    """The scenario a resource belongs to: its component is ``ScenarioAgent::<scenario>`` (or
    ``ScenarioSandbox::<scenario>``) and every child is named ``<scenario>-<role>``."""
    qualified, _, name = urn.rpartition("::")
    if not any(t in qualified for t in AGENT_TYPES):
        return None
    return next((s for s in sorted(scenarios, key=len, reverse=True) if name == s or name.startswith(s + "-")), None)


class Progress:
    def __init__(self, console, *, enabled: bool = True, now: Callable[[], datetime] | None = None):
        self.console = console
        self.enabled = enabled
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.rows: dict[tuple[str, str], str] = {}  # (run id, scenario) -> state
        self._scenarios: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._live = None

    # --- what the lifecycle and the engine say --------------------------------------------------------
    def runs(self, run_id: str, scenarios: list[str], state: str = "waiting") -> None:
        """The scenarios of a run, before anything happens to them."""
        self._scenarios[run_id] = list(scenarios)
        for s in scenarios:
            self.set(run_id, s, state)

    def set(self, run_id: str, scenario: str | None, state: str) -> None:
        """One scenario's state, or every scenario of the run when ``scenario`` is None."""
        targets = [scenario] if scenario else self._scenarios.get(run_id) or [s for r, s in self.rows if r == run_id]
        with self._lock:
            changed = [(run_id, s) for s in targets if self.rows.get((run_id, s)) != state]
            for key in changed:
                self.rows[key] = state
        if self.enabled and changed:
            self._show(changed, state)

    def engine_event(self, stack_name: str, event) -> None:
        """An engine event of `up` or `destroy` (Automation API ``on_event``)."""
        run_id = stack_name.removeprefix("run-")
        step = event.resource_pre_event or event.res_op_failed_event
        if step is None:
            return
        meta = step.metadata
        scenario = scenario_of(meta.urn, self._scenarios.get(run_id) or [])
        if scenario is None:
            return
        if event.res_op_failed_event:
            self.set(run_id, scenario, f"failed: {meta.type.rsplit(':', 1)[-1]}")
        elif str(getattr(meta.op, "value", meta.op)) == "delete":
            self.set(run_id, scenario, "destroying")
        elif meta.type in STEP_OF_TYPE:
            self.set(run_id, scenario, STEP_OF_TYPE[meta.type])

    # --- how it looks -----------------------------------------------------------------------------------
    def _label(self, run_id: str, scenario: str) -> str:
        if scenario == WHOLE_RUN:
            return f"run-{run_id}"
        many_runs = len({r for r, _ in self.rows}) > 1
        return f"{run_id} {scenario}" if many_runs else scenario

    def _show(self, changed: list[tuple[str, str]], state: str) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            return
        stamp = self.now().strftime("%H:%M:%SZ")
        for run_id, scenario in changed:
            self.console.print(f"{stamp} {self._label(run_id, scenario)}: {state}", markup=False, highlight=False,
                               soft_wrap=True)

    def _table(self):
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        labels = [self._label(run_id, scenario) for run_id, scenario in self.rows]
        # The label is what one copies (a scenario, a run id): it keeps its width; the state gives way.
        table.add_column("scenario", no_wrap=True, min_width=max(map(len, labels), default=0))
        table.add_column("state", no_wrap=True, overflow="ellipsis")
        for (run_id, scenario), state in self.rows.items():
            style = {"verified": "green", "forced": "yellow", "failed": "red"}.get(state.split(":")[0], "")
            table.add_row(self._label(run_id, scenario), f"[{style}]{state}[/]" if style else state)
        return table

    def __enter__(self) -> "Progress":
        if self.enabled and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(self._table(), console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.__exit__(*exc)
            self._live = None
