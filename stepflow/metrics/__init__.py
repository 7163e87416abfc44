"""Prometheus metrics (ours.md §3.10), aggregated across the processes of a host.

- :mod:`.directory`: ``PROMETHEUS_MULTIPROC_DIR``, exported by the ``stepflow`` command before
  anything imports prometheus-client, so every process writes its values to the same place;
- :mod:`.instruments`: the counters and the histogram every process updates;
- :mod:`.counting`: the after-commit listener that counts workflow and job changes;
- :mod:`.messages`: the Dramatiq middleware (actors) and the bridge's observer;
- :mod:`.state`: the gauges computed by SQL at each scrape (web process only);
- :mod:`.exposition`: what ``GET {prefix}/metrics`` serves.

Importing this package imports nothing else, so the command may import :mod:`.directory`
before prometheus-client is loaded.
"""
