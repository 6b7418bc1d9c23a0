"""Operator configuration and where each value comes from.

Precedence, highest first: command-line flags > environment variables (``HAYMAKER_*``, ``AZURE_*``,
``PULUMI_BACKEND_URL``) > ``.env`` in the working directory (never overriding the environment) >
``~/.haymaker/config.toml`` > defaults. ``.env.example`` documents every key.
"""

from __future__ import annotations

import io
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import tomli_w
from dotenv.parser import parse_stream

from haymaker.errors import InvalidInput
from haymaker.runspec import ENVIRONMENTS

SECRET_MARK = "[secret]"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$", re.IGNORECASE)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _guid(value: str) -> str | None:
    return None if _GUID.match(value) else "a GUID such as 00000000-0000-0000-0000-000000000000"


def _tenant(value: str) -> str | None:
    return None if _GUID.match(value) or _DOMAIN.match(value) else "a GUID or a domain such as contoso.onmicrosoft.com"


def _https(value: str) -> str | None:
    """An endpoint: https, or http only on this machine (Azurite and the local stand-ins)."""
    url = urlsplit(value)
    if url.scheme == "https" and url.hostname or url.scheme == "http" and url.hostname in _LOOPBACK:
        return None
    return "an https:// URL (http:// only for 127.0.0.1 or localhost)"


