"""Entry point the Pulumi engine runs for `--policy-pack policies`. Only builds the pack:
constructing a PolicyPack starts the analyzer server."""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.rules import POLICIES

PolicyPack("haymaker", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
