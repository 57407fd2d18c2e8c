"""Customer e-mails (docs/emails.md): an outbox row per event, sent by the worker."""
