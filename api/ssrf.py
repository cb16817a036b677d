"""Callback URLs checked against server-side request forgery.

A webhook URL is chosen by an outsider, but the request leaves from inside the utility's
network. So every target is resolved and each address judged with :mod:`ipaddress` — no
private, loopback, link-local, multicast, reserved or unspecified addresses (nor IPv4 ones
dressed as IPv6) — unless an allow-list set by an admin names it. The check runs when a URL
is registered (early feedback) and again at send time, and the request is then *pinned* to
the address that passed, so a DNS answer that changes between check and connect (rebinding)
cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from gridmend.db.errors import DomainError

#: Comma-separated CIDRs and host names an admin allows despite the rules (e.g. a test rig).
ALLOW_ENV_VAR = "GRIDMEND_WEBHOOK_ALLOW"
#: Names of cloud metadata services, refused by name before any lookup.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``host, port -> addresses``; injectable so tests never ask a real DNS server.
Resolver = Callable[[str, int], Sequence[str]]


class UnsafeCallbackUrl(DomainError):
    """The callback URL points somewhere a webhook must not go; the message says why."""

    status_code = 400

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"callback URL {url!r} refused: {reason}")
        self.url = url
        self.reason = reason


class UnresolvableCallbackUrl(DomainError):
    """The callback host has no address right now (may be temporary: retried later)."""

    status_code = 400


@dataclass(frozen=True)
class AllowList:
    """What an admin lets through despite the rules: networks and exact host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``["127.0.0.1/32", "hooks.internal"]``: CIDRs (or bare IPs) and host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AllowList:
        """The allow-list in ``GRIDMEND_WEBHOOK_ALLOW`` (empty when unset)."""
        env = os.environ if environ is None else environ
        return cls.parse(env.get(ALLOW_ENV_VAR, "").split(","))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class PinnedTarget:
    """A checked URL and the one address the request will connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    def request_url(self) -> str:
        """The URL with the host swapped for the pinned address (brackets for IPv6)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        default_port = 443 if self.scheme == "https" else 80
        netloc = literal if self.port == default_port else f"{literal}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"

    def build_request(
        self, client: httpx.Client, content: bytes, headers: dict[str, str]
    ) -> httpx.Request:
        """A POST to the pinned address that still names the original host: ``Host`` for
        HTTP, SNI and certificate checks for TLS (httpx's ``sni_hostname`` extension)."""
        extensions = {"sni_hostname": self.host} if self.scheme == "https" else {}
        return client.build_request(
            "POST",
            self.request_url(),
            content=content,
            headers={**headers, "Host": self.host_header()},
            extensions=extensions,
        )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook must not connect to ``address``, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            inner = address_problem(mapped)
            return f"IPv4-mapped {inner}" if inner else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address {address}"
    return None


def _split(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UnsafeCallbackUrl(url, f"malformed URL ({err})") from err
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeCallbackUrl(url, f"scheme {scheme or '(none)'!r} is not http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeCallbackUrl(url, "no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeCallbackUrl(url, "credentials in the URL")
    return scheme, host.lower(), port or (443 if scheme == "https" else 80)


def precheck_callback_url(url: str, allow: AllowList | None = None) -> None:
    """The checks that need no DNS (scheme, credentials, metadata names, literal addresses):
    cheap enough for every report of a batch upload; the full check runs at send time."""
    check_callback_url(url, allow, resolver=_no_lookup)


def _no_lookup(host: str, port: int) -> list[str]:
    return ["8.8.8.8"]  # a stand-in public answer: names are judged at send time


def check_callback_url(
    url: str, allow: AllowList | None = None, resolver: Resolver = system_resolver
) -> PinnedTarget:
    """Resolve ``url`` and pin it to an address that is safe (or allow-listed).

    Every resolved address must pass, not only the first: a name that answers with one
    public and one private address is refused. Raises :class:`UnsafeCallbackUrl` naming the
    reason, or :class:`UnresolvableCallbackUrl` when the name has no address.
    """
    allow = allow or AllowList()
    scheme, host, port = _split(url)
    host_allowed = allow.allows_host(host)
    if host in METADATA_HOSTS and not host_allowed:
        raise UnsafeCallbackUrl(url, f"cloud metadata host {host!r}")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = resolver(host, port)
        except (OSError, UnicodeError) as err:
            raise UnresolvableCallbackUrl(f"cannot resolve {host!r}: {err}") from err
        if not found:
            raise UnresolvableCallbackUrl(f"cannot resolve {host!r}: no addresses")
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    for address in addresses:
        if host_allowed or allow.allows_address(address):
            continue
        problem = address_problem(address)
        if problem is not None:
            raise UnsafeCallbackUrl(url, problem)
    return PinnedTarget(url, scheme, host, port, str(addresses[0]))
