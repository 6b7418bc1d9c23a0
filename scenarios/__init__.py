"""The scenario catalog: one YAML file per scenario, its JSON Schema, and the loader."""

from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parent
