"""The same 50 rules (bench/peer_rules.txt) as each peer's configuration.

- pod-watcher: `WATCHER_RULES` with the built-in packs off.
- node-problem-detector: a filelog system-log monitor, one temporary rule per pattern,
  reading the kubelet's CRI framing (it drops lines without a timestamp).
- Fluent Bit: tail plus a grep filter with one `Regex` per pattern and `Logical_Op or`
  (one 50-branch alternation costs it 6-11x more: Onigmo finds no literal in it).

The patterns are portable: RE2, Go's regexp and Onigmo read them the same way.
"""

import json
from pathlib import Path
from typing import Final

RULES_FILE: Final = Path(__file__).with_name("peer_rules.txt")


def patterns() -> list[str]:
    lines = RULES_FILE.read_text("utf-8").splitlines()
    if any(not line for line in lines):
        raise ValueError(f"{RULES_FILE}: an empty line would match every line")
    return lines


def reason(index: int) -> str:
    return f"Peer{index:02d}"


def pod_watcher_env() -> dict[str, str]:
    rules = [{"reason": reason(i), "pattern": p} for i, p in enumerate(patterns(), 1)]
    return {"WATCHER_RULE_PACKS": "none", "WATCHER_RULES": json.dumps(rules)}


def npd_monitor(log: Path) -> str:
    """node-problem-detector's filelog monitor. Its rules match the end of a buffer of
    recent lines, hence the trailing `.*`; `bufferSize` keeps its default of 10."""
    config = {
        "plugin": "filelog",
        "pluginConfig": {
            "timestamp": "^(\\S+) ",
            "message": "^\\S+ (?:stdout|stderr) [FP] (.*)",
            "timestampFormat": "2006-01-02T15:04:05.999999999Z07:00",
        },
        "logPath": str(log),
        "lookback": "24h",
        "bufferSize": 10,
        "source": "training-log-monitor",
        "conditions": [],
        "rules": [
            {"type": "temporary", "reason": reason(i), "pattern": f"(?:{p}).*"}
            for i, p in enumerate(patterns(), 1)
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def fluent_bit(log: Path, *, flush: float, from_head: bool) -> str:
    """Fluent Bit's tail + grep; matched records go to stdout, one JSON line each."""
    regexes = "".join(f"    Regex  log {p}\n" for p in patterns())
    return f"""[SERVICE]
    Flush        {flush:g}
    Daemon       off
    Log_Level    info
    HTTP_Server  off

[INPUT]
    Name              tail
    Path              {log}
    Read_from_Head    {"true" if from_head else "false"}
    Inotify_Watcher   true
    Buffer_Chunk_Size 32k
    Buffer_Max_Size   256k
    Skip_Long_Lines   on

[FILTER]
    Name   grep
    Match  *
    Logical_Op or
{regexes}
[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
"""
