"""Running az: the real executable without a shell, or a dry run that only reports.

Every call gets ``AZURE_HTTP_USER_AGENT`` (so the Activity Log names the run), a private
``AZURE_CONFIG_DIR`` (the token cache lives and dies with the agent) unless the agent runs as the
operator's own `az login` (`haymaker try`), dynamic extension install off (the image's
``AZURE_EXTENSION_DIR`` holds the pinned extensions) and no client secret in its environment; only the
login reads the secret, from stdin.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Mapping, Protocol

from haymaker.errors import InvalidInput

# How often a running command checks whether the agent was told to stop.
POLL_SECONDS = 0.1
# After SIGTERM, how long az gets to exit before SIGKILL.
KILL_GRACE_SECONDS = 3.0
_DROP = ("AZURE_CLIENT_SECRET",)


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: stopped or timed out before az exited
    stderr: str
    seconds: float
    timed_out: bool = False
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 0


class Executor(Protocol):
    dry_run: bool

    def run(self, argv: tuple[str, ...], *, timeout: float, stop: threading.Event | None = None,
            stdin: str | None = None) -> Outcome: ...

    def close(self) -> None: ...


def az_environment(base: Mapping[str, str], user_agent: str, config_dir: str | None) -> dict[str, str]:
    """``config_dir`` None: az's own (the operator's sign-in and default subscription)."""
    env = {k: v for k, v in base.items() if k not in _DROP}
    if config_dir is not None:
        env["AZURE_CONFIG_DIR"] = config_dir
    env.update({
        "AZURE_HTTP_USER_AGENT": user_agent,
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
        # The image carries every extension the catalog needs, pinned (Dockerfile): never fetch one.
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
    })
    return env


class AzCli:
    """The az found on PATH, run with argument lists."""

    dry_run = False

    def __init__(self, base_env: Mapping[str, str], user_agent: str, private_config: bool = True):
        """``private_config`` False: use the operator's az configuration and sign-in (`haymaker try`)."""
        path = shutil.which("az", path=base_env.get("PATH", os.defpath))
        if path is None:
            raise InvalidInput("az is not on PATH: install the Azure CLI (the agent image has it), "
                               "or try the agent with --dry-run")
        self.path = path
        self.config_dir = tempfile.mkdtemp(prefix="haymaker-az-") if private_config else None
        # az reads some argument values as file names when such a file exists: it runs in an empty
        # directory of its own (not the config directory, which holds the token cache).
        self.work_dir = tempfile.mkdtemp(prefix="haymaker-cwd-")
        self.env = az_environment(base_env, user_agent, self.config_dir)

    def run(self, argv, *, timeout, stop=None, stdin=None) -> Outcome:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                [self.path, *argv[1:]], env=self.env, cwd=self.work_dir, text=True, start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:  # az removed or not executable: a failed step, not a crash before cleanup
            return Outcome(None, f"cannot start {self.path}: {e}", 0.0)
        pending = stdin
        while True:
            left = timeout - (time.monotonic() - started)
            try:
                _, err = proc.communicate(input=pending, timeout=max(0.0, min(POLL_SECONDS, left)))
                return Outcome(proc.returncode, err, time.monotonic() - started)
            except subprocess.TimeoutExpired:
                pending = None  # communicate sent it already
            timed_out = left <= 0
            if timed_out or (stop is not None and stop.is_set()):
                err = _terminate(proc)
                return Outcome(None, err, time.monotonic() - started, timed_out=timed_out, stopped=not timed_out)

    def close(self) -> None:
        if self.config_dir is not None:
            shutil.rmtree(self.config_dir, ignore_errors=True)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _terminate(proc: subprocess.Popen) -> str:
    """Stop az and whatever it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=wait)[1]
        except subprocess.TimeoutExpired:
            continue
    return ""


class DryRun:
    """Runs nothing: every command succeeds at once; the runner's logs show what would have run."""

    dry_run = True

    def run(self, argv, *, timeout, stop=None, stdin=None) -> Outcome:
        return Outcome(0, "", 0.0)

    def close(self) -> None:
        pass
