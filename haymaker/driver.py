"""The Automation API driver for run stacks: the only module that talks to the Pulumi engine.

`pulumi up` and this driver run the same program: the stack is a local program in the repository
(``Pulumi.yaml`` -> ``stacks/__main__.py`` -> ``stacks.run.run_program``), configured with the
RunSpec and the environment's settings, exactly what ``haymaker plan --write-stack-config`` writes.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

from haymaker.errors import HayMakerError
from haymaker.runspec import RunSpec
from haymaker.settings import REPO_ROOT, EnvironmentSettings
from haymaker.stackconfig import run_stack_config

log = logging.getLogger("haymaker.driver")

INSTALL_HINT = ("install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/, e.g. "
                "`curl -fsSL https://get.pulumi.com | sh`) and make sure `pulumi` is on PATH")
# File and blob ("diy") backends keep stack tags only from this CLI on; runs are found and reaped by
# their tags (haymaker:expires), so an older CLI would fail every `up`.
MIN_CLI_VERSION = (3, 211, 0)
PLUGINS = {"azure-native": "pulumi-azure-native", "azuread": "pulumi-azuread"}
PROJECT = "haymaker"  # Pulumi.yaml's name: a backend may hold other projects' stacks, never ours to touch
# A file or blob backend names each lock: "<url>: created by <user>@<host> (pid N) at <RFC 3339 time>"
# (pkg/backend/diy/lock.go). Pulumi Cloud's 409 names none: its age is unknown.
LOCK_LINE = re.compile(r"created by \S+ \(pid \d+\) at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))")


class PulumiCliMissing(HayMakerError):
    """No Pulumi CLI: nothing was created."""


class PulumiCliTooOld(HayMakerError):
    """A Pulumi CLI older than MIN_CLI_VERSION: nothing was created."""


def check_cli_version(version: str | None) -> None:
    try:
        found = tuple(int(p) for p in str(version).lstrip("v").split("-")[0].split(".")[:3])
    except ValueError:
        found = ()
    if len(found) != 3 or found < MIN_CLI_VERSION:
        need = ".".join(map(str, MIN_CLI_VERSION))
        raise PulumiCliTooOld(f"Pulumi CLI {version} is older than {need}, the first whose file and blob backends keep "
                              f"stack tags, which runs are found and reaped by: upgrade it ({INSTALL_HINT})")


class StackError(HayMakerError):
    """A Pulumi command failed; ``text`` holds the engine's output for classification."""

    def __init__(self, message: str, text: str = ""):
        super().__init__(message)
        self.text = text or message


class StackLocked(StackError):
    """Another update holds the stack's lock (possibly a CI run that died). ``locked_at``: when each lock was
    taken, as a file or blob backend says; empty when the backend does not say (Pulumi Cloud)."""

    def __init__(self, message: str, text: str = ""):
        super().__init__(message, text)
        self.locked_at = lock_times(self.text)


def lock_times(text: str) -> list[datetime]:
    from haymaker.runspec import parse_iso

    return [parse_iso(t) for t in LOCK_LINE.findall(text)]


class StackMissing(StackError):
    """The stack does not exist."""


@dataclass(frozen=True)
class RunStack:
    name: str
    tags: dict
    project: str = field(default=PROJECT, compare=False)


def project_and_name(listed: str) -> tuple[str, str]:
    """``organization/haymaker/run-x`` (``stack ls --all``) -> (haymaker, run-x); a bare name is this project's."""
    parts = listed.split("/")
    return (parts[-2] if len(parts) >= 2 else PROJECT), parts[-1]


def _translate(e: Exception, doing: str) -> HayMakerError:
    from pulumi import automation as auto

    if isinstance(e, FileNotFoundError):
        return PulumiCliMissing(f"cannot {doing}: {INSTALL_HINT}")
    if isinstance(e, auto.ConcurrentUpdateError):
        return StackLocked(f"cannot {doing}: the stack is locked by another update; if no other run is "
                           "deploying it, clear the lock with `pulumi cancel`", str(e))
    if isinstance(e, auto.StackNotFoundError):
        return StackMissing(f"cannot {doing}: no such stack", str(e))
    if isinstance(e, auto.CommandError):
        return StackError(f"cannot {doing}: {_last_error_line(str(e))}", str(e))
    return StackError(f"cannot {doing}: {e}", str(e))


def _last_error_line(text: str) -> str:
    """The engine's own error line (``error: …``), else the last line that mentions an error."""
    lines = [l.strip() for l in text.splitlines()]
    marked = [l for l in lines if l.startswith("error:") or ": error:" in l]
    mentioned = [l for l in lines if "error" in l.lower()]
    found = marked or mentioned
    return found[-1][:400] if found else text.strip()[-400:]


def backend_url(configured: str | None, root: Path = REPO_ROOT) -> str:
    """PULUMI_BACKEND_URL when set; otherwise a file backend under the repository."""
    return configured or f"file://{(root / '.pulumi-state').as_posix()}"


def plugin_versions() -> dict[str, str]:
    """Provider plugins pinned to the SDK packages installed in this environment."""
    return {name: metadata.version(package) for name, package in PLUGINS.items()}


def stack_config_values(spec: RunSpec, settings: EnvironmentSettings) -> dict[str, tuple[str, bool]]:
    """Config key -> (value as the CLI stores it, secret?)."""
    values = {}
    for key, value in run_stack_config(spec, settings)["config"].items():
        values[key] = (value if isinstance(value, str) else json.dumps(value), False)
    return values


