"""The change listeners of a StepFlow process (``stepflow.changes``), installed at start.

Every process that changes state calls :func:`install`: the web (the plugin), the actors
(``stepflow.actors``) and the clock. Installing again, with other settings, replaces each
listener (they are registered by name).
"""

from __future__ import annotations

from stepflow.feed import install_feed
from stepflow.metrics import counting
from stepflow.settings import Settings


def install(settings: Settings) -> None:
    """Register every listener, configured by ``settings``."""
    from stepflow.actors.announcements import install_announcements
    from stepflow.actors.notifications import announce

    install_announcements(settings, announce.send)
    counting.install(settings)
    install_feed()
