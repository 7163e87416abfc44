"""The change listeners of a StepFlow process (``stepflow.changes``), installed at start.

Every process that changes state calls :func:`install`: the web (the plugin), the actors
(``stepflow.actors.setup``), the bridge and the clock. Installing again, with other settings,
replaces each listener (they are registered by name).
"""

from __future__ import annotations

from stepflow.feed import install_feed
from stepflow.metrics import counting
from stepflow.orchestration.announcements import install_announcements
from stepflow.settings import Settings
from stepflow.wire.handover import ANNOUNCE_ACTOR, actor_message
from stepflow.wire.publisher import ConfirmingPublisher, NotConfirmed


def install(settings: Settings, hand_over: ConfirmingPublisher) -> None:
    """Register every listener, configured by ``settings``; announcements are handed to the
    ``announce`` actor through ``hand_over``."""

    def announce(outbox_ids: list[int]) -> None:
        outcomes = hand_over.publish_many([actor_message(ANNOUNCE_ACTOR, outbox_id) for outbox_id in outbox_ids])
        if not all(outcomes):
            raise NotConfirmed("announcements not handed over (the clock relays them)")

    install_announcements(settings, announce)
    counting.install(settings)
    install_feed()
