"""The client's socket seen as messages: a StreamReader/Writer pair plus the sans-IO parser."""

from __future__ import annotations

import asyncio
import ssl

from gateway.wire import FrontendParser, RemoteProtocolError
from gateway.wire.frontend import FrontendMessage

READ_SIZE = 256 * 1024


class ClientGone(Exception):
    """The client closed the connection."""


class ClientChannel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_message: int) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrontendParser(max_message)
        peer = writer.get_extra_info("peername")
        self.address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer or "local")
        self.host = peer[0] if isinstance(peer, tuple) and peer else "local"
        self.tls = False

    async def fill(self) -> None:
        """Read more bytes into the parser; raises ClientGone at EOF."""
        data = await self.reader.read(READ_SIZE)
        if not data:
            raise ClientGone()
        self.parser.feed(data)

    async def next_event(self) -> FrontendMessage:
        """The next whole message (startup packet or typed), reading as needed."""
        while True:
            msg = self.parser.next_event()
            if msg is not None:
                return msg
            await self.fill()

    async def next_raw(self) -> tuple[int, bytes]:
        while True:
            raw = self.parser.next_raw()
            if raw is not None:
                return raw
            await self.fill()

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def start_tls(self, ctx: ssl.SSLContext) -> None:
        if self.parser.buffered:  # bytes sent in the clear after SSLRequest: a MITM could inject them
            raise RemoteProtocolError("unencrypted data after SSLRequest")
        await self.writer.start_tls(ctx)
        self.tls = True

    async def close(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            pass
