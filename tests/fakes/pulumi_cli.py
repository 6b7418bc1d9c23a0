"""A stand-in `pulumi` executable for the Automation API driver's tests.

Installed on PATH as ``pulumi`` (``FakePulumi.install``), it records every invocation (argv and the
backend the driver set) and answers the commands the Automation API runs the way the CLI does: the
``version`` line, ``stack select/init/ls/rm/output/history``, ``stack tag set/ls``, ``config
set-all``, ``plugin install``, ``up`` and ``destroy`` — including engine events streamed over gRPC
to the ``--event-log tcp://…`` address that SDK versions talking to CLIs after 3.205 open, and the
CLI's error texts ("no stack named … found", "[409] Conflict: Another update is currently in
progress.", "stack tags not supported in diy mode" from file backends before 3.211).

What ``up`` deploys comes from the test: ``FakePulumi.script(stack, resources=…, outputs=…)``,
usually the resources the run program declares under Pulumi's mocks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

STATE_ENV = "HAYMAKER_FAKE_PULUMI_DIR"
VERSION_ENV = "HAYMAKER_FAKE_PULUMI_VERSION"
DIY_TAGS_SINCE = (3, 211, 0)
NOW = "2026-11-21T06:00:00.000000Z"


def _load(directory: Path) -> dict:
    path = directory / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"stacks": {}, "scripts": {}}


def _save(directory: Path, state: dict) -> None:
    (directory / "state.json").write_text(json.dumps(state, indent=1))


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
        log.write(json.dumps({"argv": argv, "backend": os.environ.get("PULUMI_BACKEND_URL", "")}) + "\n")
    argv = [a for a in argv if a != "--non-interactive"]  # the Automation API adds it to every command
    if argv[:1] == ["version"]:
        print("v" + ".".join(map(str, _version())))
        return 0
    state = _load(directory)
    stacks, name = state["stacks"], _opt(argv, "--stack")
    diy = os.environ.get("PULUMI_BACKEND_URL", "").startswith(("file://", "azblob://", "s3://", "gs://"))

    if argv[:2] == ["stack", "select"]:
        return 0 if name in stacks else _fail(f"no stack named '{name}' found")
    if argv[:2] == ["stack", "init"]:
        if argv[2] in stacks:
            return _fail(f"stack '{argv[2]}' already exists")
        stacks[argv[2]] = {"config": {}, "tags": {}, "outputs": {}, "resources": [], "history": [],
                           "secrets_provider": _opt(argv, "--secrets-provider")}
        print(f"Created stack '{argv[2]}'")
    elif argv[:2] == ["stack", "ls"]:
        print(json.dumps([{"name": n, "current": False, "updateInProgress": False, "resourceCount": len(s["resources"]),
                           "url": ""} for n, s in sorted(stacks.items())]))
        return 0
    elif argv[:3] == ["stack", "tag", "set"]:
        if diy and _version() < DIY_TAGS_SINCE:
            return _fail("stack tags not supported in diy mode")
        stacks[name]["tags"][argv[3]] = argv[4]
    elif argv[:3] == ["stack", "tag", "ls"]:
        if name not in stacks:
            return _fail(f"no stack named '{name}' found")
        print(json.dumps(stacks[name]["tags"]))
        return 0
    elif argv[:2] == ["config", "set-all"]:
        for pair in _all(argv, "--plaintext") + _all(argv, "--secret"):
            key, _, value = pair.partition("=")
            stacks[name]["config"][key] = value
    elif argv[:2] == ["plugin", "install"]:
        state.setdefault("plugins", []).append(argv[2:5])
    elif argv[:2] == ["stack", "output"]:
        print(json.dumps(stacks[name]["outputs"]))
        return 0
    elif argv[:2] == ["stack", "history"]:
        print(json.dumps(list(reversed(stacks[name]["history"]))[:1]))
        return 0
    elif argv[:1] == ["up"]:
        return _up(directory, state, name, argv)
    elif argv[:1] == ["destroy"]:
        return _destroy(directory, state, name, argv)
    elif argv[:2] == ["stack", "rm"]:
        target = argv[-1]
        if target not in stacks:
            return _fail(f"no stack named '{target}' found")
        if stacks[target]["resources"] and "--force" not in argv:
            return _fail(f"'{target}' still has resources; removal rejected. Possible actions:\n"
                         f"- Make sure that '{target}' is the stack that you want to destroy\n"
                         f"- Run `pulumi destroy` to delete the resources, then run `pulumi stack rm`\n"
                         f"- Run `pulumi stack rm --force` to override this error")
        del stacks[target]
        print(f"Stack '{target}' has been removed!")
    else:
        return _fail(f"the pulumi stand-in does not know `pulumi {' '.join(argv)}`", 2)
    _save(directory, state)
    return 0


def _up(directory: Path, state: dict, name: str, argv: list[str]) -> int:
    stack = state["stacks"][name]
    if stack.get("locked"):
        return _fail("[409] Conflict: Another update is currently in progress.")
    script = state["scripts"].get(name, {})
    attempt = stack["attempts"] = stack.get("attempts", 0) + 1
    failures = script.get("fail", [])
    print(f"Updating ({name}):")
    if attempt <= len(failures):
        stack["history"].append({"kind": "update", "startTime": NOW, "endTime": NOW, "message": "", "environment": {},
                                 "config": {}, "result": "failed", "version": len(stack["history"]) + 1})
        _save(directory, state)
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
    stack["history"].append({"kind": "update", "startTime": NOW, "endTime": NOW, "message": "", "environment": {},
                             "config": {}, "result": "succeeded", "version": len(stack["history"]) + 1,
                             "resourceChanges": {"create": len(resources)},
                             "policyPacks": _all(argv, "--policy-pack")})
    print(f"Resources:\n    + {len(resources)} created")
    _save(directory, state)
    return 0


def _delete_in_the_cloud(deletes: list[dict]) -> None:
    """What the providers do on destroy: DELETE each resource at ARM or Graph (the local stand-ins)."""
    import requests  # azure-core's transport; it trusts REQUESTS_CA_BUNDLE like the SDKs do

    for d in deletes:
        response = requests.delete(d["url"], headers={"Authorization": f"Bearer {d['token']}"}, timeout=30)
        if response.status_code >= 400 and response.status_code != 404:
            raise SystemExit(f"error: deleting {d['url']}: {response.status_code} {response.text}")


def _destroy(directory: Path, state: dict, name: str, argv: list[str]) -> int:
    stack = state["stacks"].get(name)
    if stack is None:
        return _fail(f"no stack named '{name}' found")
    script = state["scripts"].get(name, {})
    if script.get("destroy_fail"):
        sys.stderr.write(script["destroy_fail"] + "\n")
        return 255
    resources = list(reversed(stack["resources"]))
    print(f"Destroying ({name}):")
    _delete_in_the_cloud(script.get("deletes", []))
    _send_events(_opt(argv, "--event-log"), [*_step_events(resources, "delete"),
                                             {"sequence": 2 * len(resources) + 1, "timestamp": int(time.time()),
                                              "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1,
                                                               "resourceChanges": {"delete": len(resources)}}}])
    stack["history"].append({"kind": "destroy", "startTime": NOW, "endTime": NOW, "message": "", "environment": {},
                             "config": {}, "result": "succeeded", "version": len(stack["history"]) + 1,
                             "resourceChanges": {"delete": len(resources)}})
    stack["resources"], stack["outputs"] = [], {}
    print(f"Resources:\n    - {len(resources)} deleted")
    _save(directory, state)
    return 0


class FakePulumi:
    """The test's handle on the stand-in: put it on PATH, script it, read what it was asked."""

    def __init__(self, directory: Path):
        self.directory = directory

    @classmethod
    def install(cls, directory: Path, monkeypatch, version: str = "3.215.0") -> "FakePulumi":
        from tests.fakes import install_command

        install_command(directory, "pulumi", "tests.fakes.pulumi_cli", monkeypatch, STATE_ENV)
        monkeypatch.setenv(VERSION_ENV, version)
        return cls(directory)

    @property
    def state(self) -> dict:
        return _load(self.directory)

    def script(self, stack: str, *, resources=(), outputs=None, fail=(), destroy_fail: str = "", deletes=()) -> None:
        """What `up` deploys (resources with urn and type, the outputs), the errors its first attempts
        end with, and what `destroy` deletes in the cloud (``{"url", "token"}``) or the error it ends with."""
        state = _load(self.directory)
        state["scripts"][stack] = {"resources": list(resources), "outputs": outputs or {}, "fail": list(fail),
                                   "destroy_fail": destroy_fail, "deletes": list(deletes)}
        _save(self.directory, state)

    def add_stack(self, name: str, tags: dict, resources=(), outputs=None) -> None:
        state = _load(self.directory)
        state["stacks"][name] = {"config": {}, "tags": dict(tags), "outputs": outputs or {},
                                 "resources": list(resources), "history": []}
        _save(self.directory, state)

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
