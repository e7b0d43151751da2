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
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus
from opentelemetry import trace

from ..config import Settings
from ..domain.model import SmtpAttempt, SmtpPhase
from ..service_layer.metrics import timed_smtp
from ..service_layer.ports import OutgoingMail
from .smtp_session import ENVELOPE_ACCEPTED, SmtpSession

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
    # Opens sessions (greeting, EHLO, TLS, AUTH); the open session's transactions are `session`'s.
    smtp: aiosmtplib.SMTP
    session: SmtpSession | None = None
    last_used: float = 0.0
    # Transactions started on the current session.
    messages: int = 0
    # The last transaction was refused mid-envelope: RSET before the next one.
    needs_reset: bool = False

    @property
    def is_open(self) -> bool:
        return self.session is not None and self.session.is_open

    def discard(self) -> None:
        """Close the session; the next transaction opens a new one."""
        if self.session is not None:
            self.session.close()
            self.session = None
        self.smtp.close()  # aiosmtplib forgets the session it opened (and its connect lock)
        self.needs_reset = False


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
        """One transaction, so that every reply (or its absence) is known with the phase it ended
        in: aiosmtplib's `sendmail` hides whether the content had been written when a timeout or
        disconnect struck, and only then is the outcome unknown (ARCHITECTURE §6 rule 4)."""
        phase = SmtpPhase.SESSION
        try:
            async with asyncio.timeout(self._timeout):
                await self._ensure_connected(connection)
                # CRLF line endings already (the port's contract): normalising 10 KB per message was
                # 5% of the mailer's CPU.
                phase = SmtpPhase.MAIL
                session, replies = await self._envelope(connection, mail)
                for phase, reply, accepted in zip(_ENVELOPE_PHASES, replies, ENVELOPE_ACCEPTED, strict=False):
                    if reply.code not in accepted:
                        return await self._refused_envelope(connection, phase, reply, replies)
                if len(replies) < len(_ENVELOPE_PHASES):  # all accepted, then the server hung up
                    phase = _ENVELOPE_PHASES[len(replies)]
                    raise aiosmtplib.SMTPServerDisconnected("Connection lost")
                session.write_content(mail.data)
                phase = SmtpPhase.DATA_SENT
                final = await session.reply()
            if final.code != SMTPStatus.completed:
                return self._refused(connection, phase, final.code, final.message, reset=False)
            return SmtpAttempt(code=final.code, reply=final.message, phase=phase)
        except _SESSION_ERRORS as exc:
            # Refused at greeting, EHLO, STARTTLS or login: the server or our configuration is at
            # fault, not this recipient, so this must never count as the recipient's 5xx.
            connection.discard()
            return SmtpAttempt(code=exc.code, reply=exc.message, phase=SmtpPhase.SESSION)
        except aiosmtplib.SMTPResponseException as exc:
            # Another refusal while the session was being opened (e.g. of STARTTLS).
            connection.discard()
            return SmtpAttempt(code=exc.code, reply=exc.message, phase=phase)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused / lost / timed out: the session's state is unknown, start afresh.
            # After the content was written this is an unknown outcome (phase DATA_SENT).
            connection.discard()
            return SmtpAttempt(code=None, reply=f"{type(exc).__name__}: {exc}".strip(": "), phase=phase)

    async def _envelope(self, connection: _Connection, mail: OutgoingMail) -> tuple[SmtpSession, tuple[SMTPResponse, ...]]:
        reused = connection.messages > 0
        connection.messages += 1
        session = _open(connection)
        try:
            return session, await session.envelope(mail.mail_from, mail.rcpt_to, len(mail.data))
        except _DROPPED:
            if not reused:
                raise
        # The server closed the session while it was idle, and nothing of this message reached
        # it (no content is written before DATA's 354): open a new session and start again.
        log.info("SMTP session closed by the server while idle; reconnecting")
        connection.discard()
        await self._connect(connection)
        connection.messages = 1
        session = _open(connection)
        return session, await session.envelope(mail.mail_from, mail.rcpt_to, len(mail.data))

    async def _refused_envelope(
        self, connection: _Connection, phase: SmtpPhase, reply: SMTPResponse, replies: tuple[SMTPResponse, ...]
    ) -> SmtpAttempt:
        """MAIL FROM, RCPT TO or DATA refused: the recipient's outcome is that reply. A pipelined DATA
        the server accepted although the envelope failed gets an empty content, which it refuses or
        drops for want of recipients; the envelope is reset before the next message."""
        if len(replies) == len(_ENVELOPE_PHASES) and replies[-1].code == SMTPStatus.start_input:
            session = _open(connection)
            session.write_content(b"")
            await session.reply()
        return self._refused(connection, phase, reply.code, reply.message, reset=True)

    def _refused(self, connection: _Connection, phase: SmtpPhase, code: int, message: str, reset: bool) -> SmtpAttempt:
        if code in _CLOSING_CODES:
            connection.discard()
        elif reset:
            connection.needs_reset = True
        return SmtpAttempt(code=code, reply=message, phase=phase)

    async def _ensure_connected(self, connection: _Connection) -> None:
        if connection.is_open and connection.needs_reset:
            # The previous transaction on this connection was refused mid-envelope.
            connection.needs_reset = False
            await self._probe(connection, b"RSET")
        if connection.is_open and time.monotonic() - connection.last_used > STALE_AFTER_SECONDS:
            await self._probe(connection, b"NOOP")
        if connection.is_open and self._max_messages is not None and connection.messages >= self._max_messages:
            # Servers drop a session after so many messages: leave before they do, politely.
            await self._probe(connection, b"QUIT")
            connection.discard()
        if not connection.is_open:
            connection.discard()
            await self._connect(connection)

    @staticmethod
    async def _probe(connection: _Connection, verb: bytes) -> None:
        """A command whose failure only means the session is done with: a new one is opened."""
        try:
            reply = await _open(connection).command(verb)
        except (aiosmtplib.SMTPException, OSError):
            connection.discard()
            return
        if reply.code != SMTPStatus.completed and verb != b"QUIT":
            connection.discard()

    @staticmethod
    async def _connect(connection: _Connection) -> None:
        connection.session = await SmtpSession.open(connection.smtp)
        connection.messages = 0

    async def aclose(self) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection.is_open:
                try:
                    await asyncio.wait_for(_open(connection).command(b"QUIT"), 2)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    pass
            connection.discard()


# The phase each reply of `SmtpSession.envelope` ends, as ENVELOPE_ACCEPTED orders them.
_ENVELOPE_PHASES = (SmtpPhase.MAIL, SmtpPhase.RCPT, SmtpPhase.DATA)


def _open(connection: _Connection) -> SmtpSession:
    if connection.session is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    return connection.session
