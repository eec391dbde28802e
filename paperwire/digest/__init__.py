"""Email: double opt-in subscriptions, digest mails built from templates, an outbox delivered over SMTP."""
