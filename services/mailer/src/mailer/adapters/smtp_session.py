"""The transactions of an SMTP session that aiosmtplib opened (greeting, EHLO, STARTTLS or implicit
TLS, AUTH): MAIL, RCPT and DATA written at once where the server offers PIPELINING (RFC 2920), their
replies read in order, then the content. Decision 0024.

aiosmtplib's protocol keeps one reply per command sent and drops whatever else arrives, so it
cannot read the three replies of a pipelined group; this protocol takes its transport over once the
session is open (`transport.set_protocol`) and queues every reply. Two round trips per message
instead of four, and no lock, task or timer per command: the SMTP share of a mailer's CPU.
"""

from __future__ import annotations

import asyncio
import collections

import aiosmtplib
from aiosmtplib.protocol import COMMAND_INJECTION_REGEX, PERIOD_REGEX
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

# The replies that accept MAIL FROM, RCPT TO and DATA, in that order; any other refuses it.
ENVELOPE_ACCEPTED = (
    (SMTPStatus.completed,),
    (SMTPStatus.completed, SMTPStatus.will_forward),
    (SMTPStatus.start_input,),
)
# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; a server's multi-line reply a few of them.
_MAX_REPLY_BYTES = 64 * 1024


class _Replies(asyncio.Protocol):
    """Every reply the server sends, parsed and queued in order (multi-line replies joined by LF, as
    aiosmtplib joins them)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._queue: collections.deque[SMTPResponse] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wanted = 0
        self._error: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        try:
            self._parse()
        except aiosmtplib.SMTPException as exc:
            self._fail(exc)
            return
        if self._waiter is not None and not self._waiter.done() and len(self._queue) >= self._wanted:
            self._waiter.set_result(None)

    def _parse(self) -> None:
        while True:
            lines: list[bytes] = []
            offset = 0
            while (end := self._buffer.find(b"\n", offset)) != -1:
                line = bytes(self._buffer[offset : end + 1])
                offset = end + 1
                lines.append(line)
                if line[3:4] != b"-":
                    break
            else:
                if len(self._buffer) > _MAX_REPLY_BYTES:
                    raise aiosmtplib.SMTPException("Response too long")
                return
            try:
                code = int(lines[0][:3])
            except ValueError:
                raise aiosmtplib.SMTPException(f"Malformed SMTP response line: {lines[0]!r}") from None
            message = b"\n".join(line[4:].strip(b" \t\r\n") for line in lines)
            self._queue.append(SMTPResponse(code, message.decode("utf-8", "surrogateescape")))
            del self._buffer[:offset]

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        error = aiosmtplib.SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._error)
            self._waiter.exception()  # retrieved: nobody may be waiting when the server goes away

    def forget_unsolicited(self) -> None:
        """Before a new command: a reply already queued answers nothing we asked (e.g. a 421 sent
        while the session was idle, just before the server closed it), as aiosmtplib drops it too."""
        self._queue.clear()

    async def read(self, count: int, *, partial: bool = False) -> list[SMTPResponse]:
        """The next `count` replies. When the connection is lost first: raises, or with `partial`,
        returns the replies that did arrive, if any (a 421 refusing MAIL, then the server hung up)."""
        while len(self._queue) < count:
            if self._error is not None:
                if partial and self._queue:
                    break
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            self._wanted = count
            try:
                await self._waiter
            except aiosmtplib.SMTPException:
                if not (partial and self._queue):
                    raise
            finally:
                self._waiter = None
        return [self._queue.popleft() for _ in range(min(count, len(self._queue)))]


class SmtpSession:
    """An open session: `envelope`, `write_content` and `reply` make one mail transaction, `command`
    runs another command (RSET, NOOP, QUIT). Replies are returned, never raised; a lost connection
    raises SMTPServerDisconnected."""

    @classmethod
    async def open(cls, smtp: aiosmtplib.SMTP) -> SmtpSession:
        """Connect with aiosmtplib (greeting, TLS, AUTH), say EHLO (HELO for an old server) unless
        STARTTLS or AUTH had it said already, and take the session over."""
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                if not smtp.is_connected:
                    raise
                await smtp.helo()
        return cls(smtp)

    def __init__(self, smtp: aiosmtplib.SMTP):
        transport = smtp.transport
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.pipelining = smtp.supports_extension("pipelining")
        self._size = smtp.supports_extension("size")
        self._replies = _Replies()
        transport.set_protocol(self._replies)
        self._transport = transport

    @property
    def is_open(self) -> bool:
        return not self._transport.is_closing()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()

    async def command(self, verb: bytes) -> SMTPResponse:
        self._replies.forget_unsolicited()
        self._write(verb + b"\r\n")
        (reply,) = await self._replies.read(1)
        return reply

    async def envelope(self, mail_from: str, rcpt_to: str, size: int) -> tuple[SMTPResponse, ...]:
        """MAIL FROM, RCPT TO and DATA: in one write when pipelining (RFC 2920 §3.1: DATA ends the
        group), else each after the previous one's reply. Returns the replies received: three when
        all went through; fewer after a refusal when not pipelining, or when the server hung up
        after answering some of a pipelined group."""
        mail = b"MAIL FROM:<" + _arg(mail_from) + b">" + (b" SIZE=%d" % size if self._size else b"") + b"\r\n"
        rcpt = b"RCPT TO:<" + _arg(rcpt_to) + b">\r\n"
        self._replies.forget_unsolicited()
        if self.pipelining:
            self._write(mail + rcpt + b"DATA\r\n")
            return tuple(await self._replies.read(3, partial=True))
        replies: list[SMTPResponse] = []
        for line, accepted in zip((mail, rcpt, b"DATA\r\n"), ENVELOPE_ACCEPTED, strict=True):
            self._write(line)
            (reply,) = await self._replies.read(1)
            replies.append(reply)
            if reply.code not in accepted:
                break
        return tuple(replies)

    def write_content(self, data: bytes) -> None:
        """The content as aiosmtplib's `data()` writes it: dot-stuffed, ended by a lone dot. `write`
        only buffers; from here on the server may have the whole message. Most messages have no
        line starting with a dot: looking for one is a tenth of the cost of the substitution."""
        if data.startswith(b".") or b"\n." in data:
            data = PERIOD_REGEX.sub(b"..", data)
        self._write(data + b".\r\n")

    async def reply(self) -> SMTPResponse:
        (reply,) = await self._replies.read(1)
        return reply

    def _write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._transport.write(data)


def _arg(address: str) -> bytes:
    encoded = address.encode("ascii")
    if COMMAND_INJECTION_REGEX.search(encoded) or b">" in encoded:
        raise ValueError(f"address {address!r} cannot go in an SMTP command")
    return encoded
