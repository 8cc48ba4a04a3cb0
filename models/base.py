"""Declarative base and the UTC clock every model uses."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    if TYPE_CHECKING:
        # Every model maps one Table (none maps a join or a select), so its `__table__` is a Table, not any
        # FromClause as DeclarativeBase declares it.
        __table__: ClassVar[Table]


def utcnow() -> datetime:
    """Naive UTC: SQLite gives naive datetimes back, so we store naive UTC everywhere."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
