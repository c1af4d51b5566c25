"""Notifications (CONTRACT 2.7): alerts pushed to webhooks and email, through a durable outbox."""
