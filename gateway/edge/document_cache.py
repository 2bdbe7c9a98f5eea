"""Parsed and validated documents, cached by SHA-256 so repeated operations skip both steps.

Validation is the expensive step: a caller may ask for a document unvalidated
(``validate=False``), check the cheap limits on it first, and validate it
afterwards (``DocumentCache.validate``, done once per cached document).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    Source,
    TokenKind,
    parse,
    specified_rules,
    validate,
)
from graphql.language import Lexer
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule, NoSchemaIntrospectionCustomRule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.edge.cost import KnownCosts
from gateway.edge.errors import GatewayError
from gateway.edge.limits import Shape, limit_exceeded


@dataclass
class PreparedDocument:
    sha256: str
    document: DocumentNode | None
    # Syntax, token-limit or validation errors; empty when the document may run.
    errors: list[GraphQLError]
    # Limits analysis per selected operation name, filled on first use.
    shapes: dict[str | None, Shape | GatewayError] = field(default_factory=dict)
    # Static costs per selected operation name, filled as they are computed (the cache's
    # pipeline has one cost model); and each operation's root introspection costs.
    costs: dict[str | None, KnownCosts] = field(default_factory=dict)
    introspection: dict[str | None, dict[str, int]] = field(default_factory=dict)
    # False until validation has run (``errors`` then holds only syntax or token errors).
    validated: bool = True

    @property
    def runnable(self) -> bool:
        return self.document is not None and not self.errors


def _count_tokens(text: str, stop_after: int) -> int:
    """Lexical tokens (comments excluded), counting no further than ``stop_after``."""
    lexer = Lexer(Source(text))
    count = 0
    try:
        while count <= stop_after and lexer.advance().kind is not TokenKind.EOF:
            count += 1
    except GraphQLSyntaxError:
        pass
    return count


def validation_rules(production: bool) -> tuple[type[ASTValidationRule], ...]:
    rules: list[type[ASTValidationRule]] = [
        *specified_rules,
        MaybeNullValidationRule,
        OneOfInputValidationRule,
        MaxIntrospectionDepthRule,
    ]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


class DocumentCache:
    """An in-process LRU of prepared documents for one schema and one set of rules."""

    def __init__(self, schema: GraphQLSchema, *, production: bool, max_tokens: int, size: int) -> None:
        self._schema = schema
        self._production = production
        self._rules: Sequence[type[ASTValidationRule]] = validation_rules(production)
        self._max_tokens = max_tokens
        self._enabled = size > 0
        self._entries: LRUCache[str, PreparedDocument] = LRUCache(max(size, 1))
        self.hits = 0
        self.misses = 0

    def prepare(self, text: str, sha256: str, *, validate: bool = True) -> PreparedDocument:
        prepared = self._entries.get(sha256)
        if prepared is not None:
            self.hits += 1
        else:
            self.misses += 1
            prepared = self._prepare(text, sha256)
            if self._enabled:
                self._entries[sha256] = prepared
        if validate:
            self.validate(prepared)
        return prepared

    def validate(self, prepared: PreparedDocument) -> list[GraphQLError]:
        """The document's errors, validating it first if that has not been done yet."""
        if not prepared.validated:
            assert prepared.document is not None
            prepared.errors = list(
                validate(self._schema, prepared.document, self._rules, hide_suggestions=self._production)
            )
            prepared.validated = True
        return prepared.errors

    def _prepare(self, text: str, sha256: str) -> PreparedDocument:
        try:
            document = parse(text, max_lexical_tokens=self._max_tokens)
        except GraphQLSyntaxError as exc:
            if _count_tokens(text, self._max_tokens) > self._max_tokens:
                limit = limit_exceeded("tokens", self._max_tokens)
                error = GraphQLError(limit.message, original_error=limit)
            else:
                error = GraphQLError(
                    exc.message,
                    source=exc.source,
                    positions=exc.positions,
                    extensions={"code": "GRAPHQL_PARSE_FAILED"},
                )
            return PreparedDocument(sha256, None, [error])
        return PreparedDocument(sha256, document, [], validated=False)
