-- SQLite has one writer at a time: alert change ids already commit in order.
SELECT 1;
