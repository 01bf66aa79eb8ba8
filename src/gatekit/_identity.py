"""Comparing identities the way people read them.

``Agent-1``, ``agent-1 `` and the same name in fullwidth letters name one agent to a
person, so separation of duties must treat them as one: identities are
compared after Unicode NFKC normalisation, case folding and trimming.
Characters that render as nothing or control the terminal (zero-width
spaces, bidi overrides, control codes) have no place in an identity at all.
"""

from __future__ import annotations

import unicodedata

from gatekit._exceptions import ValidationError

__all__ = ["canonical_identity", "same_identity"]

# Cc: control, Cf: format (zero-width joiners/spaces, bidi overrides), Co/Cs/Cn: unusable.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def canonical_identity(identity: str, *, field: str = "identity") -> str:
    """``identity`` as compared: NFKC, case-folded, trimmed. Rejects invisible characters."""
    hidden = next((c for c in identity if unicodedata.category(c) in _INVISIBLE_CATEGORIES), None)
    if hidden is not None:
        raise ValidationError(
            f"{field} contains an invisible or control character (U+{ord(hidden):04X})",
            field=field,
        )
    return unicodedata.normalize("NFKC", identity).casefold().strip()


def same_identity(first: str, second: str) -> bool:
    """Whether two identities name the same principal (see the module docstring)."""
    return canonical_identity(first) == canonical_identity(second)
