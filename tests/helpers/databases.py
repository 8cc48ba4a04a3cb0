"""Which databases the tests run on: SQLite always, PostgreSQL when PROPDESK_TEST_DATABASE_URL names one."""
from __future__ import annotations

import os

PG_URL = os.environ.get("PROPDESK_TEST_DATABASE_URL")
NO_PG = "PostgreSQL not configured: set PROPDESK_TEST_DATABASE_URL (CI does) to run this on PostgreSQL"
