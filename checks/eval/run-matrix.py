#!/usr/bin/env python3
"""Runs the module matrix (checks/eval/matrix.nix), one process per cell, and prints it as
a Markdown table. A cell that aborts evaluation is reported with the first line of Nix's
error. Exit status 1 when a cell is an evaluation error or differs from matrix.nix's
`expected` (not compared with --no-expect, e.g. to tabulate an old revision).

usage: run-matrix.py STUB_NIXPKGS FLAKE_DIR [--no-expect] [--json OUT.json]
                     [--modes native,containers]
"""
import concurrent.futures
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def nix_eval(expr):
    p = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
    )
    if p.returncode == 0:
        return True, json.loads(p.stdout)
    lines = [l.strip() for l in p.stderr.splitlines() if l.strip().startswith("error:")]
    return False, (lines[0] if lines else p.stderr.strip()[-200:])


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    stub, flake = os.path.abspath(args[0]), os.path.abspath(args[1])
    expect = out = None
    if "--json" in args:
        out = args[args.index("--json") + 1]
    modes = ""
    if "--modes" in args:
        modes = "modes = [ " + " ".join(json.dumps(m) for m in args[args.index("--modes") + 1].split(",")) + " ];"
    base = f"(import {HERE}/matrix.nix {{ stubNixpkgs = {stub}; flakeDir = {flake}; {modes} }})"
    ok, meta = nix_eval(f"{{ inherit ({base}) styles modes gpus; }}")
    if not ok:
        sys.exit(f"matrix.nix does not evaluate: {meta}")
    cells = [(s, m, g) for s in meta["styles"] for m in meta["modes"] for g in meta["gpus"]]
    if "--no-expect" not in args:
        ok, expect = nix_eval(f"{base}.expected")
        if not ok:
            sys.exit(f"matrix.nix's expectations do not evaluate: {expect}")

    def run(cell):
        s, m, g = cell
        ok, value = nix_eval(f'{base}.cells.{json.dumps(s)}.{m}.{g}')
        return cell, (value if ok else f"ERROR: {value}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, cells))

    bad = 0
    print("| import style | mode | " + " | ".join(f"gpu={g}" for g in meta["gpus"]) + " |")
    print("|---|---|" + "---|" * len(meta["gpus"]))
    for s in meta["styles"]:
        for m in meta["modes"]:
            row = []
            for g in meta["gpus"]:
                r = results[(s, m, g)]
                want = expect.get(s, {}).get(m, {}).get(g) if expect else None
                mark = ""
                if r.startswith("ERROR"):
                    bad += 1
                elif want is not None and not r.startswith(want):
                    bad += 1
                    mark = f" (want {want})"
                row.append(r.replace("|", "/") + mark)
            print(f"| {s} | {m} | " + " | ".join(row) + " |")
    if out:
        nested = {}
        for (s, m, g), r in results.items():
            nested.setdefault(s, {}).setdefault(m, {})[g] = r
        json.dump(nested, open(out, "w"), indent=1)
    print(f"{len(cells) - bad} of {len(cells)} cells as expected")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
