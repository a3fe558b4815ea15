"""The house rules a reviewer would otherwise check by hand: modules and functions stay small enough to read, and
the chains of imports between bench's modules stay short."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# The most modules in one chain of direct imports within bench, `python -m bench` included (docs/layout.md).
MAX_IMPORT_CHAIN = 9


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


def longest_chain(graph, modules) -> list[str]:
    """The longest chain of direct imports (`a` imports `b` imports `c`: 3 modules) starting at any of `modules`, in
    a grimp import graph: imports at a module's top and inside its functions count alike."""
    longest: dict[str, list[str]] = {}
    open_: list[str] = []

    def walk(module: str) -> list[str]:
        if module in open_:
            raise AssertionError(f"an import cycle: {' -> '.join(open_[open_.index(module):] + [module])}")
        if module not in longest:
            open_.append(module)
            below = [walk(m) for m in sorted(graph.find_modules_directly_imported_by(module))]
            open_.pop()
            longest[module] = [module, *max(below, key=len, default=[])]
        return longest[module]

    return max((walk(m) for m in sorted(modules)), key=len, default=[])


def test_no_chain_of_imports_is_longer_than_9_modules():
    """A module deep in a long chain pulls every module below it into whatever imports it, and the chain is where
    layering erodes: a command module importing another, an API module another. grimp (import-linter's) reads the
    imports without running them."""
    import grimp

    graph = grimp.build_graph("bench")
    chain = longest_chain(graph, graph.modules)
    assert len(chain) <= MAX_IMPORT_CHAIN, (f"{len(chain)} modules in a chain of imports, at most {MAX_IMPORT_CHAIN}: "
                                            f"{' -> '.join(chain)}")


def test_the_chain_check_sees_a_long_chain():
    import grimp

    graph = grimp.ImportGraph()
    for importer, imported in (("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("e", "d")):
        graph.add_import(importer=importer, imported=imported)
    assert longest_chain(graph, graph.modules) == ["a", "b", "c", "d"]
