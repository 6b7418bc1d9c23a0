"""A stand-in `az` executable: the operator's own Azure CLI, signed in, for `haymaker try`.

Installed on PATH as ``az`` (``FakeAz.install``), it records every invocation and answers what the
operator's az is asked, in the documented shapes (https://learn.microsoft.com/cli/azure/reference-index
``az version``; https://learn.microsoft.com/cli/azure/account ``az account show`` and
``az account get-access-token``, the command azure-identity's AzureCliCredential runs):

- ``version``: ``{"azure-cli": …, "azure-cli-core": …, "azure-cli-telemetry": …, "extensions": {name: version}}``;
- ``account show``: the default subscription (``id``, ``name``, ``tenantId``, ``user``…); with
  ``--subscription X`` one the account can see, else ``Subscription 'X' not found``;
- ``account get-access-token --resource R``: ``accessToken`` (a JWT with the account's claims, ``aud`` R),
  ``expiresOn`` (local time), ``expires_on`` (epoch seconds, az 2.54 and later), ``subscription``, ``tenant``,
  ``tokenType``;
- signed out, each of them fails as az does: ``ERROR: Please run 'az login' to setup account.``

Any other command is a scenario step: it succeeds (``{}``) unless a rule makes it fail (its stderr, exit 1)
or stop the try as Ctrl-C would (SIGINT to the process that ran az, then success).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

STATE_ENV = "HAYMAKER_FAKE_AZ_DIR"
NOT_LOGGED_IN = "ERROR: Please run 'az login' to setup account.\n"
AZ_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the Azure CLI's public client: a user's tokens name it


def _load(directory: Path) -> dict:
    return json.loads((directory / "state.json").read_text())


def _save(directory: Path, state: dict) -> None:
    (directory / "state.json").write_text(json.dumps(state, indent=1))


def _opt(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _words(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        if a.startswith("-"):
            break
        out.append(a)
    return out


def main(argv: list[str]) -> int:
    from tests.fakes.login import jwt

    directory = Path(os.environ[STATE_ENV])
    with open(directory / "calls.jsonl", "a") as log:
        log.write(json.dumps({"argv": argv, "user_agent": os.environ.get("AZURE_HTTP_USER_AGENT"),
                              "config_dir": os.environ.get("AZURE_CONFIG_DIR"),
                              "dynamic_install": os.environ.get("AZURE_EXTENSION_USE_DYNAMIC_INSTALL")}) + "\n")
    state = _load(directory)
    words, account = _words(argv), state["account"]
    if words == ["version"]:
        print(json.dumps({"azure-cli": "2.77.0", "azure-cli-core": "2.77.0", "azure-cli-telemetry": "1.1.0",
                          "extensions": state["extensions"]}))
        return 0
    if words[:1] == ["account"] and not state["logged_in"]:
        sys.stderr.write(NOT_LOGGED_IN)
        return 1
    if words == ["account", "show"]:
        wanted = _opt(argv, "--subscription") or _opt(argv, "-s")
        if wanted and wanted.lower() not in (account["id"].lower(), account["name"].lower()):
            sys.stderr.write(f"ERROR: Subscription '{wanted}' not found. Check the spelling and casing and try again.\n")
            return 1
        if _opt(argv, "--output") != "none":
            print(json.dumps({"environmentName": "AzureCloud", "homeTenantId": account["tenantId"], "id": account["id"],
                              "isDefault": True, "managedByTenants": [], "name": account["name"], "state": "Enabled",
                              "tenantId": account["tenantId"], "user": {"name": state["claims"].get("upn", ""),
                                                                        "type": "user"}}))
        return 0
    if words == ["account", "get-access-token"]:
        resource = _opt(argv, "--resource") or (_opt(argv, "--scope") or "").removesuffix("/.default")
        expires = int(time.time()) + 3600
        print(json.dumps({"accessToken": jwt({**state["claims"], "aud": resource.rstrip("/"), "tid": account["tenantId"],
                                              "exp": expires}),
                          "expiresOn": datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M:%S.%f"),
                          "expires_on": expires, "subscription": account["id"], "tenant": account["tenantId"],
                          "tokenType": "Bearer"}))
        return 0
    line = " ".join(argv)
    for i, rule in enumerate(state["rules"]):
        if rule["match"] in line and rule["done"] < rule["times"]:
            rule["done"] += 1
            _save(directory, state)
            if rule.get("interrupt"):
                os.kill(os.getppid(), signal.SIGINT)  # the operator's Ctrl-C, as the try's process receives it
                break
            sys.stderr.write(rule["stderr"])
            return 1
    print("{}")
    return 0


class FakeAz:
    """The test's handle on the stand-in: put it on PATH, sign in, script failures, read the calls."""

    def __init__(self, directory: Path):
        self.directory = directory

    @classmethod
    def install(cls, directory: Path, monkeypatch, *, subscription_id: str, tenant_id: str, object_id: str,
                upn: str = "ada@contoso.example") -> "FakeAz":
        from tests.fakes import install_command

        install_command(directory, "az", "tests.fakes.az_cli", monkeypatch, STATE_ENV)
        _save(directory, {"logged_in": True, "extensions": {}, "rules": [],
                          "account": {"id": subscription_id, "name": "Ada's sandbox", "tenantId": tenant_id},
                          # A user's delegated token: scp, no roles; the Azure CLI is the client.
                          "claims": {"oid": object_id, "upn": upn, "scp": "user_impersonation", "appid": AZ_CLI_APP_ID,
                                     "idtyp": "user"}})
        return cls(directory)

    def update(self, **changes) -> None:
        state = _load(self.directory)
        state.update(changes)
        _save(self.directory, state)

    @property
    def state(self) -> dict:
        return _load(self.directory)

    def fail(self, match: str, stderr: str, times: int = 99) -> None:
        """Steps whose command line contains ``match`` fail with ``stderr`` (the first ``times`` of them)."""
        state = _load(self.directory)
        state["rules"].append({"match": match, "stderr": stderr, "times": times, "done": 0})
        _save(self.directory, state)

    def interrupt(self, match: str) -> None:
        """The first step whose command line contains ``match`` presses Ctrl-C on the try."""
        state = _load(self.directory)
        state["rules"].append({"match": match, "interrupt": True, "times": 1, "done": 0})
        _save(self.directory, state)

    def calls(self) -> list[dict]:
        path = self.directory / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
