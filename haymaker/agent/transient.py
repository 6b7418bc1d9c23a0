"""Which az failures are worth retrying: read the error text az prints on stderr."""

from __future__ import annotations

import re

# Errors that say the request itself is wrong: retrying cannot help, so they fail fast.
_LOGIC = re.compile(
    r"InvalidParameter|BadRequest|QuotaExceeded|InvalidTemplate|InvalidResourceName|SkuNotAvailable|"
    r"ValidationError|InvalidRequestContent|MissingSubscriptionRegistration|LinkedAuthorizationFailed|"
    r"RequestDisallowedByPolicy|AADSTS7000215|AADSTS7000222", re.I)
_TRANSIENT = [
    ("throttled", re.compile(r"TooManyRequests|Too Many Requests|\b429\b|throttl", re.I)),
    ("server error", re.compile(
        r"InternalServerError|Internal Server Error|ServiceUnavailable|Service Unavailable|GatewayTimeout|"
        r"Gateway Timeout|BadGateway|Bad Gateway|status(?: code)?\W{0,3}5\d\d\b", re.I)),
    ("another operation in progress", re.compile(
        r"AnotherOperationInProgress|OperationNotAllowed.{0,200}in progress|Conflict.{0,400}in progress|"
        r"in progress.{0,400}Conflict", re.I | re.S)),
    ("timeout or connection error", re.compile(
        r"timed out|timeout|Connection aborted|Connection reset|ConnectionError|RemoteDisconnected|"
        r"Temporary failure in name resolution", re.I)),
]
# A new service principal and its role assignment take minutes to replicate; until then ARM and
# Entra answer as if the principal did not exist, had no rights, or saw no subscription.
_REPLICATION = re.compile(r"PrincipalNotFound|AuthorizationFailed|does not have authorization|AADSTS700016|"
                          r"No subscriptions found|doesn't exist in cloud", re.I)
REPLICATION_WINDOW_SECONDS = 15 * 60


def transient_reason(stderr: str, *, agent_age_seconds: float) -> str | None:
    """Why this failure is worth retrying, or None when it is a logic error (or unknown)."""
    if _LOGIC.search(stderr):
        return None
    for reason, pattern in _TRANSIENT:
        if pattern.search(stderr):
            return reason
    if agent_age_seconds < REPLICATION_WINDOW_SECONDS and _REPLICATION.search(stderr):
        return "identity or role not replicated yet"
    return None