def _scheme(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.startswith(schemes) and len(value) > len(value.split("://")[0]) + 3 else \
            f"a URL starting with {', '.join(schemes)}"
    return check


def _secrets_provider(value: str) -> str | None:
    if value in ("default", "passphrase") or _scheme("awskms://", "azurekeyvault://", "gcpkms://",
                                                       "hashivault://")(value) is None:
        return None
    return "passphrase, default, or a URL such as azurekeyvault://<vault>.vault.azure.net/keys/<key>"


def _between(low: int, high: int) -> Callable[[int], str | None]:
    return lambda value: None if low <= value <= high else f"a whole number from {low} to {high}"


def _connection_string(value: str) -> str | None:
    pairs = [p for p in value.split(";") if p]
    return None if pairs and all("=" in p for p in pairs) else "Key=value pairs separated by ';'"


def _workspace(value: str) -> str | None:
    if _GUID.match(value) or re.match(r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
                                      r"microsoft\.operationalinsights/workspaces/[^/]+$", value):
        return None
    return "a workspace GUID or the workspace's ARM id (/subscriptions/…/workspaces/<name>)"


def _stack(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$", value) else \
        "a stack name, or <org>/<project>/<stack>"


def _not_blank(value: str) -> str | None:
    return None if value.strip() else "a path"


@dataclass(frozen=True)
class Key:
    name: str
    env: str
    default: Any = None
    kind: type = str
    secret: bool = False
    help: str = ""
    # What `config set` accepts: None when the value is fine, else what it should be.
    check: Callable[[Any], str | None] | None = None


KEYS = [
    Key("environment", "HAYMAKER_ENVIRONMENT", "dev", help="environment whose Pulumi.<env>.yaml runs use",
        check=lambda v: None if v in ENVIRONMENTS else f"one of {', '.join(ENVIRONMENTS)}"),
    Key("subscription_id", "AZURE_SUBSCRIPTION_ID", help="subscription runs deploy to; must match the environment",
        check=_guid),
    Key("tenant_id", "AZURE_TENANT_ID", help="tenant of that subscription", check=_tenant),
    Key("backend_url", "PULUMI_BACKEND_URL", help="Pulumi state backend; default: file://<repo>/.pulumi-state",
        check=_scheme("file://", "azblob://", "s3://", "gs://", "https://")),
    Key("secrets_provider", "HAYMAKER_SECRETS_PROVIDER",
        help="secrets provider of new run stacks (e.g. azurekeyvault://...); default: the backend's",
        check=_secrets_provider),
    Key("ledger_connection_string", "HAYMAKER_LEDGER_CONNECTION_STRING", secret=True,
        help="Table Storage connection string; default: Azurite on 127.0.0.1", check=_connection_string),
    Key("ledger_endpoint", "HAYMAKER_LEDGER_ENDPOINT",
        help="Table Storage endpoint used with DefaultAzureCredential (in Azure)", check=_https),
    Key("ledger_spool", "HAYMAKER_LEDGER_SPOOL", "~/.haymaker/ledger-spool.jsonl",
        help="where ledger writes wait while the ledger is unreachable", check=_not_blank),
    Key("audit_dir", "HAYMAKER_AUDIT_DIR", ".haymaker/audit", help="where audit records of runs are written",
        check=_not_blank),
    Key("reap_parallel", "HAYMAKER_REAP_PARALLEL", 4, int, help="stacks the reaper destroys at once",
        check=_between(1, 16)),
    Key("stale_lock_minutes", "HAYMAKER_STALE_LOCK_MINUTES", 150, int,
        help="a run stack's lock older than this outlived every job that may hold one: the reaper clears it",
        check=_between(30, 24 * 60)),
    Key("teardown_budget_minutes", "HAYMAKER_TEARDOWN_BUDGET_MINUTES", 20, int,
        help="a down, reap or cleanup ends (failed, with what is still in progress) after this long",
        check=_between(2, 24 * 60)),
    Key("platform_stack", "HAYMAKER_PLATFORM_STACK", help="platform stack reference; default <org>/haymaker/<env>",
        check=_stack),
    # The cloud's endpoints: public Azure by default; set them for a sovereign cloud.
    Key("arm_endpoint", "HAYMAKER_ARM_ENDPOINT", help="Azure Resource Manager; default https://management.azure.com",
        check=_https),
    Key("graph_endpoint", "HAYMAKER_GRAPH_ENDPOINT", help="Microsoft Graph; default https://graph.microsoft.com",
        check=_https),
    Key("login_endpoint", "AZURE_AUTHORITY_HOST", help="Entra ID sign-in; default https://login.microsoftonline.com",
        check=_https),
    Key("log_analytics_endpoint", "HAYMAKER_LOG_ANALYTICS_ENDPOINT",
        help="Log Analytics query API; default https://api.loganalytics.io", check=_https),
    # Where `haymaker logs` and `haymaker truth` read, and where `truth` keeps its reports.
    Key("log_analytics_workspace", "HAYMAKER_LOG_ANALYTICS_WORKSPACE",
        help="the platform's workspace: its ARM id (platform output logAnalyticsWorkspaceId) or workspace id",
        check=_workspace),
    Key("reports_container_url", "HAYMAKER_REPORTS_CONTAINER_URL",
        help="the platform's reports container (output reportsContainerUrl); default: beside the ledger",
        check=_https),
    Key("truth_due_limit", "HAYMAKER_TRUTH_DUE_LIMIT", 10, int, help="answer keys one `truth --due` builds at most",
        check=_between(1, 100)),
]
BY_NAME = {k.name: k for k in KEYS}


@dataclass(frozen=True)
class Value:
    value: Any
    source: str


class Config:
    def __init__(self, values: dict[str, Value], warnings: list[str]):
        self._values = values
        self.warnings = warnings

    def get(self, name: str):
        return self._values[name].value

    def source(self, name: str) -> str:
        return self._values[name].source

    def rows(self) -> list[dict]:
        """For `haymaker config list`: secrets are never shown."""
        out = []
        for k in KEYS:
            v = self._values[k.name]
            shown = SECRET_MARK if (k.secret and v.value) else v.value
            out.append({"key": k.name, "value": shown, "source": v.source, "env": k.env})
        return out


def config_file(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".haymaker" / "config.toml"


def read_dotenv(path: Path) -> tuple[dict[str, str], list[str]]:
    """Values of a .env file (comments, blanks, quotes and ``export`` lines allowed) and warnings
    naming the lines that could not be read."""
    if not path.exists():
        return {}, []
    values, warnings = {}, []
    for binding in parse_stream(io.StringIO(path.read_text(encoding="utf-8"))):
        if binding.error:
            line = binding.original.string.strip()
            warnings.append(f"{path.name} line {binding.original.line}: ignored {line!r}: write KEY=value")
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values, warnings


def _read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path} is not valid TOML ({e}): fix it or remove it") from None
    unknown = sorted(set(doc) - set(BY_NAME))
    if unknown:
        raise InvalidInput(f"{path} has unknown keys {', '.join(unknown)}: known keys are {', '.join(BY_NAME)}")
    return doc


def _coerce(key: Key, raw, source: str):
    if raw is None or key.kind is str:
        return raw if raw is None else str(raw)
    try:
        return key.kind(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{key.name} from {source} is {raw!r}, not a whole number") from None


def _checked(key: Key, value):
    """Refuse a value the key cannot hold, saying what it accepts; nothing is stored."""
    wanted = key.check(value) if key.check else None
    if wanted:
        shown = SECRET_MARK if key.secret else repr(value)
        raise InvalidInput(f"{key.name} {shown} is not valid: use {wanted}")
    return value


def load_config(flags: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None,
                cwd: Path | None = None, home: Path | None = None) -> Config:
    environ = os.environ if environ is None else environ
    dotenv, warnings = read_dotenv((cwd or Path.cwd()) / ".env")
    toml_path = config_file(home)
    stored = _read_toml(toml_path)
    values = {}
    for k in KEYS:
        layers = [
            ((flags or {}).get(k.name), "flag"),
            (environ.get(k.env), f"env:{k.env}"),
            (dotenv.get(k.env), ".env"),
            (stored.get(k.name), str(toml_path).replace(str(home or Path.home()), "~", 1)),
        ]
        raw, source = next(((v, s) for v, s in layers if v not in (None, "")), (k.default, "default"))
        values[k.name] = Value(_coerce(k, raw, source), source)
    return Config(values, warnings)


def set_value(name: str, value: str, home: Path | None = None) -> Path:
    """Store a key in ~/.haymaker/config.toml (created 0600: it may hold a connection string)."""
    if name not in BY_NAME:
        raise InvalidInput(f"unknown key {name!r}: known keys are {', '.join(BY_NAME)}")
    key = BY_NAME[name]
    path = config_file(home)
    doc = _read_toml(path)
    doc[name] = _checked(key, _coerce(key, value, "the command line"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    os.chmod(path, 0o600)
    return path
