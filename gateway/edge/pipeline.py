"""One GraphQL operation through the edge, in order: persisted document resolution,
parse (cached) with the token limit, the other cheap limits, validation (cached),
static cost, budget, execution, and ``extensions.cost`` on the way out.

Budget: every request makes exactly one charge (one Redis round trip): the
estimate when the operation is admitted, ``rejected_cost`` when it is refused
before running. What an operation actually cost beyond (or below) its estimate
is settled in process and applied with the owner's next charge.

HTTP caching (``gateway/edge/http_cache.py``): a GET of a persisted document gets a cache
decision (policy and ETag) taken before execution; a conditional GET whose ETag still holds is
answered 304 from the cached plan, charged ``NOT_MODIFIED_COST``, and nothing is executed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, get_operation_ast

from commands.metrics import RATE_LIMIT_REJECTIONS
from gateway.bootstrap.settings import Settings
from gateway.edge.addresses import TrustedProxies, buyer_address, client_address
from gateway.edge.auth import Principal
from gateway.edge.budget import BudgetPolicy, BudgetState
from gateway.edge.clients import ApiClient
from gateway.edge.cost import (
    KnownCosts,
    actual_cost,
    cost_exceeded,
    introspection_costs,
    refused_root_fields,
    static_cost,
)
from gateway.edge.document_cache import DocumentCache, PreparedDocument
from gateway.edge.errors import GatewayError
from gateway.edge.etag import matches
from gateway.edge.execution import GatewayContext, GatewaySchema, client_error, execute_checked
from gateway.edge.http_cache import NOT_CACHEABLE, NOT_MODIFIED_COST, CacheDecision, CacheRequest
from gateway.edge.limits import OperationLimits, analyse, check
from gateway.edge.persisted import APQ_REGISTRATION_COST, sha256_hex
from gateway.edge.services import EdgeServices
from gateway.http.protocol import GraphQLParams, HttpError, bad_request
from gateway.schema.list_sizes import cost_model


@dataclass(frozen=True)
class Caller:
    principal: Principal
    client: ApiClient | None
    address: str
    # The buyer a storefront client calls for (X-Buyer-IP); never set for other callers.
    buyer: str | None = None


@dataclass
class Outcome:
    body: dict[str, Any]
    # The failure that stopped the operation before execution, if any.
    error: GatewayError | None = None
    operation_name: str | None = None
    codes: list[str] = field(default_factory=list)
    # GETs of persisted documents: whether the answer may be stored, and its validator.
    cache: CacheDecision | None = None
    # The caller's copy is current: answer 304 without a body.
    not_modified: bool = False


@dataclass(frozen=True)
class _Checked:
    operation: OperationDefinitionNode
    requested: int
    mutation_fields: int
    # Static cost of root introspection fields by response key (what their actual cost counts).
    introspection: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """A WebSocket operation let through: its text and prepared document, or its document's errors."""

    text: str
    prepared: PreparedDocument
    errors: list[GraphQLError] = field(default_factory=list)


@dataclass
class _Charges:
    """What one operation has been charged so far, and the cost it asked for."""

    state: BudgetState | None = None
    requested: int = 0
    # Points an APQ registration was charged besides the operation.
    registration: int = 0


class _Invalid(Exception):
    """The document does not parse or validate."""

    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


