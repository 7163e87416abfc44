"""Jobs: the rights-filtered list."""
