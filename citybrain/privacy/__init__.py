"""Privacy of what the pool publishes: small-cell suppression, re-identification risk, grades, free-text
de-identification and optional differential privacy. Rules and thresholds are read from catalog/privacy.yaml."""
