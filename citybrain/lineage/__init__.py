"""Traceability (来源可溯、去向可查): which deliveries and runs each published table and row was built from."""
