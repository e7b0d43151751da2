"""The SMTP pool's pipelined transactions (RFC 2920) against a real server on loopback that offers
PIPELINING and answers from a script, one line at a time, as Postfix does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from mailer.adapters.smtp_pool import SmtpPool
from mailer.config import Settings
from mailer.domain.model import SmtpAttempt, SmtpPhase
from mailer.service_layer.ports import OutgoingMail

# Replies to one transaction, by command: what a test changes.
DEFAULT_REPLIES = {"MAIL": "250 2.1.0 Ok", "RCPT": "250 2.1.5 Ok", "DATA": "354 End data with <CR><LF>.<CR><LF>"}


@dataclass
class ScriptedServer:
    """Offers PIPELINING. `group_first`: MAIL is answered only once RCPT and DATA have arrived too,
    so a client waiting for MAIL's reply before writing RCPT is never answered (and times out)."""

    group_first: bool = False
    # Per transaction (in order), replies overriding DEFAULT_REPLIES; "hangup" closes instead.
    scripts: list[dict[str, str]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    sessions: int = 0
    transactions: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        writer.write(b"220 scripted.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].decode().upper()
                self.commands.append(verb)
                if verb == "EHLO":
                    writer.write(b"250-scripted.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n")
                elif verb in ("RSET", "NOOP"):
                    writer.write(b"250 2.0.0 Ok\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 Bye\r\n")
                    break
                elif verb == "MAIL":
                    number, self.transactions = self.transactions, self.transactions + 1
                    script = {**DEFAULT_REPLIES, **(self.scripts[number] if number < len(self.scripts) else {})}
                    if not await self._envelope(reader, writer, script):
                        break
            await writer.drain()
        finally:
            writer.close()

    async def _envelope(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: dict[str, str]) -> bool:
        replies = []
        for verb in ("MAIL", "RCPT", "DATA"):
            if script[verb] == "hangup":
                await writer.drain()
                return False
            replies.append(script[verb].encode() + b"\r\n")
            if verb == "DATA":
                break
            if not self.group_first:
                writer.write(replies.pop())
            next_line = await asyncio.wait_for(reader.readline(), 2)
            self.commands.append(next_line[:4].decode().upper())
        writer.write(b"".join(replies))
        if not script["DATA"].startswith("354"):
            return True
        lines = [await reader.readline()]
        while lines[-1] != b".\r\n":
            lines.append(await reader.readline())
        self.messages.append(b"".join(lines))
        writer.write(b"250 2.0.0 Ok: queued\r\n" if len(lines) > 1 else b"554 5.5.1 No valid recipients\r\n")
        return True


Serve = Callable[..., Awaitable[tuple[ScriptedServer, int]]]


@pytest.fixture
async def scripted() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def serve(**options: object) -> tuple[ScriptedServer, int]:
        script = ScriptedServer(**options)
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        servers.append(server)
        return script, server.sockets[0].getsockname()[1]

    yield serve
    for server in servers:
        server.close()


async def send(port: int, count: int) -> list[SmtpAttempt]:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=5.0,
        smtp_pool_size=1,
    )
    pool = SmtpPool(settings)
    mails = [
        OutgoingMail("news@acme.test", f"p{n}@example.com", f"Subject: {n}\r\n\r\n.line {n}\r\n".encode())
        for n in range(count)
    ]
    try:
        return [await pool.send(mail, start_before=time.monotonic() + 60) for mail in mails]
    finally:
        await pool.aclose()


async def test_mail_rcpt_and_data_go_in_one_write_where_pipelining_is_offered(scripted):
    server, port = await scripted(group_first=True)
    attempts = await send(port, 3)
    assert [(a.code, a.phase) for a in attempts] == [(250, SmtpPhase.DATA_SENT)] * 3
    assert server.sessions == 1
    assert server.messages == [f"Subject: {n}\r\n\r\n..line {n}\r\n.\r\n".encode() for n in range(3)]  # dot-stuffed


async def test_a_refused_recipient_whose_data_was_accepted_gets_an_empty_message_then_a_reset(scripted):
    # RFC 2920 lets a server answer DATA with 354 although every RCPT failed: the client must
    # still end the content, and its recipient's outcome is the RCPT refusal.
    server, port = await scripted(scripts=[{"RCPT": "550 5.1.1 No such user"}])
    first, second = await send(port, 2)
    assert (first.code, first.phase, first.reply) == (550, SmtpPhase.RCPT, "5.1.1 No such user")
    assert (second.code, second.phase) == (250, SmtpPhase.DATA_SENT)
    assert server.messages[0] == b".\r\n" and server.messages[1].startswith(b"Subject: 1")
    second_mail = [n for n, verb in enumerate(server.commands) if verb == "MAIL"][1]
    assert server.commands[second_mail - 1] == "RSET"
    assert server.sessions == 1


async def test_a_refused_data_is_the_recipients_outcome_and_nothing_is_sent(scripted):
    server, port = await scripted(scripts=[{"DATA": "554 5.7.1 Rejected"}])
    first, second = await send(port, 2)
    assert (first.code, first.phase) == (554, SmtpPhase.DATA)
    assert (second.code, second.phase) == (250, SmtpPhase.DATA_SENT)
    assert len(server.messages) == 1


async def test_a_421_to_mail_then_a_hangup_is_the_servers_reply_not_a_lost_connection(scripted):
    # The throttling reply is what slows every replica for the domain; losing it to the hangup
    # that follows would turn it into an anonymous connection error.
    server, port = await scripted(scripts=[{"MAIL": "421 4.7.0 Too many messages, slow down", "RCPT": "hangup"}])
    first, second = await send(port, 2)
    assert (first.code, first.phase) == (421, SmtpPhase.MAIL)
    assert (second.code, second.phase) == (250, SmtpPhase.DATA_SENT)
    assert server.sessions == 2  # a new session for the next message


async def test_a_hangup_before_the_content_is_not_an_unknown_outcome(scripted):
    # Nothing of the message was written before DATA's 354: safe to try again, never `unknown`.
    server, port = await scripted(scripts=[{"DATA": "hangup"}])
    first, second = await send(port, 2)
    assert first.code is None and first.phase is SmtpPhase.DATA
    assert (second.code, second.phase) == (250, SmtpPhase.DATA_SENT)
    assert server.messages == [b"Subject: 1\r\n\r\n..line 1\r\n.\r\n"]
