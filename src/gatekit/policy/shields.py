"""Argument shields: look inside argument values (and keys) for attacks and leaks.

Each detector takes one string and says what is wrong with it (or nothing).
Attackers encode, so detectors look at every decoded form of a value:
URL-encoded once, twice or more, overlong UTF-8, ``%u`` escapes, Unicode
look-alikes (NFKC) and backslashes as separators.

Shell text is read the way a shell tokenises it: an operator, a substitution
or a redirection counts when it is outside quotes, whatever follows it.

SSRF checks are static: hostnames are not resolved (no DNS at decision time),
so a public name that resolves to an internal address is not caught here; an
egress proxy is the place for that. Hosts are read the way clients read them:
IDNA/UTS #46 mapping (``127。0。0。1``), every numeric IPv4 form inet_aton
accepts, IPv4 inside IPv6, scheme-less ``host:port/path``; a number in a
host-like field (``"host": 2130706433``) is an address too.

Every detector runs in time linear in the length of the value. A value longer
than ``MAX_INSPECTED_CHARS`` is not inspected: each shield watching it reports
that instead (its configured action applies), so an oversized value cannot
slip through unread.
"""

from __future__ import annotations

import ipaddress
import itertools
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

import idna

from gatekit._models import Check, CheckOutcome, DecisionRequest
from gatekit.dlp import DETECTORS, scan_value
from gatekit.policy.rules import NameMatcher
from gatekit.policy.schema import ShieldAction, ShieldSpec, ShieldsSpec

__all__ = [
    "MAX_ADDRESSES",
    "MAX_INSPECTED_CHARS",
    "Shield",
    "Shields",
    "decoded_forms",
    "find_internal_address",
    "find_path_traversal",
    "find_shell_injection",
]

MAX_INSPECTED_CHARS = 1 << 20
# URLs and host-like tokens read in one value (a megabyte of prose holds a few
# thousand); past this the value itself is a finding.
MAX_ADDRESSES = 20_000

_OUTCOME = {
    ShieldAction.BLOCK: CheckOutcome.BLOCK,
    ShieldAction.REVIEW: CheckOutcome.REVIEW,
    ShieldAction.LOG: CheckOutcome.WARN,
}


