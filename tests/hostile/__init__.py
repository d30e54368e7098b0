"""Hostile-input corpus: deliveries built to break ingestion, each with its expected outcome."""
