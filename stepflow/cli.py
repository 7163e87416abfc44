"""The ``stepflow`` command: one sub-command per process type, plus the one-shot tasks.

``serve``, ``actors``, ``bridge`` and ``clock`` are the Procfile's lines; ``migrate`` applies
the database migrations; ``hash-password`` prints a ``STEPFLOW_AUTH_USERS`` password hash.
A setting that cannot be parsed stops every command with one line naming it.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import os
import signal
import sys
from collections.abc import Callable, Sequence

from stepflow.logs import configure_logging
from stepflow.metrics.directory import export_multiprocess_dir
from stepflow.settings import Settings, SettingsError, load_settings

PROCESS_TYPES = ("serve", "actors", "bridge", "clock")
"""The Procfile's commands: they share the metrics directory (``stepflow.metrics.directory``)."""


def _on_term(stop: Callable[[], None]) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from stepflow.api.app import create_app

    app = create_app(settings)
    # A page of full views allocates thousands of small objects; with the default thresholds
    # the collector's full passes over everything imported put 50–90 ms tails on p99
    # (bench/api_lists.py). Freeze what exists at start and collect young objects less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(app, host=args.host, port=settings.port, log_config=None, access_log=False)


def actors(settings: Settings, args: argparse.Namespace) -> None:
    """Run every Dramatiq actor (``dramatiq stepflow.actors:setup`` with the given options)."""
    argv = [sys.executable, "-m", "dramatiq", "stepflow.actors:setup", *args.dramatiq_args]
    os.execv(sys.executable, argv)


def bridge(settings: Settings, args: argparse.Namespace) -> None:
    from stepflow import listeners
    from stepflow.actors import bridge_handlers
    from stepflow.metrics.messages import bridge_observer
    from stepflow.resources import Resources
    from stepflow.wire.bridge import Bridge

    resources = Resources.open(settings)
    listeners.install(settings, resources.hand_over)
    consumer = Bridge(
        settings.amqp_url,
        bridge_handlers(resources),
        resources.dead_letters,
        hand_over=resources.hand_over,
        observe=bridge_observer(settings),
    )
    _on_term(consumer.stop)
    try:
        consumer.run()
    finally:
        resources.close()


def clock(settings: Settings, args: argparse.Namespace) -> None:
    from stepflow import listeners
    from stepflow.clock import Clock, Periodic
    from stepflow.idle_queues import IdleQueueWatch, broker_consumer_counts
    from stepflow.orchestration.announcements import ANNOUNCE
    from stepflow.orchestration.answers import BusyResend
    from stepflow.orchestration.leases import Leases, settle_unanswered_jobs
    from stepflow.resources import Resources
    from stepflow.wire.direct_messaging import publish_direct_message, status_request
    from stepflow.wire.handover import ANNOUNCE_ACTOR, LAUNCH_WORKFLOW, actor_message

    resources = Resources.open(settings)
    listeners.install(settings, resources.hand_over)

    def ask_workers_status() -> None:
        publish_direct_message(resources.publisher, status_request())

    leases = Leases(
        default=settings.job_lease,
        per_queue=settings.job_leases,
        grace=settings.workers_status_interval,
        busy=BusyResend.of(settings),
    )

    idle_queues = IdleQueueWatch(resources.sessions, broker_consumer_counts(settings.amqp_url))

    def settle_unanswered() -> None:
        settle_unanswered_jobs(resources.sessions, resources.send_owed, leases, settings.workers_work_directory)

    ticker = Clock(
        resources.sessions,
        {
            LAUNCH_WORKFLOW.actor_name: lambda row: resources.hand_over.send(
                actor_message(LAUNCH_WORKFLOW, row.payload["workflow_id"])
            ),
            ANNOUNCE: lambda row: resources.hand_over.send(actor_message(ANNOUNCE_ACTOR, row.id)),
        },
        resources.resend,
        interval=settings.clock_interval,
        outbox_resend_after=settings.outbox_resend_after,
        dispatch_resend_after=settings.dispatch_resend_after,
        periodic=[
            Periodic("workers status", settings.workers_status_interval, ask_workers_status),
            # Leases are minutes long and abandonment shows in status answers: once per broadcast is enough.
            Periodic("unanswered jobs", settings.workers_status_interval, settle_unanswered),
            Periodic("idle queues", settings.workers_status_interval, idle_queues.check),
        ],
    )
    _on_term(ticker.stop)
    ticker.run()


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    from stepflow.migrate import ensure_database, upgrade

    ensure_database(settings.database_url)
    upgrade(settings.database_url)


def hash_password(settings: Settings, args: argparse.Namespace) -> None:
    from stepflow.security import hash_password as hash_

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Password: ")
    print(hash_(password))


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="stepflow", description=__doc__.splitlines()[0])
    commands = main_parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="the REST API on $PORT (default 4000)")
    serve_parser.add_argument("--host", default=os.environ.get("STEPFLOW_HOST", "0.0.0.0"))
    serve_parser.set_defaults(run=serve)
    commands.add_parser("actors", help="every Dramatiq actor (extra options go to dramatiq)").set_defaults(run=actors)
    commands.add_parser("bridge", help="consume the workers' answers").set_defaults(run=bridge)
    commands.add_parser("clock", help="periodic sweeps (one active at a time)").set_defaults(run=clock)
    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=migrate)
    commands.add_parser("hash-password", help="print a password hash for STEPFLOW_AUTH_USERS").set_defaults(
        run=hash_password
    )
    return main_parser


def main(argv: Sequence[str] | None = None) -> None:
    main_parser = parser()
    args, extra = main_parser.parse_known_args(argv)
    if extra and args.command != "actors":
        main_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dramatiq_args = extra
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"stepflow: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    if args.command in PROCESS_TYPES:
        settings = export_multiprocess_dir(settings)
    args.run(settings, args)


if __name__ == "__main__":
    main()
