"""The package tree reads like the pipeline: each layer imports only the layers below it, and no module
imports itself back through others (checked on the source, module-level and function-level imports alike)."""
from __future__ import annotations

import ast
from pathlib import Path

from bot.config import ROOT

PACKAGE = ROOT / "bot"
# Lowest first; a module may import its own layer and those before it.
LAYERS = ["bot.config", "bot.text", "bot.logs", "bot.process", "bot.knowledge", "bot.search", "bot.answer", "bot.evaluation",
          "bot.interfaces"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    return max(i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + "."))


def imports() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name in ("bot", "bot.__main__"):
            continue
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot"):
                found.add(node.module)
                assert node.level == 0, f"{name}: relative import"
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("bot")}
        graph[name] = {m for m in found if m != "bot"}
    return graph


def test_imports_point_down():
    wrong = [f"{module} imports {target}" for module, targets in imports().items() for target in targets
             if layer_of(target) > layer_of(module)]
    assert not wrong


def test_no_import_cycles():
    graph = imports()

    def reaches(start: str, node: str, seen: set[str]) -> bool:
        for target in graph.get(node, ()):
            if target == start:
                return True
            if target not in seen:
                seen.add(target)
                if reaches(start, target, seen):
                    return True
        return False

    assert not [module for module in graph if reaches(module, module, set())]
