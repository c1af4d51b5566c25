"""The shared backend: PostgreSQL through psycopg 3 and psycopg_pool (``KAWAL_DB=postgresql://...``)."""

from storage.postgres.database import PostgresDatabase

__all__ = ["PostgresDatabase"]