class RunStackDriver:
    """Create/select, configure, deploy, read and destroy ``run-<run_id>`` stacks."""

    def __init__(self, *, backend: str | None = None, secrets_provider: str | None = None,
                 work_dir: Path = REPO_ROOT, on_output=log.info, policy_config: Path | None = None, on_event=None):
        """``on_event(stack_name, engine_event)`` receives the engine's events of `up` and `destroy`."""
        self.backend = backend_url(backend, work_dir)
        self.secrets_provider = secrets_provider
        self.work_dir = work_dir
        self.on_output = on_output
        self.policy_config = policy_config
        self.on_event = on_event
        self._ws = None

    def _options(self):
        from pulumi import automation as auto

        env = {"PULUMI_BACKEND_URL": self.backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        if self.backend.startswith("file://"):
            Path(self.backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            if "PULUMI_CONFIG_PASSPHRASE" not in os.environ and "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
                raise HayMakerError("the local file backend encrypts stack secrets with a passphrase",
                                    fix="set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or set "
                                        "PULUMI_BACKEND_URL to your backend")
        return auto.LocalWorkspaceOptions(work_dir=str(self.work_dir), env_vars=env,
                                          secrets_provider=self.secrets_provider)

    def _workspace(self):
        """The workspace, once per driver; refuses a missing or too old CLI before any stack is touched."""
        from pulumi import automation as auto

        if self._ws is None:
            opts = self._options()
            try:
                ws = auto.LocalWorkspace(work_dir=opts.work_dir, env_vars=opts.env_vars,
                                         secrets_provider=opts.secrets_provider)
            except Exception as e:  # noqa: BLE001 - translated
                raise _translate(e, "open the Pulumi workspace") from e
            check_cli_version(str(ws.pulumi_version))
            self._ws = ws
        return self._ws

    def _events(self, stack_name: str):
        return (lambda event: self.on_event(stack_name, event)) if self.on_event else None

    def prepare(self, spec: RunSpec, settings: EnvironmentSettings):
        """Create or select the run's stack, pin plugins, and set its config and tags before `up`."""
        from pulumi import automation as auto

        ws = self._workspace()
        try:
            stack = auto.Stack.create_or_select(spec.stack_name, ws)
            for name, version in plugin_versions().items():
                stack.workspace.install_plugin(name, f"v{version}")
            stack.set_all_config({k: auto.ConfigValue(value=v, secret=s)
                                  for k, (v, s) in stack_config_values(spec, settings).items()})
            for key, value in spec.stack_tags().items():
                stack.set_tag(key, value)
            return stack
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"prepare stack {spec.stack_name}") from e

    def up(self, stack) -> tuple[dict, int]:
        """Deploy with the policy pack; return the stack outputs (plain values) and how many
        resources the update created."""
        packs = [str(self.work_dir / "policies")]
        configs = [str(self.policy_config)] if self.policy_config else None
        try:
            result = stack.up(on_output=self.on_output, on_event=self._events(stack.name), policy_packs=packs,
                              policy_pack_configs=configs)
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"deploy {stack.name}") from e
        if result.summary.result != "succeeded":
            raise StackError(f"deploy of {stack.name} ended {result.summary.result}")
        created = (result.summary.resource_changes or {}).get("create", 0)
        return {k: v.value for k, v in result.outputs.items()}, created

    def outputs(self, stack_name: str) -> dict:
        from pulumi import automation as auto

        ws = self._workspace()
        try:
            stack = auto.Stack.select(stack_name, ws)
            return {k: v.value for k, v in stack.outputs().items()}
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"read the outputs of {stack_name}") from e

    def destroy(self, stack_name: str, remove: bool = False) -> None:
        """Delete the stack's resources; keep the stack unless ``remove`` (teardown removes it last)."""
        from pulumi import automation as auto

        ws = self._workspace()
        try:
            stack = auto.Stack.select(stack_name, ws)
            result = stack.destroy(on_output=self.on_output, on_event=self._events(stack_name))
            if result.summary.result != "succeeded":
                raise StackError(f"destroy of {stack_name} ended {result.summary.result}")
            if remove:
                ws.remove_stack(stack_name)
        except HayMakerError:
            raise
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"destroy {stack_name}") from e

    def remove(self, stack_name: str, force: bool = False) -> None:
        """Remove the stack; ``force`` when its state still lists resources deleted out of band."""
        ws = self._workspace()
        try:
            ws.remove_stack(stack_name, force=force or None)
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"remove {stack_name}") from e

    def list_run_stacks(self) -> list[RunStack]:
        """This project's ``run-*`` stacks with their tags; other projects' stacks in the backend are left out,
        and so is a stack removed between the listing and the read of its tags."""
        from pulumi import automation as auto

        ws = self._workspace()
        try:
            out = []
            for s in ws.list_stacks(include_all=True):
                project, name = project_and_name(s.name)
                if project == PROJECT and name.startswith("run-"):
                    try:
                        out.append(RunStack(name, dict(ws.list_tags(s.name)), project))
                    except auto.StackNotFoundError:
                        continue
            return out
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, "list run stacks") from e

    def cancel(self, stack_name: str) -> None:
        """Clear the stack's lock (`pulumi cancel`): a file or blob backend deletes every lock file."""
        from pulumi import automation as auto

        ws = self._workspace()
        try:
            auto.Stack.select(stack_name, ws).cancel()
        except Exception as e:  # noqa: BLE001 - translated
            raise _translate(e, f"cancel the update holding {stack_name}") from e
