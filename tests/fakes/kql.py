"""A small subset of the Kusto Query Language, enough for the queries HayMaker sends, evaluated over
in-memory rows. Anything outside it is refused, so a query the stand-in cannot evaluate fails the
test with Log Analytics' own 400 instead of being answered blindly.

The subset::

    query    := Table ( '|' operator )*
    operator := where EXPR
              | extend NAME '=' EXPR (',' NAME '=' EXPR)*
              | project (NAME | NAME '=' EXPR) (',' …)*
              | order by NAME [asc|desc] (',' …)*      (desc when not said, as in Kusto)
              | take N | limit N
    EXPR     := AND ('or' AND)*
    AND      := CMP ('and' CMP)*
    CMP      := 'not' '(' EXPR ')' | TERM [OP TERM | [!]in[~] '(' LITERALS ')' | between '(' TERM '..' TERM ')']
    OP       := == != =~ !~ < <= > >= has contains startswith
    TERM     := 'string' | "string" | number | true | false | datetime(ISO-8601)
              | NAME [. NAME]*  (a column, or a path into a dynamic column)
              | tostring '(' TERM ')' | '(' EXPR ')'

Semantics follow Kusto: ``==``/``in`` are case-sensitive, ``=~``/``in~``/``has``/``contains``/``startswith``
are not; ``has`` matches whole terms; ``between`` includes both ends; a comparison with null is false.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable


class KqlError(Exception):
    """A query outside the subset or naming what does not exist: ``code`` is Log Analytics' inner code."""

    def __init__(self, code: str, message: str, detail: str = ""):
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


