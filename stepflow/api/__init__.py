"""The REST API (Litestar): one folder per resource, each with its controller and service."""
