"""Versioned SQL migrations, ``NNNN_name.sql``, shared by SQLite and PostgreSQL."""
