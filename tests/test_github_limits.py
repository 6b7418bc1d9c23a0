"""GitHub's rate limits meet `haymaker dispatch`: the real command and azure-core's pipeline against the
GitHub stand-in, whose primary and secondary limits follow "Rate limits for the REST API"
(tests/fakes/github_limits.py). A rate limit is waited out as the page says, within a bound, and otherwise
reported as what it is: never as a permission the token lacks (defect 8 of issue 17)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import haymaker.github
from tests.test_dispatch import SLUG, TOKEN, VM, _github_server, dispatch, github  # noqa: F401 - fixtures

TOKEN_ADVICE = ("fine-grained token", "make a new one", "may not do that")
DISPATCHES = f"/repos/{SLUG}/actions/workflows/run.yml/dispatches"


@pytest.fixture
def limited(github, monkeypatch):  # noqa: F811 - the fixture imported above
    """The stand-in's limits and the command on one clock: the real time (that of GitHub's Date header) plus
    every second the command slept, so sleeping never waits and the limits still see the time pass."""
    def now() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=sum(github.clock.sleeps))

    github.limits.now = now
    real = haymaker.github.GitHub
    monkeypatch.setattr(haymaker.github, "GitHub", lambda *a, **k: real(
        *a, **{"sleep": github.clock.sleep, "now": now, **k}))
    return github


def test_the_documented_content_creation_limit_is_waited_out_and_the_dispatch_sent_again(limited, capsys):
    now = datetime.now(timezone.utc)
    limited.limits.content_created(TOKEN, [now - timedelta(seconds=50 - n / 2) for n in range(80)])
    code, out, err = dispatch(capsys, "-s", VM)
    assert code == 0, err
    # 80 content-generating requests in the last minute: 403 naming the secondary limit, no retry-after.
    assert [s.status for s in limited.seen("POST", DISPATCHES)] == [403, 200]
    assert limited.clock.sleeps == [60] and "GitHub's secondary rate limit: waiting 60 s" in err
    assert len(limited.runs) == 1 and out.splitlines()[-1].endswith(f"/actions/runs/{limited.runs[0].id}")


def test_a_429_with_retry_after_waits_what_it_says(limited, capsys):
    limited.limits.trip(1, retry_after=7, status=429, method="POST")
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 0, err
    assert [s.status for s in limited.seen("POST", DISPATCHES)] == [429, 200] and limited.clock.sleeps == [7]


def test_a_primary_limit_that_resets_soon_is_waited_for(limited, capsys):
    import time

    started = time.monotonic()
    limited.limits.use_up(TOKEN, reset_in=timedelta(seconds=40))
    code, _, err = dispatch(capsys, "-s", VM)
    late = time.monotonic() - started  # the reset is a wall-clock second: a slow machine is nearer to it
    assert code == 0, err
    assert limited.limits.limited == ["primary"] and 39 - late <= limited.clock.sleeps[0] <= 41


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_limit_that_resets_later_says_when_and_blames_no_token(limited, capsys, status):
    limited.limits.primary_status = status
    limited.limits.use_up(TOKEN, reset_in=timedelta(minutes=40))
    reset = limited.limits.tokens[TOKEN].reset
    code, _, err = dispatch(capsys, "-s", VM)
    text = " ".join(err.split())
    assert code == 1 and limited.clock.sleeps == [] and limited.runs == []
    assert f"GitHub's primary rate limit for the token from GITHUB_TOKEN is used up (GitHub answered {status} 'API " \
           f"rate limit exceeded for user ID" in text
    assert f"come back at {reset:%H:%M} UTC; try again then" in text
    assert not any(advice in text for advice in TOKEN_ADVICE)


def test_a_secondary_limit_that_holds_is_named_after_a_bounded_wait(limited, capsys):
    limited.limits.trip(10, retry_after=None, status=403, method="POST")
    code, _, err = dispatch(capsys, "-s", VM)
    text = " ".join(err.split())
    assert code == 1 and limited.runs == []
    assert limited.clock.sleeps == [60, 120]  # at least a minute, then doubling, within the 3 minutes a call waits
    assert "GitHub's secondary rate limit held after waiting 180 s (GitHub answered 403 'You have exceeded a " \
           "secondary rate limit" in text and "try again in" in text
    assert not any(advice in text for advice in TOKEN_ADVICE)


def test_a_forbidden_dispatch_is_still_a_permission_problem(limited, capsys):
    limited.users[TOKEN].access[SLUG] = "read"
    code, _, err = dispatch(capsys, "-s", VM)
    assert code == 1 and "'Resource not accessible by personal access token'" in err
    assert "use a fine-grained token" in err and limited.clock.sleeps == [] and limited.limits.limited == []


def test_every_answer_carries_the_primary_limits_headers(limited):
    from haymaker.github import Token, parse_repo

    gh = haymaker.github.GitHub(parse_repo(SLUG), Token(TOKEN, "GITHUB_TOKEN"), limited.base_url)
    first, second = gh.call("GET", f"/repos/{SLUG}"), gh.call("GET", "/user")
    gh.close()
    assert first.headers["x-ratelimit-limit"] == "5000" and first.headers["x-ratelimit-resource"] == "core"
    assert (first.headers["x-ratelimit-used"], second.headers["x-ratelimit-remaining"]) == ("1", "4998")
    reset = datetime.fromtimestamp(int(first.headers["x-ratelimit-reset"]), timezone.utc)
    assert timedelta(minutes=59) < reset - datetime.now(timezone.utc) <= timedelta(hours=1)
