"""The orchestration domain: what StepFlow does to workflows and jobs, under the workflow lock.

Everything here runs inside a transaction handed in by the caller (the bridge's batches of
job answers, an actor, the clock, the web's workflow events) and returns what the
transaction owes (:class:`~stepflow.orchestration.outbox.Owed`), which the caller sends after
commit (the bridge through its courier, off the deciding thread). The decisions themselves
(which steps start, with which parameters, which transitions are allowed) are the pure
engine's (``stepflow.engine``).

- ``locked_workflow``: the locked workflow row, its step counters and its jobs;
- ``write_behind``: the rows a transaction writes late, together, before its next statement;
- ``decisions``: the job answers the bridge reads together, decided in one transaction;
- ``answers``: what a worker's answer does to its job;
- ``advance``: starting every step that may start;
- ``events``: retry, abort, pause, resume, stop, update, delete;
- ``live``: live workflows' jobs and their worker manager;
- ``leases``: giving up jobs whose worker went silent or moved on;
- ``worker_news``: what StepFlow heard from workers about running jobs;
- ``announcements``: what state changes announce to people (notification hooks, Slack);
- ``outbox``: sending what a commit owes, at once or by a courier thread;
- ``dispatch_marks``: marking confirmed orders dispatched, off the senders' threads;
- ``backlog``: the background thread under the courier and the marks;
- ``steps_cache``, ``counters_cache``: launched workflows' steps, and the step counters a
  process committed, kept per process (``process_cache``).
"""
