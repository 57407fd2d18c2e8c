"""The worker's half of customer e-mails: send one outbox row (queue `email`).

An SMTP failure (the server refused, could not be reached, timed out) is retried after 30 s,
2, 8 and 32 minutes, then 2 and 8.5 hours; any other error (a template that cannot render)
fails the job at once. A row sent already is not sent again.
"""

from __future__ import annotations

import smtplib

from procrastinate.contrib.django import app

from shopkeeper.jobs.backoff import Backoff, exponential
from shopkeeper.notifications.sending import send_notification

RETRY = Backoff(exponential(first=30, factor=4, tries=7), retry_on=(smtplib.SMTPException, OSError))


@app.task(name="notifications.send_email", queue="email", retry=RETRY)
def send_email(notification_id: int) -> None:
    send_notification(notification_id)
