"""Alerts: the lifecycle store (one unresolved alert per tracker and type), and its live broadcast."""
