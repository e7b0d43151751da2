"""A pool of persistent SMTP connections (aiosmtplib): one connection carries many messages, the
pool sends on all of them concurrently, and a broken connection is replaced on its next use."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiosmtplib

from ..config import Settings
from ..domain.model import SmtpAttempt
from ..service_layer.ports import OutgoingMail

log = logging.getLogger(__name__)

# A connection idle longer than this may have been dropped by the server: probe it with NOOP before
# a transaction, rather than discover it mid-transaction (which would need a retry of the message).
STALE_AFTER_SECONDS = 10.0
# Replies after which the server closes the session (RFC 5321 §3.8).
_CLOSING_CODES = frozenset({421})
_SESSION_ERRORS = (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPHeloError, aiosmtplib.SMTPAuthenticationError)


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    last_used: float = 0.0


class SmtpPool:
    def __init__(self, settings: Settings):
        host, port = settings.smtp_address
        self._options = {
            "hostname": host,
            "port": port,
            "timeout": settings.smtp_timeout,
            "use_tls": settings.smtp_tls == "tls",
            # aiosmtplib upgrades opportunistically when start_tls is None; "none" means none.
            "start_tls": settings.smtp_tls == "starttls",
            "username": settings.smtp_username,
            "password": settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        }
        self._timeout = settings.smtp_timeout
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(settings.smtp_pool_size):
            self._idle.put_nowait(_Connection(aiosmtplib.SMTP(**self._options)))

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        """Send concurrently over the pool, one attempt per mail, in order. A mail not handed to a
        connection before `start_before` (time.monotonic) is not attempted."""
        return list(await asyncio.gather(*(self.send(mail, start_before) for mail in mails)))

    async def send(self, mail: OutgoingMail, start_before: float) -> SmtpAttempt:
        connection = await self._idle.get()
        try:
            if time.monotonic() >= start_before:
                return SmtpAttempt.not_attempted()
            return await self._transaction(connection, mail)
        finally:
            connection.last_used = time.monotonic()
            self._idle.put_nowait(connection)

    async def _transaction(self, connection: _Connection, mail: OutgoingMail) -> SmtpAttempt:
        smtp = connection.smtp
        try:
            async with asyncio.timeout(self._timeout):
                await self._ensure_connected(connection)
                _, reply = await smtp.sendmail(mail.mail_from, [mail.rcpt_to], mail.data)
            # sendmail returns normally only when the server answered the data with 2xx (it raises
            # otherwise); the reply code itself is not returned, 250 is the only 2xx after DATA.
            return SmtpAttempt(code=250, reply=reply)
        except _SESSION_ERRORS as exc:
            # Refused at greeting, EHLO, STARTTLS or login: the server or our configuration is at
            # fault, not this recipient, so this must never count as the recipient's 5xx.
            self._discard(smtp)
            return SmtpAttempt(code=None, reply=f"SMTP session refused: {exc.code} {exc.message}")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            return SmtpAttempt(code=refusal.code, reply=refusal.message)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in _CLOSING_CODES:
                self._discard(smtp)
            return SmtpAttempt(code=exc.code, reply=exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused / lost / timed out: the session's state is unknown, start afresh.
            self._discard(smtp)
            return SmtpAttempt(code=None, reply=f"{type(exc).__name__}: {exc}".strip(": "))

    async def _ensure_connected(self, connection: _Connection) -> None:
        smtp = connection.smtp
        if smtp.is_connected and time.monotonic() - connection.last_used > STALE_AFTER_SECONDS:
            try:
                await smtp.noop()
            except (aiosmtplib.SMTPException, OSError):
                self._discard(smtp)
        if not smtp.is_connected:
            await smtp.connect()

    @staticmethod
    def _discard(smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected:
            smtp.close()

    async def aclose(self) -> None:
        while not self._idle.empty():
            smtp = self._idle.get_nowait().smtp
            if smtp.is_connected:
                try:
                    await asyncio.wait_for(smtp.quit(), 2)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()
