"""A stand-in `pulumi` executable for the Automation API driver's tests.

Installed on PATH as ``pulumi`` (``FakePulumi.install``), it records every invocation (argv and the
backend the driver set) and answers the commands the Automation API runs the way the CLI does: the
``version`` line, ``stack select/init/ls/rm/output/history``, ``stack tag set/ls``, ``config
set-all``, ``plugin install``, ``up``, ``destroy`` and ``cancel`` — including engine events streamed over
gRPC to the ``--event-log tcp://…`` address that SDK versions talking to CLIs after 3.205 open, and the
CLI's error texts ("no stack named … found", "stack tags not supported in diy mode" from file backends
before 3.211).

State is kept as the file and azblob ("diy") backends keep it: one file per stack (``stacks/<project>/
<stack>.json``), written whole and replaced atomically, so two processes working on two stacks never lose
each other's writes, and stack tags live in that file (pkg/backend/diy/backend.go, ``UpdateStackTags``).

Locks follow pkg/backend/diy/lock.go: `up`, `destroy` and `stack rm` (``Update``, ``Destroy``,
``RemoveStack``) take the stack's lock by checking for other lock files under
``.pulumi/locks/organization/<project>/<stack>/``, writing their own, checking again, and deleting it when
done; another lock fails the command with "the stack is currently locked by N lock(s). Either wait for the
other process(es) to end or delete the lock file with `pulumi cancel`." and one line per lock ("<url>:
created by <user>@<host> (pid N) at <RFC 3339 time>"). ``cancel`` deletes every lock file of the stack
(``CancelCurrentUpdate``). Against Pulumi Cloud (an ``https://`` backend) the lock is the service's: a
command on a stack with an update in progress fails with "[409] Conflict: Another update is currently in
progress." (sdk/python/lib/pulumi/automation/errors.py), and ``cancel`` of a stack with none fails.

A process that is killed (``FakePulumi.script(..., destroy_interrupt=N)``) leaves its lock behind and the
engine's pending operations in the state; the next update warns "Attempting to deploy or update resources
with N pending operations from previous deployment." and drops them (pkg/engine, lifecycletest
TestUpdateShowsWarningWithPendingOperations): a resource that was being created is then in the cloud but
not in the state. A destroy can fail part-way (``destroy_fail_after``): what it deleted leaves the state,
the rest stays.

What ``up`` deploys comes from the test: ``FakePulumi.script(stack, resources=…, outputs=…)``, usually the
resources the run program declares under Pulumi's mocks.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

STATE_ENV = "HAYMAKER_FAKE_PULUMI_DIR"
VERSION_ENV = "HAYMAKER_FAKE_PULUMI_VERSION"
DIY_TAGS_SINCE = (3, 211, 0)
NOW = "2026-11-21T06:00:00.000000Z"
PROJECT = "haymaker"  # the project of Pulumi.yaml: the one the driver's workspace is in
CLOUD_CONFLICT = "[409] Conflict: Another update is currently in progress."
PENDING_WARNING = ("warning: Attempting to deploy or update resources with {n} pending operations from previous "
                   "deployment.\n{ops}\nThese resources are in an unknown state because the Pulumi CLI was interrupted "
                   "while waiting for changes to these resources to complete. You should confirm whether or not the "
                   "operations listed completed successfully by checking the state of the appropriate provider.")


# --- state: one file per stack --------------------------------------------------------------------------

def _read(path: Path, default):
    return json.loads(path.read_text()) if path.exists() else default


def _write(path: Path, doc) -> None:
    """Whole-file write, then an atomic rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def _split(ref: str) -> tuple[str, str]:
    """(project, stack) of ``run-x``, ``haymaker/run-x`` or ``organization/haymaker/run-x``."""
    parts = ref.split("/")
    return (parts[-2] if len(parts) >= 2 else PROJECT), parts[-1]


