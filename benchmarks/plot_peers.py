"""Grouped bar chart of benchmarks/results/peers.json as a plain SVG (no plotting dependency):
for each workload, ours and each peer, normalised to ours = 1 (higher is better, so TTFT
is drawn as its inverse), with the measured values written on the bars.

Usage: python benchmarks/plot_peers.py [--json F] [--out F.svg]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLORS = {"ours": "#2b6cb0", "llama.cpp": "#dd6b20", "HF generate": "#718096"}


def groups(r: dict) -> list[tuple[str, dict[str, tuple[float, str]]]]:
    """(workload, {system: (higher-is-better score, label)})."""
    w, lc, hf, v, ls = (r.get(k, {}) for k in ("worker", "llama", "hf", "vllm", "llama_server"))
    out = []
    for n in ("128", "512", "2048"):
        ours, peer = w.get("ttft_s", {}).get(n), lc.get("ttft_s", {}).get(n)
        if ours and peer:
            out.append((f"TTFT {n}-token prompt", {"ours": (1 / ours, f"{ours:.2f} s"),
                                                    "llama.cpp": (1 / peer, f"{peer:.2f} s")}))
    def rates(name: str, ours, peers: dict) -> None:
        if ours:
            g = {"ours": (ours, f"{ours} tok/s")}
            g.update({k: (v, f"{v} tok/s") for k, v in peers.items() if v})
            out.append((name, g))

    rates("batch-1 decode", w.get("decode_tok_s"),
          {"llama.cpp": lc.get("decode_tok_s"), "HF generate": hf.get("decode_tok_s")})
    rates("offline throughput", v.get("output_tok_s"),
          {"llama.cpp": ls.get("output_tok_s"), "HF generate": hf.get("batch_output_tok_s")})
    return out


def svg(data: list[tuple[str, dict[str, tuple[float, str]]]], title: str) -> str:
    bar, gap, top, height = 26, 34, 60, 220
    systems = [s for s in COLORS if any(s in g for _, g in data)]
    width = 70 + len(data) * (len(systems) * bar + gap)
    scale = max(v[0] / g["ours"][0] for _, g in data for v in g.values())
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 70}" '
             'font-family="sans-serif" font-size="11">',
             f'<text x="10" y="20" font-size="14">{title}</text>']
    for i, s in enumerate(systems):
        parts.append(f'<rect x="{10 + i * 120}" y="32" width="12" height="12" fill="{COLORS[s]}"/>'
                     f'<text x="{26 + i * 120}" y="42">{s}</text>')
    base = top + height
    parts.append(f'<line x1="50" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#333"/>')
    y1 = base - height / scale
    parts.append(f'<line x1="50" y1="{y1:.1f}" x2="{width - 10}" y2="{y1:.1f}" stroke="#999" '
                 f'stroke-dasharray="4 3"/><text x="8" y="{y1 + 4:.1f}">ours=1</text>')
    x = 60
    for name, g in data:
        ref = g["ours"][0]
        for s in systems:
            if s in g:
                h = height * g[s][0] / ref / scale
                parts.append(f'<rect x="{x}" y="{base - h:.1f}" width="{bar - 4}" height="{h:.1f}" '
                             f'fill="{COLORS[s]}"/>')
                parts.append(f'<text x="{x + bar / 2 - 2}" y="{base - h - 4:.1f}" font-size="9" '
                             f'text-anchor="end" transform="rotate(-90 {x + bar / 2 - 2} '
                             f'{base - h - 4:.1f})">{g[s][1]}</text>')
            x += bar
        parts.append(f'<text x="{x - len(systems) * bar / 2}" y="{base + 16}" text-anchor="middle">'
                     f'{name}</text>')
        x += gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/peers.json")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/peers.svg")
    args = ap.parse_args()
    r = json.loads(args.json.read_text())
    title = f"{r['model']} {r['dtype']}, {r['threads']} threads: relative to ours (higher is better)"
    args.out.write_text(svg(groups(r), title))
    print(args.out)


if __name__ == "__main__":
    main()
