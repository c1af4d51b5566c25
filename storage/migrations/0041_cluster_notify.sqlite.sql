-- Cluster mode needs PostgreSQL; an embedded SQLite store has one process and nothing to notify.
SELECT 1;
