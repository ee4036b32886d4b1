"""Where a callback may go, and the one connection that goes there.

:func:`check_target`: the URL must be plain (no backslash, userinfo, control characters, white
space, or escapes in the host), and its host, parsed as the HTTP client parses it, exactly one of
``callbacks.allowed_hosts``. The host is resolved once, every address must be an address of the
allowed hosts, and :func:`post` connects to that address: no DNS or parser gap between the check
and the send. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, LocationParseError
from urllib3.util import parse_url

_NAME_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_SCHEME_RE = re.compile(r"(https?)://", re.IGNORECASE)


# -- targets ---------------------------------------------------------------------------------


class Blocked(Exception):
    """A callback URL the sender refuses: nothing is sent, and it is not retried."""


class Unresolved(Exception):
    """An allowed host name that does not resolve now: the attempt fails and is retried."""


@dataclass(frozen=True)
class Target:
    """Where a callback goes: checked, resolved and pinned."""

    scheme: str
    host: str  # lower case, without IPv6 brackets
    port: int
    host_header: str  # host[:port] as the URL gives it
    path: str  # path and query, as sent
    addresses: tuple[str, ...]  # the checked addresses, in resolver order


def check_target(url: str, allowed_hosts: Sequence[str]) -> Target:
    """The pinned target of a callback URL; Blocked (saying why) if it may not be contacted."""
    scheme, host, literal, port, host_header, path = _parse(url)
    if (host if literal is None else str(literal)) not in {_canonical(h) for h in allowed_hosts}:
        raise Blocked(f"host {host!r} is not in callbacks.allowed_hosts (compared exactly)")
    if literal is None and not _NAME_RE.fullmatch(host):
        raise Blocked(f"host {host!r} is neither a plain name nor an IP address")
    addresses = _resolve(host, port, numeric=literal is not None)
    permitted = _allowed_addresses(allowed_hosts, names=False)
    if not permitted.issuperset(addresses):  # resolve the allowed names only when needed
        permitted |= _allowed_addresses(allowed_hosts, names=True)
    for address in addresses:
        if address not in permitted:
            raise Blocked(
                f"{host} resolves to {address}, which is not an address of callbacks.allowed_hosts"
            )
    return Target(scheme, host, port, host_header, path, tuple(str(a) for a in addresses))


def _parse(
    url: str,
) -> tuple[str, str, ipaddress.IPv4Address | ipaddress.IPv6Address | None, int, str, str]:
    """Scheme, host, IP literal (or None), port, Host header and path of a plain http(s) URL."""
    if "\\" in url:
        raise Blocked("the URL contains a backslash")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise Blocked("the URL contains a control character or white space")
    found = _SCHEME_RE.match(url)
    if found is None:
        raise Blocked("only http or https URLs of the form scheme://host are called")
    authority = re.split(r"[/?#]", url[found.end() :], maxsplit=1)[0]
    if "@" in authority:
        raise Blocked("the URL has userinfo (an @ before the host)")
    if not authority.isascii():
        raise Blocked("the host has non-ASCII characters")
    if "%" in authority:
        raise Blocked("the host has percent escapes")
    if authority.startswith("["):
        inside = authority[1:].partition("]")[0]
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise Blocked("brackets in the host must hold an IPv6 address") from None
    try:
        parsed = parse_url(url)  # what urllib3 (and so requests) would connect to
        split = urlsplit(url)
        split_host, split_port = split.hostname, split.port
    except (LocationParseError, ValueError) as exc:
        raise Blocked(f"the URL cannot be parsed ({str(exc)[:80]})") from None
    host = (parsed.host or "").lower()
    if not host:
        raise Blocked("the URL has no host")
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https") or parsed.auth is not None:
        raise Blocked("only http or https URLs without userinfo are called")
    bare = host[1:-1] if host.startswith("[") else host
    if split_host != bare or split_port != parsed.port:
        raise Blocked("URL parsers disagree about the host or port")
    port = parsed.port if parsed.port is not None else (443 if scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise Blocked(f"port {port} is out of range (1-65535)")
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if host.startswith("["):
        literal = ipaddress.IPv6Address(bare)
    else:
        try:
            literal = ipaddress.IPv4Address(bare)  # dotted quad only: no 127.1, 0x7f000001
        except ValueError:
            literal = None
    return scheme, bare, literal, port, parsed.netloc or host, parsed.request_uri


def _canonical(entry: str) -> str:
    """An allowed_hosts entry as compared: an IP literal in canonical form, else a lower name."""
    text = entry.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _resolve(
    host: str, port: int | None, *, numeric: bool
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The distinct addresses of a host, in resolver order (no DNS for an IP literal)."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST if numeric else 0
        )
    except (OSError, UnicodeError) as exc:
        raise Unresolved(f"cannot resolve {host}: {exc}") from None
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0])
            if address not in found:
                found.append(address)
    if not found:
        raise Unresolved(f"{host} has no IPv4 or IPv6 address")
    return found


def _allowed_addresses(
    allowed_hosts: Sequence[str], *, names: bool
) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """What the allowed hosts are (IP literals) and, with ``names``, resolve to (names), now."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for entry in allowed_hosts:
        canonical = _canonical(entry)
        try:
            found.add(ipaddress.ip_address(canonical))
            continue
        except ValueError:
            pass
        if names:
            try:
                found.update(_resolve(canonical, None, numeric=False))
            except Unresolved:
                continue
    return found


def _shown(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def post(
    target: Target, body: bytes, headers: dict[str, str], timeout: float, record: dict[str, Any]
) -> int:
    """POST to the first checked address that takes the connection; the HTTP status.

    Sets ``record["target"]`` to the address once a connection is made. Raises HTTPError.
    """
    refused: HTTPError | None = None
    for address in target.addresses:
        pool: urllib3.HTTPConnectionPool
        limits = urllib3.Timeout(connect=timeout, read=timeout)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=limits,
                retries=False,
                maxsize=1,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                address, target.port, timeout=limits, retries=False, maxsize=1
            )
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
            )
            record["target"] = _shown(address, target.port)
            status = response.status
            response.close()
            return status
        except ConnectTimeoutError as exc:  # no connection (refused or timed out): next address
            refused = exc
        except HTTPError:
            record["target"] = _shown(address, target.port)  # connected, then it went wrong
            raise
        finally:
            pool.close()
    assert refused is not None  # check_target never returns a target without addresses
    raise refused
