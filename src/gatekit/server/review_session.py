"""The review page's browser sessions: a signed, expiring cookie, and the CSRF checks.

Why a signed cookie and not a session table: every replica must accept a session
that another one started, and a signed value needs no shared state beyond one
secret (``GATEKIT_SESSION_SECRET``, the same on every replica; without it, a random
key kept 0600 in the data dir, which every worker of one server shares). The
cookie holds the reviewer's public key id and a random per-session CSRF token,
never the API key. Each request looks the key id up in the store, so revoking
the key ends its sessions on every replica at once; otherwise a session lasts
``SESSION_SECONDS``. Signing out deletes the cookie in the browser (there is no
server-side list of sessions to strike it from).

CSRF: the synchronizer token lives inside the signed session and is embedded in
every form; a POST must carry it back and come from this page's own origin
(``Origin``/``Referer``/``Sec-Fetch-Site``, when the browser sends them).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gatekit._exceptions import ConfigurationError
from gatekit._settings import Settings

COOKIE = "gatekit_review"
COOKIE_PATH = "/review"
SESSION_SECONDS = 8 * 3600  # a working day; the key's revocation ends it sooner
SECRET_FILE = "review-session.key"
_SALT = "gatekit.review.session.v1"  # a value signed for anything else never passes here


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: a CSRF token, and the reviewer's key id once signed in."""

    csrf: str
    key_id: str | None = None


class Sessions:
    """Issues and reads session cookies signed with the server's secret."""

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def issue(self, key_id: str | None = None) -> Session:
        """A fresh session: a new CSRF token, so none survives signing in or out."""
        return Session(csrf=secrets.token_urlsafe(32), key_id=key_id)

    def save(self, response: Response, request: Request, session: Session) -> None:
        """Set ``session`` as the browser's cookie on ``response``."""
        value = self._serializer.dumps({"csrf": session.csrf, "key_id": session.key_id})
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=_is_https(request),
        )

    def read(self, request: Request) -> Session | None:
        """The session the request's cookie carries; None when absent, forged or expired."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict):
            return None
        csrf, key_id = data.get("csrf"), data.get("key_id")
        if not isinstance(csrf, str) or not (key_id is None or isinstance(key_id, str)):
            return None
        return Session(csrf=csrf, key_id=key_id)

    @staticmethod
    def end(response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_is_https(request)
        )


def token_matches(session: Session | None, given: str) -> bool:
    """Whether ``given`` is this session's CSRF token (compared in constant time)."""
    if session is None or not given:
        return False
    return hmac.compare_digest(session.csrf.encode(), given.encode())


def cross_site_reason(request: Request) -> str | None:
    """Why a POST does not come from this page's own origin, or None when it does.

    Browsers send ``Origin`` with every POST (and ``Sec-Fetch-Site``); a client that
    sends neither nor a ``Referer`` (not a browser) is judged by the token alone."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return f"a {fetch_site} request"
    origin = request.headers.get("origin")
    if origin is not None:
        return None if origin == own else "a request from another origin"
    referer = request.headers.get("referer")
    if referer is not None and referer != own and not referer.startswith(own + "/"):
        return "a request referred by another origin"
    return None


def load_secret(settings: Settings) -> bytes:
    """The key that signs sessions: the configured one, else the data dir's own
    (created once, 0600; several workers starting at once agree on one)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path = settings.data_dir / SECRET_FILE
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            _create_secret(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the review session key {path} is accessible by other users"
                f" (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
            )
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot keep the review session key in {path}: {exc.strerror or exc}"
        ) from exc
    if len(secret) < 32:
        raise ConfigurationError(f"the review session key {path} is too short (or empty)")
    return secret


def _create_secret(path: Path) -> None:
    # Written whole under a name of its own, then linked into place: link() fails
    # if another worker got there first, and nobody ever reads a half-written key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"
