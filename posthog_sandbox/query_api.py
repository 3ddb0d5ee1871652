"""PostHog's Query API for one HogQL table: `POST /api/projects/{id}/query/` over `batch_export_log_entries`
(docs/posthog-api.md, "Logs and the Query API").

The query is parsed by sqlglot in ClickHouse's dialect (HogQL is ClickHouse SQL with PostHog's tables), then
checked against a small grammar and evaluated in Python over the project's log rows: a column list or `*`,
`count()` with `GROUP BY`, `WHERE` with comparisons, `IN`, `LIKE`/`ILIKE`, `AND`/`OR` and parentheses,
`ORDER BY`, `LIMIT`/`OFFSET`. Anything else is refused with PostHog's 400 envelope, never half-answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlglot
from sqlglot import exp

from .errors import ApiError, validation
from .timeutil import UTC, parse_datetime

if TYPE_CHECKING:
    from .handlers import Ctx

TABLE = "batch_export_log_entries"
COLUMNS = ("team_id", "log_source", "log_source_id", "instance_id", "timestamp", "message", "level")
DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000

Row = dict[str, Any]
# The rows of the project, narrowed by what the WHERE clause pins down (see `Pushdown`); newest first.
RowSource = Callable[["Pushdown"], Iterable[Row]]

_COMPARISONS: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: bool(a == b),
    exp.NEQ: lambda a, b: bool(a != b),
    exp.LT: lambda a, b: bool(a < b),
    exp.LTE: lambda a, b: bool(a <= b),
    exp.GT: lambda a, b: bool(a > b),
    exp.GTE: lambda a, b: bool(a >= b),
}


def refused(detail: str) -> ApiError:
    return validation(detail)


class Pushdown:
    """What the top-level AND of the WHERE clause fixes: export ids, runs and a time range (bounds inclusive)."""

    def __init__(self) -> None:
        self.export_ids: set[str] | None = None
        self.instance_ids: set[str] | None = None
        self.since: datetime | None = None
        self.until: datetime | None = None

    def narrow(self, node: exp.Expression, tz: tzinfo) -> None:
        if isinstance(node, exp.And):
            self.narrow(node.this, tz)
            self.narrow(node.expression, tz)
            return
        if isinstance(node, exp.Paren):
            self.narrow(node.this, tz)
            return
        column = node.this if isinstance(node, (exp.EQ, exp.In, *_COMPARISONS)) else None
        if not isinstance(column, exp.Column):
            return
        name = column.name
        if name in ("log_source_id", "instance_id"):
            values: set[str] | None = None
            if isinstance(node, exp.EQ) and _is_string(node.expression):
                values = {node.expression.this}
            elif isinstance(node, exp.In) and all(_is_string(v) for v in node.expressions):
                values = {v.this for v in node.expressions}
            if values is not None:
                attr = "export_ids" if name == "log_source_id" else "instance_ids"
                current = getattr(self, attr)
                setattr(self, attr, values if current is None else current & values)
        elif name == "timestamp" and _is_string(node.expression):
            moment = _as_datetime(node.expression.this, tz)
            if isinstance(node, (exp.GT, exp.GTE, exp.EQ)):
                self.since = moment if self.since is None else max(self.since, moment)
            if isinstance(node, (exp.LT, exp.LTE, exp.EQ)):
                self.until = moment if self.until is None else min(self.until, moment)


def _is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _as_datetime(text: str, tz: tzinfo) -> datetime:
    """A string compared with `timestamp`: read in the project's timezone unless it carries an offset."""
    parsed = parse_datetime(text)
    if parsed is None:
        raise refused(f"Cannot compare timestamp with {text!r}: use a date or datetime such as '2025-01-31 12:00:00'.")
    return (parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed).astimezone(UTC)


# ---------------------------------------------------------------------------------------------- parsing


_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.From,
    exp.Table,
    exp.Identifier,
    exp.Column,
    exp.Star,
    exp.Alias,
    exp.Count,
    exp.Where,
    exp.And,
    exp.Or,
    exp.Paren,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Literal,
    exp.Neg,
    exp.Group,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Offset,
    *_COMPARISONS,
)


