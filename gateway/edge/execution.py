"""The schema class, the per-request context, and the extension tying execution to the edge.

Over HTTP the pipeline parses, validates and checks a document, then runs it
through graphql-core itself (``execute_checked``). Subscriptions over WebSocket
(graphql-transport-ws) run through Strawberry: the extension hands it the
document the pipeline admitted (or, for a document that did not come through
it, does the same checks itself) and masks errors, since those results bypass
the view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import DocumentNode, GraphQLError, GraphQLSyntaxError
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import execute as graphql_execute
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema import Schema
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult

from gateway.edge.argument_errors import named_argument_error
from gateway.edge.compiled_inputs import compile_inputs
from gateway.edge.context import RequestContext
from gateway.edge.document_cache import PreparedDocument
from gateway.edge.errors import InvalidInputValue, format_error
from gateway.edge.plain_fields import PlainFieldExecutor

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
# graphql-core ends an input object's coercion error with the whole object it was given
# ("..., found: {...}."): an address, an email. The caller sent it and the path names the
# field; it is not repeated back (nor kept in logs and caches along with the response).
_ECHOED_INPUT = re.compile(r", found: .*\Z", re.DOTALL)


class EdgeChecks(Protocol):
    """What the extension asks of the edge pipeline for documents that did not come through it."""

    production: bool

    @property
    def max_tokens(self) -> int: ...

    def prepare(self, query: str) -> PreparedDocument: ...

    def static_errors(
        self, prepared: PreparedDocument, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> list[GraphQLError]: ...


@dataclass
class GatewayContext(RequestContext):
    # The edge pipeline serving this request (absent in direct schema execution, e.g. tests).
    checks: EdgeChecks | None = None
    # Set by the WebSocket transport: the document the pipeline admitted (parsed, validated, checked).
    prepared: PreparedDocument | None = None
    # graphql-transport-ws: the connection_init payload (credentials).
    connection_params: dict[str, Any] | None = None


def client_error(error: GraphQLError, request_id: str | None, production: bool) -> dict[str, Any]:
    """``format_error`` plus, in production, no schema hints ("Did you mean ...?")."""
    named = named_argument_error(error)
    if named is not None:
        # A bad argument value, literal or refused by its resolver: BAD_USER_INPUT naming it.
        error = named
    elif error.path is None and isinstance(error.original_error, GraphQLError | InvalidInputValue):
        # graphql-core wraps variable coercion and literal failures: the caller's input, not our bug.
        message = error.message
        if message.startswith("Variable '$"):
            message = _ECHOED_INPUT.sub(".", message)
        error = GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            extensions={"code": "BAD_USER_INPUT"},
        )
    formatted = format_error(error, request_id)
    # graphql-core's word for GraphQL's null, in its input coercion messages.
    formatted["message"] = formatted["message"].replace(" not to be None.", " not to be null.")
    if production:
        formatted["message"] = _SUGGESTION.sub("", formatted["message"])
    return formatted


async def execute_checked(
    schema: Schema,
    document: DocumentNode,
    *,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    context: GatewayContext,
    extensions: dict[str, Any] | None,
) -> GraphQLExecutionResult:
    """Run a document the HTTP pipeline already parsed, validated and checked, as Strawberry does,
    without Strawberry's per-operation machinery.

    ``Schema.execute`` builds an execution context, runs the extension hooks around parsing,
    validation and execution, and checks the operation type: here all of it is done already
    (the extension's hooks only hand over the prepared document) or would be a no-op, which cost
    about a tenth of a small request's GraphQL time. The call to graphql-core is the one
    ``Schema.execute`` makes, without field middleware: ``GatewaySchema`` takes no extension
    with resolve hooks (nor any but ours) and no schema directive.
    """
    # An exception from execution itself (not from a resolver: those are errors in the result)
    # is the gateway's fault: it reaches the view, which logs it and answers 500.
    result = graphql_execute(
        schema._schema,
        document,
        variable_values=variables,
        operation_name=operation_name,
        context_value=context,
        is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
        executor_class=schema.execution_context_class,
        operation_extensions=extensions,
    )
    if isinstance(result, GraphQLExecutionResult):
        return result
    return await result


class GatewaySchema(Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["extensions"] = [*kwargs.get("extensions", ()), EdgeExtension]
        kwargs.setdefault("execution_context_class", PlainFieldExecutor)
        super().__init__(*args, **kwargs)
        if tuple(self.extensions) != (EdgeExtension,) or self.directives:
            # HTTP operations run through graphql-core directly (``execute_checked``): another
            # extension's hooks, or a directive's, would be skipped there without a word.
            raise ValueError("the gateway schema takes no other extension and no schema directive")
        # After the schema is built: Strawberry converts argument defaults while building it.
        self.inputs_left_to_strawberry = compile_inputs(self)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are formatted (and unexpected ones logged) by the pipeline and the extension."""


class EdgeExtension(SchemaExtension):
    _prepared: PreparedDocument | None = None

    def _pipeline(self) -> EdgeChecks | None:
        context = self.execution_context.context
        return context.checks if isinstance(context, GatewayContext) else None

    def _admitted(self) -> PreparedDocument | None:
        context = self.execution_context.context
        return context.prepared if isinstance(context, GatewayContext) else None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        prepared = self._admitted()
        pipeline = self._pipeline()
        if prepared is not None:
            ctx.graphql_document = prepared.document
        elif pipeline is not None and ctx.query:
            prepared = pipeline.prepare(ctx.query)
            if prepared.document is not None:
                self._prepared = prepared
                ctx.graphql_document = prepared.document
            else:
                # Let Strawberry report the syntax error itself, under the same token limit.
                ctx.parse_options = {"max_tokens": pipeline.max_tokens}
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        pipeline = self._pipeline()
        if self._admitted() is not None:
            ctx.pre_execution_errors = []
        elif self._prepared is not None and pipeline is not None:
            ctx.pre_execution_errors = pipeline.static_errors(
                self._prepared, ctx.operation_name, ctx.variables
            )
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._masked(error) for error in errors]  # type: ignore[union-attr]
        yield

    def _masked(self, error: GraphQLError) -> GraphQLError:
        # The transport closes the socket on these two; they carry nothing to hide.
        if isinstance(error, GraphQLSyntaxError) or isinstance(
            error.original_error, CannotGetOperationTypeError
        ):
            return error
        context = self.execution_context.context
        request_id = context.request_id if isinstance(context, RequestContext) else None
        pipeline = self._pipeline()
        formatted = client_error(error, request_id, pipeline is not None and pipeline.production)
        return GraphQLError(
            formatted["message"],
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=formatted["extensions"],
        )
