"""The address a budget keys on: the peer, the client a trusted proxy forwarded, or the buyer
a storefront server names.

Under ``serve`` uvicorn already replaces the peer with the forwarded client when the peer
is trusted (the same ``FORWARDED_ALLOW_IPS``); doing it again here is harmless (the
forwarded client is then the peer, and not trusted) and covers any other ASGI server.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BUYER_HEADER = "x-buyer-ip"
FORWARDED_HEADER = "x-forwarded-for"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Longer than any address (an IPv6 one with a zone index included): refused before the cache,
# so a client's header cannot fill it with long keys.
MAX_ADDRESS_LENGTH = 100


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return None if len(value) > MAX_ADDRESS_LENGTH else _parsed(value)


@functools.lru_cache(maxsize=4096)
def _parsed(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: every request parses its peer (and any forwarded hops), a handful of addresses.
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[_Network, ...]
    everyone: bool = False

    @classmethod
    def of(cls, entries: Iterable[str]) -> TrustedProxies:
        listed = [entry.strip() for entry in entries]
        networks = tuple(ipaddress.ip_network(e, strict=False) for e in listed if e and e != "*")
        return cls(networks, "*" in listed)

    def trusts(self, host: str) -> bool:
        if self.everyone:
            return True
        address = _ip(host)
        return address is not None and any(address in network for network in self.networks)


def client_address(peer: str, headers: Mapping[str, str], proxies: TrustedProxies) -> str:
    """The peer, or behind trusted proxies the nearest X-Forwarded-For hop they did not add."""
    if not proxies.trusts(peer):
        return peer
    hops = [hop.strip() for hop in headers.get(FORWARDED_HEADER, "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return peer
        if not proxies.trusts(hop):
            return hop
    return hops[0] if hops else peer


def buyer_address(headers: Mapping[str, str]) -> str | None:
    """The buyer a storefront server calls for (X-Buyer-IP), normalised; None if absent or not an IP."""
    address = _ip(headers.get(BUYER_HEADER, ""))
    return None if address is None else str(address)
