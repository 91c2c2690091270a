"""The README's NeuronConfig table, generated from the C++ schema so the two cannot drift.

`python -m vllm_neuron_plugin.config_table --write` refreshes README.md between the markers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BEGIN = "<!-- neuron-config-table:begin -->"
END = "<!-- neuron-config-table:end -->"


def markdown_table() -> str:
    from vllm_neuron_plugin.core import neuron_config_schema

    rows = neuron_config_schema()
    groups: list[str] = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
    lines = [
        "| key | accepts | NxDI default | on this backend | what it does here |",
        "|---|---|---|---|---|",
    ]
    for group in sorted(groups):
        lines.append(f"| **{group}** | | | | |")
        for r in sorted((r for r in rows if r["group"] == group), key=lambda r: r["name"]):
            cells = [f"`{r['name']}`", r["accepts"], f"`{r['default']}`", r["support"], r["note"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    table = markdown_table()
    if not args.write:
        print(table)
        return
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + table + "\n" + text[end:])


if __name__ == "__main__":
    main()
