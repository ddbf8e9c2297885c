"""A small BBQL (`q=`) for the lists the pipe filters: comparisons joined by AND / OR, parentheses.

Bitbucket's filtering language (developer.atlassian.com, "Filtering and sorting"): `field op value`
with op one of = != ~ !~ > >= < <=, string values in double quotes, `true`/`false`/`null` literals,
AND binding tighter than OR. Enough of it to answer what a backup tool asks
(`permission>"read"`, `repository.full_name="ws/x"`, `full_name="ws/x" OR full_name="ws/y"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|!~|=|~|>|<)|(?P<paren>[()])|(?P<word>[A-Za-z_][\w.]*|-?\d+))'
)


class BbqlError(ValueError):
    """A query Bitbucket would refuse with 400."""


def _tokens(query: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(query.rstrip()):
        m = _TOKEN.match(query, pos)
        if m is None or m.end() == pos:
            raise BbqlError(f"Invalid query: unexpected text at position {pos}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "word" and text in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text]
    if kind == "word" and re.fullmatch(r"-?\d+", text):
        return int(text)
    raise BbqlError(f"Invalid query: expected a value, found {text!r}")


def _compare(op: str, left: Any, right: Any, rank: Mapping[str, int] | None) -> bool:
    if op in ("~", "!~"):
        found = str(right).lower() in str(left if left is not None else "").lower()
        return found if op == "~" else not found
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if rank is not None:  # an ordered enumeration (permission): compare by level, not spelling
        left, right = rank.get(str(left), -1), rank.get(str(right), -1)
    if left is None or right is None or type(left) is not type(right):
        return False
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


class _Parser:
    def __init__(
        self, query: str, fields: Mapping[str, Callable[[Any], Any]], ranks: Mapping[str, Mapping[str, int]]
    ) -> None:
        self.tokens = _tokens(query)
        self.pos = 0
        self.fields = fields
        self.ranks = ranks

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise BbqlError("Invalid query: it ends too early")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        pred = self._or()
        if self._peek() is not None:
            raise BbqlError(f"Invalid query: unexpected {self._peek()[1]!r}")  # type: ignore[index]
        return pred

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._keyword("AND"):
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def _atom(self) -> Predicate:
        kind, text = self._next()
        if (kind, text) == ("paren", "("):
            inner = self._or()
            if self._next() != ("paren", ")"):
                raise BbqlError("Invalid query: missing ')'")
            return inner
        if kind != "word" or text not in self.fields:
            raise BbqlError(f"Invalid field name: {text}")
        getter, rank = self.fields[text], self.ranks.get(text)
        op_kind, op = self._next()
        if op_kind != "op":
            raise BbqlError(f"Invalid query: expected an operator after {text}")
        value = _literal(*self._next())
        return lambda item: _compare(op, getter(item), value, rank)


def compile_query(
    query: str,
    fields: Mapping[str, Callable[[Any], Any]],
    ranks: Mapping[str, Mapping[str, int]] | None = None,
) -> Predicate:
    """A predicate for one item, or BbqlError for a query Bitbucket would refuse (bad syntax,
    a field the collection does not have)."""
    return _Parser(query, fields, ranks or {}).parse()
