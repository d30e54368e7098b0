"""Data governance: classification of the pool and its build-time check (docs/GOVERNANCE.md)."""
