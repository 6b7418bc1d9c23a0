"""Microsoft Entra ID's token endpoint (what azure-identity's credentials call through MSAL), and
GitHub Actions' OIDC token issuer (``ACTIONS_ID_TOKEN_REQUEST_URL``).

The login service answers OpenID discovery and the client-credentials grant, with a client secret or
a client assertion (a GitHub OIDC token), issuing JWT-shaped access tokens whose ``roles`` claim
carries the app roles the test granted. A GitHub token expires; an expired assertion is refused with
AADSTS700024, as Entra refuses it ("Client assertion is not within its valid time range").

Access tokens live ``token_lifetime`` seconds (Entra: 60-90 minutes; tests make it short, so that clients
ask again during a run: azure-core asks for a new token within 300 s of expiry). A refusal can begin
mid-way (``refuse_after``): the first N token requests for a resource succeed, the later ones are refused,
as when a federated credential is removed or a client assertion expires during a long teardown.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.parse

from tests.fakes.server import Reply, Request, Service


def jwt(claims: dict) -> str:
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def aad_error(code: int, error: str, description: str) -> Reply:
    return Reply(400 if error != "invalid_client" else 401, {
        "error": error, "error_description": f"AADSTS{code}: {description} Trace ID: 0 Correlation ID: 0",
        "error_codes": [code], "timestamp": "2026-11-21 14:00:00Z"})


class FakeLogin(Service):
    name = "login"

    def __init__(self, tenant_id: str):
        super().__init__()
        self.tenant_id = tenant_id
        self.reset_state()
        self.route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", self._discovery)
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self._token)

    def reset_state(self) -> None:
        self.secrets: dict[str, str] = {}  # client id -> secret
        self.federated: dict[str, str] = {}  # client id -> GitHub subject it trusts
        self.roles: dict[tuple[str, str], list[str]] = {}  # (client id, resource) -> app roles
        self.issued: list[dict] = []
        self.refuse: dict[str, Reply] = {}  # resource -> the error its token requests get
        self.refuse_after: dict[str, tuple[int, Reply]] = {}  # resource -> (tokens still issued, then this error)
        self.token_lifetime = 3599
        self.github: FakeGitHubOidc | None = None

    def reset(self) -> None:
        super().reset()
        self.reset_state()

    def authorize(self, request: Request) -> Reply | None:
        return None  # the token endpoint is where a client gets its token

    def _discovery(self, r: Request) -> Reply:
        base = f"{self.base_url}/{r.params['tenant']}"
        return Reply(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                           "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                           "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
                           "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                           "tenant_region_scope": "EU"})

    def _token(self, r: Request) -> Reply:
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(r.body.decode()).items()}
        if r.params["tenant"] != self.tenant_id:
            return aad_error(90002, "invalid_request", f"Tenant '{r.params['tenant']}' not found.")
        client = form.get("client_id", "")
        if form.get("grant_type") != "client_credentials":
            return aad_error(70003, "unsupported_grant_type", "The app requested an unsupported grant type.")
        if "client_secret" in form:
            if self.secrets.get(client) != form["client_secret"]:
                return aad_error(7000215, "invalid_client", "Invalid client secret provided.")
        elif "client_assertion" in form:
            refused = self._check_assertion(client, form["client_assertion"])
            if refused:
                return refused
        else:
            return aad_error(7000218, "invalid_client", "The request body must contain 'client_assertion' or "
                                                        "'client_secret'.")
        resource = form.get("scope", "").removesuffix("/.default")
        if resource in self.refuse:
            return self.refuse[resource]
        if resource in self.refuse_after:
            left, refusal = self.refuse_after[resource]
            if left <= 0:
                return refusal
            self.refuse_after[resource] = (left - 1, refusal)
        now = int(time.time())
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{self.tenant_id}/", "iat": now, "nbf": now,
                  "exp": now + self.token_lifetime, "appid": client, "oid": f"oid-of-{client}", "tid": self.tenant_id,
                  "idtyp": "app"}
        if self.roles.get((client, resource)):
            claims["roles"] = self.roles[(client, resource)]
        self.issued.append(claims)
        return Reply(200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                           "ext_expires_in": self.token_lifetime,
                           "access_token": jwt(claims)})

    def _check_assertion(self, client: str, assertion: str) -> Reply | None:
        try:
            claims = claims_of(assertion)
        except (IndexError, ValueError):
            return aad_error(50027, "invalid_request", "JWT token is invalid or malformed.")
        if claims.get("exp", 0) <= time.time():
            return aad_error(700024, "invalid_client", "Client assertion is not within its valid time range. "
                                                       f"Current time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
                                                       "expiry time of assertion is earlier.")
        if self.federated.get(client) != claims.get("sub"):
            return aad_error(70021, "invalid_client", "No matching federated identity record found for presented "
                                                      f"assertion subject '{claims.get('sub')}'.")
        return None


class FakeGitHubOidc(Service):
    """``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…`` with the job's request token: ``{"value": <jwt>}``.

    Each token lives ``lifetime`` seconds (GitHub: about 10 minutes; tests make it short)."""

    name = "github-oidc"
    request_token = "ghs_request_token_for_tests"

    def __init__(self, subject: str):
        super().__init__()
        self.subject = subject
        self.lifetime = 300
        self.issued: list[dict] = []
        self._serial = itertools.count(1)
        self.route("GET", r"/_apis/token", self._token)

    def reset(self) -> None:
        super().reset()
        self.lifetime = 300
        self.issued: list[dict] = []

    def authorize(self, request: Request) -> Reply | None:
        if request.headers.get("authorization", "").lower() != f"bearer {self.request_token}":
            return Reply(401, {"message": "Bad credentials"})
        return None

    def _token(self, r: Request) -> Reply:
        now = int(time.time())
        claims = {"iss": "https://token.actions.githubusercontent.com", "sub": self.subject,
                  "aud": r.query.get("audience", ""), "iat": now, "nbf": now, "exp": now + 1 + self.lifetime,
                  "jti": f"token-{next(self._serial)}"}
        self.issued.append(claims)
        return Reply(200, {"count": 1, "value": jwt(claims)})
