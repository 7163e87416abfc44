"""``GET /workflows_statistics``: workflow status changes counted in time bins (api.md §7.1)."""