class Store:
    def __init__(self, directory: Path):
        self.directory = directory

    def stack_file(self, ref: str) -> Path:
        project, name = _split(ref)
        return self.directory / "stacks" / project / f"{name}.json"

    def get(self, ref: str) -> dict | None:
        return _read(self.stack_file(ref), None)

    def put(self, ref: str, doc: dict) -> None:
        _write(self.stack_file(ref), doc)

    def remove(self, ref: str) -> None:
        self.stack_file(ref).unlink(missing_ok=True)

    def all(self) -> list[tuple[str, str, dict]]:
        out = []
        for path in sorted((self.directory / "stacks").glob("*/*.json")):
            out.append((path.parent.name, path.stem, json.loads(path.read_text())))
        return out

    def script(self, ref: str) -> dict:
        return _read(self.directory / "scripts" / f"{_split(ref)[1]}.json", {})

    def lock_dir(self, ref: str) -> Path:
        project, name = _split(ref)
        return self.directory / "locks" / "organization" / project / name

    def locks(self, ref: str) -> list[Path]:
        return sorted(p for p in self.lock_dir(ref).glob("*.json"))


def new_stack(secrets_provider: str | None = None) -> dict:
    return {"config": {}, "tags": {}, "outputs": {}, "resources": [], "history": [], "pending_operations": [],
            "secrets_provider": secrets_provider}


# --- the lock ---------------------------------------------------------------------------------------------

def _backend() -> str:
    return os.environ.get("PULUMI_BACKEND_URL", "")


def _is_cloud() -> bool:
    return _backend().startswith(("https://", "http://"))


def _lock_error(store: Store, ref: str, others: list[Path]) -> str:
    if _is_cloud():
        return CLOUD_CONFLICT
    lines = [f"the stack is currently locked by {len(others)} lock(s). Either wait for the other process(es) to "
             "end or delete the lock file with `pulumi cancel`."]
    for path in others:
        lock = json.loads(path.read_text())
        url = f"{_backend().rstrip('/')}/.pulumi/locks/organization/{'/'.join(_split(ref))}/{path.name}"
        lines.append(f"  {url}: created by {lock['username']}@{lock['hostname']} (pid {lock['pid']}) at "
                     f"{lock['timestamp']}")
    return "\n".join(lines)


