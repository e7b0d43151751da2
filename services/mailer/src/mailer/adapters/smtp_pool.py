"""A pool of persistent SMTP connections (aiosmtplib): one connection carries many messages, the
pool sends on all of them concurrently, and a broken connection is replaced on its next use.

Sessions are plain, STARTTLS or implicit TLS, with AUTH when a username is set (`Settings.smtp_*`);
a session is renewed after `smtp_max_messages_per_connection` messages, and one the server closed
while idle is reopened for the message that finds it closed."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX
from aiosmtplib.typing import SMTPStatus
from opentelemetry import trace

from ..config import Settings
from ..domain.model import SmtpAttempt, SmtpPhase
from ..service_layer.metrics import timed_smtp
from ..service_layer.ports import OutgoingMail

log = logging.getLogger(__name__)

# A connection idle longer than this may have been dropped by the server: probe it with NOOP before
# a transaction, rather than discover it mid-transaction (which would need a retry of the message).
STALE_AFTER_SECONDS = 10.0
STOPPING = "mailer stopping; released for another replica"
# Replies after which the server closes the session (RFC 5321 §3.8).
_CLOSING_CODES = frozenset({421})
_SESSION_ERRORS = (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPHeloError, aiosmtplib.SMTPAuthenticationError)


# A disconnect the first command of a reused session meets: the server dropped it while idle.
_DROPPED = (aiosmtplib.SMTPServerDisconnected, ConnectionError)


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    last_used: float = 0.0
    # Transactions started on the current session.
    messages: int = 0


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
            "cert_bundle": str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        }
        self._timeout = settings.smtp_timeout
        self._max_messages = settings.smtp_max_messages_per_connection
        # Connections whose last envelope was refused half-way: RSET before their next transaction.
        self._pending_resets: set[aiosmtplib.SMTP] = set()
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(settings.smtp_pool_size):
            self._idle.put_nowait(_Connection(aiosmtplib.SMTP(**self._options)))
        self._stopping = False

    def stop_starting(self) -> None:
        """Start no new SMTP transaction (the mailer is stopping): the ones in flight finish, every mail
        not yet handed to a connection is returned not attempted, to be released for another replica."""
        self._stopping = True

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        """Send concurrently over the pool, one attempt per mail, in order. A mail not handed to a
        connection before `start_before` (time.monotonic), or after `stop_starting()`, is not attempted."""
        trace.get_current_span().set_attributes({"server.address": self._options["hostname"], "server.port": self._options["port"]})
        return list(await asyncio.gather(*(self.send(mail, start_before) for mail in mails)))

    async def send(self, mail: OutgoingMail, start_before: float) -> SmtpAttempt:
        if self._stopping:
            return SmtpAttempt.not_attempted(STOPPING)
        connection = await self._idle.get()
        try:
            if self._stopping:
                return SmtpAttempt.not_attempted(STOPPING)
            if time.monotonic() >= start_before:
                return SmtpAttempt.not_attempted()
            return await timed_smtp(self._transaction(connection, mail))
        finally:
            connection.last_used = time.monotonic()
            self._idle.put_nowait(connection)

    async def _transaction(self, connection: _Connection, mail: OutgoingMail) -> SmtpAttempt:
        """One transaction, step by step, so that every reply (or its absence) is known with the
        phase it ended in: aiosmtplib's `sendmail` hides whether the content had been written when a
        timeout or disconnect struck, and only then is the outcome unknown (ARCHITECTURE §6 rule 4)."""
        smtp = connection.smtp
        phase = SmtpPhase.SESSION
        try:
            async with asyncio.timeout(self._timeout):
                await self._ensure_connected(connection)
                # CRLF line endings already (the port's contract): normalising 10 KB per message was
                # 5% of the mailer's CPU.
                phase = SmtpPhase.MAIL
                await self._mail_from(connection, mail.mail_from, len(mail.data))
                phase = SmtpPhase.RCPT
                await smtp.rcpt(mail.rcpt_to)
                phase = SmtpPhase.DATA
                start = await smtp.execute_command(b"DATA")
                if start.code != SMTPStatus.start_input:
                    raise aiosmtplib.SMTPDataError(start.code, start.message)
                protocol = smtp.protocol
                if protocol is None:
                    raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                # The content as aiosmtplib's `data()` writes it: dot-stuffed, ended by a lone dot.
                # `write` only buffers (it raises, before anything went out, if the connection is
                # gone); from here on the server may have the whole message. No await between write and read_response: the reply cannot come unexpected.
                protocol.write(PERIOD_REGEX.sub(b"..", mail.data) + b".\r\n")
                phase = SmtpPhase.DATA_SENT
                final = await protocol.read_response(timeout=self._timeout)
            if final.code != SMTPStatus.completed:
                return self._refused(smtp, phase, final.code, final.message, reset=False)
            return SmtpAttempt(code=final.code, reply=final.message, phase=phase)
        except _SESSION_ERRORS as exc:
            # Refused at greeting, EHLO, STARTTLS or login: the server or our configuration is at
            # fault, not this recipient, so this must never count as the recipient's 5xx.
            self._discard(smtp)
            return SmtpAttempt(code=exc.code, reply=exc.message, phase=SmtpPhase.SESSION)
        except aiosmtplib.SMTPResponseException as exc:
            # A reply refusing MAIL FROM, RCPT TO or DATA: the envelope is reset for the next message.
            return self._refused(smtp, phase, exc.code, exc.message, reset=phase is not SmtpPhase.DATA_SENT)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused / lost / timed out: the session's state is unknown, start afresh.
            # After the content was written this is an unknown outcome (phase DATA_SENT).
            self._discard(smtp)
            return SmtpAttempt(code=None, reply=f"{type(exc).__name__}: {exc}".strip(": "), phase=phase)

    async def _mail_from(self, connection: _Connection, sender: str, size: int) -> None:
        smtp = connection.smtp
        reused = connection.messages > 0
        connection.messages += 1
        try:
            await smtp.mail(sender, options=_size_option(smtp, size))
        except _DROPPED:
            if not reused:
                raise
            # Nothing of this message reached the server: open a new session and start again.
            log.info("SMTP session closed by the server while idle; reconnecting")
            self._discard(smtp)
            await self._connect(connection)
            connection.messages = 1
            await smtp.mail(sender, options=_size_option(smtp, size))

    def _refused(self, smtp: aiosmtplib.SMTP, phase: SmtpPhase, code: int, message: str, reset: bool) -> SmtpAttempt:
        if code in _CLOSING_CODES:
            self._discard(smtp)
        elif reset:
            self._pending_resets.add(smtp)
        return SmtpAttempt(code=code, reply=message, phase=phase)

    async def _ensure_connected(self, connection: _Connection) -> None:
        smtp = connection.smtp
        if smtp in self._pending_resets:
            # The previous transaction on this connection was refused mid-envelope.
            self._pending_resets.discard(smtp)
            if smtp.is_connected:
                try:
                    await smtp.rset()
                except (aiosmtplib.SMTPException, OSError):
                    self._discard(smtp)
        if smtp.is_connected and time.monotonic() - connection.last_used > STALE_AFTER_SECONDS:
            try:
                await smtp.noop()
            except (aiosmtplib.SMTPException, OSError):
                self._discard(smtp)
        if smtp.is_connected and self._max_messages is not None and connection.messages >= self._max_messages:
            # Servers drop a session after so many messages: leave before they do, politely.
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
            self._discard(smtp)
        if not smtp.is_connected:
            await self._connect(connection)

    @staticmethod
    async def _connect(connection: _Connection) -> None:
        await connection.smtp.connect()
        connection.messages = 0

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


def _size_option(smtp: aiosmtplib.SMTP, size: int) -> list[str]:
    # RFC 1870 (as aiosmtplib's sendmail): the octets with CRLF line endings.
    return [f"size={size}"] if smtp.supports_extension("size") else []