def parse(query: str) -> exp.Select:
    """The query as a checked SELECT over the one table, or the 400 PostHog would answer."""
    try:
        statements = [s for s in sqlglot.parse(query, read="clickhouse") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise refused(f"Syntax error: {str(error).splitlines()[0]}") from None
    if len(statements) != 1:
        raise refused("Send exactly one SELECT statement.")
    select = statements[0]
    if not isinstance(select, exp.Select):
        raise refused(f"Only SELECT queries are supported here, not {select.key.upper()}.")
    for node in select.walk():
        if not isinstance(node, _ALLOWED):
            raise refused(
                f"Unsupported in this query: {node.sql(dialect='clickhouse')[:80]!r} ({type(node).__name__}). "
                "Use a column list or *, count() with GROUP BY, WHERE with = != < <= > >= IN LIKE ILIKE AND OR, "
                "ORDER BY, LIMIT and OFFSET."
            )
    if select.args.get("distinct") or select.args.get("having") or select.args.get("joins"):
        raise refused("DISTINCT, HAVING and JOIN are not supported here.")
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(table, exp.Table) or table.name != TABLE or table.db:
        name = table.sql() if isinstance(table, exp.Expression) else "nothing"
        raise refused(f"Unknown table `{name}`: this query can read only `{TABLE}`.")
    for column in select.find_all(exp.Column):
        if column.table and column.table != TABLE:
            raise refused(f"Unable to resolve field: {column.sql()}")
    return select


def _int_clause(select: exp.Select, name: str, default: int | None) -> int | None:
    clause = select.args.get(name)
    if clause is None:
        return default
    value = clause.expression
    if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
        raise refused(f"{name.upper()} needs a non-negative whole number.")
    return int(value.this)


# ---------------------------------------------------------------------------------------------- evaluation


class Evaluator:
    def __init__(self, select: exp.Select, tz: tzinfo) -> None:
        self.select = select
        self.tz = tz
        self.aliases = {
            e.alias: e.this for e in select.expressions if isinstance(e, exp.Alias) and not isinstance(e.this, exp.Star)
        }

    def value(self, node: exp.Expression, row: Row, group: list[Row] | None = None) -> Any:
        if isinstance(node, exp.Paren):
            return self.value(node.this, row, group)
        if isinstance(node, exp.Alias):
            return self.value(node.this, row, group)
        if isinstance(node, exp.Column):
            name = node.name
            if name in COLUMNS:
                return row[name]
            if name in self.aliases:
                return self.value(self.aliases[name], row, group)
            raise refused(f"Unable to resolve field: {name}")
        if isinstance(node, exp.Literal):
            return node.this if node.is_string else _number(node.this)
        if isinstance(node, exp.Neg):
            return -self.value(node.this, row, group)
        if isinstance(node, exp.Count):
            if group is None:
                raise refused("count() is an aggregate: it cannot be used in WHERE.")
            inner = node.this
            if inner is None or isinstance(inner, exp.Star):
                return len(group)
            return sum(1 for r in group if self.value(inner, r) is not None)
        if isinstance(node, exp.And):
            return bool(self.value(node.this, row, group)) and bool(self.value(node.expression, row, group))
        if isinstance(node, exp.Or):
            return bool(self.value(node.this, row, group)) or bool(self.value(node.expression, row, group))
        if isinstance(node, tuple(_COMPARISONS)):
            left, right = self._comparable(node.this, node.expression, row, group)
            if left is None or right is None:
                return False
            try:
                return _COMPARISONS[type(node)](left, right)
            except TypeError:
                raise refused(f"Cannot compare {node.this.sql()} with {node.expression.sql()}.") from None
        if isinstance(node, exp.In):
            left = self.value(node.this, row, group)
            options = [self._comparable(node.this, option, row, group)[1] for option in node.expressions]
            return left in options
        if isinstance(node, (exp.Like, exp.ILike)):
            text = self.value(node.this, row, group)
            pattern = self.value(node.expression, row, group)
            if not isinstance(pattern, str):
                raise refused("LIKE and ILIKE need a string pattern.")
            return isinstance(text, str) and _like(pattern, isinstance(node, exp.ILike)).fullmatch(text) is not None
        raise refused(f"Unsupported expression: {node.sql()}")

    def _comparable(
        self, left_node: exp.Expression, right_node: exp.Expression, row: Row, group: list[Row] | None
    ) -> tuple[Any, Any]:
        left, right = self.value(left_node, row, group), self.value(right_node, row, group)
        # A string compared with `timestamp` is a datetime in the project's timezone (ClickHouse's rule).
        if isinstance(left, datetime) and isinstance(right, str):
            right = _as_datetime(right, self.tz)
        elif isinstance(right, datetime) and isinstance(left, str):
            left = _as_datetime(left, self.tz)
        return left, right


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


_LIKE_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def _like(pattern: str, insensitive: bool) -> re.Pattern[str]:
    """ClickHouse LIKE: `%` any run, `_` one character, backslash escapes; case-sensitive unless ILIKE."""
    key = (pattern, insensitive)
    if key not in _LIKE_CACHE:
        out, escaped = [], False
        for char in pattern:
            if escaped:
                out.append(re.escape(char))
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "%":
                out.append(".*")
            elif char == "_":
                out.append(".")
            else:
                out.append(re.escape(char))
        _LIKE_CACHE[key] = re.compile("".join(out), re.S | (re.I if insensitive else 0))
    return _LIKE_CACHE[key]


def _compare(a: Any, b: Any) -> int:
    if a == b:
        return 0
    if a is None:
        return 1  # ClickHouse puts NULLs last by default
    if b is None:
        return -1
    return -1 if a < b else 1


def _sort(items: list[Any], keys: list[tuple[Callable[[Any], Any], bool]]) -> list[Any]:
    def order(x: Any, y: Any) -> int:
        for key, descending in keys:
            result = _compare(key(x), key(y))
            if result:
                return -result if descending else result
        return 0

    return sorted(items, key=cmp_to_key(order))


def _column_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    return node.sql(dialect="clickhouse").replace("COUNT(", "count(").replace("count(*)", "count()")


def _column_type(node: exp.Expression, tz_name: str) -> str:
    inner = node.this if isinstance(node, exp.Alias) else node
    if isinstance(inner, exp.Count):
        return "UInt64"
    if isinstance(inner, exp.Column):
        return {"team_id": "Int64", "timestamp": f"DateTime64(6, '{tz_name}')"}.get(inner.name, "String")
    return "String"


def run(query: str, source: RowSource, tz_name: str) -> dict[str, Any]:
    """Parse, check and evaluate `query` over `source`; the Query API's answer."""
    select = parse(query)
    tz = ZoneInfo(tz_name)
    evaluator = Evaluator(select, tz)
    outputs: list[exp.Expression] = []
    for item in select.expressions:
        if isinstance(item, exp.Star):
            outputs += [exp.column(name) for name in COLUMNS]
        else:
            outputs.append(item)
    for node in outputs:
        for column in node.find_all(exp.Column):
            if column.name not in COLUMNS and column.name not in evaluator.aliases:
                raise refused(f"Unable to resolve field: {column.name}")
    limit = min(_int_clause(select, "limit", DEFAULT_LIMIT) or 0, MAX_LIMIT)
    offset = _int_clause(select, "offset", 0) or 0
    group_clause = select.args.get("group")
    group_by: list[exp.Expression] = list(group_clause.expressions) if group_clause else []
    aggregate = bool(group_by) or any(node.find(exp.Count) for node in outputs)
    order_clause = select.args.get("order")
    ordering: list[exp.Ordered] = list(order_clause.expressions) if order_clause else []

    pushdown = Pushdown()
    where = select.args.get("where")
    if where is not None:
        if where.find(exp.Count):
            raise refused("count() is an aggregate: it cannot be used in WHERE.")
        pushdown.narrow(where.this, tz)
    rows = [row for row in source(pushdown) if where is None or evaluator.value(where.this, row)]

    results: list[list[Any]]
    if aggregate:
        grouped: dict[tuple[Any, ...], list[Row]] = {}
        for row in rows:
            grouped.setdefault(tuple(evaluator.value(g, row) for g in group_by), []).append(row)
        if not group_by and not grouped:
            grouped[()] = []
        group_names = {g.name for g in group_by if isinstance(g, exp.Column)}
        for node in [*outputs, *(o.this for o in ordering)]:
            for column in node.find_all(exp.Column):
                target = evaluator.aliases.get(column.name)
                if column.name in COLUMNS and column.name not in group_names and not _inside_count(column):
                    if target is None or not target.find(exp.Count):
                        raise refused(f"Column `{column.name}` must be in GROUP BY or inside an aggregate.")
        groups = [(rows_of[0] if rows_of else dict.fromkeys(COLUMNS), rows_of) for rows_of in grouped.values()]
        keys = [(_group_key(evaluator, o.this), bool(o.args.get("desc"))) for o in ordering]
        groups = _sort(groups, keys)
        results = [[evaluator.value(node, first, members) for node in outputs] for first, members in groups]
    else:
        keys = [(_row_key(evaluator, o.this), bool(o.args.get("desc"))) for o in ordering]
        rows = _sort(rows, keys)
        results = [[evaluator.value(node, row) for node in outputs] for row in rows]
    page = results[offset : offset + limit]
    return {
        "columns": [_column_name(node) for node in outputs],
        "types": [[_column_name(node), _column_type(node, tz_name)] for node in outputs],
        "results": [[_json_value(value, tz) for value in row] for row in page],
        "hasMore": len(results) > offset + limit,
        "limit": limit,
        "offset": offset,
        "hogql": select.sql(dialect="clickhouse"),
    }


def _inside_count(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Count):
            return True
        parent = parent.parent
    return False


def _row_key(evaluator: Evaluator, node: exp.Expression) -> Callable[[Any], Any]:
    return lambda row: evaluator.value(node, row)


def _group_key(evaluator: Evaluator, node: exp.Expression) -> Callable[[Any], Any]:
    return lambda group: evaluator.value(node, group[0], group[1])


def _json_value(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


# ---------------------------------------------------------------------------------------------- the route


def query(ctx: Ctx) -> tuple[int, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    spec = body.get("query")
    if not isinstance(spec, dict):
        raise validation("This field is required.", "query", "required")
    if spec.get("kind") != "HogQLQuery":
        raise validation(
            f"Only HogQLQuery is served here, not {spec.get('kind')!r}: send "
            '{"query": {"kind": "HogQLQuery", "query": "SELECT ... FROM batch_export_log_entries"}}.',
            "query",
        )
    text = spec.get("query")
    if not isinstance(text, str) or not text.strip():
        raise validation("The HogQL query text is required.", "query")
    tz_name = ctx.sb.config.project_timezone

    def source(pushdown: Pushdown) -> Iterable[Row]:
        return ctx.sb.log_rows(ctx.project, pushdown.export_ids, pushdown.instance_ids, pushdown.since, pushdown.until)

    return 200, run(text, source, tz_name)
