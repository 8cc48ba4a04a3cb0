"""Alembic environment: targets models.Base.metadata; runs on a connection handed in by models.db."""
from alembic import context
from sqlalchemy.engine import Connection

from models import Base

target_metadata = Base.metadata
config = context.config


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    # Plain `alembic` command line: build a sync engine from the configured URL.
    from sqlalchemy import create_engine

    from config.settings import get_settings

    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(url).connect() as conn:
        run_with(conn)
else:
    run_with(connection)
