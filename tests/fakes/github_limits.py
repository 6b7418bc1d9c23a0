"""GitHub's REST rate limits, as "Rate limits for the REST API" documents them
(https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api, api version 2022-11-28).

*Primary*: a token's requests per hour (5,000 for a user's token; 1,000 per repository for GITHUB_TOKEN in
Actions). Every answer carries ``x-ratelimit-limit``, ``-remaining``, ``-used``, ``-reset`` (UTC epoch
seconds) and ``-resource``; once none remain, 403 or 429 with ``x-ratelimit-remaining: 0`` until the reset.

*Secondary*: among others, no more than 900 points per minute per REST endpoint (GET 1 point, POST,
PATCH, PUT, DELETE 5) and no more than 80 content-generating requests per minute and 500 per hour (a
workflow dispatch is one). Past one: 403 or 429 with a message that names the secondary rate limit, and
``retry-after`` *might* be present (the page says so; here ``retry_after`` picks). GitHub may change these
limits without notice and trips them for reasons it does not publish, so ``trip`` makes the next requests
limited whatever the counts say. Rejected requests are not counted. The 100-concurrent-requests and
CPU-time limits are not modelled (this stand-in answers one request at a time).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
PRIMARY_MESSAGE = ("API rate limit exceeded for user ID {user}. If you reach out to GitHub Support for help, please "
                   "include the request ID 0400:3B5C:1F2A3:4D5E6:6A1B2C3D.")
SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
                     "reach out to GitHub Support for help, please include the request ID 0400:3B5C:1F2A3:4D5E6:6A1B2C3E.")
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


@dataclass
class _Token:
    reset: datetime
    used: int = 0
    points: dict[str, deque] = field(default_factory=dict)  # endpoint -> (time, points) of the last minute
    content: deque = field(default_factory=deque)  # times of content-generating requests, the last hour


@dataclass
class Limited:
    status: int
    body: dict
    headers: dict[str, str]


class RateLimits:
    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.now = now
        self.per_hour = 5000
        self.points_per_minute = 900
        self.content_per_minute, self.content_per_hour = 80, 500
        self.primary_status = 403  # "403 or 429"
        self.secondary_status = 403
        self.retry_after: int | None = None  # seconds a secondary limit's answer says, or none
        self.tokens: dict[str, _Token] = {}
        self._tripped, self._tripped_method = 0, None
        self.limited: list[str] = []  # "primary" / "secondary", per request refused

    def trip(self, times: int = 1, retry_after: int | None = None, status: int = 403, method: str | None = None) -> None:
        """The next ``times`` requests (of ``method``, when given) meet a secondary limit, whatever the counts say."""
        self._tripped, self._tripped_method = times, method
        self.retry_after, self.secondary_status = retry_after, status

    def content_created(self, token: str, times: list[datetime]) -> None:
        """Content-generating requests the token already made (other dispatches, issues, comments)."""
        self._state(token).content.extend(sorted(times))

    def use_up(self, token: str, reset_in: timedelta) -> None:
        """The token has spent its hour's requests; they come back ``reset_in`` from now."""
        state = self._state(token)
        state.used, state.reset = self.per_hour, self.now() + reset_in

    def _state(self, token: str) -> _Token:
        now = self.now()
        state = self.tokens.get(token)
        if state is None or now >= state.reset:
            state = self.tokens[token] = _Token(reset=now + timedelta(hours=1), points=(state.points if state else {}),
                                                content=(state.content if state else deque()))
        return state

    def headers(self, token: str) -> dict[str, str]:
        state = self._state(token)
        return {"x-ratelimit-limit": str(self.per_hour), "x-ratelimit-remaining": str(max(0, self.per_hour - state.used)),
                "x-ratelimit-used": str(state.used), "x-ratelimit-reset": str(int(state.reset.timestamp())),
                "x-ratelimit-resource": "core"}

    def check(self, token: str, user_id: int, method: str, endpoint: str) -> Limited | None:
        """The refusal for this request, or None (then it is counted)."""
        state, now = self._state(token), self.now()
        if state.used >= self.per_hour:
            self.limited.append("primary")
            return Limited(self.primary_status, {"message": PRIMARY_MESSAGE.format(user=user_id),
                                                 "documentation_url": f"{DOCS}#about-primary-rate-limits"},
                           self.headers(token))
        points = state.points.setdefault(endpoint, deque())
        while points and points[0][0] <= now - timedelta(minutes=1):
            points.popleft()
        while state.content and state.content[0] <= now - timedelta(hours=1):
            state.content.popleft()
        cost = 5 if method in WRITES else 1
        last_minute = sum(1 for t in state.content if t > now - timedelta(minutes=1))
        over = (sum(p for _, p in points) + cost > self.points_per_minute
                or (method in WRITES and (last_minute >= self.content_per_minute
                                          or len(state.content) >= self.content_per_hour)))
        tripped = self._tripped and self._tripped_method in (None, method)
        if tripped or over:
            self._tripped -= 1 if tripped else 0
            self.limited.append("secondary")
            headers = self.headers(token)
            if self.retry_after is not None:
                headers["retry-after"] = str(self.retry_after)
            return Limited(self.secondary_status, {"message": SECONDARY_MESSAGE,
                                                   "documentation_url": f"{DOCS}#about-secondary-rate-limits"},
                           headers)
        state.used += 1
        points.append((now, cost))
        if method in WRITES:
            state.content.append(now)
        return None