def _lock(store: Store, ref: str) -> tuple[Path | None, str]:
    """Check, write, check again (diy ``Lock``); (own lock file, "") or (None, the error)."""
    others = store.locks(ref)
    if others:
        return None, _lock_error(store, ref, others)
    mine = store.lock_dir(ref) / f"{uuid.uuid4()}.json"
    _write(mine, {"pid": os.getpid(), "username": "runner", "hostname": "fv-az123-456",
                  "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    others = [p for p in store.locks(ref) if p != mine]
    if others:
        mine.unlink(missing_ok=True)
        return None, _lock_error(store, ref, others)
    return mine, ""


def _unlock(mine: Path) -> None:
    mine.unlink(missing_ok=True)


# --- the command line -------------------------------------------------------------------------------------

def _version() -> tuple[int, ...]:
    return tuple(int(p) for p in os.environ.get(VERSION_ENV, "3.215.0").split("."))


def _opt(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _all(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def _fail(message: str, code: int = 255) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def _send_events(address: str | None, events: list[dict]) -> None:
    """Stream engine events to the Automation API's gRPC events server (``--event-log tcp://…``)."""
    if not address:
        return
    if not address.startswith("tcp://"):  # a file path: the log format of older CLIs
        with open(address, "a") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        return
    import grpc

    from pulumi.runtime.proto import events_pb2, events_pb2_grpc

    with grpc.insecure_channel(address.removeprefix("tcp://")) as channel:
        stub = events_pb2_grpc.EventsStub(channel)
        stub.StreamEvents(iter([events_pb2.EventRequest(event=json.dumps(e)) for e in events]))


def _step_events(resources: list[dict], op: str, seq_start: int = 1) -> list[dict]:
    events, seq = [], seq_start
    for r in resources:
        meta = {"op": op, "urn": r["urn"], "type": r["type"], "provider": ""}
        events.append({"sequence": seq, "timestamp": int(time.time()), "resourcePreEvent": {"metadata": meta}})
        events.append({"sequence": seq + 1, "timestamp": int(time.time()), "resOutputsEvent": {"metadata": meta}})
        seq += 2
    return events


def main(argv: list[str]) -> int:
    directory = Path(os.environ[STATE_ENV])
    with open(directory / "calls.jsonl", "a") as log:
        log.write(json.dumps({"argv": argv, "backend": _backend()}) + "\n")
    argv = [a for a in argv if a != "--non-interactive"]  # the Automation API adds it to every command
    if argv[:1] == ["version"]:
        print("v" + ".".join(map(str, _version())))
        return 0
    store, name = Store(directory), _opt(argv, "--stack")
    diy = _backend().startswith(("file://", "azblob://", "s3://", "gs://"))
    stack = store.get(name) if name else None
    if name and stack is None and argv[:2] != ["stack", "init"]:
        return _fail(f"no stack named '{name}' found")

    if argv[:2] == ["stack", "select"]:
        return 0
    if argv[:2] == ["stack", "init"]:
        if store.get(argv[2]) is not None:
            return _fail(f"stack '{argv[2]}' already exists")
        store.put(argv[2], new_stack(_opt(argv, "--secrets-provider")))
        print(f"Created stack '{argv[2]}'")
        return 0
    if argv[:2] == ["stack", "ls"]:
        listed = [(p, n, s) for p, n, s in store.all() if "--all" in argv or p == PROJECT]
        print(json.dumps([{"name": f"organization/{p}/{n}" if "--all" in argv else n, "current": False,
                           "updateInProgress": _is_cloud() and bool(store.locks(f"{p}/{n}")),
                           "resourceCount": len(s["resources"]), "url": ""} for p, n, s in listed]))
        return 0
    if argv[:3] == ["stack", "tag", "set"]:
        if diy and _version() < DIY_TAGS_SINCE:
            return _fail("stack tags not supported in diy mode")
        stack["tags"][argv[3]] = argv[4]
        store.put(name, stack)
        return 0
    if argv[:3] == ["stack", "tag", "ls"]:
        print(json.dumps(stack["tags"]))
        return 0
    if argv[:2] == ["config", "set-all"]:
        for pair in _all(argv, "--plaintext") + _all(argv, "--secret"):
            key, _, value = pair.partition("=")
            stack["config"][key] = value
        store.put(name, stack)
        return 0
    if argv[:2] == ["plugin", "install"]:
        plugins = _read(directory / "plugins.json", [])
        _write(directory / "plugins.json", plugins + [argv[2:5]])
        return 0
    if argv[:2] == ["stack", "output"]:
        print(json.dumps(stack["outputs"]))
        return 0
    if argv[:2] == ["stack", "history"]:
        print(json.dumps(list(reversed(stack["history"]))[:1]))
        return 0
    if argv[:1] == ["cancel"]:
        return _cancel(store, name)
    if argv[:1] in (["up"], ["destroy"]) or argv[:2] == ["stack", "rm"]:
        ref = argv[-1] if argv[:2] == ["stack", "rm"] else name
        if store.get(ref) is None:
            return _fail(f"no stack named '{ref}' found")
        mine, error = _lock(store, ref)
        if mine is None:
            return _fail(error)
        code = None
        try:
            if argv[:1] == ["up"]:
                code = _up(store, ref, argv)
            elif argv[:1] == ["destroy"]:
                code = _destroy(store, ref, argv)
            else:
                code = _remove(store, ref, argv)
            return code
        finally:
            if code != KILLED:
                _unlock(mine)
    return _fail(f"the pulumi stand-in does not know `pulumi {' '.join(argv)}`", 2)


KILLED = 137  # what a shell reports for a process killed by SIGKILL (a job timeout): no cleanup ran


def _cancel(store: Store, name: str) -> int:
    locks = store.locks(name)
    if _is_cloud() and not locks:
        return _fail(f"stack {name} has never been updated")
    for path in locks:
        path.unlink(missing_ok=True)
    print(f"The currently running update for '{_split(name)[1]}' has been canceled!")
    return 0


def _remove(store: Store, ref: str, argv: list[str]) -> int:
    stack, short = store.get(ref), _split(ref)[1]
    if stack["resources"] and "--force" not in argv:
        return _fail(f"'{short}' still has resources; removal rejected. Possible actions:\n"
                     f"- Make sure that '{short}' is the stack that you want to destroy\n"
                     f"- Run `pulumi destroy` to delete the resources, then run `pulumi stack rm`\n"
                     f"- Run `pulumi stack rm --force` to override this error")
    store.remove(ref)
    print(f"Stack '{short}' has been removed!")
    return 0


def _history(stack: dict, kind: str, result: str, **extra) -> None:
    stack["history"].append({"kind": kind, "startTime": NOW, "endTime": NOW, "message": "", "environment": {},
                             "config": {}, "result": result, "version": len(stack["history"]) + 1, **extra})


def _pending(stack: dict) -> None:
    """An update after an interrupted one warns of its pending operations and drops them."""
    ops = stack.get("pending_operations") or []
    if ops:
        lines = "\n".join(f"  * {o['resource']['urn']}, interrupted while {o['type']}" for o in ops)
        print(PENDING_WARNING.format(n=len(ops), ops=lines))
        stack["pending_operations"] = []


def _up(store: Store, ref: str, argv: list[str]) -> int:
    stack, script = store.get(ref), store.script(ref)
    attempt = stack["attempts"] = stack.get("attempts", 0) + 1
    failures = script.get("fail", [])
    print(f"Updating ({_split(ref)[1]}):")
    _pending(stack)
    if attempt <= len(failures):
        _history(stack, "update", "failed")
        store.put(ref, stack)
        sys.stderr.write(failures[attempt - 1] + "\n")
        return 255
    resources = script.get("resources", [])
    _send_events(_opt(argv, "--event-log"),
                 [{"sequence": 0, "timestamp": int(time.time()), "preludeEvent": {"config": {}}},
                  *_step_events(resources, "create"),
                  {"sequence": 2 * len(resources) + 1, "timestamp": int(time.time()),
                   "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1,
                                    "resourceChanges": {"create": len(resources)}}}])
    stack["resources"], stack["outputs"] = resources, script.get("outputs", {})
    _history(stack, "update", "succeeded", resourceChanges={"create": len(resources)},
             policyPacks=_all(argv, "--policy-pack"))
    print(f"Resources:\n    + {len(resources)} created")
    store.put(ref, stack)
    return 0


PROVIDER_DELETE_TIMEOUT = 3600.0  # seconds a provider follows a delete before it gives up (stand-in time)


def _delete_in_the_cloud(d: dict) -> str:
    """What a provider does on destroy: DELETE one resource at ARM or Graph (the local stand-ins) and, when ARM
    runs it as a long-running operation, follow its Location until it ends, waiting each Retry-After (on the
    stand-ins' clock); "" or the provider's error."""
    import requests  # azure-core's transport; it trusts REQUESTS_CA_BUNDLE like the SDKs do
    from urllib.parse import urlsplit

    headers = {"Authorization": f"Bearer {d['token']}"}
    response = requests.delete(d["url"], headers=headers, timeout=30)
    if response.status_code >= 400 and response.status_code != 404:
        return f"deleting {d['url']}: {response.status_code} {response.text}"
    waited, location = 0.0, response.headers.get("Location")
    while response.status_code == 202 and location:
        if waited >= PROVIDER_DELETE_TIMEOUT:
            return f"deleting {d['url']}: timeout while waiting for the operation to complete"
        pause = float(response.headers.get("Retry-After") or 10)
        base = "{0.scheme}://{0.netloc}".format(urlsplit(location))
        requests.post(f"{base}/_stand-in/sleep?seconds={pause}", timeout=30)
        waited += pause
        response = requests.get(location, headers=headers, timeout=30)
        if response.status_code >= 400:
            return f"deleting {d['url']}: {response.status_code} {response.text}"
    return ""


def _destroy(store: Store, ref: str, argv: list[str]) -> int:
    stack, script = store.get(ref), store.script(ref)
    if script.get("destroy_fail"):
        sys.stderr.write(script["destroy_fail"] + "\n")
        return 255
    print(f"Destroying ({_split(ref)[1]}):")
    _pending(stack)
    deletes = list(script.get("deletes", []))
    fail_after, interrupt = script.get("destroy_fail_after"), script.get("destroy_interrupt")
    resources = list(reversed(stack["resources"]))
    done = 0
    for d in deletes:
        if done == fail_after:
            break
        if done == interrupt:  # killed here: the lock stays, the engine's operation stays pending
            stack["pending_operations"] = [{"resource": resources[min(done, len(resources) - 1)] if resources else
                                            {"urn": d["url"], "type": "unknown"}, "type": "deleting"}]
            store.put(ref, stack)
            return KILLED
        error = _delete_in_the_cloud(d)
        if error:
            sys.stderr.write(f"error: {error}\n")
            _history(stack, "destroy", "failed")
            stack["resources"] = list(reversed(resources[done:]))
            store.put(ref, stack)
            return 255
        done += 1
    if fail_after is not None and fail_after < len(deletes):
        stack["resources"] = list(reversed(resources[min(done, len(resources)):]))
        _history(stack, "destroy", "failed")
        store.put(ref, stack)
        sys.stderr.write((script.get("destroy_error") or "error: deleting a resource failed: Code=\"ScopeLocked\" "
                          "Message=\"The scope cannot perform delete operation because following scope(s) are "
                          "locked.\"") + "\n")
        return 255
    _send_events(_opt(argv, "--event-log"), [*_step_events(resources, "delete"),
                                             {"sequence": 2 * len(resources) + 1, "timestamp": int(time.time()),
                                              "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1,
                                                               "resourceChanges": {"delete": len(resources)}}}])
    _history(stack, "destroy", "succeeded", resourceChanges={"delete": len(resources)})
    stack["resources"], stack["outputs"] = [], {}
    print(f"Resources:\n    - {len(resources)} deleted")
    store.put(ref, stack)
    return 0


class FakePulumi:
    """The test's handle on the stand-in: put it on PATH, script it, read what it was asked."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.store = Store(directory)

    @classmethod
    def install(cls, directory: Path, monkeypatch, version: str = "3.215.0") -> "FakePulumi":
        from tests.fakes import install_command

        install_command(directory, "pulumi", "tests.fakes.pulumi_cli", monkeypatch, STATE_ENV)
        monkeypatch.setenv(VERSION_ENV, version)
        return cls(directory)

    @property
    def state(self) -> dict:
        """The current project's stacks by name, and the plugins installed."""
        return {"stacks": {n: s for p, n, s in self.store.all() if p == PROJECT},
                "plugins": _read(self.directory / "plugins.json", [])}

    def script(self, stack: str, *, resources=(), outputs=None, fail=(), destroy_fail: str = "", deletes=(),
               destroy_fail_after: int | None = None, destroy_error: str = "",
               destroy_interrupt: int | None = None) -> None:
        """What `up` deploys (resources with urn and type, the outputs), the errors its first attempts
        end with, and what `destroy` deletes in the cloud (``{"url", "token"}``) or the error it ends with;
        ``destroy_fail_after``: a destroy that fails after that many deletes; ``destroy_interrupt``: one
        killed after that many (its lock and a pending operation stay)."""
        _write(self.directory / "scripts" / f"{stack}.json", {
            "resources": list(resources), "outputs": outputs or {}, "fail": list(fail), "destroy_fail": destroy_fail,
            "deletes": list(deletes), "destroy_fail_after": destroy_fail_after, "destroy_error": destroy_error,
            "destroy_interrupt": destroy_interrupt})

    def add_stack(self, name: str, tags: dict, resources=(), outputs=None, project: str = PROJECT,
                  pending: list | None = None) -> None:
        stack = new_stack()
        stack.update(tags=dict(tags), outputs=outputs or {}, resources=list(resources),
                     pending_operations=list(pending or []))
        self.store.put(f"{project}/{name}", stack)

    def leave_lock(self, stack: str, age: timedelta, pid: int = 4242) -> Path:
        """A lock file as a process that died holding the stack's lock left it, ``age`` ago."""
        path = self.store.lock_dir(stack) / f"{uuid.uuid4()}.json"
        _write(path, {"pid": pid, "username": "runner", "hostname": "fv-az987-654",
                      "timestamp": (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")})
        return path

    def locks(self, stack: str) -> list[Path]:
        return self.store.locks(stack)

    def calls(self) -> list[list[str]]:
        path = self.directory / "calls.jsonl"
        return [[a for a in json.loads(line)["argv"] if a != "--non-interactive"]
                for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[str]:
        """Each call as its command words (``stack tag set``, ``up``…), flags left out."""
        out = []
        for argv in self.calls():
            words = []
            for a in argv:
                if a.startswith("-"):
                    break
                words.append(a)
            out.append(" ".join(words[:3] if words[:2] == ["stack", "tag"] else words[:2] if words[0] in
                                ("stack", "config", "plugin") else words[:1]))
        return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
