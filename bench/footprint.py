"""Memory of each idle server of a running local stack (RSS and PSS, with children).

    .venv/bin/python bench/footprint.py        # the stack of HOMESTREAM_STATE_DIR (.state)

PSS splits shared pages between processes, so PostgreSQL's backends sharing one
buffer pool are not counted several times; RSS is what `ps` shows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compose.stack import Stack
from runtime.config import Settings


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids += _tree(int(child))
    return pids


def _kb(pid: int, field: str) -> int:
    try:
        if field == "Pss":
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        else:
            text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    rows = []
    for st in Stack(Settings.from_env(), say=lambda _t: None).status():
        if not st.pid:
            rows.append({"service": st.name, "running": False})
            continue
        pids = _tree(st.pid)
        rows.append(
            {
                "service": st.name,
                "processes": len(pids),
                "rss_mb": round(sum(_kb(p, "VmRSS") for p in pids) / 1024, 1),
                "pss_mb": round(sum(_kb(p, "Pss") for p in pids) / 1024, 1),
            }
        )
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'service':<10} {'procs':>5} {'RSS MB':>8} {'PSS MB':>8}")
        for r in rows:
            if r.get("running") is False:
                print(f"{r['service']:<10} stopped")
            else:
                print(f"{r['service']:<10} {r['processes']:>5} {r['rss_mb']:>8} {r['pss_mb']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
