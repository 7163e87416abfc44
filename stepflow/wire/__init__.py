"""The MCAI protocol: topology, message types, job-order encoding, publisher and bridge."""
