"""A safe evaluator for the Elixir-flavoured expressions of workflow definitions.

Conditions and ``<%= … %>`` template tags were Elixir code in the original (EEx). Here they
go through our own tokenizer, parser and interpreter: user text is never handed to
``eval``/``exec``/``compile``, there is no attribute access, no import, no atom, no
anonymous function, and every input is bounded in size, nesting and work (the ``MAX_*``
constants below) and rejected before any evaluation when it exceeds them.

Grammar (lowest precedence first; Elixir's precedences and associativity)::

    expression := binary
    binary     := unary (OP unary)*     OP by precedence, low → high:
                  "||" "or"  <  "&&" "and"  <  "==" "!=" "===" "!=="  <  "<" ">" "<=" ">="
                  <  "|>"  <  "in" "not in"  <  "<>" (right-assoc.)  <  "+" "-"
    unary      := ("not" | "!" | "-" | "+") unary | primary
    primary    := INTEGER | FLOAT | STRING | "true" | "false" | "nil"
                | "[" [expression ("," expression)* [","]] "]" | "(" expression ")"
                | call | NAME
    call       := FUNCTION "(" [expression ("," expression)*] ")"    (no space before "(")
                | FUNCTION expression ("," expression)*               (no-parens call: `length x`;
                                                                      as in Elixir, `length x > 2`
                                                                      is `length(x > 2)`)
                | ALIAS "." NAME                                      (only as a "|>" target)
    FUNCTION   := NAME | ALIAS ("." ALIAS)* "." NAME                  (e.g. Enum.at)

Literals: integers (``1_000`` allowed), floats (``1.5``, ``1.0e3``), double-quoted strings
with the escapes ``\\" \\\\ \\n \\t \\r \\#`` (``#{`` interpolation is rejected), lists.
A NAME (``[a-z_][A-Za-z0-9_]*``) reads a binding; an unbound name is an error, checked before
evaluation, like Elixir's compile-time "undefined variable". ``a |> f(b)`` is ``f(a, b)``.

Semantics follow Elixir where it matters: ``+ -`` need numbers, ``<>`` needs strings;
``==`` is numeric across integer/float (``1 == 1.0``), values of different types are
unequal, ``===`` also tells 1 from 1.0; ``and``/``or``/``not`` need a boolean on the left
(``&&``/``||``/``!`` use truthiness: only nil and false are falsy); ``in`` is list
membership with ``===``. Deviation: ``< <= > >=`` order numbers or strings only; any other
pair is an error (Elixir's term order made ``"3" > 2`` true).

Functions: ``length/1``, ``inspect/1``, ``to_string/1``, ``is_nil/1``, ``Enum.at/2,3``,
``Enum.count/1``, ``Enum.join/1,2``, ``Path.basename/1``, ``Path.extname/1``,
``Path.rootname/1``, ``String.contains?/2``, ``String.starts_with?/2``,
``String.ends_with?/2``, ``String.downcase/1``, ``String.upcase/1``. Anything else (an
unknown function, ``*``, ``/``, ``**``, ``++``, ``=``, ``fn``, ``&``, atoms, maps, sigils,
``.field``) is an :class:`ExpressionError` raised while parsing, so it never runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION_LENGTH = 2_000
MAX_TOKENS = 500
MAX_DEPTH = 50  # syntax tree depth: parentheses, lists, calls, operator chains
MAX_LIST_ITEMS = 100  # elements of one list literal
MAX_NUMBER_DIGITS = 64
MAX_STRING_LENGTH = 1_000_000  # any string built: "<>", to_string, inspect, a rendered template
MAX_VALUE_DEPTH = 100  # nesting of a bound value walked by inspect, to_string or ==
MAX_STEPS = 100_000  # work units per evaluation (or per rendered template): nodes, elements, kB built


class ExpressionError(ValueError):
    """A template or condition that cannot be parsed, is too big, or fails to evaluate."""


class Budget:
    """Work units left; one budget may be shared by every tag of a template."""

    __slots__ = ("left", "steps")

    def __init__(self, steps: int = MAX_STEPS) -> None:
        self.steps = steps
        self.left = steps

    def spend(self, units: int = 1) -> None:
        self.left -= units
        if self.left < 0:
            raise ExpressionError(f"evaluation exceeds {self.steps} steps")

    def text(self, text: str) -> str:
        """Charge for a built string (1 unit per kB) and enforce the string size limit."""
        if len(text) > MAX_STRING_LENGTH:
            raise ExpressionError(f"string longer than {MAX_STRING_LENGTH} characters")
        self.spend(1 + len(text) // 1024)
        return text


# ------------------------------------------------------------------------------------ values


def type_name(value: Any) -> str:
    """The Elixir-ish type of a value; bool is tested before int (True is an int in Python)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float_text(value: float) -> str:
    """Shortest round-trip digits, written the Elixir way (``1.0e20``, not ``1e+20``)."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{int(exponent)}"


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
    "\x1b": "\\e",
}
_UNPRINTABLE = re.compile(r"[\x00-\x06\x0e-\x1a\x1c-\x1f\x7f-\x9f]")


def _inspect_string(value: str) -> str:
    if _UNPRINTABLE.search(value):
        # Elixir shows a binary that is not printable as its bytes.
        data = value.encode("utf-8", "surrogatepass")
        return "<<" + ", ".join(str(byte) for byte in data) + ">>"
    body = "".join(_ESCAPES.get(char, char) for char in value)
    return '"' + body.replace("#{", "\\#{") + '"'


def inspect(value: Any, budget: Budget | None = None) -> str:
    """Elixir's ``inspect``: ``"a\\"b"``, ``["a", "b"]``, ``[1, [2]]``, ``nil``, ``true``, ``5``.

    Deviation: a list of small integers stays a list (Elixir may print a charlist ``~c"ab"``).
    """
    budget = budget or Budget()
    budget.spend()
    return budget.text(_inspect(value, budget, 0))


def _inspect(value: Any, budget: Budget, depth: int) -> str:
    # Containers pay for their elements before walking them: an oversized value is refused up front.
    if depth > MAX_VALUE_DEPTH:
        raise ExpressionError(f"value nested deeper than {MAX_VALUE_DEPTH} levels")
    kind = type_name(value)
    if kind == "string":
        return budget.text(_inspect_string(value))
    if kind == "nil":
        return "nil"
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "integer":
        return str(value)
    if kind == "float":
        return _float_text(value)
    if kind == "list":
        budget.spend(len(value))
        return budget.text("[" + ", ".join(_inspect(item, budget, depth + 1) for item in value) + "]")
    if kind == "map":
        budget.spend(2 * len(value))
        pairs = sorted(value.items(), key=lambda pair: str(pair[0]))
        inner = ", ".join(f"{_inspect(k, budget, depth + 1)} => {_inspect(v, budget, depth + 1)}" for k, v in pairs)
        return budget.text("%{" + inner + "}")
    raise ExpressionError(f"cannot inspect a value of type {kind}")


def to_string(value: Any, budget: Budget | None = None) -> str:
    """What ``<%= %>`` prints: nil → "", true → "true", 5 → "5", a list of strings → their
    concatenation (nested lists too). A list holding anything but strings is an error
    (Elixir would read integers as code points); a map is an error, as in Elixir.
    """
    budget = budget or Budget()
    if isinstance(value, str):
        return value
    budget.spend()
    return budget.text(_to_string(value, budget, 0, in_list=False))


def _to_string(value: Any, budget: Budget, depth: int, *, in_list: bool) -> str:
    if depth > MAX_VALUE_DEPTH:
        raise ExpressionError(f"value nested deeper than {MAX_VALUE_DEPTH} levels")
    kind = type_name(value)
    if kind == "string":
        return value
    if kind == "list":
        budget.spend(len(value))
        return budget.text("".join(_to_string(item, budget, depth + 1, in_list=True) for item in value))
    if in_list:
        raise ExpressionError(f"to_string of a list needs strings only, found {kind}; use inspect")
    if kind == "nil":
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "integer":
        return str(value)
    if kind == "float":
        return _float_text(value)
    raise ExpressionError(f"cannot convert a {kind} to a string")


def _equal(left: Any, right: Any, *, strict: bool, budget: Budget, depth: int = 0) -> bool:
    if depth > MAX_VALUE_DEPTH:
        raise ExpressionError(f"value nested deeper than {MAX_VALUE_DEPTH} levels")
    left_kind, right_kind = type_name(left), type_name(right)
    if _is_number(left) and _is_number(right) and not strict:
        return left == right  # 1 == 1.0, as in Elixir
    if left_kind != right_kind:
        return False
    if left_kind == "list":
        if len(left) != len(right):
            return False
        budget.spend(len(left))
        return all(
            _equal(a, b, strict=strict, budget=budget, depth=depth + 1) for a, b in zip(left, right, strict=True)
        )
    if left_kind == "map":
        if left.keys() != right.keys():
            return False
        budget.spend(len(left))
        return all(_equal(left[k], right[k], strict=strict, budget=budget, depth=depth + 1) for k in left)
    return bool(left == right)


# ------------------------------------------------------------------------------------ paths


def basename(path: str) -> str:
    """Elixir's ``Path.basename``: the last component, trailing slashes ignored."""
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1]


