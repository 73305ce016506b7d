#!/usr/bin/env python3
"""perfsum.py PERF_DATA [COMM] - inclusive and self shares of the samples of one thread (by its
comm, default mmtls-keysrv) in a `perf record -g` / `--call-graph dwarf` file, computed from
`perf script` (perf report's --comm with --children mis-normalises on this kernel's perf)."""
import collections
import subprocess
import sys

data = sys.argv[1]
comm = sys.argv[2] if len(sys.argv) > 2 else "mmtls-keysrv"
out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"],
                     capture_output=True, text=True, errors="replace").stdout
incl, selfc, dsos = collections.Counter(), collections.Counter(), collections.Counter()
chains = collections.defaultdict(collections.Counter)  # leaf -> caller chain
total = 0
cur, frames = None, []


def name(line):
    parts = line.strip().split(None, 1)
    sym = parts[1] if len(parts) > 1 else "?"
    dso = sym.rsplit("(", 1)[-1].rstrip(")") if "(" in sym else "?"
    sym = sym.rsplit(" (", 1)[0]
    sym = sym.split("+0x")[0]
    if sym.startswith("[unknown]"):
        sym = "[unknown] " + dso.split("/")[-1]
    return sym, dso.split("/")[-1]


def flush():
    global total
    if cur != comm or not frames:
        return
    total += 1
    syms = [name(f) for f in frames]
    selfc[syms[0][0]] += 1
    dsos[syms[0][1]] += 1
    chains[syms[0][0]][" < ".join(x[0] for x in syms[1:4])] += 1
    for s in set(x[0] for x in syms):
        incl[s] += 1


for line in out.splitlines():
    if not line.strip():
        flush()
        cur, frames = None, []
    elif not line.startswith((" ", "\t")):
        flush()
        cur, frames = line.split()[0], []
        # comm may contain no spaces here (mmtls-keysrv, kb-worker, keybench)
    else:
        frames.append(line)
flush()
if total == 0:
    sys.exit(f"no samples for {comm}")
print(f"{total} samples of {comm}")
print("\nself, by object:")
for d, c in dsos.most_common(8):
    print(f"  {100.0 * c / total:5.1f}%  {d}")
print("\nself, by function:")
for s, c in selfc.most_common(25):
    print(f"  {100.0 * c / total:5.1f}%  {s}")
print("\ninclusive (function and what it calls):")
for s, c in incl.most_common(45):
    print(f"  {100.0 * c / total:5.1f}%  {s}")
print("\ncallers of the top self functions:")
for s, c in selfc.most_common(6):
    print(f"  {s}:")
    for ch, n in chains[s].most_common(4):
        print(f"    {100.0 * n / total:5.1f}%  < {ch}")
