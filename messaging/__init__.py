"""Messaging: the outbox and its declared lifecycle, claims, the relay, reconciliation,
delivery statuses, channels and the staff digest."""
