"""Where the Azure services are, and the credential HayMaker reaches them with.

The endpoints default to the public cloud; setting them is what a sovereign cloud needs, and what
the tests use to point the real SDK clients at local stand-ins. Each token scope derives from its
endpoint (``<endpoint>/.default``), as it does in every Azure cloud.

In GitHub Actions the lifecycle signs in as the run deployer with a *client assertion*: a GitHub OIDC
token fetched afresh each time Entra ID needs one. `azure/login` (and the Azure CLI credential after
it) stops getting new tokens once the job's OIDC token expires (about ten minutes), which a long
`reap` passes; this credential does not. Elsewhere: the usual ``DefaultAzureCredential``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from haymaker.errors import HayMakerError

GITHUB_AUDIENCE = "api://AzureADTokenExchange"
PUBLIC_LOGIN = "https://login.microsoftonline.com"
# Authority hosts MSAL knows; for any other host (a stand-in) instance discovery is switched off.
KNOWN_LOGIN_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn")


class AzureAuthError(HayMakerError):
    """No token: the message says which service and what to do."""


@dataclass(frozen=True)
class Endpoints:
    arm: str = "https://management.azure.com"
    graph: str = "https://graph.microsoft.com"
    login: str = PUBLIC_LOGIN
    log_analytics: str = "https://api.loganalytics.io"

    @staticmethod
    def scope(endpoint: str) -> str:
        return endpoint.rstrip("/") + "/.default"

    @property
    def arm_scope(self) -> str:
        return self.scope(self.arm)

    @property
    def graph_scope(self) -> str:
        return self.scope(self.graph)

    @property
    def log_analytics_scope(self) -> str:
        return self.scope(self.log_analytics)

    @classmethod
    def from_config(cls, cfg) -> "Endpoints":
        d = cls()
        return cls(arm=(cfg.get("arm_endpoint") or d.arm).rstrip("/"),
                   graph=(cfg.get("graph_endpoint") or d.graph).rstrip("/"),
                   login=(cfg.get("login_endpoint") or d.login).rstrip("/"),
                   log_analytics=(cfg.get("log_analytics_endpoint") or d.log_analytics).rstrip("/"))


def in_github_actions(env: Mapping[str, str]) -> bool:
    return bool(env.get("ACTIONS_ID_TOKEN_REQUEST_URL") and env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))


class GitHubOidcToken:
    """Fetch a new GitHub Actions OIDC token on every call: the client assertion Entra ID exchanges."""

    def __init__(self, request_url: str, request_token: str, audience: str = GITHUB_AUDIENCE):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import RetryPolicy

        self._url, self._token, self._audience = request_url, request_token, audience
        self._client = PipelineClient(base_url=request_url, policies=[RetryPolicy(retry_total=3)])

    def __call__(self) -> str:
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        separator = "&" if "?" in self._url else "?"
        request = HttpRequest("GET", f"{self._url}{separator}audience={self._audience}",
                              headers={"Authorization": f"bearer {self._token}", "Accept": "application/json"})
        try:
            response = self._client.send_request(request)
        except AzureError as e:
            raise AzureAuthError(f"cannot fetch a GitHub OIDC token: {e}") from e
        if response.status_code != 200:
            raise AzureAuthError(f"cannot fetch a GitHub OIDC token: HTTP {response.status_code}: the job needs "
                                 "`permissions: id-token: write`")
        return response.json()["value"]


def azure_credential(endpoints: Endpoints | None = None, env: Mapping[str, str] | None = None):
    """The deployer's credential: GitHub OIDC client assertions in Actions, DefaultAzureCredential elsewhere."""
    env = os.environ if env is None else env
    endpoints = endpoints or Endpoints()
    options = {"authority": endpoints.login}
    if not any(host in endpoints.login for host in KNOWN_LOGIN_HOSTS):
        options["disable_instance_discovery"] = True
    if in_github_actions(env):
        missing = [k for k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID") if not env.get(k)]
        if missing:
            raise AzureAuthError(f"in GitHub Actions set {' and '.join(missing)} (repository variables) to the "
                                 "deployer's application and tenant")
        from azure.identity import ClientAssertionCredential

        options.pop("disable_instance_discovery", None)  # no MSAL here: the token endpoint is called directly
        return ClientAssertionCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"],
                                         GitHubOidcToken(env["ACTIONS_ID_TOKEN_REQUEST_URL"],
                                                         env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]), **options)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(**options)


def token_failure(service: str, error: Exception, credential=None) -> AzureAuthError:
    """A credential failure as a message that says what to do."""
    from azure.identity import ClientAssertionCredential

    hint = ("the deployer signs in with GitHub OIDC: check the job has `id-token: write` and that the deployer's "
            "federated credential trusts this repository and environment"
            if isinstance(credential, ClientAssertionCredential) else
            "sign in with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and a credential for "
            "DefaultAzureCredential)")
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return AzureAuthError(f"cannot get a token for {service}: {first[:400]}", fix=hint)
