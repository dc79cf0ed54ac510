"""Read a README's code blocks with the prose that introduces each, so tests can run them as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    intro: str  # the prose between the previous block (or the section start) and this one


def section(readme: Path, heading: str) -> str:
    """The text under `## heading`, up to the next `## ` heading."""
    text = readme.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{readme} has no section '## {heading}'"
    return match.group(1)


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, dedented by its fence's indent (blocks inside list items are indented)."""
    found: list[Block] = []
    prose: list[str] = []
    lines = iter(markdown.splitlines())
    for line in lines:
        fence = FENCE.match(line)
        if not fence:
            prose.append(line)
            continue
        indent = len(fence["indent"])
        code = []
        for inner in lines:
            if inner.strip() == "```":
                break
            assert not inner.strip() or inner.startswith(" " * indent), (
                f"block line outside its indent: {inner!r}"
            )
            code.append(inner[indent:])
        found.append(Block(fence["lang"], "\n".join(code) + "\n", "\n".join(prose)))
        prose = []
    return found


def commands(block: Block) -> list[str]:
    """The command lines of a shell block."""
    assert block.lang == "sh", block
    return [line for line in block.code.splitlines() if line.strip()]


def on_port(command: str, port: int) -> str:
    """The README's `localhost:8000` commands, sent to the port a test server listens on."""
    assert "localhost:8000" in command, command
    return command.replace("localhost:8000", f"localhost:{port}")
