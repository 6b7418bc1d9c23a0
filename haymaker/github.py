"""GitHub's REST API as `haymaker dispatch` meets it: which repository, which token, and the calls.

The repository comes from ``--repo`` or the git remote; its host decides the API (github.com:
``https://api.github.com``; a ``*.ghe.com`` tenant: ``https://api.<host>``; GitHub Enterprise Server:
``https://<host>/api/v3``), and ``GITHUB_API_URL`` (what GitHub Actions sets) overrides it: the seam the
tests use. Calls go through azure-core's pipeline (retries, redirects that drop the token when they
leave the host), the one HTTP stack of the project. The token is never printed.

Rate limits follow "Rate limits for the REST API"
(https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api): a 403 or 429 is a rate
limit when it says so (``x-ratelimit-remaining: 0`` for the primary limit, ``retry-after``, or a message
naming a secondary rate limit; a 429 always). It is waited out as the page says (``retry-after`` seconds;
else until ``x-ratelimit-reset`` when none remain; else at least a minute, doubling) as long as the
waits of one call stay within RATE_LIMIT_WAIT, and otherwise reported as a rate limit with when to try
again: never as a missing permission. A rate-limited request was not carried out, so even a dispatch
is sent again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Mapping

from haymaker.errors import HayMakerError, InvalidInput

GITHUB_COM = "github.com"
API_VERSION = "2022-11-28"
TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
TOKEN_RIGHTS = "a fine-grained token with Actions: read and write on {repo}, or a classic token with the repo scope"
RATE_LIMIT_WAIT = 180.0  # seconds one call may spend waiting out rate limits
RATE_LIMIT_TRIES = 5  # and rate-limited answers it takes at most (a reset already past waits a second)
SECONDARY_PAUSE = 60.0  # "wait for at least one minute" when a secondary limit does not say how long
_SAYS_RATE_LIMIT = re.compile(r"rate limit|abuse detection", re.I)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# scp-like git remotes: [user@]host:owner/repo(.git)
_SCP = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^@/:]+):(?P<path>[^/].*)$")


class GitHubError(HayMakerError):
    """A GitHub call failed; the message says what to change."""


class GitHubRateLimited(GitHubError):
    """GitHub's primary or secondary rate limit held for longer than a call waits."""


@dataclass(frozen=True)
class Repository:
    host: str
    owner: str
    name: str

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api_url(self) -> str:
        if self.host == GITHUB_COM:
            return "https://api.github.com"
        if self.host.endswith(".ghe.com"):  # GitHub Enterprise Cloud with data residency
            return f"https://api.{self.host}"
        return f"https://{self.host}/api/v3"  # GitHub Enterprise Server

    @property
    def web_url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.slug if self.host == GITHUB_COM else f"{self.host}/{self.slug}"


def _normal_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return GITHUB_COM if host in ("www.github.com", "ssh.github.com") else host


def _repository(host: str, path: str, given: str) -> Repository:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) != 2 or not all(_NAME.match(p) for p in parts):
        raise InvalidInput(f"{given!r} does not name a GitHub repository: give --repo OWNER/REPO")
    owner, name = parts[0], parts[1].removesuffix(".git")
    return Repository(_normal_host(host), owner, name)


def parse_remote(url: str) -> Repository:
    """A git remote URL (https, ssh or scp-like; github.com or an Enterprise host) as a repository."""
    url = url.strip()
    shown = _without_credentials(url)
    split = urllib.parse.urlsplit(url)
    if split.scheme in ("https", "http", "ssh", "git", "git+ssh") and split.hostname:
        return _repository(split.hostname, split.path, shown)
    scp = _SCP.match(url)
    if not split.scheme and scp:
        return _repository(scp["host"], scp["path"], shown)
    raise InvalidInput(f"the git remote {shown!r} is not a GitHub URL: give --repo OWNER/REPO")


def _without_credentials(url: str) -> str:
    """A remote as it can be shown: an https remote may carry a token (https://x:<token>@host/...)."""
    split = urllib.parse.urlsplit(url)
    if split.scheme in ("https", "http") and split.hostname and (split.username or split.password):
        netloc = split.hostname + (f":{split.port}" if split.port else "")
        return urllib.parse.urlunsplit(split._replace(netloc=netloc))
    return url


def parse_repo(given: str) -> Repository:
    """``--repo``: OWNER/REPO (on github.com), HOST/OWNER/REPO, or a repository URL."""
    if "://" in given or "@" in given:
        return parse_remote(given)
    parts = given.strip("/").split("/")
    if len(parts) == 3:
        return _repository(parts[0], "/".join(parts[1:]), given)
    return _repository(GITHUB_COM, given, given)


