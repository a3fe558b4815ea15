"""The docs cannot drift from the CLI: every command they show names a real subcommand and real options.

Commands are taken from README.md's and docs/*.md's fenced code blocks (lines with `layerbench ...`,
`.venv/bin/layerbench ...` or `python -m bench ...`) and from inline code spans that start with one of those.
Only the subcommand (nested ones included) and the option names are checked; placeholders such as `SUITE`,
`<ref>` or `RUN...` are arguments and pass. An inline span written `bench run ...` fails too: the installed
command is `layerbench`.
"""
from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The program, as the docs may write it: the console script (bare or from the venv) or the module.
PROGRAM = re.compile(r"(?:^|[\s(=\"'])(?:\S*/)?(?:layerbench|python3? -m bench)(?=\s|$)")
# `bench run ...`: the installed command is called layerbench (`bench.run(...)` in Python is not matched)
OLD_NAME = re.compile(r"^bench (" + "|".join(sorted(next(
    a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)))) + r")\b")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^\s*(```|~~~)")
SEPARATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<"}


@dataclass(frozen=True)
class Mention:
    file: str
    line: int
    text: str  # the command line, from the program's name on

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text!r}"


def mentions(path: Path, root: Path = ROOT) -> tuple[list[Mention], list[Mention]]:
    """(commands, spans written with the old name `bench`) of one Markdown file."""
    commands, old = [], []
    name = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    fenced, pending, start = False, "", 0
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced, pending = not fenced, ""
            continue
        if fenced:
            text = (pending + " " + line.strip()) if pending else line.strip()
            if not pending:
                start = number
            if text.endswith("\\"):  # a command continued on the next line
                pending = text[:-1].strip()
                continue
            pending = ""
            found = PROGRAM.search(text)
            if OLD_NAME.match(text.removeprefix("$ ")):
                old.append(Mention(name, start, text))
            elif found:
                commands.append(Mention(name, start, text[found.start():].lstrip(" (=\"'")))
            continue
        for span in INLINE.findall(line):
            span = span.replace("\\|", "|").strip()
            if PROGRAM.match(span) and PROGRAM.match(span).start() == 0:
                commands.append(Mention(name, number, span))
            elif OLD_NAME.match(span):
                old.append(Mention(name, number, span))
    return commands, old


def all_mentions() -> tuple[list[Mention], list[Mention]]:
    commands, old = [], []
    for path in DOCS:
        found, stale = mentions(path)
        commands += found
        old += stale
    return commands, old


def words(text: str) -> list[str]:
    """The command's words up to a comment, pipe or redirection; brackets and `a|b` alternatives split."""
    text = re.sub(r"\s#.*$", "", text)
    try:
        tokens = shlex.split(text)
    except ValueError:  # an unbalanced quote in prose: fall back to spaces
        tokens = text.split()
    out = []
    for token in tokens:
        if token in SEPARATORS:
            break
        for part in re.split(r"[\[\]|]", token):
            if part:
                out.append(part)
    program = 3 if len(out) > 2 and out[1:3] == ["-m", "bench"] else 1
    return out[program:]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def problems(mention: Mention, top: argparse.ArgumentParser) -> list[str]:
    """What in one command the CLI does not have: an unknown subcommand or option."""
    args = words(mention.text)
    if not args or args[0] in ("...", "…"):  # the program named in prose, not a command
        return []
    parser, path = top, []
    while True:
        choices = subparsers(parser)
        if not choices:
            break
        if not args or args[0].startswith("-"):
            if parser is top and args and args[0] in ("-h", "--help"):
                return []
            if parser is top:
                return [f"{mention.where()}: no subcommand"]
            break
        word = args.pop(0)
        if word not in choices:
            return [f"{mention.where()}: unknown subcommand {' '.join([*path, word])!r} "
                    f"(known: {', '.join(sorted(choices))})"]
        parser = choices[word]
        path.append(word)
    known = set(parser._option_string_actions)
    bad = []
    for arg in args:
        if re.match(r"^--?[A-Za-z]", arg):
            option = arg.split("=", 1)[0]
            if option not in known:
                bad.append(f"{mention.where()}: `{' '.join(path)}` has no option {option!r}")
    return bad


def test_the_docs_show_commands():
    """The extraction finds the commands (a broken pattern would make the checks below pass vacuously)."""
    commands, _ = all_mentions()
    assert len(commands) > 20
    assert any(m.file == "README.md" for m in commands)


def test_every_documented_command_exists_in_the_cli():
    top = build_parser()
    found = [p for mention in all_mentions()[0] for p in problems(mention, top)]
    assert not found, "\n".join(found)


def test_the_docs_call_the_command_layerbench():
    _, old = all_mentions()
    assert not old, "\n".join(f"{m.where()}: write `layerbench ...` (the installed command)" for m in old)


@pytest.mark.parametrize("text, expected", [
    ("layerbench run seed --budget-s 1", []),
    ("layerbench run seed --no-such-option", ["no option '--no-such-option'"]),
    ("python -m bench compare A B [--threshold 10%] [--metric instructions]", []),
    ("layerbench ab SUITE --base-ref <ref> --bogus=3 | head", ["no option '--bogus'"]),
    ("layerbench nosuch --out x", ["unknown subcommand 'nosuch'"]),
    ("layerbench history import RUN... --store URL", []),
    (".venv/bin/layerbench list seed --json  # checks on the meta device, --fake in a comment", []),
])
def test_the_checker_finds_what_is_wrong(text, expected):
    found = problems(Mention("X.md", 7, text), build_parser())
    assert len(found) == len(expected)
    for problem, part in zip(found, expected):
        assert part in problem and "X.md:7" in problem


def test_nested_subcommands_are_followed():
    top = argparse.ArgumentParser(prog="layerbench")
    sub = top.add_subparsers(dest="command", required=True)
    history = sub.add_parser("history")
    nested = history.add_subparsers(dest="action", required=True)
    nested.add_parser("site").add_argument("--out")
    assert problems(Mention("X.md", 1, "layerbench history site --out DIR"), top) == []
    assert "no option '--store'" in problems(Mention("X.md", 1, "layerbench history site --store U"), top)[0]
    assert "unknown subcommand 'history web'" in problems(Mention("X.md", 1, "layerbench history web"), top)[0]


def test_mentions_reads_blocks_continuations_and_spans(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("Run `layerbench run seed --out x` or `bench run seed`, not `bench.run`.\n\n```bash\n"
                   ".venv/bin/layerbench ab smoke \\\n  --base-ref HEAD\nmake test\nbench plot RUN\n```\n",
                   encoding="utf-8")
    found, old = mentions(doc, tmp_path)
    assert [(m.line, m.text) for m in found] == [(1, "layerbench run seed --out x"),
                                                 (4, ".venv/bin/layerbench ab smoke --base-ref HEAD")]
    assert [(m.line, m.text) for m in old] == [(1, "bench run seed"), (7, "bench plot RUN")]


