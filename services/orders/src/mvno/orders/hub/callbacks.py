"""Which callback URLs the platform agrees to call.

A hub makes the orders service send requests wherever a client asks, from inside the bank's
network: without a check, a callback such as ``http://169.254.169.254/`` or an internal admin
port would turn it into a proxy into that network (SSRF). In production a callback must be
https, and every address its host resolves to must be a public one. The check runs when a hub is
registered and again before every attempt, since what a name resolves to can change after
registration. (A name re-pointed between that check and the connection itself is not caught;
egress rules in the deployment are the backstop for that.)

Outside production, http and local addresses are allowed, so that a developer's machine and the
tests can receive webhooks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit

from mvno.orders.hub.domain import CallbackRefused

MAX_CALLBACK_LENGTH = 2048
_RESOLVE_TIMEOUT_SECONDS = 5.0
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


async def check_callback(url: str, *, production: bool) -> None:
    """Raise :class:`CallbackRefused` unless ``url`` is one this environment may call."""
    parts = _parse(url)
    if production and parts.scheme != "https":
        raise CallbackRefused("The callback must use https.")
    if production:
        await _check_addresses(parts)


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_CALLBACK_LENGTH:
        raise CallbackRefused(f"The callback is longer than {MAX_CALLBACK_LENGTH} characters.")
    if any(character.isspace() or not character.isprintable() for character in url):
        raise CallbackRefused("The callback contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise CallbackRefused("The callback is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused("The callback must be an http or https URL.")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs; the signature is how a channel authenticates us.
        raise CallbackRefused("The callback must not carry a user name or password.")
    host = parts.hostname
    if not host or not _valid_host(host):
        raise CallbackRefused("The callback has no valid host name.")
    return parts


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(_LABEL.match(label) for label in ascii_host.rstrip(".").split("."))


async def _check_addresses(parts: SplitResult) -> None:
    host = parts.hostname
    assert host is not None  # _parse made sure
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise CallbackRefused(f"The callback's host {host} cannot be resolved.") from None
    for *_, address in found:
        if not is_public_address(str(address[0])):
            raise CallbackRefused(
                f"The callback's host {host} resolves to {address[0]}, which is not a public "
                "address."
            )


def is_public_address(address: str) -> bool:
    """Whether an IP address is reachable on the public internet (not loopback, private, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone, e.g. fe80::1%eth0
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