class Pipeline:
    """Schema-level state (document cache, limits, cost model) shared by every request."""

    def __init__(self, schema: GatewaySchema, settings: Settings) -> None:
        edge = settings.edge
        self.schema = schema
        self.edge = edge
        self.production = settings.production
        self.documents = DocumentCache(
            schema._schema,
            production=self.production,
            max_tokens=edge.max_tokens,
            size=edge.document_cache_size,
        )
        self.limits = OperationLimits(edge.max_depth, edge.max_aliases, edge.max_root_fields)
        self.cost_model = cost_model(edge)
        self.proxies = TrustedProxies.of(edge.forwarded_allow_ips)

    @property
    def max_tokens(self) -> int:
        return self.edge.max_tokens

    def prepare(self, query: str) -> PreparedDocument:
        """Parsed (cached); validation comes after the cheap limits, in ``check``."""
        return self.documents.prepare(query, sha256_hex(query), validate=False)

    def locate(self, caller: Caller, headers: Mapping[str, str]) -> Caller:
        """The caller's address behind trusted proxies, and the buyer a storefront client names."""
        address = client_address(caller.address, headers, self.proxies)
        storefront = caller.client is not None and caller.client.storefront
        return replace(caller, address=address, buyer=buyer_address(headers) if storefront else None)

    def policy(self, caller: Caller, services: EdgeServices) -> BudgetPolicy:
        """Whose bucket pays: a partner client's own; else the user's, by role; else the address's."""
        edge, client, principal = self.edge, caller.client, caller.principal
        for_buyer = client is not None and client.storefront and (caller.buyer or principal.subject)
        if client is not None and not for_buyer:
            capacity = client.budget or edge.client_budget_capacity
            rate = client.restore_rate or edge.client_budget_restore_rate
            return services.budget.policy(f"client:{client.name}", capacity, rate)
        if principal.subject is not None:
            owner = f"user:{principal.subject}"
            if principal.has_role("admin"):
                return services.budget.policy(
                    owner, edge.admin_budget_capacity, edge.admin_budget_restore_rate
                )
            if principal.has_role("support"):
                return services.budget.policy(
                    owner, edge.support_budget_capacity, edge.support_budget_restore_rate
                )
            return services.budget.policy(owner, edge.budget_capacity, edge.budget_restore_rate)
        owner = f"ip:{caller.buyer or caller.address}"
        return services.budget.policy(owner, edge.budget_capacity, edge.budget_restore_rate)

    def check(
        self, prepared: PreparedDocument, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> _Checked:
        """Operation selection, the cheap limits, validation and static cost, in that order.

        Raises the coded error that stops the operation, or ``_Invalid`` with its
        syntax or validation errors.
        """
        if prepared.document is None:
            raise _Invalid(prepared.errors)
        operation = get_operation_ast(prepared.document, operation_name)
        if operation is None:
            if errors := self.documents.validate(prepared):
                raise _Invalid(errors)
            raise bad_request(
                f"Unknown operation named {operation_name!r}"
                if operation_name
                else "Must provide operation name if query contains multiple operations"
            )
        shape = prepared.shapes.get(operation_name)
        if shape is None:
            try:
                shape = analyse(prepared.document, operation, self.limits)
            except GatewayError as exc:
                shape = exc
            prepared.shapes[operation_name] = shape
        if isinstance(shape, GatewayError):
            raise shape
        check(shape, self.limits)
        if errors := self.documents.validate(prepared):
            raise _Invalid(errors)
        schema, document = self.schema._schema, prepared.document
        known = prepared.costs.get(operation_name)
        if known is None:
            known = prepared.costs[operation_name] = KnownCosts()
        requested = static_cost(schema, document, operation, variables, self.cost_model, known=known)
        if requested > self.cost_model.max_cost:
            raise cost_exceeded(requested, self.cost_model.max_cost)
        mutations = shape.root_fields if operation.operation is OperationType.MUTATION else 0
        introspection = prepared.introspection.get(operation_name)
        if introspection is None:
            introspection = introspection_costs(schema, document, operation, self.cost_model)
            prepared.introspection[operation_name] = introspection
        return _Checked(operation, requested, mutations, introspection)

    def static_errors(
        self, prepared: PreparedDocument, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> list[GraphQLError]:
        """The same checks for transports that execute through Strawberry (WebSocket)."""
        try:
            self.check(prepared, operation_name, variables)
        except _Invalid as exc:
            return list(exc.errors)
        except GatewayError as exc:
            return [GraphQLError(exc.message, original_error=exc)]
        return []

    async def run(
        self,
        params: GraphQLParams,
        caller: Caller,
        services: EdgeServices,
        context: GatewayContext,
        method: str,
        cache: CacheRequest | None = None,
    ) -> Outcome:
        policy = self.policy(self.locate(caller, context.request.headers), services)
        charges = _Charges()
        # A revalidation that did not match already took the answer's policy and versions.
        decision: CacheDecision | None = None
        if cache is not None and cache.if_none_match:
            revalidated, decision = await self._revalidate(
                params, caller, services, policy, cache, context.request_id
            )
            if revalidated is not None:
                return revalidated

        def refuse(kind: OperationType) -> None:
            if kind is OperationType.MUTATION and method != "POST":
                raise HttpError(405, "METHOD_NOT_ALLOWED", "Mutations need POST", {"Allow": "POST"})
            if kind is OperationType.SUBSCRIPTION:
                raise bad_request("Subscriptions are served over WebSocket (graphql-transport-ws)")

        try:
            _text, prepared, checked = await self._admit(params, caller, services, policy, charges, refuse)
            if not isinstance(checked, _Checked):
                return self._rejected(checked, context, charges.state, params.operation_name)
            if cache is not None and decision is None:
                assert prepared.document is not None
                plan = cache.http.plans.plan(
                    prepared.sha256, params.operation_name, prepared.document, checked.operation
                )
                decision = await cache.http.decide(
                    plan, prepared.sha256, params.operation_name, params.variables, caller.principal
                )
            outcome = await self._execute(params, prepared, checked, context, services, charges.state)
            if charges.registration:
                # Charged with the operation; shown beside its cost, which it is not part of.
                outcome.body["extensions"]["cost"]["persistedQueryRegistrationCost"] = charges.registration
            if decision is not None:
                outcome.cache = decision if "errors" not in outcome.body else NOT_CACHEABLE
            return outcome
        except GatewayError as exc:
            error, charged = await self._charge_refusal(exc, policy, services, charges)
            requested = error.extensions["cost"] if error.code == "QUERY_COST_EXCEEDED" else charges.requested
            count_rejection(error)
            body = _error_body(error, context.request_id, _cost(requested, charged, charges.state))
            return Outcome(body, error=error, operation_name=params.operation_name, codes=[error.code])

    async def _revalidate(
        self,
        params: GraphQLParams,
        caller: Caller,
        services: EdgeServices,
        policy: BudgetPolicy,
        cache: CacheRequest,
        request_id: str,
    ) -> tuple[Outcome | None, CacheDecision | None]:
        """A 304 when the caller's ETag still holds; else no outcome (run the operation), with the
        decision taken on the way when there was one.

        Only operations this process has already checked and planned are answered here (a
        matching ETag also means their variables once ran cleanly); anything else, an unknown
        document or a failure to resolve it included, takes the full path with its own errors.
        """
        try:
            resolved = await services.resolver.resolve(
                query=params.query,
                document_id=params.document_id,
                extensions=params.extensions,
                client=caller.client,
            )
        except GatewayError:
            return None, None
        plan = cache.http.plans.known(resolved.sha256, params.operation_name)
        if plan is None or resolved.register_apq:
            return None, None
        decision = await cache.http.decide(
            plan, resolved.sha256, params.operation_name, params.variables, caller.principal
        )
        if decision.etag is None or not matches(cache.if_none_match, decision.etag):
            return None, decision
        state = await services.budget.charge_small(policy, NOT_MODIFIED_COST)
        if state is not None and not state.allowed:
            error = _rate_limited(state, NOT_MODIFIED_COST)
            count_rejection(error)
            body = _error_body(error, request_id, _cost(0, NOT_MODIFIED_COST, state))
            refused = Outcome(body, error=error, operation_name=params.operation_name, codes=[error.code])
            return refused, None
        return Outcome({}, operation_name=params.operation_name, cache=decision, not_modified=True), decision

    async def failure(
        self, exc: GatewayError, caller: Caller, services: EdgeServices, request_id: str
    ) -> Outcome:
        """A request stopped before any operation ran (credentials): charged like any refusal."""
        charged = self.edge.rejected_cost
        state = await services.budget.charge(self.policy(caller, services), charged)
        if state is not None and not state.allowed:
            exc = _rate_limited(state, charged)
        return Outcome(_error_body(exc, request_id, _cost(0, charged, state)), error=exc, codes=[exc.code])

    async def admit_subscription(
        self, params: GraphQLParams, caller: Caller, services: EdgeServices, headers: Mapping[str, str]
    ) -> Admission:
        """``run``'s steps up to execution, for one graphql-transport-ws operation.

        Only subscriptions are admitted: queries and mutations are served over HTTP.
        Raises the coded error that stops the operation.
        """
        policy = self.policy(self.locate(caller, headers), services)
        charges = _Charges()

        def refuse(kind: OperationType) -> None:
            if kind is not OperationType.SUBSCRIPTION:
                raise GatewayError(
                    "OPERATION_NOT_SUPPORTED",
                    "Queries and mutations are served over HTTP; this socket carries subscriptions",
                )

        try:
            text, prepared, checked = await self._admit(params, caller, services, policy, charges, refuse)
        except GatewayError as exc:
            error, _ = await self._charge_refusal(exc, policy, services, charges)
            count_rejection(error)
            raise error from None
        return Admission(text, prepared, [] if isinstance(checked, _Checked) else checked)

    async def _admit(
        self,
        params: GraphQLParams,
        caller: Caller,
        services: EdgeServices,
        policy: BudgetPolicy,
        charges: _Charges,
        refuse: Callable[[OperationType], None],
    ) -> tuple[str, PreparedDocument, _Checked | list[GraphQLError]]:
        """Every transport's steps before execution, in order: the persisted document, the cheap
        limits and validation (an invalid document is charged the minimum and its errors
        returned), the transport's own refusals, static cost against the caller's capacity, the
        budget, and only then APQ registration (charged too). Charges land in ``charges``."""
        resolved = await services.resolver.resolve(
            query=params.query,
            document_id=params.document_id,
            extensions=params.extensions,
            client=caller.client,
        )
        prepared = self.documents.prepare(resolved.text, resolved.sha256, validate=False)
        try:
            checked = self.check(prepared, params.operation_name, params.variables)
        except _Invalid as invalid:
            charges.state = await services.budget.charge(policy, self.edge.rejected_cost)
            if charges.state is not None and not charges.state.allowed:
                raise _rate_limited(charges.state, self.edge.rejected_cost) from None
            return resolved.text, prepared, invalid.errors
        charges.requested = checked.requested
        refuse(checked.operation.operation)
        # An APQ registration stores the document for a day: charged, and only once admitted.
        charges.registration = APQ_REGISTRATION_COST if resolved.register_apq else 0
        needed = checked.requested + charges.registration
        if needed > policy.capacity:
            # More than the whole bucket: no wait would let it through, so no RATE_LIMITED.
            raise cost_exceeded(needed, policy.capacity)
        charges.state = await services.budget.charge(policy, needed)
        if charges.state is not None and not charges.state.allowed:
            raise _rate_limited(charges.state, needed)
        if resolved.register_apq:
            await services.resolver.register_apq(resolved)
        return resolved.text, prepared, checked

    async def _charge_refusal(
        self, error: GatewayError, policy: BudgetPolicy, services: EdgeServices, charges: _Charges
    ) -> tuple[GatewayError, int]:
        """A refusal nothing was charged for yet costs the minimum (and may exhaust the budget)."""
        if charges.state is not None:
            return error, 0
        charged = self.edge.rejected_cost
        charges.state = await services.budget.charge(policy, charged)
        if charges.state is not None and not charges.state.allowed:
            error = _rate_limited(charges.state, charged)
        return error, charged

    async def _execute(
        self,
        params: GraphQLParams,
        prepared: PreparedDocument,
        checked: _Checked,
        context: GatewayContext,
        services: EdgeServices,
        state: BudgetState | None,
    ) -> Outcome:
        name = checked.operation.name.value if checked.operation.name else params.operation_name
        # Checked above: a query or a mutation (``refuse``), and the operation the name selects.
        assert prepared.document is not None
        result = await execute_checked(
            self.schema,
            prepared.document,
            variables=params.variables,
            operation_name=params.operation_name,
            context=context,
            extensions=params.extensions,
        )
        # No data and no error with a path: the request failed as a whole before anything ran
        # (variable coercion), and costs what a refusal costs.
        failed_whole = result.data is None and all(e.path is None for e in result.errors or ())
        if failed_whole:
            actual = self.edge.rejected_cost if state is not None else 0
        else:
            # Only a mutation's root fields weigh anything: a query's refused field costs its objects (none).
            refused = refused_root_fields(result.errors) if checked.mutation_fields else 0
            ran = max(0, checked.mutation_fields - refused)
            actual = actual_cost(result.data, ran, self.cost_model, checked.introspection)
            nothing_returned = result.data is None or (
                bool(result.errors) and all(value is None for value in result.data.values())
            )
            if state is not None and (ran < checked.mutation_fields or nothing_returned):
                # A mutation refused to its caller ran nothing, and an answer without data (a
                # field refused, or its arguments, or every field failed: a read that waited out
                # its consistentWith bound) returned nothing: each costs what a refusal costs.
                actual = max(actual, self.edge.rejected_cost)
        if state is not None:
            # Charged in full, the excess over the estimate included, with the owner's next charge.
            state = state.settled(services.budget.settle(state.policy, checked.requested, actual))
        body: dict[str, Any] = {}
        errors = [client_error(e, context.request_id, self.production) for e in result.errors or ()]
        if not failed_whole:
            body["data"] = result.data
        if errors:
            body["errors"] = errors
        body["extensions"] = {**(result.extensions or {}), "cost": _cost(checked.requested, actual, state)}
        codes = sorted({e["extensions"]["code"] for e in errors})
        return Outcome(body, operation_name=name, codes=codes)

    def _rejected(
        self, errors: list[GraphQLError], context: GatewayContext, state: BudgetState | None, name: str | None
    ) -> Outcome:
        formatted = [client_error(e, context.request_id, self.production) for e in errors]
        charged = self.edge.rejected_cost if state is not None else 0
        body = {"errors": formatted, "extensions": {"cost": _cost(0, charged, state)}}
        first = errors[0].original_error
        error = (
            first
            if isinstance(first, GatewayError)
            else GatewayError(formatted[0]["extensions"]["code"], formatted[0]["message"])
        )
        count_rejection(error)
        return Outcome(
            body, error=error, operation_name=name, codes=sorted({e["extensions"]["code"] for e in formatted})
        )


def count_rejection(error: GatewayError | None) -> None:
    """The refusals the edge makes to protect itself, by limit (a small, fixed label set)."""
    if error is None:
        return
    if error.code == "RATE_LIMITED":
        reason = "budget"
    elif error.code == "QUERY_COST_EXCEEDED":
        reason = "cost"
    elif error.code == "OPERATION_LIMIT_EXCEEDED":
        reason = str(error.extensions.get("limit", "other"))
    else:
        return
    RATE_LIMIT_REJECTIONS.labels(reason).inc()


def _rate_limited(state: BudgetState, needed: int) -> GatewayError:
    # As throttleStatus shows it: below 0 when an answer cost more than its estimate.
    status = state.throttle_status()
    short = (
        f"The cost budget is short: this request costs {needed}, {status['currentlyAvailable']} of "
        f"{status['maximumAvailable']} are available now"
    )
    if state.retry_after_seconds < 0:
        # A restore rate of 0: nothing comes back, so there is no time to name.
        return GatewayError("RATE_LIMITED", f"{short}; this budget does not refill")
    retry = math.ceil(state.retry_after_seconds * 1000) / 1000
    return GatewayError("RATE_LIMITED", f"{short}; retry in {retry:g} s", retryAfterSeconds=retry)


def _cost(requested: int, actual: int, state: BudgetState | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": state.throttle_status() if state is not None else None,
    }


def _error_body(exc: GatewayError, request_id: str | None, cost: dict[str, Any]) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": exc.code, **exc.extensions}
    if request_id:
        extensions["requestId"] = request_id
    return {"errors": [{"message": exc.message, "extensions": extensions}], "extensions": {"cost": cost}}
