"""The load generator's HTTP client against a real socket server that answers by the request's
path: keep-alive reuse, chunked bodies, a server's close, a silent server, a pool's limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from benchmarks.load_client import LoadClient


@dataclass
class Server:
    port: int
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return head[0], headers, body


async def _answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    server.connections += 1
    try:
        while True:
            line, headers, body = await _read_request(reader)
            server.requests.append((line, headers, body))
            path = line.split(" ")[1]
            if path == "/silent":
                await asyncio.sleep(10)
            if path == "/slow":
                server.in_flight += 1
                server.most_in_flight = max(server.most_in_flight, server.in_flight)
                await asyncio.sleep(0.05)
                server.in_flight -= 1
            if path == "/chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
            elif path == "/hints":
                writer.write(
                    b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                )
            elif path == "/cut":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                await writer.drain()
                writer.close()
                return
            elif path == "/unchanged":
                writer.write(b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n')
            elif path == "/close":
                writer.write(b"HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbusy")
                await writer.drain()
                writer.close()
                return
            else:
                echo = json.dumps({"line": line, "body": body.decode()}).encode()
                writer.write(
                    b'HTTP/1.1 200 OK\r\nETag: "v1"\r\ncontent-length: %d\r\n\r\n%s' % (len(echo), echo)
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)
    listening = await asyncio.start_server(lambda r, w: _answer(state, r, w), "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state
        listening.close()


def _client(server: Server, connections: int = 4, timeout: float = 2.0) -> LoadClient:
    return LoadClient(f"http://127.0.0.1:{server.port}", connections, timeout=timeout, keepalive_seconds=5.0)


async def test_requests_reuse_one_kept_socket_and_bodies_arrive_whole(server: Server) -> None:
    async with _client(server) as client:
        first = await client.post("/graphql", json={"query": "{ a }"}, headers={"X-Request-Id": "r1"})
        second = await client.get("/graphql", params={"query": "{ b }"})
    assert server.connections == 1
    assert first.status_code == 200 and first.json()["body"] == '{"query":"{ a }"}'
    assert first.headers["etag"] == '"v1"'
    line, headers, _ = server.requests[0]
    assert line == "POST /graphql HTTP/1.1"
    assert headers["content-type"] == "application/json" and headers["x-request-id"] == "r1"
    assert second.json()["line"] == "GET /graphql?query=%7B+b+%7D HTTP/1.1"


async def test_a_chunked_body_is_joined(server: Server) -> None:
    async with _client(server) as client:
        reply = await client.get("/chunked")
    assert reply.content == b"hello world" and reply.headers["x-a"] == "1"


async def test_a_304_ends_without_a_body_and_its_socket_serves_the_next_request(server: Server) -> None:
    async with _client(server) as client:
        unchanged = await client.get("/unchanged", headers={"If-None-Match": '"v1"'})
        after = await client.get("/next")
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == '"v1"'
    assert after.status_code == 200 and server.connections == 1
    assert server.requests[0][1]["if-none-match"] == '"v1"'


async def test_an_interim_answer_is_skipped_for_the_real_one(server: Server) -> None:
    async with _client(server) as client:
        hinted = await client.get("/hints")
        after = await client.get("/next")
    assert (hinted.status_code, hinted.content) == (200, b"ok") and "link" not in hinted.headers
    assert after.status_code == 200 and server.connections == 1


async def test_a_body_cut_short_fails_and_the_next_request_gets_a_new_socket(server: Server) -> None:
    async with _client(server) as client:
        with pytest.raises(ConnectionError):
            await client.get("/cut")
        assert (await client.get("/next")).status_code == 200
    assert server.connections == 2


async def test_a_socket_idle_past_the_keepalive_is_not_reused(server: Server) -> None:
    client = LoadClient(f"http://127.0.0.1:{server.port}", 2, timeout=2.0, keepalive_seconds=0.05)
    async with client:
        await client.get("/first")
        await asyncio.sleep(0.1)
        await client.get("/second")
    assert server.connections == 2


async def test_head_is_refused_before_anything_is_sent(server: Server) -> None:
    async with _client(server) as client:
        with pytest.raises(ValueError, match="HEAD"):
            await client.request("HEAD", "/next")
    assert server.requests == []


async def test_a_connection_the_server_closes_is_not_reused(server: Server) -> None:
    async with _client(server) as client:
        closed = await client.get("/close")
        after = await client.get("/next")
    assert closed.status_code == 503 and closed.text == "busy"
    with pytest.raises(RuntimeError, match="HTTP 503"):
        closed.raise_for_status()
    assert after.status_code == 200
    assert server.connections == 2


async def test_a_silent_server_times_out_and_its_socket_is_dropped(server: Server) -> None:
    async with _client(server, timeout=0.2) as client:
        with pytest.raises(TimeoutError):
            await client.get("/silent")
        assert (await client.get("/next")).status_code == 200
    assert server.connections == 2


async def test_no_more_requests_in_flight_than_connections(server: Server) -> None:
    async with _client(server, connections=3) as client:
        replies = await asyncio.gather(*(client.get("/slow") for _ in range(12)))
    assert [reply.status_code for reply in replies] == [200] * 12
    assert server.most_in_flight == 3
    assert server.connections == 3
