"""Which environment a release tag deploys to."""

from __future__ import annotations

import re

from haymaker.errors import InvalidInput

_SEMVER = r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
RULES = [
    (re.compile(rf"^{_SEMVER}-dev$"), "dev"),
    (re.compile(rf"^{_SEMVER}-rc\.(0|[1-9]\d*)$"), "staging"),
    (re.compile(rf"^{_SEMVER}$"), "prod"),
]


def release_environment(tag: str) -> str:
    """vX.Y.Z-dev -> dev, vX.Y.Z-rc.N -> staging, vX.Y.Z -> prod; anything else is refused."""
    tag = tag.removeprefix("refs/tags/")
    for pattern, environment in RULES:
        if pattern.match(tag):
            return environment
    raise InvalidInput(f"tag {tag!r} is not a release tag: use vX.Y.Z-dev (dev), vX.Y.Z-rc.N (staging) "
                       "or vX.Y.Z (prod)")
