"""Limits of GraphQL over WebSocket (graphql-transport-ws), from the environment (``Settings.websocket``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from gateway.environment import EnvReader


@dataclass(frozen=True)
class WebSocketSettings:
    # One message (a subscribe with its document and variables); the HTTP body limit's order of size.
    max_message_bytes: int = 64 * 1024
    # Operations running at once on one socket.
    max_operations_per_socket: int = 20
    # Open sockets per caller (API client, user, or address) in one gateway process.
    max_sockets_per_caller: int = 20

    def with_overrides(self, **changes: object) -> WebSocketSettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebSocketSettings:
        read = EnvReader(env)
        return cls(
            max_message_bytes=read.integer(
                "GRAPHQL_WS_MAX_MESSAGE_BYTES", cls.max_message_bytes, non_negative=True
            ),
            max_operations_per_socket=read.integer(
                "GRAPHQL_WS_MAX_OPERATIONS", cls.max_operations_per_socket, non_negative=True
            ),
            max_sockets_per_caller=read.integer(
                "GRAPHQL_WS_MAX_SOCKETS_PER_CALLER", cls.max_sockets_per_caller, non_negative=True
            ),
        )
