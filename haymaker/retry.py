"""Transient or logic? And how long to wait before trying a transient failure again.

Transient failures (throttling, server errors, operations already in progress, a new service
principal not replicated yet, a stack lock left by a CI run that died) are retried with exponential
backoff and jitter, a bounded number of times. Logic failures (schema, policy, authorization,
quota, bad input) fail at once: retrying cannot fix them.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

# Checked first: a message that shows a logic error is never retried, whatever else it says.
LOGIC_PATTERNS = [
    r"AuthorizationFailed", r"AuthenticationFailed", r"InvalidAuthenticationToken", r"\b401\b", r"\b403\b",
    r"Forbidden", r"QuotaExceeded", r"OperationNotAllowed.*quota", r"SkuNotAvailable",
    r"LocationNotAvailableForResourceType", r"InvalidTemplate", r"InvalidParameter", r"BadRequest\b",
    r"RequestDisallowedByPolicy", r"mandatory policy violation", r"[Pp]olicy [Vv]iolation",
    r"InvalidResourceName", r"LinkedAuthorizationFailed",
]
TRANSIENT_PATTERNS = [
    r"\b429\b", r"TooManyRequests", r"[Tt]hrottl", r"\b50[0234]\b", r"InternalServerError",
    r"ServiceUnavailable", r"GatewayTimeout", r"BadGateway", r"AnotherOperationInProgress",
    r"OperationPreempted", r"RetryableError", r"PrincipalNotFound",
    r"does not exist in the directory", r"[Cc]onnection (reset|refused|aborted)", r"timed? ?out",
    r"the stack is currently locked", r"ConcurrentUpdateError", r"[Aa]nother update is currently in progress",
    r"Conflict.*(in progress|being deleted|provisioning state)",
]
_LOGIC = re.compile("|".join(LOGIC_PATTERNS))
_TRANSIENT = re.compile("|".join(TRANSIENT_PATTERNS))


def classify(message: str) -> str:
    """'transient' or 'logic' for an error text (Azure, Graph or Pulumi CLI output)."""
    if _LOGIC.search(message):
        return "logic"
    if _TRANSIENT.search(message):
        return "transient"
    return "logic"


@dataclass(frozen=True)
class Backoff:
    attempts: int = 5
    base_seconds: float = 5.0
    cap_seconds: float = 120.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return rng.uniform(0, min(self.cap_seconds, self.base_seconds * (2 ** attempt)))


class GaveUp(Exception):
    """The last error of an operation that kept failing, with how many attempts were made."""

    def __init__(self, error: Exception, attempts: int, kind: str):
        self.error, self.attempts, self.kind = error, attempts, kind
        super().__init__(f"{error} (after {attempts} attempt(s); {kind} error)")


def with_retries(operation: Callable[[], T], *, backoff: Backoff = Backoff(),
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 on_retry: Callable[[int, Exception, float], None] = lambda *_: None,
                 message_of: Callable[[Exception], str] = str, give_up_on: tuple[type, ...] = ()) -> T:
    """Run ``operation``; retry transient failures with backoff; raise GaveUp otherwise. ``give_up_on``:
    errors the caller looks at itself rather than waits out (a stack lock)."""
    rng = rng or random.Random()
    for attempt in range(backoff.attempts):
        try:
            return operation()
        except Exception as e:  # noqa: BLE001 - classified below, re-raised as GaveUp
            kind = classify(message_of(e))
            if kind == "logic" or isinstance(e, give_up_on) or attempt == backoff.attempts - 1:
                raise GaveUp(e, attempt + 1, kind) from e
            wait = backoff.delay(attempt, rng)
            on_retry(attempt + 1, e, wait)
            sleep(wait)
    raise AssertionError("unreachable")
