"""The load generator's HTTP client: keep-alive HTTP/1.1 sockets on an asyncio protocol.

The load generator shares the machine's two cores with the system it measures, so every
millisecond it spends is taken from the gateway and PostgreSQL. The benchmarks first sent
their requests with httpx (about 2.1 ms of CPU per GraphQL request here), then with aiohttp
(about 0.35 ms). This client does only what the benchmarks need (plain HTTP to loopback, one
request at a time per socket, whole bodies delimited by a length or chunks, no HEAD; the
timeout bounds the connect and the answer each) on ``httptools``, the parser uvicorn uses, and
spends less still (``docs/scaling.md``, twenty-second round). Latencies are measured the same
way (encode, round trip, decode); the gateway's own CPU figures do not depend on the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import httptools
import msgspec

JSON_CONTENT = "application/json"


@dataclass(frozen=True)
class Reply:
    """A whole answer: status, headers (names in lower case) and body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:300]}")


class _Connection(asyncio.Protocol):
    """One socket, one request in flight: ``send`` writes it and answers its reply."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self.closed = False
        self.idle_since = 0.0

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"the server closed the connection ({exc or 'end of stream'})"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        reply = Reply(status, self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        if 100 <= status < 200:
            return  # an interim answer (103 Early Hints): the real one follows on this socket
        waiter, self._waiter = self._waiter, None
        if not self._parser.should_keep_alive() or waiter is None:
            # An answer nobody asked for would be taken for the next request's: drop the socket.
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class LoadClient:
    """At most ``connections`` keep-alive sockets to ``base_url`` (``http://host:port``), each
    closed after ``keepalive_seconds`` idle; with ``local_address`` (a 127.x.y.z loopback
    address) its sockets come from that address."""

    def __init__(
        self,
        base_url: str,
        connections: int,
        *,
        timeout: float,
        keepalive_seconds: float,
        local_address: str | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"the load client speaks plain HTTP only: {base_url!r}")
        self._host, self._port = url.hostname, url.port or 80
        self._host_header = url.netloc
        self._prefix = url.path.rstrip("/")
        self._timeout = timeout
        self._keepalive = keepalive_seconds
        self._local = None if local_address is None else (local_address, 0)
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        return await self.request("POST", path, json=json, content=content, headers=headers)

    async def get(
        self, path: str, *, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> Reply:
        return await self.request("GET", path, headers=headers, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        if method == "HEAD":
            # The parser cannot know a HEAD answer has no body, and would wait for it.
            raise ValueError("the load client does not send HEAD")
        given = {name.lower(): value for name, value in (headers or {}).items()}
        if json is not None:
            content = msgspec.json.encode(json)
            given.setdefault("content-type", JSON_CONTENT)
        body = content or b""
        target = f"{self._prefix}{path}" + (f"?{urlencode(params)}" if params else "")
        head = f"{method} {target} HTTP/1.1\r\nhost: {self._host_header}\r\n"
        if body or method in ("POST", "PUT", "PATCH"):
            given["content-length"] = str(len(body))
        head += "".join(f"{name}: {value}\r\n" for name, value in given.items()) + "\r\n"
        return await self._exchange(head.encode("latin-1") + body)

    async def _exchange(self, request: bytes) -> Reply:
        loop = asyncio.get_running_loop()
        async with self._slots:
            connection = self._reusable(loop.time()) or await self._connect()
            answer = connection.send(request)
            # A timer rather than asyncio.wait_for: one call_later per request, no extra task.
            timer = loop.call_later(self._timeout, self._expire, connection, answer)
            try:
                reply = await answer
            except BaseException:
                connection.close()
                self._open.discard(connection)
                raise
            finally:
                timer.cancel()
            if connection.closed:
                self._open.discard(connection)
            else:
                connection.idle_since = loop.time()
                self._idle.append(connection)
            return reply

    def _reusable(self, now: float) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive:
                return connection
            connection.close()
            self._open.discard(connection)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _transport, connection = await asyncio.wait_for(
            loop.create_connection(_Connection, self._host, self._port, local_addr=self._local),
            self._timeout,
        )
        self._open.add(connection)
        return connection

    def _expire(self, connection: _Connection, answer: asyncio.Future[Reply]) -> None:
        if not answer.done():
            answer.set_exception(TimeoutError(f"no answer within {self._timeout} s"))
        connection.close()

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
