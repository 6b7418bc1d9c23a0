"""The HayMaker CrossGuard policy pack. Rules live in policies/rules.py; the pack in __main__.py."""
