"""Per-request context: who calls, request ids, the process's services, DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from commands.bus import CommandBus
from commands.store.unit_of_work import MessageMetadata
from gateway.edge.auth import Principal

if TYPE_CHECKING:
    from gateway.bootstrap.container import Container
    from gateway.bootstrap.services import Services

LoaderT = TypeVar("LoaderT")


@dataclass
class RequestContext:
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal
    request_id: str
    correlation_id: str
    container: Container
    # DataLoaders live for one request only, so batching never leaks data across callers.
    loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.container.services

    @property
    def bus(self) -> CommandBus:
        return self.container.bus

    def loader(self, key: str, factory: Callable[[], LoaderT]) -> LoaderT:
        """The request's DataLoader under ``key``, created on first use."""
        existing = self.loaders.get(key)
        if existing is None:
            existing = self.loaders[key] = factory()
        return existing

    def metadata(self, idempotency_key: str | None = None) -> MessageMetadata:
        return MessageMetadata(
            request_id=self.request_id,
            correlation_id=self.correlation_id,
            actor=self.principal.actor,
            idempotency_key=idempotency_key,
        )


Info = strawberry.Info[RequestContext, None]
