"""Numbered schema migrations (see storage/migrate.py for the format)."""