def test_the_documented_full_call_of_bench_run_matches_its_signature():
    """docs/usage.md's "full call" of bench.run names every parameter, with its real default."""
    import ast
    import inspect

    import bench

    text = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    found = re.search(r"^bench\.run\((suite, \*,.*?)\)$", text, re.S | re.M)
    assert found, "docs/usage.md: no `bench.run(suite, *, ...)` block"
    documented = ast.parse(f"def run({found.group(1)}): pass").body[0].args
    names = [a.arg for a in documented.args] + [a.arg for a in documented.kwonlyargs]
    defaults = {a.arg: ast.literal_eval(d) for a, d in zip(documented.kwonlyargs, documented.kw_defaults)}
    real = inspect.signature(bench.run).parameters
    assert names == list(real)
    for name, default in defaults.items():
        assert default == real[name].default, f"docs/usage.md: bench.run's {name} defaults to {real[name].default!r}"


def test_every_test_the_docs_name_exists():
    """docs/faults.md and the others cite tests as `file::name` (`untrusted`, `workers`, `ab` short for their
    files): each must still be a test function in that file."""
    short = {"untrusted": "test_untrusted_files.py", "workers": "test_workers.py", "ab": "test_ab.py"}
    missing = []
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for file, name in re.findall(r"`([a-z_]+(?:\.py)?)::(test_[a-z0-9_]+)`", line):
                test_file = ROOT / "tests" / short.get(file, file if file.endswith(".py") else f"{file}.py")
                source = test_file.read_text(encoding="utf-8") if test_file.is_file() else ""
                if not re.search(rf"^def {name}\b", source, re.M):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {file}::{name}")
    assert not missing, "\n".join(missing)
