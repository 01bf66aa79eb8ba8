"""Argument shields: look inside argument values for attacks and leaks.

Each detector takes one string and says what is wrong with it (or nothing).
Attackers encode, so detectors look at every decoded form of a value:
URL-encoded once, twice or more, overlong UTF-8, ``%u`` escapes, Unicode
look-alikes (NFKC) and backslashes as separators.

SSRF checks are static: hostnames are not resolved (no DNS at decision time),
so a public name that resolves to an internal address is not caught here; an
egress proxy is the place for that.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from gatekit._models import Check, CheckOutcome, DecisionRequest
from gatekit.dlp import DETECTORS, scan_value
from gatekit.policy.rules import NameMatcher
from gatekit.policy.schema import ShieldAction, ShieldSpec, ShieldsSpec

__all__ = [
    "Shield",
    "Shields",
    "decoded_forms",
    "find_internal_address",
    "find_path_traversal",
    "find_shell_injection",
]

_OUTCOME = {
    ShieldAction.BLOCK: CheckOutcome.BLOCK,
    ShieldAction.REVIEW: CheckOutcome.REVIEW,
    ShieldAction.LOG: CheckOutcome.WARN,
}

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
_OVERLONG_RE = re.compile("|".join(re.escape(k) for k in _OVERLONG), re.IGNORECASE)
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
# Look-alikes NFKC leaves alone but some path and URL parsers honour.
_LOOKALIKES = str.maketrans({"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u2216": "\\"})


def decoded_forms(text: str) -> tuple[str, ...]:
    """``text`` and every distinct form it decodes to (at most four rounds deep)."""
    if text.isascii() and "%" not in text:
        return (text,)  # nothing to decode, and NFKC leaves ASCII alone
    # Agents repeat the same short values; long ones are not worth keeping.
    return _decoded_forms_cached(text) if len(text) <= 2048 else _decode(text)


@lru_cache(maxsize=4096)
def _decoded_forms_cached(text: str) -> tuple[str, ...]:
    return _decode(text)


def _decode(text: str) -> tuple[str, ...]:
    forms = [text]
    current = text
    for _ in range(4):
        step = _OVERLONG_RE.sub(lambda m: _OVERLONG[m.group(0).lower()], current)
        step = _PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), step)
        step = unquote(step, errors="replace")
        if step == current:
            break
        forms.append(step)
        current = step
    for form in list(forms):
        normal = unicodedata.normalize("NFKC", form).translate(_LOOKALIKES)
        if normal not in forms:
            forms.append(normal)
    return tuple(forms)


# -- path traversal ----------------------------------------------------------------

_SEPARATORS = re.compile(r"[/\\]")
# Without one of these (and in plain ASCII) a value cannot hide a traversal.
_TRAVERSAL_HINT = re.compile(r"[.%\x00]")


def find_path_traversal(text: str, roots: tuple[str, ...] = ()) -> str | None:
    if not text or (not roots and text.isascii() and _TRAVERSAL_HINT.search(text) is None):
        return None
    for form in decoded_forms(text):
        if "\x00" in form:
            return "null byte in a path"
        segments = _SEPARATORS.split(form)
        has_separator = len(segments) > 1
        for segment in segments:
            bare = segment.split(";", 1)[0].strip()
            if bare == ".." or (has_separator and len(bare) > 2 and set(bare) == {"."}):
                shown = "" if form == text else " (after decoding)"
                return f"parent-directory segment {bare!r}{shown}"
        if roots and _escapes_roots(form, roots):
            return f"path outside the allowed roots ({', '.join(roots)})"
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

_SHELL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("command substitution $(…)", re.compile(r"\$\(")),
    ("command substitution `…`", re.compile(r"`[^`]*`")),
    ("shell variable expansion ${…}", re.compile(r"\$\{[^}]*\}")),
    ("command chaining with ;", re.compile(r";\s*[\w./~$-]")),
    ("command chaining with && or ||", re.compile(r"(?:&&|\|\|)\s*[\w./~$-]")),
    ("pipe into a command", re.compile(r"(?<!\|)\|(?!\|)\s*[\w./~$-]")),
    ("background operator &", re.compile(r"(?<![&\w=])&(?!&)\s*[\w./~$-]|&\s*$")),
    ("newline starting a new command", re.compile(r"[\r\n]\s*[\w./~$-]")),
    ("redirection to a file", re.compile(r"(?:^|[^\w<>=-])>{1,2}\s*[\w./~&$]")),
    ("process substitution", re.compile(r"[<>]\(")),
    (
        "dangerous command",
        re.compile(
            r"\b(?:rm\s+-[a-z]*[rf]|mkfs|dd\s+if=|chmod\s+[0-7]*777|nc\s+-[a-z]*e|"
            r"bash\s+-i|/dev/tcp/|curl\s[^|]*\|\s*(?:ba|z)?sh|wget\s[^|]*\|\s*(?:ba|z)?sh)"
        ),
    ),
)


def find_shell_injection(text: str) -> str | None:
    if not text:
        return None
    for form in decoded_forms(text):
        for label, pattern in _SHELL_PATTERNS:
            if pattern.search(form):
                return label if form == text else f"{label} (after decoding)"
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
# Wildcard DNS services answer with the address written in the name.
_IP_IN_NAME = re.compile(
    r"(?:^|[.-])(\d{1,3}(?:[.-]\d{1,3}){3})\.(?:nip\.io|sslip\.io|xip\.io|traefik\.me|"
    r"nip\.direct|ip\.addr\.tools)$"
)
_HEX_IN_NAME = re.compile(r"(?:^|[.-])([0-9a-f]{8})\.(?:nip\.io|sslip\.io)$")
_LOCAL_SCHEMES = frozenset(
    {"file", "gopher", "dict", "ldap", "ldaps", "tftp", "jar", "netdoc", "php", "expect"}
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_HOSTISH = re.compile(r"^\[?[0-9A-Za-z.:%_\-\]]+(?::\d+)?$")


def _loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 the way inet_aton reads it: 1-4 parts, each decimal, 0x-hex or 0-octal.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` all mean 127.0.0.1
    to the C library, so they must to the shield as well.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(not part for part in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:] or "0", 16))
            elif len(lowered) > 1 and lowered.startswith("0"):
                numbers.append(int(lowered[1:], 8))
            else:
                numbers.append(int(lowered, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _loose_ipv4(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, NAT64 or compatible IPv6 one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    as_int = int(ip)
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(as_int & 0xFFFFFFFF)
    if 1 < as_int < 2**32:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(as_int)
    return None


def _describe_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
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


def _describe_host(host: str, allowed: NameMatcher | None, bare: bool = False) -> str | None:
    """Why ``host`` is internal, or None. ``bare``: a lone value, not from a URL, so
    only unambiguous forms count (``0.5`` is a number, not the address 0.0.0.5)."""
    host = unquote(host).strip().strip("[]").rstrip(".").lower()
    if not host or (allowed is not None and allowed(host)):
        return None
    if bare and not _looks_like_bare_host(host):
        return None
    if host in _METADATA_HOSTS:
        return f"cloud metadata host {host}"
    if host in _LOOPBACK_HOSTS or host.endswith((".localhost", ".localtest.me", ".lvh.me")):
        return f"loopback host {host}"
    ip = _parse_ip(host)
    if ip is not None:
        found = _describe_ip(ip)
        return f"{found} (written {host!r})" if found and not _is_standard_ip(host) else found
    embedded = _IP_IN_NAME.search(host)
    if embedded is not None:
        ip = _parse_ip(embedded.group(1).replace("-", "."))
        found = _describe_ip(ip) if ip is not None else None
        return f"{found} via wildcard DNS name {host}" if found else None
    hexed = _HEX_IN_NAME.search(host)
    if hexed is not None:
        found = _describe_ip(ipaddress.IPv4Address(int(hexed.group(1), 16)))
        return f"{found} via wildcard DNS name {host}" if found else None
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


def _urls(text: str) -> Iterator[str]:
    stripped = text.strip()
    if " " not in stripped and ("://" in stripped or stripped.startswith(("//", "\\\\"))):
        yield stripped
    else:
        yield from _URL_IN_TEXT.findall(text)


def find_internal_address(text: str, allowed: NameMatcher | None = None) -> str | None:
    if not text or (text.isascii() and not _could_hold_address(text)):
        return None
    for form in decoded_forms(text):
        for url in _urls(form):
            found = _describe_url(url, allowed)
            if found:
                return found
        bare = form.strip()
        if " " not in bare and "/" not in bare and _HOSTISH.match(bare):
            found = _describe_host(_strip_port(bare), allowed, bare=True)
            if found:
                return found
    return None


def _could_hold_address(text: str) -> bool:
    """Cheap test: an ASCII value with none of these is neither a URL nor a host."""
    if any(mark in text for mark in (".", ":", "%", "\\")):
        return True
    return text.lower().startswith(("0x", "//")) or "localhost" in text.lower()


def _describe_url(url: str, allowed: NameMatcher | None) -> str | None:
    # Browsers and some HTTP libraries read "\" as "/": check both readings.
    for variant in dict.fromkeys((url, url.replace("\\", "/"))):
        try:
            parts = urlsplit(variant if "://" in variant else "http:" + variant)
            host = parts.hostname
        except ValueError:
            return f"malformed URL {url!r}"
        if parts.scheme.lower() in _LOCAL_SCHEMES:
            return f"scheme {parts.scheme}:// reaches local resources"
        if host:
            found = _describe_host(host, allowed)
            if found:
                return found
    return None


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


# -- secrets and PII (the DLP detectors) ---------------------------------------------

_CATEGORY = {d.name: d.category for d in DETECTORS} | {"secret_field": "secret"}
_MASKED = re.compile(r"\[REDACTED:([a-z_]+)\]")


def _dlp_findings(
    request: DecisionRequest, strings: list[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """(category, detector, path) found in the values, in client-side DLP checks, and
    in values the client already masked (``[REDACTED:aws_access_key]``)."""
    found = [(f.category, f.detector, f.path) for f in scan_value(request.action.arguments)]
    found += [
        (check.detail, check.name.removeprefix("dlp."), check.path or "args")
        for check in request.client_checks
        if check.name.startswith("dlp.") and check.detail in ("secret", "pii")
    ]
    for path, text in strings:
        if "[REDACTED:" in text:
            for kind in _MASKED.findall(text):
                found.append((_CATEGORY.get(kind, "secret"), kind, path))
    return found


# -- walking the arguments ----------------------------------------------------------


def iter_strings(
    value: Any, path: str = "args", into: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """(path, text) of every string in a JSON value, e.g. ``args.files[2].path``."""
    found = [] if into is None else into
    if isinstance(value, str):
        found.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            iter_strings(item, f"{path}.{key}", found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            iter_strings(item, f"{path}[{index}]", found)
    return found


Detector = Callable[[str], str | None]


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

    def check(self, path: str, detail: str) -> Check:
        return Check(name=f"shield.{self.name}", outcome=self.outcome, detail=detail, path=path)


_LAST_SEGMENT = re.compile(r"(\[\d+\]|\.[^.\[]+)$")


def _self_and_ancestors(path: str) -> Iterator[str]:
    while True:
        yield path
        parent = _LAST_SEGMENT.sub("", path)
        if parent == path:
            return
        path = parent


def _build(name: str, spec: ShieldSpec) -> Shield:
    allowed = NameMatcher.of(spec.allow_hosts) if spec.allow_hosts else None
    roots = tuple(posixpath.normpath(r) for r in spec.roots)
    detectors: dict[str, Detector | None] = {
        "path_traversal": lambda text: find_path_traversal(text, roots),
        "shell_injection": find_shell_injection,
        "ssrf": lambda text: find_internal_address(text, allowed),
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
        strings = iter_strings(request.action.arguments)
        active = [s for s in self.value_shields if s.applies_to(tool)]
        if active:
            for path, text in strings:
                for shield in active:
                    if shield.watches(path) and shield.detect is not None:
                        detail = shield.detect(text)
                        if detail is not None:
                            checks.append(shield.check(path, detail))
        dlp = {k: s for k, s in self.dlp_shields.items() if s.applies_to(tool)}
        if dlp:
            checks.extend(self._dlp_checks(request, strings, dlp))
        return checks

    @staticmethod
    def _dlp_checks(
        request: DecisionRequest, strings: list[tuple[str, str]], shields: dict[str, Shield]
    ) -> list[Check]:
        shield_for = {"secret": shields.get("secrets"), "pii": shields.get("pii")}
        seen: set[tuple[str, str]] = set()
        checks = []
        for category, detector, path in _dlp_findings(request, strings):
            shield = shield_for.get(category)
            if shield is None or not shield.watches(path) or (detector, path) in seen:
                continue
            seen.add((detector, path))
            checks.append(shield.check(path, f"{detector.replace('_', ' ')} found"))
        return checks
