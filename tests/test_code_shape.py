"""The shape of the code (GUIDE.md section 2): no function of dashscale/ over 60 lines.

A function that long does several things; split it into pieces whose names say what each does.
Lines count from `def` to the function's last line, decorators not included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dashscale"
MOST_LINES = 60


def long_functions(source: str, where: str) -> list[str]:
    """Each function (methods and nested ones too) longer than MOST_LINES, as `where:line name
    (N lines)`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > MOST_LINES:
                found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_check_counts_from_def_to_the_last_line() -> None:
    def body(indent: str, lines: int) -> str:
        return "".join(f"{indent}x = {n}\n" for n in range(lines))

    assert long_functions(f"def fits():\n{body('    ', MOST_LINES - 1)}", "m.py") == []
    grown = f"class C:\n    @property\n    def grown(self):\n{body(' ' * 8, MOST_LINES)}"
    assert long_functions(grown, "m.py") == [f"m.py:3 grown ({MOST_LINES + 1} lines)"]


def test_no_function_is_longer_than_60_lines() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules, PACKAGE
    found = [
        problem
        for path in modules
        for problem in long_functions(
            path.read_text(encoding="utf-8"), path.relative_to(PACKAGE.parent).as_posix()
        )
    ]
    assert found == [], "functions over 60 lines (split them):\n" + "\n".join(found)
