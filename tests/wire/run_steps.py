"""Run rendered az steps in-process against the loopback stand-ins; print what each one sent.

Run with the Azure CLI's own Python (.azcli, scripts/azcli.sh). Reads a job on stdin::

    {"subscription_id", "tenant_id", "client_id", "location",
     "scenarios": [{"name", "resource_group", "steps": [{"key", "argv", "isolated"}]}]}

and prints one JSON result per step: its exit code, whether it tried to prompt, the tail of its
error output, the hosts it tried to reach outside the stand-ins, and every request it sent.

What is real: the azure-cli (and any extension the environment can load), its parser, validators,
SDK clients, HTTP pipeline and TLS. What is not: the service (tests/wire/standin.py), the token (a
static one: no sign-in), the clock (waits return at once, so long-running operations poll
immediately) and the terminal (there is none: a prompt fails, as it would in the agent's job).
A guard refuses any connection that is not on the loopback, and resolves only the stand-ins' names.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import logging
import os
import socket
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fakes.server import FakeServer  # noqa: E402
from tests.fakes.tls import make_certificates  # noqa: E402
from tests.wire.standin import ARM_HOST, GRAPH_HOST, ArmStandIn, GraphStandIn  # noqa: E402

MAX_REQUESTS = 400  # per step: more means az is polling something that never ends


class Guard:
    """Only the stand-ins' names resolve (to 127.0.0.1 and their ports); only loopback connects."""

    def __init__(self, ports: dict[str, int]):
        self.ports = ports
        self.outside: list[str] = []
        self._getaddrinfo = socket.getaddrinfo
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex

    def install(self) -> None:
        guard = self

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name.lower() in guard.ports:
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                         ("127.0.0.1", guard.ports[name.lower()]))]
            if name in {"localhost"} or _loopback(name):
                return guard._getaddrinfo(host, port, *args, **kwargs)
            guard.outside.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"wire harness: {name} is not a stand-in (no network here)")

        def refuse(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
                guard.outside.append(str(address[0]))
                raise ConnectionRefusedError(f"wire harness: {address[0]} is not on the loopback")

        def connect(sock, address):
            refuse(sock, address)
            return guard._connect(sock, address)

        def connect_ex(sock, address):
            refuse(sock, address)
            return guard._connect_ex(sock, address)

        socket.getaddrinfo = getaddrinfo
        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Prompts:
    """Counts az's attempts to ask the (absent) terminal; knack then refuses with NoTTYException."""

    def __init__(self):
        import knack.prompting as prompting

        self.count = 0
        original = prompting.verify_is_a_tty

        def verify():
            self.count += 1
            original()

        prompting.verify_is_a_tty = verify


def write_profile(config_dir: Path, job: dict) -> None:
    """A signed-in service principal, as `az login --service-principal` leaves it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "azureProfile.json").write_text(json.dumps({"installationId": str(uuid.uuid4()), "subscriptions": [{
        "id": job["subscription_id"], "name": "haymaker-wire", "state": "Enabled", "isDefault": True,
        "tenantId": job["tenant_id"], "homeTenantId": job["tenant_id"], "environmentName": "AzureCloud",
        "managedByTenants": [], "user": {"name": job["client_id"], "type": "servicePrincipal"}}]}))
    (config_dir / "config").write_text("[core]\ncollect_telemetry = false\nno_color = true\n"
                                       "[extension]\nuse_dynamic_install = no\n")


class StaticCredential:
    """What `Profile._create_credential` returns, with a fixed token instead of MSAL."""

    def acquire_token(self, scopes, **kwargs):
        return {"access_token": "wire-harness-static-token", "token_type": "Bearer", "expires_in": 3600}


def main() -> None:
    job = json.load(sys.stdin)
    work = Path(tempfile.mkdtemp(prefix="haymaker-wire-"))
    certs = make_certificates(work / "tls", hosts=(ARM_HOST, GRAPH_HOST))
    arm = ArmStandIn(job["subscription_id"], job["tenant_id"], job["location"])
    graph = GraphStandIn()
    servers = {ARM_HOST: FakeServer(arm, certs).start(), GRAPH_HOST: FakeServer(graph, certs).start()}
    guard = Guard({host: int(s.url.rsplit(":", 1)[1]) for host, s in servers.items()})
    guard.install()

    os.environ.update({"HOME": str(work), "AZURE_CONFIG_DIR": str(work / "az"), "REQUESTS_CA_BUNDLE": str(certs.ca_file),
                       "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_NO_COLOR": "true",
                       "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no", "AZURE_CORE_SURVEY_MESSAGE": "false",
                       "AZURE_HTTP_USER_AGENT": "haymaker/wire-harness"})
    os.environ.pop("AZURE_CLI_DISABLE_CONNECTION_VERIFICATION", None)
    write_profile(work / "az", job)
    from azure.cli.core._profile import Profile

    Profile._create_credential = lambda self, account, tenant_id=None, client_id=None: StaticCredential()
    time.sleep = lambda seconds: None  # long-running operations and retries poll at once
    prompts = Prompts()
    errors = Errors()
    sys.stdin = io.StringIO("")  # no terminal, as in the agent's container job
    os.chdir(work)  # the agent runs az in an empty directory

    results = []
    for scenario in job["scenarios"]:
        arm.start_scenario(scenario["resource_group"])
        graph.start_scenario()
        for step in scenario["steps"]:
            saved = (arm.save(), graph.save()) if step.get("isolated") else None
            arm.assume_existing = bool(step.get("after_skipped"))
            results.append(run_one(step, arm, graph, guard, prompts, errors))
            if saved:  # a benign mistake does not change what later steps see
                arm.restore(saved[0])
                graph.restore(saved[1])
    for server in servers.values():
        server.stop()
    json.dump(results, sys.__stdout__)


class Errors(logging.Handler):
    """az reports a failed command through its logger (knack binds its own stream handler once)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        for name in ("cli", "azure"):
            logging.getLogger(name).addHandler(self)

    def emit(self, record) -> None:
        if record.levelno >= logging.ERROR:
            self.lines.append(record.getMessage())
            if record.exc_info:  # where inside az it broke: what the stand-in must be taught
                frames = traceback.extract_tb(record.exc_info[2])[-3:]
                self.lines.extend(f"  at {Path(f.filename).name}:{f.lineno} {f.line}" for f in frames)


def run_one(step: dict, arm: ArmStandIn, graph: GraphStandIn, guard: Guard, prompts: Prompts,
            errors: Errors) -> dict:
    from azure.cli.core import get_default_cli

    errors.lines.clear()
    arm.recorded.clear()
    graph.recorded.clear()
    guard.outside.clear()
    asked = prompts.count
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = get_default_cli().invoke(list(step["argv"][1:]), out_file=out)
    except SystemExit as e:  # the parser's way of refusing
        code = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # noqa: BLE001 - a crash inside az is a result to report, not the harness's end
        code, err = 99, io.StringIO(f"{type(e).__name__}: {e}")
    requests = [r.to_json() for r in arm.recorded + graph.recorded]
    return {"key": step["key"], "code": code, "prompted": prompts.count > asked, "seconds": time.perf_counter() - started,
            "error": _tail("\n".join(errors.lines) + "\n" + err.getvalue()), "outside": sorted(set(guard.outside)),
            "requests": requests[:MAX_REQUESTS], "runaway": len(requests) > MAX_REQUESTS}


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-12:])[-3000:]


if __name__ == "__main__":
    main()
