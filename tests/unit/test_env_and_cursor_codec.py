"""The shared environment reader and the shared cursor codec."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from gateway.bootstrap.settings import ConfigurationError, Settings
from gateway.environment import EnvReader, InvalidVariable
from queries import cursors
from queries.product_search import SearchRequest, _plain, build_search, encode_cursor


def test_flags_keep_their_default_unless_the_value_names_the_other_answer() -> None:
    read = EnvReader({"ON": "no", "OFF": "yes", "ODD": "maybe", "EMPTY": ""})
    assert read.flag("ON", True) is False and read.flag("OFF", False) is True
    assert read.flag("ODD", True) is True and read.flag("ODD", False) is False
    assert read.flag("EMPTY", True) is True and read.flag("UNSET", False) is False


def test_numbers_name_the_variable_when_wrong() -> None:
    read = EnvReader({"RATE": " 2.5 ", "COUNT": "3", "BLANK": " ", "BAD": "lots", "NEG": "-1"})
    assert read.real("RATE", 1.0) == 2.5 and read.integer("COUNT", 1) == 3
    assert read.integer("BLANK", 7) == 7 and read.real("UNSET", 0.5) == 0.5
    with pytest.raises(InvalidVariable, match="BAD must be a whole number, not 'lots'"):
        read.integer("BAD", 1)
    with pytest.raises(InvalidVariable, match=r"RATE must be a whole number, not '2\.5'"):
        read.integer("RATE", 1)
    with pytest.raises(InvalidVariable, match="BAD must be a number, not 'lots'"):
        read.real("BAD", 1.0)
    with pytest.raises(InvalidVariable, match="NEG must not be negative"):
        read.integer("NEG", 1, non_negative=True)
    assert read.integer("NEG", 1) == -1


def test_settings_errors_are_configuration_errors_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="READ_WAIT_SECONDS"):
        Settings.from_env({"READ_WAIT_SECONDS": "soon"})
    with pytest.raises(ConfigurationError, match="GRAPHQL_MAX_DEPTH"):
        Settings.from_env({"GRAPHQL_MAX_DEPTH": "-3"})
    prod = Settings.from_env(
        {
            "COMMERCE_ENV": "production",
            "AUTH_JWT_SECRET": "s" * 32,
            "PAYMENT_WEBHOOK_SECRET": "w" * 32,
            "PAYMENT_PROVIDER_URL": "https://payments.example",
        }
    )
    assert not prod.migrate_on_start
    assert Settings.from_env({"MIGRATE_ON_START": "no"}).migrate_on_start is False


def test_cursor_codec_round_trips_unpadded_and_rejects_non_cursors() -> None:
    payload = ["tag", {"a": [1, "x"]}]
    encoded = cursors.encode(payload)
    assert "=" not in encoded and cursors.decode(encoded) == payload
    for bad in ["", "!!!", "bm90IGpzb24", "//79"]:
        with pytest.raises(cursors.MalformedCursor):
            cursors.decode(bad)


def test_cursors_handed_out_with_escaped_text_still_decode() -> None:
    payload = ["s", ["Café", 19.5, 1e16], "f1"]
    before = (
        base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    )
    assert before != cursors.encode(payload)  # escapes then, UTF-8 now
    assert cursors.decode(before) == cursors.decode(cursors.encode(payload)) == payload


@pytest.mark.parametrize(
    ("one", "other"), [("10", "10.00"), ("10", "1E+1"), ("0", "-0"), ("0", "0.000"), ("12.5", "12.50")]
)
def test_a_price_bound_signs_one_search_however_it_is_written(one: str, other: str) -> None:
    def fingerprint(bound: str) -> str:
        return build_search(SearchRequest(min_price=Decimal(bound))).fingerprint

    assert fingerprint(one) == fingerprint(other)
    assert fingerprint(one) != fingerprint("10.01")


def test_a_bound_only_an_exponent_can_write_is_not_spelled_out() -> None:
    # A plain spelling of 1E-999999 would be a million characters, built on the event loop.
    assert _plain(Decimal("1E-999999")) == "1E-999999"
    assert _plain(Decimal("0.0000001")) == "0.0000001" and _plain(None) is None


def test_a_search_asks_for_facets_and_a_total_only_when_wanted_and_pages_on_either_way() -> None:
    full = build_search(SearchRequest(brands=("Contoso",), first=5))
    page = build_search(SearchRequest(brands=("Contoso",), first=5, with_facets=False, with_total=False))
    assert "aggs" in full.body and full.body["track_total_hits"] is True
    assert "aggs" not in page.body and page.body["track_total_hits"] is False
    # One search: a next page asked without facets continues the cursor of a first page with them.
    assert page.fingerprint == full.fingerprint
    cursor = encode_cursor(full.fingerprint, ["2026-01-01T00:00:00Z", "p-1"])
    after = SearchRequest(brands=("Contoso",), first=5, after=cursor, with_facets=False, with_total=False)
    assert build_search(after).body["search_after"] == ["2026-01-01T00:00:00Z", "p-1"]
