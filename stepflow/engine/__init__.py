"""Pure workflow decisions: which steps run, with which job parameters, and the statuses.

Nothing here does I/O: the actors load state, call these functions and persist the result,
so the same rules serve every process and are tested without servers.
"""
