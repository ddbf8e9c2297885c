"""The shapes of Bitbucket's answers, checked before anything is read from them.

Every field the pipe relies on goes through one of a few validators that return the typed
value or raise ShapeError naming the endpoint and the place:

    GET /repositories/acme: 'values[3]' is null, expected an object

A wrong shape then ends as `unknown` for the check that needed it (exit 3), never as a
traceback, and never as a guess. Values are described by their JSON type, and shown only when
short and harmless (a small number, a short printable word), so that a message stays one line
and never echoes a long server string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SHOWN_NUMBER = 12  # characters of a number shown in a message
SHOWN_WORD = 24  # characters of a word shown in a message
MESSAGE_LIMIT = 300
# Bitbucket has about 60 scope names in both vocabularies together, each under 40 characters:
# an answer naming more, or a longer one, is not Bitbucket's, and is never carried into the
# assessment and the reports (whose work would grow with it, after TIMEOUT's deadline).
MAX_SCOPES = 200
SCOPE_NAME_LIMIT = 100


class ShapeError(Exception):
    """A server answer that is not in Bitbucket's shape: where it came from, and what was wrong."""

    def __init__(self, endpoint: str, what: str):
        self.endpoint, self.what = endpoint, what
        super().__init__(f"{endpoint}: {what}")


def describe(value: Any) -> str:
    """A JSON value in a few words: 'null', 'a list', '-1', 'a boolean (true)'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= SHOWN_NUMBER else "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _word(value: Any) -> str:
    """An unexpected word is worth showing ('owner'); anything long or odd only by its type."""
    if isinstance(value, str) and 0 < len(value) <= SHOWN_WORD and value.isprintable():
        return repr(value)
    return describe(value)


def place_of(prefix: str, key: str | int) -> str:
    """'values[3].repository': where a value sits in the answer."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _at(place: str) -> str:
    return f"'{place}'" if place else "the answer"


def wrong(value: Any, endpoint: str, place: str, expected: str) -> ShapeError:
    return ShapeError(endpoint, f"{_at(place)} is {describe(value)}, expected {expected}")


def expect_dict(value: Any, endpoint: str, place: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong(value, endpoint, place, "an object")
    return value


def expect_list(value: Any, endpoint: str, place: str = "") -> list[Any]:
    if not isinstance(value, list):
        raise wrong(value, endpoint, place, "a list")
    return value


def expect_str(value: Any, endpoint: str, place: str = "", *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise wrong(value, endpoint, place, "a string" if empty else "a non-empty string")
    return value


def expect_int(value: Any, endpoint: str, place: str = "", *, minimum: int = 0) -> int:
    """A JSON whole number >= minimum; True is an int to Python, never to JSON."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise wrong(value, endpoint, place, f"a whole number >= {minimum}")
    return value


def expect_str_list(value: Any, endpoint: str, place: str = "") -> tuple[str, ...]:
    items = expect_list(value, endpoint, place)
    return tuple(expect_str(item, endpoint, place_of(place, i)) for i, item in enumerate(items))


def _scope_names(names: Sequence[str], endpoint: str, place: str) -> None:
    if len(names) > MAX_SCOPES:
        raise ShapeError(endpoint, f"{_at(place)} names more than {MAX_SCOPES} scopes")
    if any(len(name) > SCOPE_NAME_LIMIT for name in names):
        raise ShapeError(endpoint, f"{_at(place)} holds a scope name longer than {SCOPE_NAME_LIMIT} characters")


def expect_scope_list(value: Any, endpoint: str, place: str = "") -> tuple[str, ...]:
    """A list of scope names (a 403's required and granted): strings, at most MAX_SCOPES."""
    if isinstance(value, list) and len(value) > MAX_SCOPES:  # before looking at each of them
        raise ShapeError(endpoint, f"{_at(place)} names more than {MAX_SCOPES} scopes")
    names = expect_str_list(value, endpoint, place)
    _scope_names(names, endpoint, place)
    return names


def expect_scope_text(value: Any, endpoint: str, place: str = "") -> str:
    """Scope names in one string, space- or comma-separated (the OAuth token's `scope`)."""
    text = expect_str(value, endpoint, place)
    _scope_names(text.replace(",", " ").split(), endpoint, place)
    return text


def expect_one_of(value: Any, choices: Sequence[str], endpoint: str, place: str = "") -> str:
    if not isinstance(value, str) or value not in choices:
        raise ShapeError(endpoint, f"{_at(place)} is {_word(value)}, expected one of {', '.join(choices)}")
    return value


def optional(obj: dict[str, Any], key: str, check: Callable[..., Any], endpoint: str, prefix: str = "", **kw: Any):
    """obj[key] through `check`, or None when the key is absent or null."""
    value = obj.get(key)
    return None if value is None else check(value, endpoint, place_of(prefix, key), **kw)


def short(text: str) -> str:
    """A server message kept to one readable length."""
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def summary(problems: list[str]) -> str:
    """The first problem, and how many more: a reason stays one line however broken the answer."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


# --- the two shapes every endpoint shares ----------------------------------------------------


@dataclass(frozen=True)
class ErrorPayload:
    """`{"type": "error", "error": {"message": ..., "detail": ...}}`; a scope 403's detail is an
    object naming the scopes it required and the ones the credential holds."""

    message: str | None = None
    required: tuple[str, ...] = ()
    granted: tuple[str, ...] | None = None


def error_payload(body: Any, endpoint: str) -> ErrorPayload:
    if body is None:  # no body, or one that was not JSON (never kept)
        return ErrorPayload()
    error = expect_dict(body, endpoint).get("error")
    if error is None:
        return ErrorPayload()
    error = expect_dict(error, endpoint, "error")
    message = optional(error, "message", expect_str, endpoint, "error")
    detail = error.get("detail")
    if detail is None or isinstance(detail, str):  # the documented detail is a sentence
        return ErrorPayload(short(message) if message else None)
    if not isinstance(detail, dict):
        raise wrong(detail, endpoint, "error.detail", "a string or an object")
    required = optional(detail, "required", expect_scope_list, endpoint, "error.detail") or ()
    granted = optional(detail, "granted", expect_scope_list, endpoint, "error.detail")
    return ErrorPayload(short(message) if message else None, required, granted)


@dataclass(frozen=True)
class Page:
    """One page of a collection: `{"values": [...], "size": N, "pagelen": N, "page": N, "next": URL}`.
    The items are left as they came: each endpoint checks its own."""

    values: list[Any]
    size: int | None
    next: str | None


def page(body: Any, endpoint: str) -> Page:
    body = expect_dict(body, endpoint)
    values = optional(body, "values", expect_list, endpoint) or []
    size = optional(body, "size", expect_int, endpoint)
    optional(body, "pagelen", expect_int, endpoint, minimum=1)
    optional(body, "page", expect_int, endpoint, minimum=1)
    link = optional(body, "next", expect_str, endpoint)
    if not link and size is not None and size != len(values):
        # The only page must hold everything it counts: an emptied list must not read as "none".
        raise ShapeError(endpoint, f"'size' is {size} but the only page holds {len(values)} items")
    return Page(values, size, link or None)
