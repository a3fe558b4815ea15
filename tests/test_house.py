"""The house rules a reviewer would otherwise check by hand: modules and functions stay small enough to read."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert long == {}, f"split these modules (one job each, at most {MAX_MODULE_LINES} lines): {long}"


def test_no_function_is_over_80_lines():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = lines
    assert long == {}, f"split these functions (at most {MAX_FUNCTION_LINES} lines): {long}"


def test_the_checks_see_a_long_function(tmp_path):
    """The walk above finds a function by its real extent, decorators and nested functions included."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def f():\n{body}\n")
    node = tree.body[0]
    assert node.end_lineno - node.lineno + 1 == MAX_FUNCTION_LINES + 1


def test_every_noqa_names_its_rule_and_says_why():
    """A noqa comment silences a named rule and gives its reason after it (`noqa: BLE001 - why`), so a reader knows
    why the rule does not hold there; ruff's RUF100 removes the ones that silence nothing."""
    import re
    import tokenize

    root = PACKAGE.parent
    bare = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "configs").rglob("*.py")]):
        with path.open("rb") as f:
            comments = [t for t in tokenize.tokenize(f.readline) if t.type == tokenize.COMMENT and "noqa" in t.string]
        for token in comments:
            if not re.search(r"# noqa: [A-Z]+[0-9]+(, ?[A-Z]+[0-9]+)* +- +\S", token.string):
                bare.append(f"{path.relative_to(root)}:{token.start[0]}")
    assert bare == [], f"a noqa without its rule and reason: {bare}"
