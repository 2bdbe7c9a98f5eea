from __future__ import annotations

import pytest

from commands.payments.signing import InvalidSignature, compute_signature, sign, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"payment.authorized"}'
T = 1_700_000_000


def test_sign_has_documented_format() -> None:
    header = sign(SECRET, BODY, T)
    assert header == f"t={T},v1={compute_signature(SECRET, BODY, T)}"
    assert len(header.split("v1=")[1]) == 64


def test_valid_signature_is_accepted() -> None:
    verify(SECRET, sign(SECRET, BODY, T), BODY, now=T + 10)


def test_signature_made_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, sign("whsec_attacker", BODY, T), BODY, now=T)


def test_tampered_body_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, sign(SECRET, BODY, T), BODY.replace(b"authorized", b"captured"), now=T)


def test_tampered_timestamp_is_rejected() -> None:
    forged = sign(SECRET, BODY, T).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(InvalidSignature):
        verify(SECRET, forged, BODY, now=T)


def test_stale_signature_is_rejected() -> None:
    header = sign(SECRET, BODY, T)
    verify(SECRET, header, BODY, now=T + 300)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, header, BODY, now=T + 301)


def test_future_dated_signature_beyond_tolerance_is_rejected() -> None:
    header = sign(SECRET, BODY, T + 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, header, BODY, now=T)
    verify(SECRET, header, BODY, now=T, tolerance_seconds=600)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=abc,v1=00",
        f"t={T}",
        "v1=" + "0" * 64,
        f"t={T},v1=",
        f"t={T},t={T},v1=" + "0" * 64,
        f"t=-{T},v1=" + "0" * 64,
    ],
)
def test_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=T)


def test_any_matching_v1_entry_is_accepted_during_rotation() -> None:
    old = compute_signature("whsec_old", BODY, T)
    new = compute_signature(SECRET, BODY, T)
    verify(SECRET, f"t={T},v1={old},v1={new}", BODY, now=T)
    verify("whsec_old", f"t={T},v1={old},v1={new}", BODY, now=T)
    with pytest.raises(InvalidSignature):
        verify("whsec_other", f"t={T},v1={old},v1={new}", BODY, now=T)


def test_unknown_schemes_are_ignored() -> None:
    verify(SECRET, f"t={T},v0=deadbeef,{sign(SECRET, BODY, T).split(',')[1]}", BODY, now=T)
