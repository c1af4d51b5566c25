"""Simulated tracker fleets for tests, benchmarks and drills, and detection-quality evaluation."""
