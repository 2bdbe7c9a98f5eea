"""Pure pieces of the foundation: event codec, version guard, auth, settings, ids."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jwt
import pytest

from commands.events.base import Event, UnknownEventType, decode_event
from commands.store.ledger.reader import RecordedEvent
from gateway.bootstrap.settings import DEV_JWT_SECRET, ConfigurationError, Settings
from gateway.edge.auth import ANONYMOUS, JwtAuthenticator, Principal
from gateway.edge.errors import GatewayError
from gateway.schema.ids import global_id, parse_global_id
from projections.version_guard import Decision, decide, events_to_fold, group_by_stream


@dataclass(frozen=True)
class LineSnapshot:
    sku: str
    price: Decimal


class SnapshotTaken(Event, frozen=True):
    stream_type = "unit"
    lines: tuple[LineSnapshot, ...]
    at: datetime
    note: str | None = None
    extra: dict[str, object] | None = None


def test_events_round_trip_through_json_types() -> None:
    event = SnapshotTaken(
        lines=(LineSnapshot("A-1", Decimal("19.99")), LineSnapshot("B-2", Decimal("0.10"))),
        at=datetime(2026, 11, 22, 10, 15, tzinfo=UTC),
        extra={"k": [1, 2]},
    )
    data = event.to_data()
    assert data["lines"][0] == {"sku": "A-1", "price": "19.99"}
    assert data["at"] == "2026-11-22T10:15:00+00:00"
    assert decode_event("SnapshotTaken", data) == event


def test_unknown_event_type_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(UnknownEventType):
        decode_event("NoSuchEvent", {})


def _recorded(stream: str, version: int, position: int) -> RecordedEvent:
    return RecordedEvent(position, 1, uuid.uuid4(), "unit", stream, version, "X", {}, {}, datetime.now(UTC))


def test_version_guard_decisions() -> None:
    assert decide(3, 2) is Decision.SKIP
    assert decide(3, 3) is Decision.SKIP
    assert decide(3, 4) is Decision.APPLY
    assert decide(3, 6) is Decision.RELOAD


async def test_events_to_fold_skips_applies_and_reloads_on_a_jump() -> None:
    reloads: list[tuple[str, int]] = []
    ledger = [_recorded("s", v, 100 + v) for v in range(1, 8)]

    async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
        reloads.append((stream_id, after))
        return [e for e in ledger if e.stream_version > after]

    contiguous = await events_to_fold(2, [ledger[1], ledger[2], ledger[3]], reload)
    assert [e.stream_version for e in contiguous] == [3, 4] and reloads == []
    jumped = await events_to_fold(2, [ledger[5]], reload)
    assert [e.stream_version for e in jumped] == [3, 4, 5, 6, 7] and reloads == [("s", 2)]
    assert await events_to_fold(7, [ledger[0], ledger[6]], reload) == []


def test_group_by_stream_keeps_first_seen_order() -> None:
    events = [_recorded("b", 1, 1), _recorded("a", 1, 2), _recorded("b", 2, 3)]
    grouped = group_by_stream(events)
    assert list(grouped) == ["b", "a"] and [e.position for e in grouped["b"]] == [1, 3]


def test_jwt_round_trip_and_failures() -> None:
    auth = JwtAuthenticator("unit-test-secret-long-enough-for-hs256!")
    principal = auth.authenticate("Bearer " + auth.mint("cust-1", ["customer"], 60))
    assert principal == Principal("cust-1", frozenset({"customer"}))
    assert principal.customer_id == "cust-1" and principal.actor == "customer:cust-1"
    assert auth.authenticate(None) is ANONYMOUS
    for header in ("Basic abc", "Bearer ", "Bearer not-a-jwt", "Bearer " + auth.mint("x", ["admin"], -60)):
        with pytest.raises(GatewayError) as caught:
            auth.authenticate(header)
        assert caught.value.code == "UNAUTHENTICATED"
    with pytest.raises(ValueError):
        auth.mint("x", ["root"])


def test_a_remembered_token_is_verified_again_once_past_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = JwtAuthenticator("unit-test-secret-long-enough-for-hs256!", leeway_seconds=0)
    header = "Bearer " + auth.mint("cust-2", ["customer"], 60)
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    first = auth.authenticate(header)
    assert auth.authenticate(header) is first and len(decoded) == 1  # verified once, remembered
    # Past its expiry the remembered answer is not used: the token is verified (and refused) again.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)
    auth.authenticate(header)
    assert len(decoded) == 2


def test_role_checks() -> None:
    with pytest.raises(GatewayError) as anonymous:
        ANONYMOUS.require("admin")
    assert anonymous.value.code == "UNAUTHENTICATED"
    with pytest.raises(GatewayError) as wrong_role:
        Principal("c", frozenset({"customer"})).require("support", "admin")
    assert wrong_role.value.code == "FORBIDDEN"
    Principal("s", frozenset({"support"})).require("support", "admin")


def test_settings_defaults_and_production_requirements() -> None:
    dev = Settings.from_env({})
    assert dev.env == "development" and dev.jwt_secret == DEV_JWT_SECRET and dev.database_url is None
    assert dev.seed_demo and dev.migrate_on_start
    plain = Settings.from_env({"DATABASE_URL": "postgresql://u:p@db:5432/x", "MONGODB_URL": "mongomock://"})
    assert plain.database_url == "postgresql+asyncpg://u:p@db:5432/x"
    assert plain.volatile_stores == frozenset({"mongodb"})
    with pytest.raises(ConfigurationError, match="AUTH_JWT_SECRET"):
        Settings.from_env({"COMMERCE_ENV": "production"})
    prod = Settings.from_env(
        {
            "COMMERCE_ENV": "production",
            "AUTH_JWT_SECRET": "s" * 32,
            "PAYMENT_WEBHOOK_SECRET": "w" * 32,
            "PAYMENT_PROVIDER_URL": "https://payments.example",
        }
    )
    assert prod.production and not prod.seed_demo and not prod.migrate_on_start
    with pytest.raises(ConfigurationError):
        Settings.from_env({"COMMERCE_ENV": "staging"})


def test_the_hot_sku_switch_settings() -> None:
    default = Settings.from_env({})
    assert (default.stock_hot_reservations_per_second, default.stock_hot_buckets) == (25.0, 8)
    off = Settings.from_env({"STOCK_HOT_RESERVATIONS_PER_SECOND": "0", "STOCK_HOT_BUCKETS": "16"})
    assert (off.stock_hot_reservations_per_second, off.stock_hot_buckets) == (0.0, 16)
    for count in ("1", "17"):
        with pytest.raises(ConfigurationError, match="STOCK_HOT_BUCKETS must be between 2 and 16"):
            Settings.from_env({"STOCK_HOT_BUCKETS": count})
    with pytest.raises(ConfigurationError, match="STOCK_HOT_RESERVATIONS_PER_SECOND must not be negative"):
        Settings.from_env({"STOCK_HOT_RESERVATIONS_PER_SECOND": "-1"})
    for endless in ("inf", "nan"):
        with pytest.raises(ConfigurationError, match="must be a finite number"):
            Settings.from_env({"STOCK_HOT_RESERVATIONS_PER_SECOND": endless})


DURATIONS = {
    "PAYMENT_TIMEOUT_SECONDS": ("payment_timeout_seconds", False),
    "PAYMENT_RECONCILE_INTERVAL_SECONDS": ("reconcile_interval_seconds", False),
    "RESERVATION_SWEEP_SECONDS": ("reservation_sweep_seconds", False),
    "STOCK_REBALANCE_SECONDS": ("stock_rebalance_seconds", False),
    "RESERVATION_LEASE_SECONDS": ("reservation_lease_seconds", False),
    "PAYMENT_ABANDON_SECONDS": ("payment_abandon_seconds", True),
    "READ_WAIT_SECONDS": ("read_wait_seconds", True),
}


@pytest.mark.parametrize("name", sorted(DURATIONS))
def test_durations_are_finite_and_positive(name: str) -> None:
    field, zero_allowed = DURATIONS[name]
    assert getattr(Settings.from_env({name: "2.5"}), field) == 2.5
    for bad in ("-1", "inf", "nan", *(() if zero_allowed else ("0",))):
        with pytest.raises(ConfigurationError, match=f"{name} must be a finite number"):
            Settings.from_env({name: bad})
    if zero_allowed:
        assert getattr(Settings.from_env({name: "0"}), field) == 0.0


def test_which_projectors_serve_runs() -> None:
    def runs(value: str) -> str:
        return Settings.from_env({"RUN_PROJECTORS": value}).run_projectors

    assert Settings.from_env({}).run_projectors == "all"
    assert [runs(v) for v in ("1", "true", "ALL", "0", "no", "none", " Private ")] == [
        "all", "all", "all", "none", "none", "none", "private"
    ]  # fmt: skip
    with pytest.raises(ConfigurationError, match="RUN_PROJECTORS"):
        runs("some")
    # Only the MongoDB stand-in is out of other processes' reach; the embedded search engine is a server.
    stand_in = Settings.from_env({"MONGODB_URL": "mongomock://", "ELASTICSEARCH_IN_MEMORY": "1"})
    assert stand_in.private_stores == frozenset({"mongodb"})
    assert stand_in.volatile_stores == frozenset({"mongodb", "elasticsearch"})
    assert Settings.from_env({"MONGODB_URL": "mongodb://db"}).private_stores == frozenset()


def test_global_ids() -> None:
    gid = global_id("Cart", "abc")
    assert gid == "gid://commerce/Cart/abc"
    assert parse_global_id(gid) == ("Cart", "abc")
    assert parse_global_id(gid, "Order") is None
    assert parse_global_id("abc") is None and parse_global_id("gid://commerce/Cart/") is None
