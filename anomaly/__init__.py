"""Anomaly detection: one streaming detector per alert type, behind one small interface."""
