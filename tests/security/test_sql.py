"""No SQL built from strings (issue 6 item 4): every statement the store runs is fixed text,
with member data passed only as parameters.

The rule, checked on the syntax tree of bot/store/*.py. The SQL argument of every execute(),
execute_fetchall(), executemany(), executescript() and execute_insert() call, and of the store's
own helpers that take a `sql` parameter (checked where they are called), must be SAFE:
- a string literal, or `+`, implicit concatenation, an f-string or a conditional of SAFE parts;
- a module constant (an UPPER_CASE name assigned at module level, or imported from another
  bot/store module: built at import, when no member data exists), an item of one
  (`_GUILD_COLUMN_SQL[column]`), or `.get()` on one;
- `int(...)` (a number cannot carry SQL);
- `", ".join(...)` of SAFE items ("?" placeholders);
- a local name whose every assignment in the function is SAFE, or that is unpacked from a
  call to a column whitelist (SANITIZERS), or a loop variable over a literal tuple of strings or
  over a packaged migration's statements.
Anything else (a parameter, an attribute, `%`, `.format()`, a call's result) fails the test.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import bot.store
from bot.store.jobs import _assignments

STORE = Path(bot.store.__file__).parent
EXECUTES = frozenset(
    {"execute", "execute_fetchall", "executemany", "executescript", "execute_insert"}
)
# Functions whose result may name columns because they refuse any name not on a fixed list.
SANITIZERS = {"_assignments": "only the changeable job columns (JobChanges); raises otherwise"}
# Loops whose variable is SQL text the package itself ships.
TRUSTED_LOOPS = {"statements": "Migration.statements(): a packaged migrations/*.sql file"}
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.why}"


class SqlChecker:
    """Finds SQL arguments that are not SAFE (see the module's docstring) in one module."""

    def __init__(self, source: str, name: str) -> None:
        self.tree = ast.parse(source)
        self.name = name
        self.constants = {
            target.id
            for node in self.tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name) and CONSTANT.fullmatch(target.id)
        } | {
            # A sibling module's constant, imported (the same rule, applied where it is made).
            alias.asname or alias.name
            for node in self.tree.body
            if isinstance(node, ast.ImportFrom)
            and (node.level > 0 or (node.module or "").startswith("bot.store"))
            for alias in node.names
            if CONSTANT.fullmatch(alias.asname or alias.name)
        }
        self.helpers = self._helpers()
        self.findings: list[Finding] = []
        self.checked = 0

    def _helpers(self) -> dict[str, int]:
        """Module functions taking SQL text, its own or imported from a sibling store module:
        name -> position of their `sql` parameter."""
        found = _sql_parameters(self.tree)
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot.store."):
                sibling = STORE / f"{node.module.rsplit('.', 1)[-1]}.py"
                if sibling.is_file():
                    theirs = _sql_parameters(ast.parse(sibling.read_text(encoding="utf-8")))
                    for alias in node.names:
                        if alias.name in theirs:
                            found[alias.asname or alias.name] = theirs[alias.name]
        return found

    def run(self) -> list[Finding]:
        for function in ast.walk(self.tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Call):
                        self._call(node, function)
        return self.findings

    def _call(self, call: ast.Call, function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        func = call.func
        position: int | None = None
        if isinstance(func, ast.Attribute) and func.attr in EXECUTES:
            position = 0
        elif isinstance(func, ast.Name) and func.id in self.helpers:
            position = self.helpers[func.id]
        if position is None or len(call.args) <= position:
            return
        self.checked += 1
        why = self.unsafe(call.args[position], function, set())
        if why is not None:
            self.findings.append(Finding(self.name, call.lineno, why))

    def unsafe(self, node: ast.expr, function: ast.AST, seen: set[str]) -> str | None:
        """None if `node` is SAFE SQL text, else why not."""
        if isinstance(node, ast.Constant):
            return None if isinstance(node.value, str | int) else f"the constant {node.value!r}"
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    why = self.unsafe(part.value, function, seen)
                    if why is not None:
                        return f"an f-string interpolates {why}"
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.unsafe(node.left, function, seen) or self.unsafe(node.right, function, seen)
        if isinstance(node, ast.IfExp):
            return self.unsafe(node.body, function, seen) or self.unsafe(
                node.orelse, function, seen
            )
        if isinstance(node, ast.Subscript) and self._constant(node.value):
            return None
        if isinstance(node, ast.Call):
            return self._call_result(node, function, seen)
        if isinstance(node, ast.Name):
            return self._name(node.id, function, seen)
        return f"`{ast.unparse(node)}`"

    def _constant(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in self.constants

    def _call_result(self, call: ast.Call, function: ast.AST, seen: set[str]) -> str | None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "int":
            return None
        if isinstance(func, ast.Attribute) and func.attr == "get" and self._constant(func.value):
            return None
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "join"
            and isinstance(func.value, ast.Constant)
            and len(call.args) == 1
        ):
            items = call.args[0]
            if isinstance(items, ast.GeneratorExp | ast.ListComp):
                return self.unsafe(items.elt, function, seen)
        return f"the result of `{ast.unparse(call)}`"

    def _name(self, name: str, function: ast.AST, seen: set[str]) -> str | None:
        if name in self.constants:
            return None
        assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        if name == "sql" and name in [a.arg for a in function.args.args]:
            return None  # a helper's SQL parameter: its callers are checked
        if name in seen:
            return None
        seen = seen | {name}
        sources = list(self._assignments(name, function))
        if not sources:
            return f"`{name}`, which is not a constant, a checked local or a helper's sql"
        for source in sources:
            if source is None:
                continue
            why = source if isinstance(source, str) else self.unsafe(source, function, seen)
            if why is not None:
                return f"`{name}` (assigned {why})"
        return None

    def _assignments(self, name: str, function: ast.AST) -> list[ast.expr | str | None]:
        """What `name` is assigned in the function: an expression, a reason it is unsafe
        (str), or None when it is safe by a rule about its source."""
        found: list[ast.expr | str | None] = []
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        found.append(node.value)
                    elif isinstance(target, ast.Tuple) and _binds(target, name):
                        found.append(self._unpacked(node.value))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and _binds(node.target, name):
                found.append(node.value if node.value is not None else "without a value")
            elif isinstance(node, ast.For | ast.comprehension) and _binds(node.target, name):
                found.append(self._loop(node.iter))
            elif isinstance(node, ast.arguments) and name in [a.arg for a in node.args]:
                found.append("as a parameter")
        return found

    def _unpacked(self, value: ast.expr) -> str | None:
        func = value.func if isinstance(value, ast.Call) else None
        if isinstance(func, ast.Name) and func.id in SANITIZERS:
            return None
        return f"from `{ast.unparse(value)}`"

    def _loop(self, source: ast.expr) -> str | None:
        if isinstance(source, ast.Tuple | ast.List) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in source.elts
        ):
            return None
        call = source.func if isinstance(source, ast.Call) else None
        if isinstance(call, ast.Attribute) and call.attr in TRUSTED_LOOPS:
            return None
        return f"by a loop over `{ast.unparse(source)}`"