@dataclass(frozen=True)
class Table:
    columns: dict[str, str]  # name -> Kusto type (string, datetime, dynamic, long, real, bool, guid)
    rows: list[dict]


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>==|!=|=~|!~|<=|>=|\.\.|!in~|!in|in~|[|,()<>=.])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)
_KEYWORDS = {"and", "or", "not", "in", "between", "has", "contains", "startswith", "true", "false"}
_OPERATORS = {"where", "extend", "project", "order", "sort", "take", "limit"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(text):
        if text.startswith("datetime(", i):  # its argument is unquoted
            end = text.find(")", i)
            if end < 0:
                raise KqlError("SyntaxError", "A recognition error occurred.", "datetime( is not closed")
            out.append(("datetime", text[i + 9:end].strip()))
            i = end + 1
            continue
        m = _TOKEN.match(text, i)
        if not m:
            raise KqlError("SyntaxError", "A recognition error occurred.",
                           f"unexpected character {text[i]!r} at {i}: outside the stand-in's KQL subset")
        i = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def parse_datetime(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise KqlError("SyntaxError", "A recognition error occurred.", f"datetime({value}) is not a datetime") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0

    # token helpers
    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise KqlError("SyntaxError", "A recognition error occurred.", "the query ends too early")
        self.i += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "name" and token[1] in words:
            self.i += 1
            return True
        return False

    def symbol(self, *symbols: str) -> str | None:
        token = self.peek()
        if token and token[0] == "op" and token[1] in symbols:
            self.i += 1
            return token[1]
        return None

    def expect(self, symbol: str) -> None:
        if not self.symbol(symbol):
            got = self.peek()
            raise KqlError("SyntaxError", "A recognition error occurred.",
                           f"expected {symbol!r}, found {got[1] if got else 'the end'!r}")

    def name(self) -> str:
        kind, value = self.take()
        if kind != "name" or value in _KEYWORDS:
            raise KqlError("SyntaxError", "A recognition error occurred.", f"expected a name, found {value!r}")
        return value

    # the query
    def query(self) -> tuple[str, list]:
        table = self.name()
        steps = []
        while self.symbol("|"):
            kind, op = self.take()
            if kind != "name" or op not in _OPERATORS:
                raise KqlError("SyntaxError", "A recognition error occurred.",
                               f"operator {op!r} is outside the stand-in's KQL subset")
            steps.append(getattr(self, f"_{'order' if op == 'sort' else 'take' if op == 'limit' else op}")())
        if self.peek() is not None:
            raise KqlError("SyntaxError", "A recognition error occurred.", f"unexpected {self.peek()[1]!r}")
        return table, steps

    def _where(self):
        return ("where", self.expr())

    def _assignments(self, bare_names: bool):
        out = []
        while True:
            name = self.name()
            if self.symbol("="):
                out.append((name, self.expr()))
            elif bare_names:
                out.append((name, ("col", (name,))))
            else:
                raise KqlError("SyntaxError", "A recognition error occurred.", f"extend {name} needs '= expression'")
            if not self.symbol(","):
                return out

    def _extend(self):
        return ("extend", self._assignments(False))

    def _project(self):
        return ("project", self._assignments(True))

    def _order(self):
        if not self.word("by"):
            raise KqlError("SyntaxError", "A recognition error occurred.", "order needs 'by'")
        keys = []
        while True:
            name = self.name()
            descending = not self.word("asc")
            if descending:
                self.word("desc")
            keys.append((name, descending))
            if not self.symbol(","):
                return ("order", keys)

    def _take(self):
        kind, value = self.take()
        if kind != "num":
            raise KqlError("SyntaxError", "A recognition error occurred.", f"take needs a number, found {value!r}")
        return ("take", int(value))

    # expressions
    def expr(self):
        node = self.conjunction()
        while self.word("or"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self):
        node = self.comparison()
        while self.word("and"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self):
        if self.word("not"):
            self.expect("(")
            inner = self.expr()
            self.expect(")")
            return ("not", inner)
        left = self.term()
        op = self.symbol("==", "!=", "=~", "!~", "<", "<=", ">", ">=")
        if op is None and self.word("has", "contains", "startswith"):
            op = self.tokens[self.i - 1][1]
        if op is not None:
            return ("cmp", op, left, self.term())
        membership = self.symbol("in~", "!in", "!in~") or ("in" if self.word("in") else None)
        if membership:
            self.expect("(")
            values = [self.literal()]
            while self.symbol(","):
                values.append(self.literal())
            self.expect(")")
            return ("in", membership, left, values)
        if self.word("between"):
            self.expect("(")
            low = self.term()
            self.expect("..")
            high = self.term()
            self.expect(")")
            return ("between", left, low, high)
        return left

    def literal(self):
        node = self.term()
        if node[0] != "lit":
            raise KqlError("SyntaxError", "A recognition error occurred.", "in (…) takes literals only")
        return node[1]

    def term(self):
        kind, value = self.take()
        if kind == "str":
            return ("lit", _unquote(value))
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "datetime":
            return ("lit", parse_datetime(value))
        if kind == "op" and value == "(":
            node = self.expr()
            self.expect(")")
            return node
        if kind == "name" and value in ("true", "false"):
            return ("lit", value == "true")
        if kind == "name" and value == "tostring":
            self.expect("(")
            node = self.term()
            self.expect(")")
            return ("tostring", node)
        if kind == "name" and value not in _KEYWORDS:
            if self.peek() and self.peek() == ("op", "("):
                raise KqlError("SyntaxError", "A recognition error occurred.",
                               f"function {value}() is outside the stand-in's KQL subset")
            path = [value]
            while self.symbol("."):
                path.append(self.name())
            return ("col", tuple(path))
        raise KqlError("SyntaxError", "A recognition error occurred.", f"unexpected {value!r}")


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _has(text: str, term: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", text, re.I) is not None


def _compare(op: str, a, b) -> bool:
    if a is None or b is None:
        return op == "!=" and a is not b
    if op in ("=~", "!~", "has", "contains", "startswith"):
        a, b = str(a), str(b)
        if op == "has":
            return _has(a, b)
        if op == "contains":
            return b.lower() in a.lower()
        if op == "startswith":
            return a.lower().startswith(b.lower())
        return (a.lower() == b.lower()) == (op == "=~")
    if isinstance(a, datetime) != isinstance(b, datetime):
        raise KqlError("SemanticError", "A semantic error occurred.",
                       f"cannot compare {type(a).__name__} with {type(b).__name__}")
    try:
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:
        raise KqlError("SemanticError", "A semantic error occurred.",
                       f"cannot compare {type(a).__name__} with {type(b).__name__}") from None


def _dynamic(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class _Evaluator:
    def __init__(self, columns: dict[str, str]):
        self.columns = dict(columns)

    def check(self, node) -> str:
        """The node's type; raises SEM0100 for a name the table does not have."""
        kind = node[0]
        if kind == "lit":
            value = node[1]
            return ("datetime" if isinstance(value, datetime) else "bool" if isinstance(value, bool)
                    else "string" if isinstance(value, str) else "real")
        if kind == "col":
            name = node[1][0]
            if name not in self.columns:
                raise KqlError("SemanticError", "A semantic error occurred.",
                               f"Failed to resolve scalar expression named '{name}'")
            if len(node[1]) > 1 and self.columns[name] != "dynamic":
                raise KqlError("SemanticError", "A semantic error occurred.",
                               f"'{name}' is a {self.columns[name]}, not dynamic: it has no property {node[1][1]!r}")
            return self.columns[name] if len(node[1]) == 1 else "dynamic"
        if kind == "tostring":
            self.check(node[1])
            return "string"
        for child in node[1:]:
            if isinstance(child, tuple):
                self.check(child)
        return "bool"

    def value(self, node, row: dict):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "col":
            value = row.get(node[1][0])
            for part in node[1][1:]:
                value = _dynamic(value)
                value = value.get(part) if isinstance(value, dict) else None
            return value
        if kind == "tostring":
            value = self.value(node[1], row)
            return "" if value is None else value if isinstance(value, str) else json.dumps(value)
        if kind == "and":
            return bool(self.value(node[1], row)) and bool(self.value(node[2], row))
        if kind == "or":
            return bool(self.value(node[1], row)) or bool(self.value(node[2], row))
        if kind == "not":
            return not self.value(node[1], row)
        if kind == "cmp":
            return _compare(node[1], self.value(node[2], row), self.value(node[3], row))
        if kind == "in":
            value = self.value(node[2], row)
            if value is None:
                return node[1].startswith("!")
            fold = node[1].endswith("~")
            found = (str(value).lower() in {str(v).lower() for v in node[3]}) if fold else value in node[3]
            return found != node[1].startswith("!")
        if kind == "between":
            value = self.value(node[1], row)
            low, high = self.value(node[2], row), self.value(node[3], row)
            return value is not None and _compare(">=", value, low) and _compare("<=", value, high)
        raise KqlError("SyntaxError", "A recognition error occurred.", f"cannot evaluate {kind}")


def run(text: str, tables: dict[str, Table], row_filter: Callable[[str, dict], bool] | None = None
        ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """Evaluate ``text``; returns the result's columns ``[(name, type)]`` and rows in that order."""
    table_name, steps = _Parser(text).query()
    if table_name not in tables:
        raise KqlError("SemanticError", "A semantic error occurred.",
                       f"Failed to resolve table or column expression named '{table_name}'")
    table = tables[table_name]
    evaluator = _Evaluator(table.columns)
    order = list(table.columns)
    rows = [r for r in table.rows if row_filter is None or row_filter(table_name, r)]
    for step in steps:
        kind = step[0]
        if kind == "where":
            evaluator.check(step[1])
            rows = [r for r in rows if evaluator.value(step[1], r)]
        elif kind in ("extend", "project"):
            types = {name: evaluator.check(node) for name, node in step[1]}
            rows = [({} if kind == "project" else dict(r)) | {name: evaluator.value(node, r) for name, node in step[1]}
                    for r in rows]
            if kind == "project":
                evaluator.columns, order = types, list(types)
            else:
                evaluator.columns.update(types)
                order += [n for n in types if n not in order]
        elif kind == "order":
            for name, descending in reversed(step[1]):
                evaluator.check(("col", (name,)))
                present = sorted((r for r in rows if r.get(name) is not None), key=lambda r: r[name],
                                 reverse=descending)
                nulls = [r for r in rows if r.get(name) is None]  # Kusto: first when ascending, last when not
                rows = present + nulls if descending else nulls + present
        elif kind == "take":
            rows = rows[:step[1]]
    return [(name, evaluator.columns[name]) for name in order], [[r.get(name) for name in order] for r in rows]