def _shown(text: str, limit: int = 64) -> str:
    """``text`` quoted for a finding's detail, cut short: details are stored."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


# -- decoding --------------------------------------------------------------------

_OVERLONG = {
    "%c0%ae": ".",
    "%e0%80%ae": ".",
    "%c0%2e": ".",
    "%c0%af": "/",
    "%e0%80%af": "/",
    "%c1%9c": "\\",
    "%c0%5c": "\\",
}
# One literal pattern each: a constant replacement keeps the substitution in C.
_OVERLONG_RES = tuple(
    (re.compile(re.escape(k), re.IGNORECASE), v.replace("\\", "\\\\")) for k, v in _OVERLONG.items()
)
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
# Look-alikes NFKC leaves alone but some path and URL parsers honour.
_LOOKALIKES = (("\u2215", "/"), ("\u2044", "/"), ("\u29f8", "/"), ("\u2216", "\\"))


def decoded_forms(text: str) -> tuple[str, ...]:
    """``text`` and every distinct form it decodes to (at most four rounds deep)."""
    if text.isascii() and "%" not in text:
        return (text,)  # nothing to decode, and NFKC leaves ASCII alone
    # Agents repeat the same short values; a long one is decoded once for all the
    # shields that look at it, and not kept beyond that.
    return _decoded_short(text) if len(text) <= 2048 else _decoded_long(text)


@lru_cache(maxsize=4096)
def _decoded_short(text: str) -> tuple[str, ...]:
    return _decode(text)


@lru_cache(maxsize=2)
def _decoded_long(text: str) -> tuple[str, ...]:
    return _decode(text)


def _decode(text: str) -> tuple[str, ...]:
    forms = [text]
    current = text
    for _ in range(4):
        step = _decode_once(current)
        if step == current:
            break
        forms.append(step)
        current = step
    for form in list(forms):
        normal = _normalise(form)
        if normal not in forms:
            forms.append(normal)
    return tuple(forms)


def _decode_once(text: str) -> str:
    if "%" not in text:
        return text
    if any(lead in text for lead in ("%c", "%C", "%e", "%E")):  # every overlong form's lead
        for pattern, replacement in _OVERLONG_RES:
            text = pattern.sub(replacement, text)
    if "%u" in text:
        text = _PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), text)
    return _percent_decoded(text)


# A run of %XX escapes, decoded at once: urllib's unquote spends several Python
# steps on every escape, and an attacker can send hundreds of thousands of them.
_ESCAPE_RUN = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")
_ESCAPED_BYTE = {
    f"%{high}{low}".encode(): bytes.fromhex(f"{high}{low}")
    for high in "0123456789abcdefABCDEF"
    for low in "0123456789abcdefABCDEF"
}


def _escape_run_bytes(run: re.Match[bytes]) -> bytes:
    escapes = run.group()
    single = _ESCAPED_BYTE.get(escapes)
    return single if single is not None else bytes.fromhex(escapes.replace(b"%", b"").decode())


def _percent_decoded(text: str) -> str:
    """``unquote(text, errors="replace")`` with one step per run of escapes (a lone
    surrogate in ``text`` reads as U+FFFD here: decoded forms are for detection)."""
    raw = text.encode("utf-8", "surrogatepass")
    return _ESCAPE_RUN.sub(_escape_run_bytes, raw).decode("utf-8", "replace")


def _normalise(form: str) -> str:
    if not form.isascii() and not unicodedata.is_normalized("NFKC", form):
        form = unicodedata.normalize("NFKC", form)
    for lookalike, meaning in _LOOKALIKES:
        if lookalike in form:
            form = form.replace(lookalike, meaning)
    return form


# -- path traversal ----------------------------------------------------------------

# A path segment of dots only, with the whitespace around it and the ";params"
# after it that some servers ignore ("..;/admin"). Possessive, one try per segment.
_DOT_SEGMENT = re.compile(r"(?:^|(?<=[/\\]))\s*+(\.{2,}+)\s*+(?:;[^/\\]*+)?+(?=[/\\]|\Z)")
# Without one of these (and in plain ASCII) a value cannot hide a traversal.
_TRAVERSAL_HINT = re.compile(r"[.%\x00]")


def find_path_traversal(text: str, roots: tuple[str, ...] = ()) -> str | None:
    if not text or (not roots and text.isascii() and _TRAVERSAL_HINT.search(text) is None):
        return None
    for form in decoded_forms(text):
        if "\x00" in form:
            return "null byte in a path"
        dots = _parent_segment(form)
        if dots is not None:
            shown = "" if form == text else " (after decoding)"
            return f"parent-directory segment {_shown(dots)}{shown}"
        if roots and _escapes_roots(form, roots):
            return f"path outside the allowed roots ({', '.join(roots)})"
    return None


def _parent_segment(form: str) -> str | None:
    """A ".." segment, or a longer run of dots between separators ("...." is the
    parent's parent to some Windows APIs)."""
    has_separator = "/" in form or "\\" in form
    for segment in _DOT_SEGMENT.finditer(form):
        dots = segment.group(1)
        if dots == ".." or has_separator:
            return dots
    return None


def _escapes_roots(form: str, roots: tuple[str, ...]) -> bool:
    path = form.replace("\\", "/")
    if path.startswith("file://"):
        path = path[len("file://") :]
    is_absolute = path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:/", path) is not None
    if not is_absolute:
        return False
    normal = posixpath.normpath(path)
    return not any(normal == root or normal.startswith(root.rstrip("/") + "/") for root in roots)


# -- shell injection ---------------------------------------------------------------

# The longest stretch of shell text from a position on that runs nothing more
# than the command it belongs to: ordinary characters, quoted strings, escapes,
# plain $VAR, "a=1&b=2" (assignments run nothing), trailing line breaks. What
# stops it is judged by _shell_operator. Possessive repetition and alternatives
# that each consume at least one character keep this linear in the text.
_SHELL_INERT = re.compile(
    r"""(?:
        [^;&|<>\r\n`$'"\\]++                          # ordinary characters
      | '[^']*+'                                      # '…': nothing inside is special
      | \$'(?:[^'\\]++|\\[\s\S])*+'                   # $'…' (ANSI-C quoting)
      | "(?:[^"\\$`]++|\\[\s\S]|\$(?![({]))*+         # "…" with no substitution inside
        (?:`(?:[^"\\$`]++|\\[\s\S]|\$(?![({]))*+)?"  #    (one backtick alone runs nothing)
      | \\[\s\S]                                      # an escaped character
      | \$(?![({'])                                   # $ and $VAR
      | &(?=[A-Za-z_][A-Za-z0-9_]*=)                  # &name=: an assignment follows
      | [\r\n]\s*+\Z                                  # line breaks that end the text
    )*+""",
    re.VERBOSE,
)
# A double-quoted string whatever it holds (to tell a closed one from a stray quote).
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]++|\\[\s\S])*+"')
_SHELL_OPERATORS = (
    ("<(", "process substitution"),
    (">(", "process substitution"),
    ("$(", "command substitution $(…)"),
    ("${", "shell variable expansion ${…}"),
    ("&&", "command chaining with && or ||"),
    ("||", "command chaining with && or ||"),
    ("&>", "redirection to a file"),
    (";", "command chaining with ;"),
    ("|", "pipe into a command"),
    ("&", "background operator &"),
    (">", "redirection to a file"),
    ("<", "redirection from a file"),
    ("\n", "newline starting a new command"),
    ("\r", "newline starting a new command"),
)
_DANGEROUS_COMMAND = re.compile(
    r"\b(?:rm\s+-[a-z]*[rf]|mkfs|dd\s+if=|chmod\s+[0-7]*777|nc\s+-[a-z]*e|bash\s+-i)|/dev/tcp/"
)