def _sql_parameters(tree: ast.Module) -> dict[str, int]:
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in node.args.args]
            if "sql" in names:
                found[node.name] = names.index("sql")
    return found


def _binds(target: ast.expr, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target))


def check(source: str, name: str = "planted.py") -> SqlChecker:
    checker = SqlChecker(source, name)
    checker.run()
    return checker


def test_every_statement_the_store_runs_is_fixed_text() -> None:
    findings: list[Finding] = []
    checked = 0
    for path in sorted(STORE.glob("*.py")):
        checker = check(path.read_text(encoding="utf-8"), path.name)
        findings += checker.findings
        checked += checker.checked
    assert checked >= 50  # the rule saw the store's queries, not nothing
    assert [str(f) for f in findings] == []


def test_the_column_whitelist_refuses_any_other_name() -> None:
    assert _assignments({"error": "x"})[0] == "error = ?"
    with pytest.raises(ValueError, match="cannot be changed"):
        _assignments({"state = 'delivered', user_id": 1})  # type: ignore[dict-item]


BAD = {
    "an f-string of a parameter": """
async def find(db, name):
    await db.execute(f"SELECT * FROM jobs WHERE prompt = '{name}'")
""",
    "concatenation with a parameter": """
async def find(db, name):
    await db.execute_fetchall("SELECT * FROM jobs WHERE id = " + name, ())
""",
    "str.format": """
async def find(db, name):
    await db.execute("SELECT * FROM jobs WHERE id = '{}'".format(name))
""",
    "% formatting through a local": """
async def find(db, name):
    sql = "SELECT * FROM jobs WHERE id = '%s'" % name
    await db.execute(sql)
""",
    "a helper called with built SQL": """
async def _scalar(db, sql, params=()):
    return await db.execute_fetchall(sql, params)

async def count(db, table):
    return await _scalar(db, f"SELECT COUNT(*) FROM {table}")
""",
    "a lower-case module variable": """
table = "jobs"

async def find(db):
    await db.execute(f"SELECT * FROM {table}")
""",
    "a loop over member data": """
async def run_all(db, statements_from_member):
    for statement in statements_from_member:
        await db.execute(statement)
""",
}


@pytest.mark.parametrize("source", BAD.values(), ids=BAD.keys())
def test_the_rule_catches_sql_built_from_member_data(source: str) -> None:
    checker = check(source)
    assert len(checker.findings) == 1, checker.findings


def test_the_rule_accepts_placeholders_and_constants() -> None:
    source = """
_UNFINISHED_SQL = "'queued', 'running'"

async def find(db, ids, changes):
    marks = ", ".join("?" for _ in ids)
    sets, params = _assignments(changes)
    await db.execute(f"SELECT id FROM jobs WHERE id IN ({marks}) AND {_UNFINISHED_SQL}", ids)
    await db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*params, 1))
"""
    checker = check(source)
    assert checker.checked == 2
    assert checker.findings == []
