"""serving's code stays readable: no function (methods and nested functions included) over 60 lines,
counted from its ``def`` line to its last line, decorators aside."""

from __future__ import annotations

import ast
from pathlib import Path

import serving

MAX_FUNCTION_LINES = 60


def long_functions(package: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``"path:line name (n lines)"`` for every function under ``package`` longer than ``limit`` lines."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_serving_is_over_60_lines():
    assert long_functions(Path(serving.__file__).parent) == []


def _function(name: str, body_lines: int, decorators: int = 0, indent: str = "") -> str:
    return "".join(f"{indent}@decorator{i}\n" for i in range(decorators)) + f"{indent}def {name}():\n" + "".join(
        f"{indent}    x{i} = {i}\n" for i in range(body_lines))


def test_the_count_finds_long_functions_methods_and_nested_ones(tmp_path):
    package = tmp_path / "package"
    package.mkdir()
    (package / "module.py").write_text(
        _function("fits", 59, decorators=5)  # 60 lines from def to its end: allowed
        + _function("too_long", 60)  # 61 lines
        + "class Service:\n" + _function("method", 61, indent="    ")
        + "def outer():\n" + _function("inner", 61, indent="    ").replace("def inner", "async def inner"),
        encoding="utf-8")
    found = long_functions(package)
    assert sorted(entry.split(" ")[1] for entry in found) == ["inner", "method", "outer", "too_long"]
    assert "package/module.py:66 too_long (61 lines)" in found
