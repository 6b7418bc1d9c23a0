"""Pulumi programs: plain functions, called by `pulumi up` (__main__.py) and the Automation API."""
