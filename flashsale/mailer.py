"""Outgoing mail. The default mailer writes each message to the server log."""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

log = logging.getLogger("flashsale.mail")


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str


class LogMailer:
    """Logs every message and keeps the last few in memory (the admin and tests can read them)."""

    def __init__(self, keep: int = 100):
        self.outbox: collections.deque[Message] = collections.deque(maxlen=keep)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = Message(to, subject, body)
        self.outbox.append(message)
        log.info("mail to %s: %s\n%s", to, subject, body)