def find_shell_injection(text: str) -> str | None:
    """What in ``text`` would make a shell run more than one command, or None.

    Only unquoted operators count (``grep ';' f`` is one command); ``$(…)``,
    backticks and ``${…}`` count inside double quotes too, as in bash. The text
    is judged on its own: a tool that pastes it inside its own quotes must
    quote it (``shlex.quote``), or pass arguments without a shell.
    """
    if not text:
        return None
    for form in decoded_forms(text):
        label = _shell_finding(form)
        if label is None and _DANGEROUS_COMMAND.search(form):
            label = "dangerous command"
        if label is not None:
            return label if form == text else f"{label} (after decoding)"
    return None


def _shell_finding(form: str) -> str | None:
    position = 0
    while True:
        inert = _SHELL_INERT.match(form, position)
        position = inert.end() if inert is not None else position
        if position >= len(form):
            return None
        label, resume = _shell_operator(form, position)
        if label is not None:
            return label
        position = resume


def _shell_operator(form: str, at: int) -> tuple[str | None, int]:
    """(what the text at ``at`` is, where to go on when it is harmless)."""
    for operator, label in _SHELL_OPERATORS:
        if form.startswith(operator, at):
            return label, at
    char = form[at]
    if char == "`":
        found = form.find("`", at + 1) != -1
        return ("command substitution `…`" if found else None), at + 1
    if char == '"':
        closed = _DOUBLE_QUOTED.match(form, at)
        if closed is None:
            return None, at + 1  # a stray quote is an ordinary character
        return _substitution_in(closed.group()), closed.end()
    return None, at + 1  # a stray ' or $'


def _substitution_in(quoted: str) -> str | None:
    if "$(" in quoted:
        return "command substitution $(…)"
    if "${" in quoted:
        return "shell variable expansion ${…}"
    if quoted.count("`") >= 2:
        return "command substitution `…`"
    return None


