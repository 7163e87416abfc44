"""``GET /metrics``: Prometheus metrics for scrapers (api.md §10, ours.md §3.10)."""