def repository_from_git(cwd: Path, remote: str = "origin") -> Repository:
    """The repository the checkout at ``cwd`` pushes to (its ``origin`` remote)."""
    try:
        done = subprocess.run(["git", "remote", "get-url", remote], cwd=cwd, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        raise InvalidInput(f"cannot read the git remote {remote!r} ({e}): give --repo OWNER/REPO") from e
    if done.returncode != 0 or not done.stdout.strip():
        raise InvalidInput(f"{cwd} has no git remote {remote!r}: give --repo OWNER/REPO")
    return parse_remote(done.stdout.strip())


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    source: str  # where it came from, for messages: GITHUB_TOKEN, GH_TOKEN or `gh auth token`


def find_token(repo: Repository, env: Mapping[str, str] = os.environ) -> Token:
    """``GITHUB_TOKEN``, else ``GH_TOKEN``, else the GitHub CLI's login for the repository's host."""
    for name in TOKEN_VARIABLES:
        if env.get(name, "").strip():
            return Token(env[name].strip(), name)
    gh = shutil.which("gh", path=env.get("PATH"))
    said = ""
    if gh:
        try:
            done = subprocess.run([gh, "auth", "token", "--hostname", repo.host], capture_output=True, text=True,
                                  timeout=30, env=dict(env))
            if done.returncode == 0 and done.stdout.strip():
                return Token(done.stdout.strip(), "`gh auth token`")
            said = f" (`gh auth token` said: {(done.stderr or done.stdout).strip()[:200]})"
        except (OSError, subprocess.SubprocessError) as e:
            said = f" (`gh auth token` failed: {e})"
    raise InvalidInput(f"no GitHub token for {repo.host}{said}: set GITHUB_TOKEN to "
                       f"{TOKEN_RIGHTS.format(repo=repo.slug)}, or log in with `gh auth login --hostname {repo.host}`")


def api_url(repo: Repository, env: Mapping[str, str] = os.environ) -> str:
    return (env.get("GITHUB_API_URL") or repo.api_url).rstrip("/")


@dataclass
class Answer:
    """One response, read: status, JSON body (or None) and the server's clock."""

    status: int
    body: object
    headers: Mapping[str, str]

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""

    @property
    def date(self) -> datetime | None:
        try:
            return parsedate_to_datetime(self.headers["Date"]).astimezone(timezone.utc)
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class RateLimit:
    kind: str  # "primary" or "secondary"
    wait: float | None  # seconds GitHub asked for; None: it did not say (a secondary limit without retry-after)
    reset: datetime | None = None  # when a primary limit's requests come back


def rate_limit(answer: Answer, now: datetime) -> RateLimit | None:
    """The rate limit a 403 or 429 reports, in the order the documentation gives; None for any other answer."""
    if answer.status not in (403, 429):
        return None
    headers = answer.headers
    remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset", "")
    after = headers.get("retry-after", "")
    primary = remaining == "0"
    if after.strip().isdigit():
        return RateLimit("primary" if primary else "secondary", float(after))
    if primary:
        at = datetime.fromtimestamp(int(reset), timezone.utc) if reset.isdigit() else None
        clock = answer.date or now  # GitHub's clock, when it says, against its own reset time
        # Both are whole seconds, cut down: one more second makes sure the reset has passed when we ask again.
        return RateLimit("primary", max(0.0, (at - clock).total_seconds()) + 1.0 if at else None, at)
    if answer.status == 429 or _SAYS_RATE_LIMIT.search(answer.message):
        return RateLimit("secondary", None)
    return None


def _retry_policy(**options):
    from azure.core.pipeline.policies import RetryPolicy

    class DispatchSafeRetry(RetryPolicy):
        """azure-core retries a POST that got 500/503/504; a dispatch may have started a run by then, and
        a second one would start another. Other retries (429 with Retry-After, GETs) stay as they are."""

        def is_retry(self, settings, response):
            if response.http_request.method == "POST" and response.http_response.status_code >= 500:
                return False
            if response.http_response.status_code == 429:  # a rate limit: GitHub.call waits it out, bounded
                return False
            return super().is_retry(settings, response)

    return DispatchSafeRetry(**options)


class GitHub:
    """The REST calls `haymaker dispatch` makes, for one repository with one token."""

    def __init__(self, repo: Repository, token: Token, base_url: str, *, sleep: Callable[[float], None] | None = None,
                 now: Callable[[], datetime] | None = None, echo: Callable[[str], None] | None = None, **options):
        """``options`` go to azure-core (``connection_verify``, ``retry_total``, ``retry_backoff_factor``);
        ``sleep`` and ``now`` are the clock rate limits are waited out on; ``echo`` hears each wait."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import HeadersPolicy, RedirectPolicy, UserAgentPolicy

        self.repo, self.token, self.base_url = repo, token, base_url.rstrip("/")
        self.sleep, self.now = sleep or time.sleep, now or (lambda: datetime.now(timezone.utc))
        self.echo = echo or (lambda line: None)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "Authorization": f"Bearer {token.value}"}
        # Headers first: the redirect policy then sees the token and drops it when a redirect leaves the host.
        self._client = PipelineClient(base_url=self.base_url, policies=[
            HeadersPolicy(headers), UserAgentPolicy("haymaker"), RedirectPolicy(**options), _retry_policy(**options)],
            **options)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> Answer:
        """One request; a rate limit is waited out within RATE_LIMIT_WAIT, else raised as GitHubRateLimited."""
        waited, pause = 0.0, SECONDARY_PAUSE
        for attempt in range(1, RATE_LIMIT_TRIES + 1):
            answer = self._send(method, path, params, body)
            limit = rate_limit(answer, self.now())
            if limit is None:
                return answer
            wait = max(1.0, limit.wait) if limit.wait is not None else pause
            if waited + wait > RATE_LIMIT_WAIT or attempt == RATE_LIMIT_TRIES:
                raise self._limited(limit, answer, waited, wait)
            self.echo(f"GitHub's {limit.kind} rate limit: waiting {wait:.0f} s before trying again")
            self.sleep(wait)
            waited += wait
            if limit.wait is None:
                pause *= 2  # "an exponentially increasing amount of time between retries"

    def _limited(self, limit: RateLimit, answer: Answer, waited: float, wait: float) -> GitHubRateLimited:
        said = f"GitHub answered {answer.status}" + (f" {answer.message!r}" if answer.message else "")
        spent = f" after waiting {waited:.0f} s" if waited else ""
        if limit.kind == "primary":
            at = f" at {limit.reset:%H:%M} UTC" if limit.reset else f" in {wait / 60:.0f} minutes"
            return GitHubRateLimited(f"GitHub's primary rate limit for the token from {self.token.source} is used up"
                                     f"{spent} ({said}): its requests for the hour come back{at}; try again then "
                                     "(the token is fine: this is a count of requests, shared by everything that "
                                     "uses it)")
        return GitHubRateLimited(f"GitHub's secondary rate limit held{spent} ({said}): too many requests at once or "
                                 f"in a minute for {self.repo.host}; try again in {max(wait, SECONDARY_PAUSE) / 60:.0f} "
                                 "minutes (the token is fine)")

    def _send(self, method: str, path: str, params: dict | None, body: dict | None) -> Answer:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            response = self._client.send_request(HttpRequest(method, url, json=body))
        except (ServiceRequestError, ServiceResponseError) as e:
            raise GitHubError(f"cannot reach GitHub at {self.base_url} ({type(e).__name__}: {e}): check the "
                              "network, or GITHUB_API_URL when it is set") from e
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = response.text()[:300]
        return Answer(response.status_code, parsed, response.headers)

    def refused(self, answer: Answer, doing: str, hints: Mapping[int, str] | None = None) -> GitHubError:
        """The error for a failed call: GitHub's words, then what to change."""
        said = f"GitHub answered {answer.status}" + (f" {answer.message!r}" if answer.message else "")
        rights = TOKEN_RIGHTS.format(repo=self.repo.slug)
        hint = (hints or {}).get(answer.status)
        if hint is None and answer.status == 401:
            hint = (f"the token from {self.token.source} has expired, been revoked or is no token of "
                    f"{self.repo.host}: make a new one with the scope to start workflows ({rights}), or run "
                    f"`gh auth refresh --hostname {self.repo.host}`")
        elif hint is None and answer.status == 403:
            hint = (f"the token from {self.token.source} may not do that in {self.repo.slug}: use {rights} "
                    "(an organization with SSO must also authorize it)")
        elif hint is None and answer.status == 404:
            hint = (f"{self.repo.slug} does not exist on {self.repo.host}, or the token from {self.token.source} "
                    f"cannot see it: check --repo (or the git remote), or use {rights}")
        elif hint is None:
            hint = "try again later; if it persists, see https://www.githubstatus.com"
        return GitHubError(f"cannot {doing}: {said}: {hint}")