# -- SSRF ------------------------------------------------------------------------------

_METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, …
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
_LOOPBACK_HOSTS = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "localtest.me",
        "lvh.me",
    }
)
_LOOPBACK_SUFFIXES = (".localhost", ".localtest.me", ".lvh.me")
# Wildcard DNS services answer with the address written in the name.
_WILDCARD_DNS = (".nip.io", ".sslip.io", ".xip.io", ".traefik.me", ".nip.direct", ".ip.addr.tools")
_IP_IN_NAME = re.compile(
    r"(?:^|[.-])(\d{1,3}(?:[.-]\d{1,3}){3})\.(?:nip\.io|sslip\.io|xip\.io|traefik\.me|"
    r"nip\.direct|ip\.addr\.tools)$"
)
_HEX_IN_NAME = re.compile(r"(?:^|[.-])([0-9a-f]{8})\.(?:nip\.io|sslip\.io)$")
_LOCAL_SCHEMES = frozenset(
    {"file", "gopher", "dict", "ldap", "ldaps", "tftp", "jar", "netdoc", "php", "expect"}
)
# file:/etc/passwd needs no "//"; the look-behind keeps "profile:/x" out.
_LOCAL_FILE = re.compile(r"(?<![A-Za-z0-9+.-])(?:file|netdoc):[/\\]", re.IGNORECASE)
# "://", and the backslash spellings browsers read the same way.
_AUTHORITY_START = re.compile(r":[/\\]{2}")
_URL_END = re.compile(r"[\s'\"<>]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_LONGEST_SCHEME = 32
# Full stops that IDNA (UTS #46) and the C library's IDNA code read as ".".
_IDNA_DOTS = ("\u3002", "\uff0e", "\uff61")
_LONGEST_HOST = 253  # DNS; longer hosts can still be numbers (zero-padded), not names
# A token that may name a place on the network without a scheme (host:port,
# host/path), its host part shaped as the bare-host rules want: dotted, [IPv6],
# 0x…, …localhost. "12:30" and "/srv/x" are not. One try per token: the atomic
# group stops a failed token from being rescanned from each of its dots.
_LOCATOR = re.compile(r"(?<!\S)(?>[^\s:/\\]*?(?:[.\[]|0[xX]|(?i:localhost)))[^\s:/\\]*+[:/\\]\S*+")
_WHITESPACE = re.compile(r"\s")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ipv4_readings(host: str) -> list[ipaddress.IPv4Address]:
    """IPv4 the way inet_aton reads it (1-4 parts, each decimal, 0x-hex or 0-octal),
    and with zero-padded parts read as decimal, as other parsers do.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` all mean 127.0.0.1
    to the C library, so they must to the shield as well.
    """
    readings = []
    for octal in (True, False):
        address = _loose_ipv4(host, octal)
        if address is not None and address not in readings:
            readings.append(address)
    return readings


def _loose_ipv4(host: str, octal: bool) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(not part for part in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:] or "0", 16))
            elif octal and len(lowered) > 1 and lowered.startswith("0"):
                numbers.append(int(lowered[1:], 8))
            else:
                numbers.append(int(lowered, 10))
        except ValueError:  # not a number (or one longer than int() reads)
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def _ip_readings(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return list(_ipv4_readings(host))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, -translated, 6to4, NAT64 or
    compatible IPv6 one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    as_int = int(ip)
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("::ffff:0:0:0/96"):
        return ipaddress.IPv4Address(as_int & 0xFFFFFFFF)
    if 1 < as_int < 2**32:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(as_int)
    return None


def _describe_ip(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = _embedded_ipv4(ip)
        if inner is not None:
            found = _describe_ip(inner)
            return f"{found} (IPv4 {inner} inside IPv6)" if found else None
    if ip in _METADATA_IPS:
        return f"cloud metadata address {ip}"
    for label, test in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
    ):
        if test:
            return f"{label} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def _normalise_host(host: str) -> str:
    """The host as a client resolves it: percent-decoded, UTS #46-mapped (full-width
    and ideographic full stops, case), without brackets or a trailing dot."""
    if "%" in host and len(host) <= _LONGEST_HOST * 3:  # a longer one is no name, and
        host = unquote(host)  # the decoded forms spell out a number already
    host = host.strip()
    if not host.isascii():
        host = _idna_mapped(host)
    return host.strip("[]").rstrip(".").lower()


def _idna_mapped(host: str) -> str:
    for dot in _IDNA_DOTS:
        host = host.replace(dot, ".")
    if len(host) > _LONGEST_HOST:
        return host
    try:
        return idna.uts46_remap(host, std3_rules=False, transitional=False)
    except idna.IDNAError:  # not a valid name: judged as written
        return host


def _describe_host(host: str, allowed: NameMatcher | None, bare: bool = False) -> str | None:
    """Why ``host`` is internal, or None. ``bare``: a lone value, not from a URL nor
    a host field, so only unambiguous forms count (``0.5`` is a number, not the
    address 0.0.0.5)."""
    host = _normalise_host(host)
    if not host or (allowed is not None and allowed(host)):
        return None
    if bare and not _looks_like_bare_host(host):
        return None
    if host in _METADATA_HOSTS:
        return f"cloud metadata host {host}"
    if host in _LOOPBACK_HOSTS or host.endswith(_LOOPBACK_SUFFIXES):
        return f"loopback host {_shown(host)}"
    if any(c.isdigit() or c == ":" for c in host[:64]):  # names without one are no IP
        for ip in _ip_readings(host):
            found = _describe_ip(ip)
            if found:
                return f"{found} (written {_shown(host)})" if not _is_standard_ip(host) else found
    return _wildcard_dns(host) if host.endswith(_WILDCARD_DNS) else None


def _wildcard_dns(host: str) -> str | None:
    embedded = _IP_IN_NAME.search(host)
    if embedded is not None:
        readings = _ipv4_readings(embedded.group(1).replace("-", "."))
        found = next((f for f in map(_describe_ip, readings) if f), None)
        return f"{found} via wildcard DNS name {_shown(host)}" if found else None
    hexed = _HEX_IN_NAME.search(host)
    if hexed is not None:
        found = _describe_ip(ipaddress.IPv4Address(int(hexed.group(1), 16)))
        return f"{found} via wildcard DNS name {_shown(host)}" if found else None
    return None


def _is_standard_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _looks_like_bare_host(host: str) -> bool:
    if ":" in host or host.startswith("0x") or host.count(".") == 3:
        return True
    return ("." in host and not host.replace(".", "").isdigit()) or host == "localhost"


def find_internal_address(
    text: str, allowed: NameMatcher | None = None, *, host_field: bool = False
) -> str | None:
    """Why ``text`` points at an internal address, or None. ``host_field``: the
    value sits in a field named like a host or URL, where a plain number
    (``2130706433``) is an address, not a count."""
    if not text or (text.isascii() and not host_field and not _could_hold_address(text)):
        return None
    candidates = (
        candidate
        for form in decoded_forms(text)
        for spelling in _host_spellings(form)
        for candidate in _address_candidates(spelling)
    )
    seen: set[tuple[str, str]] = set()  # text repeats its links: judge each once
    for count, (kind, candidate) in enumerate(candidates, start=1):
        if count > MAX_ADDRESSES:
            return f"more than {MAX_ADDRESSES:,} addresses in one value: too many to inspect"
        if (kind, candidate) not in seen:
            seen.add((kind, candidate))
            found = _describe_candidate(kind, candidate, allowed, host_field)
            if found:
                return found
    return None


def _could_hold_address(text: str) -> bool:
    """Cheap test: an ASCII value with none of these is neither a URL nor a host."""
    if any(mark in text for mark in (".", ":", "%", "\\", "/")):
        return True
    return text.lower().startswith("0x") or "localhost" in text.lower()


def _host_spellings(form: str) -> Iterator[str]:
    """``form``, and ``form`` with IDNA full stops read as dots (so that a bare
    ``127。0。0。1`` is seen as the address it is)."""
    yield form
    if any(dot in form for dot in _IDNA_DOTS):
        for dot in _IDNA_DOTS:
            form = form.replace(dot, ".")
        yield form


def _address_candidates(form: str) -> Iterator[tuple[str, str]]:
    """(kind, text) for each place ``form`` may point at; kinds: "local" (a
    file: URL), "url", "value" (the whole value), "locator" (host:port/path)."""
    local = _LOCAL_FILE.search(form)
    if local is not None:
        yield "local", local.group()[:-1]
    for url in _urls(form):
        yield "url", url
    token = form.strip()
    if token and _WHITESPACE.search(token) is None:
        if "://" not in token:
            yield "value", token  # the whole value names one place
        return
    for locator in _LOCATOR.finditer(form):
        if "://" not in locator.group():
            yield "locator", locator.group()


def _describe_candidate(
    kind: str, candidate: str, allowed: NameMatcher | None, host_field: bool
) -> str | None:
    if kind == "local":
        return f"scheme {candidate} reaches local resources"
    if kind == "url":
        return _describe_url(candidate, allowed)
    if kind == "value":
        bare = not host_field
        found = _describe_host(candidate, allowed, bare=bare)  # a host alone, e.g. ::1
        return found or _describe_locator(candidate, allowed, whole=True, bare=bare)
    return _describe_locator(candidate, allowed, whole=False, bare=True)


def _urls(form: str) -> Iterator[str]:
    """Every URL with an authority in ``form`` (``scheme://…``, and a value that is
    one scheme-relative ``//host/…``), found from its "://": the scheme before it
    is read back at most 32 characters, so no run of letters is scanned twice."""
    stripped = form.strip()
    if stripped.startswith(("//", "\\\\")) and " " not in stripped:
        yield stripped
    position = 0
    while (start := _AUTHORITY_START.search(form, position)) is not None:
        separator = start.start()
        scheme_start = separator
        while separator - scheme_start < _LONGEST_SCHEME and scheme_start > 0:
            if form[scheme_start - 1] not in _SCHEME_CHARS:
                break
            scheme_start -= 1
        scheme = form[scheme_start:separator].lstrip("0123456789+.-") or "http"
        end = _URL_END.search(form, start.end())
        position = end.start() if end is not None else len(form)
        yield scheme + form[separator:position]


def _describe_url(url: str, allowed: NameMatcher | None) -> str | None:
    # Browsers and some HTTP libraries read "\" as "/": check both readings.
    for variant in dict.fromkeys((url, url.replace("\\", "/"))):
        try:
            parts = urlsplit(variant if "://" in variant else "http:" + variant)
            host = parts.hostname
        except ValueError:
            return f"malformed URL {_shown(url)}"
        if parts.scheme.lower() in _LOCAL_SCHEMES:
            return f"scheme {parts.scheme}:// reaches local resources"
        if host:
            found = _describe_host(host, allowed)
            if found:
                return found
    return None


def _describe_locator(
    token: str, allowed: NameMatcher | None, *, whole: bool, bare: bool
) -> str | None:
    """Why a scheme-less ``host[:port][/path]`` token is internal, or None.

    A whole value may be a bare host; inside text only a token with a port or a
    path counts (``localhost:8080/admin``), since prose mentions hosts freely.
    """
    token = token.strip("'\"()<>,;")
    try:
        parts = urlsplit("//" + token.replace("\\", "/"))
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    located = port is not None or bool(parts.path) or bool(parts.query)
    if not (whole or located) or _is_network_range(host, parts.path):
        return None
    return _describe_host(host, allowed, bare=bare)


def _is_network_range(host: str, path: str) -> bool:
    """``10.0.0.0/8`` is a network written in CIDR notation, not a place to fetch."""
    return path[1:].isdigit() and len(path) <= 4 and _is_standard_ip(host)


# -- secrets and PII (the DLP detectors) ---------------------------------------------

_CATEGORY = {d.name: d.category for d in DETECTORS} | {"secret_field": "secret"}
_MASKED = re.compile(r"\[REDACTED:([a-z_]+)\]")


def _dlp_findings(request: DecisionRequest, items: list[Inspected]) -> list[tuple[str, str, str]]:
    """(category, detector, path) found in the values, in client-side DLP checks, and
    in values the client already masked (``[REDACTED:aws_access_key]``)."""
    found = [(f.category, f.detector, f.path) for f in scan_value(request.action.arguments)]
    found += [
        (check.detail, check.name.removeprefix("dlp."), check.path or "args")
        for check in request.client_checks
        if check.name.startswith("dlp.") and check.detail in ("secret", "pii")
    ]
    for item in items:
        if "[REDACTED:" in item.text:
            for kind in _MASKED.findall(item.text):
                found.append((_CATEGORY.get(kind, "secret"), kind, item.path))
    return found


# -- walking the arguments ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inspected:
    """One string the value shields read: an argument value, a dict key, or a
    number in a host-like field (as its decimal text)."""

    path: str  # e.g. args.files[2].path (a key's path is the path of its value)
    text: str
    field: str | None  # the key the value sits under (for a list item: the list's key)
    is_key: bool = False

    @property
    def in_host_field(self) -> bool:
        return not self.is_key and self.field is not None and _is_host_field(self.field)


# Fields whose values are hosts or URLs, by the last word of their name; an
# "address" only with a network word before it (a street address is no host).
_HOST_WORDS = frozenset(
    {
        *("host", "hosts", "hostname", "hostnames", "ip", "ips", "ipv4", "ipv6", "addr"),
        *("server", "servers", "endpoint", "endpoints", "url", "urls", "uri", "uris"),
        *("domain", "domains", "upstream", "proxy", "origin"),
    }
)
_NETWORK_WORDS = frozenset(
    {"ip", "host", "server", "remote", "local", "bind", "listen", "peer", "proxy", "target"}
)
_FIELD_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_LONGEST_KEY_IN_PATH = 128


def _is_host_field(name: str) -> bool:
    return _is_host_name_tail(name[-64:])  # the last words decide


@lru_cache(maxsize=1024)
def _is_host_name_tail(name: str) -> bool:
    words = [w.lower() for w in _FIELD_WORD.findall(name)]
    if not words:
        return False
    if words[-1] in ("address", "addresses"):
        return len(words) > 1 and words[-2] in _NETWORK_WORDS
    return words[-1] in _HOST_WORDS or "".join(words[-2:]) in ("hostname", "ipaddr")


def _child(path: str, key: str) -> str:
    if len(key) > _LONGEST_KEY_IN_PATH:  # a path names the key, not all of it
        key = key[:_LONGEST_KEY_IN_PATH] + "…"
    return f"{path}.{key}"


def inspected_items(
    value: Any,
    path: str = "args",
    field: str | None = None,
    into: list[Inspected] | None = None,
) -> list[Inspected]:
    """Every string a value shield reads in a JSON value, with where it is."""
    found = [] if into is None else into
    if isinstance(value, str):
        found.append(Inspected(path, value, field))
    elif isinstance(value, int) and not isinstance(value, bool):
        if field is not None and _is_host_field(field):
            found.append(Inspected(path, str(value), field))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            child = _child(path, name)
            found.append(Inspected(child, name, name, is_key=True))
            inspected_items(item, child, name, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            inspected_items(item, f"{path}[{index}]", field, found)
    return found


Detector = Callable[[Inspected], str | None]


@dataclass(frozen=True, slots=True)
class Shield:
    name: str
    outcome: CheckOutcome
    tools: NameMatcher | None
    arguments: NameMatcher | None
    detect: Detector | None  # None: the DLP-backed shields (secrets, pii)

    def applies_to(self, tool: str) -> bool:
        return self.tools is None or self.tools(tool)

    def watches(self, path: str) -> bool:
        """Whether this shield looks at ``path``: a watched argument covers
        everything inside it (``args.command`` covers ``args.command[0].sh``)."""
        if self.arguments is None:
            return True
        return any(self.arguments(p) for p in _self_and_ancestors(path))

    def inspect(self, item: Inspected) -> Check | None:
        if len(item.text) > MAX_INSPECTED_CHARS:
            return self.check(
                item.path,
                f"value too large to inspect ({len(item.text):,} characters; "
                f"shields read at most {MAX_INSPECTED_CHARS:,})",
            )
        detail = self.detect(item) if self.detect is not None else None
        if detail is None:
            return None
        return self.check(item.path, f"{detail} in a key" if item.is_key else detail)

    def check(self, path: str, detail: str) -> Check:
        return Check(name=f"shield.{self.name}", outcome=self.outcome, detail=detail, path=path)


_SEGMENT_START = re.compile(r"[.\[]")
# Watched arguments sit near the root (args.command); a path (a client check's
# may be anything) is followed that many segments deep, not further.
_DEEPEST_WATCHED = 64


def _self_and_ancestors(path: str) -> Iterator[str]:
    yield path
    starts = _SEGMENT_START.finditer(path, 1)
    for segment in itertools.islice(starts, _DEEPEST_WATCHED):
        yield path[: segment.start()]


def _build(name: str, spec: ShieldSpec) -> Shield:
    allowed = NameMatcher.of(spec.allow_hosts) if spec.allow_hosts else None
    roots = tuple(posixpath.normpath(r) for r in spec.roots)
    detectors: dict[str, Detector | None] = {
        "path_traversal": lambda item: find_path_traversal(item.text, roots),
        "shell_injection": lambda item: find_shell_injection(item.text),
        "ssrf": lambda item: find_internal_address(
            item.text, allowed, host_field=item.in_host_field
        ),
        "secrets": None,
        "pii": None,
    }
    return Shield(
        name=name,
        outcome=_OUTCOME[spec.action],
        tools=NameMatcher.of(spec.tools) if spec.tools else None,
        arguments=NameMatcher.of(spec.arguments) if spec.arguments else None,
        detect=detectors[name],
    )


class Shields:
    """The configured shields; ``scan`` returns one Check per finding."""

    def __init__(self, spec: ShieldsSpec) -> None:
        configured = [(name, value) for name, value in spec if isinstance(value, ShieldSpec)]
        built = [_build(name, value) for name, value in configured]
        self.value_shields = tuple(s for s in built if s.detect is not None)
        self.dlp_shields = {s.name: s for s in built if s.detect is None}

    def __bool__(self) -> bool:
        return bool(self.value_shields or self.dlp_shields)

    def scan(self, request: DecisionRequest) -> list[Check]:
        tool = request.action.tool
        checks: list[Check] = []
        items = inspected_items(request.action.arguments)
        active = [s for s in self.value_shields if s.applies_to(tool)]
        for item in items if active else ():
            for shield in active:
                if shield.watches(item.path):
                    check = shield.inspect(item)
                    if check is not None:
                        checks.append(check)
        dlp = {k: s for k, s in self.dlp_shields.items() if s.applies_to(tool)}
        if dlp:
            checks.extend(self._dlp_checks(request, items, dlp))
        return checks

    @staticmethod
    def _dlp_checks(
        request: DecisionRequest, items: list[Inspected], shields: dict[str, Shield]
    ) -> list[Check]:
        shield_for = {"secret": shields.get("secrets"), "pii": shields.get("pii")}
        seen: set[tuple[str, str]] = set()
        checks = []
        for category, detector, path in _dlp_findings(request, items):
            shield = shield_for.get(category)
            if shield is None or not shield.watches(path) or (detector, path) in seen:
                continue
            seen.add((detector, path))
            checks.append(shield.check(path, f"{detector.replace('_', ' ')} found"))
        return checks
