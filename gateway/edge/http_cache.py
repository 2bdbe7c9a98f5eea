"""Whether (and how) an answer may be cached, and its validator: what the pipeline asks before
executing a GET of a persisted document, and on a revalidation instead of executing it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLSchema, print_schema
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.edge.auth import Principal
from gateway.edge.cache_policy import NO_STORE, CachePolicy, OperationPlan, OperationPlans, Scope
from gateway.edge.etag import caller_key, derive_etag
from gateway.edge.read_model_versions import ReadModelVersions

log = logging.getLogger(__name__)

# Budget points a 304 costs: it runs nothing, but it is still a request.
NOT_MODIFIED_COST = 1


@dataclass(frozen=True)
class CacheDecision:
    policy: CachePolicy
    # None when the answer must not be stored.
    etag: str | None = None

    @property
    def cacheable(self) -> bool:
        return self.etag is not None


NOT_CACHEABLE = CacheDecision(NO_STORE)


class HttpCache:
    """Per app: operation plans by document, read-model versions, and the ETag salt."""

    def __init__(self, schema: GraphQLSchema, versions: ReadModelVersions) -> None:
        self.plans = OperationPlans(schema)
        self.versions = versions
        # A deploy that changes the schema changes every validator.
        self._salt = hashlib.sha256(print_schema(schema).encode()).hexdigest()[:16]

    async def decide(
        self,
        plan: OperationPlan,
        sha256: str,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        principal: Principal,
    ) -> CacheDecision:
        """The policy and the ETag of the answer as of now (taken before it is executed)."""
        policy = plan.policy.for_caller(principal)
        if policy.scope is Scope.NO_STORE:
            return NOT_CACHEABLE
        try:
            # A read-your-writes read is cacheable only if it waits for nothing.
            for reads, position in plan.positions_waited_for(variables):
                if not await self.versions.covers(reads, position):
                    return NOT_CACHEABLE
            versions = await self.versions.current(policy.reads)
        except (SQLAlchemyError, OSError, RedisError) as exc:
            log.warning("read-model versions unavailable, answer not cacheable: %s", exc)
            return NOT_CACHEABLE
        etag = derive_etag(
            salt=self._salt,
            document_sha256=sha256,
            operation_name=operation_name,
            variables=variables,
            caller=caller_key(policy.scope, principal),
            versions=versions,
        )
        return CacheDecision(policy, etag)


@dataclass(frozen=True)
class CacheRequest:
    """A GET of a persisted document: cacheable, and maybe conditional."""

    http: HttpCache
    if_none_match: str | None = None
