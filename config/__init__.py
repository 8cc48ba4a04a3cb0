"""Settings and the shipped defaults (classifier rules, message catalogs)."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
