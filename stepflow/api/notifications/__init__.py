"""Notifications: the websocket that relays committed state changes to the UIs (ours.md §3.7)."""