def extname(path: str) -> str:
    """The last ``.xxx`` of the basename; ``""`` for none and for dot-files like ``.bashrc``."""
    base = basename(path)
    dot = base.rfind(".")
    return base[dot:] if dot > 0 else ""


def rootname(path: str) -> str:
    """The path without its ``extname``."""
    ext = extname(path)
    return path[: len(path) - len(ext)] if ext and path.endswith(ext) else path


# ------------------------------------------------------------------------------------ functions


def _expect(function: str, value: Any, kind: str) -> Any:
    if type_name(value) != kind:
        raise ExpressionError(f"{function} expects a {kind}, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    """A bounded rendering of a value for an error message."""
    try:
        text = inspect(value, Budget(1_000))
    except ExpressionError:
        return f"a {type_name(value)}"
    return text if len(text) <= 60 else text[:57] + "..."


def _patterns(function: str, pattern: Any) -> list[str]:
    if isinstance(pattern, str):
        return [pattern]
    if type_name(pattern) == "list" and all(isinstance(item, str) for item in pattern):
        return list(pattern)
    raise ExpressionError(f"{function} expects a string or a list of strings, got {_short(pattern)}")


def _length(args: Sequence[Any], budget: Budget) -> Any:
    return len(_expect("length", args[0], "list"))


def _enum_count(args: Sequence[Any], budget: Budget) -> Any:
    return len(_expect("Enum.count", args[0], "list"))


def _enum_at(args: Sequence[Any], budget: Budget) -> Any:
    items = _expect("Enum.at", args[0], "list")
    index = _expect("Enum.at", args[1], "integer")
    default = args[2] if len(args) > 2 else None
    return items[index] if -len(items) <= index < len(items) else default


def _enum_join(args: Sequence[Any], budget: Budget) -> Any:
    items = _expect("Enum.join", args[0], "list")
    separator = _expect("Enum.join", args[1], "string") if len(args) > 1 else ""
    budget.spend(len(items))
    return budget.text(separator.join(to_string(item, budget) for item in items))


def _string_function(name: str, test: Callable[[str, str], bool]) -> Callable[[Sequence[Any], Budget], Any]:
    def call(args: Sequence[Any], budget: Budget) -> Any:
        subject = _expect(name, args[0], "string")
        patterns = _patterns(name, args[1])
        budget.spend(len(patterns))
        return any(test(subject, pattern) for pattern in patterns)

    return call


def _string_map(name: str, transform: Callable[[str], str]) -> Callable[[Sequence[Any], Budget], Any]:
    def call(args: Sequence[Any], budget: Budget) -> Any:
        return budget.text(transform(_expect(name, args[0], "string")))

    return call


def _path_function(name: str, transform: Callable[[str], str]) -> Callable[[Sequence[Any], Budget], Any]:
    def call(args: Sequence[Any], budget: Budget) -> Any:
        return transform(_expect(name, args[0], "string"))

    return call


_Function = Callable[[Sequence[Any], Budget], Any]

# name → (accepted arities, implementation). Every function is pure and bounded.
_FUNCTIONS: dict[str, tuple[frozenset[int], _Function]] = {
    "length": (frozenset({1}), _length),
    "inspect": (frozenset({1}), lambda args, budget: inspect(args[0], budget)),
    "to_string": (frozenset({1}), lambda args, budget: to_string(args[0], budget)),
    "is_nil": (frozenset({1}), lambda args, budget: args[0] is None),
    "Enum.at": (frozenset({2, 3}), _enum_at),
    "Enum.count": (frozenset({1}), _enum_count),
    "Enum.join": (frozenset({1, 2}), _enum_join),
    "Path.basename": (frozenset({1}), _path_function("Path.basename", basename)),
    "Path.extname": (frozenset({1}), _path_function("Path.extname", extname)),
    "Path.rootname": (frozenset({1}), _path_function("Path.rootname", rootname)),
    "String.contains?": (frozenset({2}), _string_function("String.contains?", lambda s, p: p in s)),
    "String.starts_with?": (frozenset({2}), _string_function("String.starts_with?", str.startswith)),
    "String.ends_with?": (frozenset({2}), _string_function("String.ends_with?", str.endswith)),
    "String.downcase": (frozenset({1}), _string_map("String.downcase", str.lower)),
    "String.upcase": (frozenset({1}), _string_map("String.upcase", str.upper)),
}

# ------------------------------------------------------------------------------------ tokens


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "number" | "string" | "name" | "alias" | "literal" | "op" | "end"
    value: Any  # the number, the decoded string, the name, the literal value or the operator
    column: int  # 1-based
    spaced: bool  # whitespace right before it (tells `f(x)` from `f (x)`)

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        if self.kind == "string":
            return _inspect_string(self.value)[:40]
        if self.kind == "literal":
            return "nil" if self.value is None else str(self.value).lower()
        return str(self.value)


_NUMBER = re.compile(r"[0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9]+)?)?", re.ASCII)
# A trailing ? or ! is part of an identifier (String.contains?), but not the ! of != or !==.
_NAME = re.compile(r"[a-z_][A-Za-z0-9_]*(?:[?!](?!=))?", re.ASCII)
_ALIAS = re.compile(r"[A-Z][A-Za-z0-9_]*", re.ASCII)

_OPERATORS = ("===", "!==", "|>", "<>", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "!")
_PUNCTUATION = ("(", ")", "[", "]", ",", ".")
# Recognised only to be refused with a clear message.
_REFUSED = {
    "**": "operator ** is not supported",
    "++": "operator ++ is not supported",
    "--": "operator -- is not supported",
    "->": "anonymous functions are not supported",
    "<-": "operator <- is not supported",
    "=~": "operator =~ is not supported",
    "::": "type specifications are not supported",
    "*": "operator * is not supported",
    "/": "operator / is not supported",
    "=": "operator = (match) is not supported",
    "|": "operator | is not supported",
    "&": "function captures (&) are not supported",
    "{": "{ is not valid in an expression (tuples are not supported; no {name} inside <%= %>)",
    "}": "} is not valid in an expression",
    ":": "atoms and keywords (:) are not supported",
    "%": "maps and structs (%) are not supported",
    "@": "module attributes (@) are not supported",
    "~": "sigils (~) are not supported",
    "'": "single-quoted charlists are not supported",
    "^": "the pin operator (^) is not supported",
    "#": "comments (#) are not supported",
    ";": "several expressions (;) are not supported",
    "?": "character literals (?) are not supported",
    "\\": "\\ is not valid outside a string",
}
_SYMBOLS = sorted([*_OPERATORS, *_PUNCTUATION, *_REFUSED], key=len, reverse=True)
_WORD_OPERATORS = frozenset({"and", "or", "not", "in"})
_LITERALS: dict[str, Any] = {"true": True, "false": False, "nil": None}
# Elixir's other reserved words: block syntax we do not have.
_RESERVED = frozenset({"fn", "end", "do", "when", "catch", "rescue", "after", "else"})
_STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "#": "#"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index, length = 0, len(text)
    while True:
        start = index
        while index < length and text[index] in " \t\r\n":
            index += 1
        spaced = index > start
        column = index + 1
        if index >= length:
            tokens.append(_Token("end", None, column, spaced))
            return tokens
        if len(tokens) >= MAX_TOKENS:
            raise ExpressionError(f"expression has more than {MAX_TOKENS} tokens")
        char = text[index]
        if match := _NUMBER.match(text, index):
            index = match.end()
            tokens.append(_Token("number", _number(match.group(), column), column, spaced))
        elif match := _NAME.match(text, index):
            word, index = match.group(), match.end()
            if word in _RESERVED:
                raise ExpressionError(f"{word} is not supported (column {column})")
            if word in _LITERALS:
                tokens.append(_Token("literal", _LITERALS[word], column, spaced))
            else:
                tokens.append(_Token("op" if word in _WORD_OPERATORS else "name", word, column, spaced))
        elif match := _ALIAS.match(text, index):
            index = match.end()
            tokens.append(_Token("alias", match.group(), column, spaced))
        elif char == '"':
            value, index = _string(text, index)
            tokens.append(_Token("string", value, column, spaced))
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, index)), None)
            if symbol is None:
                raise ExpressionError(f"unexpected character {char!r} at column {column}")
            if symbol in _REFUSED:
                raise ExpressionError(f"{_REFUSED[symbol]} (column {column})")
            index += len(symbol)
            tokens.append(_Token("op", symbol, column, spaced))


def _number(text: str, column: int) -> int | float:
    if sum(char.isdigit() for char in text) > MAX_NUMBER_DIGITS:
        raise ExpressionError(f"number longer than {MAX_NUMBER_DIGITS} digits at column {column}")
    digits = text.replace("_", "")
    if "." not in digits:
        return int(digits)
    value = float(digits)
    if not math.isfinite(value):
        raise ExpressionError(f"float out of range at column {column}")
    return value


def _string(text: str, start: int) -> tuple[str, int]:
    """Decode the string literal whose opening quote is at ``start``; return it and the end."""
    chars: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(chars), index + 1
        if char == "\\":
            escape = text[index + 1 : index + 2]
            if escape not in _STRING_ESCAPES:
                raise ExpressionError(f"unsupported escape \\{escape} in a string at column {index + 1}")
            chars.append(_STRING_ESCAPES[escape])
            index += 2
        elif text.startswith("#{", index):
            raise ExpressionError(f"string interpolation #{{…}} is not supported (column {index + 1})")
        else:
            chars.append(char)
            index += 1
    raise ExpressionError(f"unterminated string starting at column {start + 1}")


# ------------------------------------------------------------------------------------ syntax tree


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # "literal" | "name" | "list" | "unary" | "binary" | "call"
    value: Any  # the literal, the name, the operator or the function name
    children: tuple[_Node, ...]
    column: int
    depth: int


# operator → (precedence, right associative)
_BINARY: dict[str, tuple[int, bool]] = {
    "||": (1, False),
    "or": (1, False),
    "&&": (2, False),
    "and": (2, False),
    "==": (3, False),
    "!=": (3, False),
    "===": (3, False),
    "!==": (3, False),
    "<": (4, False),
    ">": (4, False),
    "<=": (4, False),
    ">=": (4, False),
    "|>": (5, False),
    "in": (6, False),
    "not in": (6, False),
    "<>": (7, True),
    "+": (8, False),
    "-": (8, False),
}
_UNARY = frozenset({"not", "!", "-", "+"})


def _node(kind: str, value: Any, children: tuple[_Node, ...], column: int) -> _Node:
    depth = 1 + max((child.depth for child in children), default=0)
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels (column {column})")
    return _Node(kind, value, children, column, depth)


def _unexpected(token: _Token) -> ExpressionError:
    if token.kind == "op" and token.value == ".":
        return ExpressionError(f"field and attribute access (.) is not supported (column {token.column})")
    return ExpressionError(f"unexpected {token.describe()} at column {token.column}")


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.nesting = 0  # parser recursion, bounded like the tree depth

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def next(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def is_op(self, value: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "op" and token.value == value

    def expect(self, value: str) -> _Token:
        if not self.is_op(value):
            token = self.peek()
            if token.kind == "op" and token.value == ".":
                raise _unexpected(token)
            raise ExpressionError(f"expected {value} but found {token.describe()} at column {token.column}")
        return self.next()

    def enter(self, column: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels (column {column})")

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression")
        node = self.expression(0)
        if self.peek().kind != "end":
            raise _unexpected(self.peek())
        return node

    def binary_operator(self) -> tuple[str, int] | None:
        """The binary operator at the cursor and how many tokens it spans, if any."""
        token = self.peek()
        if token.kind != "op":
            return None
        if token.value == "not" and self.is_op("in", 1):
            return "not in", 2
        return (token.value, 1) if token.value in _BINARY else None

    def expression(self, min_precedence: int) -> _Node:
        self.enter(self.peek().column)
        left = self.unary()
        while (found := self.binary_operator()) is not None:
            operator, width = found
            precedence, right_associative = _BINARY[operator]
            if precedence < min_precedence:
                break
            column = self.peek().column
            self.index += width
            right = self.expression(precedence if right_associative else precedence + 1)
            left = (
                self.pipe(left, right, column) if operator == "|>" else _node("binary", operator, (left, right), column)
            )
        self.nesting -= 1
        return left

    def pipe(self, left: _Node, right: _Node, column: int) -> _Node:
        """``a |> f(b)`` is ``f(a, b)``; ``a |> f`` is ``f(a)``."""
        if right.kind == "call":
            return _node("call", right.value, (left, *right.children), right.column)
        if right.kind == "name":
            return _node("call", right.value, (left,), right.column)
        raise ExpressionError(f"the right side of |> must be a function call (column {column})")

    def unary(self) -> _Node:
        token = self.peek()
        if token.kind == "op" and token.value in _UNARY and not (token.value == "not" and self.is_op("in", 1)):
            self.next()
            self.enter(token.column)
            operand = self.unary()
            self.nesting -= 1
            return _node("unary", token.value, (operand,), token.column)
        return self.primary()

    def primary(self) -> _Node:
        token = self.next()
        if token.kind in ("number", "string", "literal"):
            return _node("literal", token.value, (), token.column)
        if token.kind == "name":
            if self.call_follows():
                return self.call(token.value, token.column)
            return _node("name", token.value, (), token.column)
        if token.kind == "alias":
            return self.qualified_call(token)
        if token.kind == "op" and token.value == "(":
            if self.is_op(")"):
                raise ExpressionError(f"empty parentheses at column {token.column}")
            inner = self.expression(0)
            self.expect(")")
            return inner
        if token.kind == "op" and token.value == "[":
            return self.list_literal(token.column)
        raise _unexpected(token)

    def call_follows(self) -> bool:
        """After a function name: ``f(`` or, as Elixir reads ``length x``, an operand."""
        token = self.peek()
        if token.kind == "op" and token.value == "(" and not token.spaced:
            return True
        if not token.spaced:
            return False
        if token.kind in ("number", "string", "literal", "name", "alias"):
            return True
        if token.kind == "op" and token.value in ("(", "[", "!"):
            return True
        return token.kind == "op" and token.value == "not" and not self.is_op("in", 1)

    def call(self, name: str, column: int) -> _Node:
        arguments: list[_Node] = []
        if self.is_op("(") and not self.peek().spaced:
            self.next()
            if not self.is_op(")"):
                arguments.append(self.expression(0))
                while self.is_op(","):
                    self.next()
                    arguments.append(self.expression(0))
            self.expect(")")
        else:  # no-parens call: the arguments run to the end, as in Elixir
            arguments.append(self.expression(0))
            while self.is_op(","):
                self.next()
                arguments.append(self.expression(0))
        return _node("call", name, tuple(arguments), column)

    def qualified_call(self, first: _Token) -> _Node:
        parts = [first.value]
        while True:
            if not self.is_op("."):
                raise ExpressionError(f"module names are not values ({'.'.join(parts)} at column {first.column})")
            self.next()
            token = self.next()
            if token.kind == "alias":
                parts.append(token.value)
                continue
            if token.kind == "name":
                parts.append(token.value)
                break
            raise ExpressionError(f"expected a function name after . at column {token.column}")
        name = ".".join(parts)
        if self.call_follows():
            return self.call(name, first.column)
        return _node("call", name, (), first.column)  # `x |> Path.basename`

    def list_literal(self, column: int) -> _Node:
        items: list[_Node] = []
        while not self.is_op("]"):
            if len(items) >= MAX_LIST_ITEMS:
                raise ExpressionError(f"list literal longer than {MAX_LIST_ITEMS} items (column {column})")
            items.append(self.expression(0))
            if not self.is_op(","):
                break
            self.next()
        self.expect("]")
        return _node("list", None, tuple(items), column)


def _check(node: _Node, names: set[str]) -> None:
    """Refuse unknown functions and wrong arities; collect the names read."""
    if node.kind == "name":
        names.add(node.value)
    elif node.kind == "call":
        arity = len(node.children)
        entry = _FUNCTIONS.get(node.value)
        if entry is None:
            raise ExpressionError(f"unknown function {node.value}/{arity} (column {node.column})")
        if arity not in entry[0]:
            expected = " or ".join(f"{node.value}/{n}" for n in sorted(entry[0]))
            raise ExpressionError(f"{node.value}/{arity} is undefined, use {expected} (column {node.column})")
    for child in node.children:  # depth ≤ MAX_DEPTH, so the recursion is bounded
        _check(child, names)


# ------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed and checked expression; ``names`` are the bindings it reads."""

    text: str
    names: frozenset[str]
    _root: _Node

    def evaluate(self, bindings: Mapping[str, Any], budget: Budget | None = None) -> Any:
        """The value of the expression; every name it reads must be bound."""
        missing = sorted(name for name in self.names if name not in bindings)
        if missing:
            raise ExpressionError(f"unknown name {missing[0]}")
        return _evaluate(self._root, bindings, budget or Budget())


def parse(text: str) -> Expression:
    """Parse and check ``text`` without evaluating it (usable to validate a definition)."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    root = _Parser(_tokenize(text)).parse()
    names: set[str] = set()
    _check(root, names)
    return Expression(text, frozenset(names), root)


def evaluate(text: str, bindings: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Parse, check and evaluate ``text`` with ``bindings`` (name → JSON-typed value)."""
    return parse(text).evaluate(bindings, budget)


def _evaluate(node: _Node, bindings: Mapping[str, Any], budget: Budget) -> Any:
    budget.spend()
    kind = node.kind
    if kind == "literal":
        return node.value
    if kind == "name":
        return bindings[node.value]
    if kind == "list":
        return [_evaluate(child, bindings, budget) for child in node.children]
    if kind == "unary":
        return _unary(node, _evaluate(node.children[0], bindings, budget))
    if kind == "call":
        arguments = [_evaluate(child, bindings, budget) for child in node.children]
        return _FUNCTIONS[node.value][1](arguments, budget)
    operator = node.value
    left = _evaluate(node.children[0], bindings, budget)
    # The boolean operators short-circuit: the right side is evaluated only when needed.
    if operator in ("and", "or"):
        if not isinstance(left, bool):
            raise ExpressionError(f"{operator} expects a boolean on its left, got {_short(left)}")
        if left == (operator == "or"):
            return left
        return _evaluate(node.children[1], bindings, budget)
    if operator in ("&&", "||"):
        truthy = left is not None and left is not False
        if truthy == (operator == "||"):
            return left
        return _evaluate(node.children[1], bindings, budget)
    return _binary(operator, left, _evaluate(node.children[1], bindings, budget), budget)


def _unary(node: _Node, value: Any) -> Any:
    operator = node.value
    if operator == "!":
        return value is None or value is False
    if operator == "not":
        if not isinstance(value, bool):
            raise ExpressionError(f"not expects a boolean, got {_short(value)}")
        return not value
    if not _is_number(value):
        raise ExpressionError(f"unary {operator} expects a number, got {_short(value)}")
    return -value if operator == "-" else value


def _binary(operator: str, left: Any, right: Any, budget: Budget) -> Any:
    if operator in ("+", "-"):
        if not (_is_number(left) and _is_number(right)):
            hint = " (use <> to join strings)" if isinstance(left, str) and isinstance(right, str) else ""
            raise ExpressionError(f"{operator} expects numbers, got {_short(left)} and {_short(right)}{hint}")
        result = left + right if operator == "+" else left - right
        if isinstance(result, float) and not math.isfinite(result):
            raise ExpressionError(f"{operator} overflows")
        return result
    if operator == "<>":
        if not (isinstance(left, str) and isinstance(right, str)):
            raise ExpressionError(f"<> expects strings, got {_short(left)} and {_short(right)}")
        if len(left) + len(right) > MAX_STRING_LENGTH:  # refuse before building it
            raise ExpressionError(f"string longer than {MAX_STRING_LENGTH} characters")
        return budget.text(left + right)
    if operator in ("==", "!="):
        return _equal(left, right, strict=False, budget=budget) == (operator == "==")
    if operator in ("===", "!=="):
        return _equal(left, right, strict=True, budget=budget) == (operator == "===")
    if operator in ("in", "not in"):
        if type_name(right) != "list":
            raise ExpressionError(f"{operator} expects a list on its right, got {_short(right)}")
        budget.spend(len(right))
        found = any(_equal(left, item, strict=True, budget=budget) for item in right)
        return found == (operator == "in")
    return _order(operator, left, right)


def _order(operator: str, left: Any, right: Any) -> bool:
    comparable = (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        raise ExpressionError(f"cannot order {type_name(left)} and {type_name(right)} with {operator}")
    # Python orders str by code point, which is Elixir's UTF-8 byte order.
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)
