"""Helpers for the eve.json checks of the integration tests (imported by their inline scripts
with sys.path pointing here): load a file, record checks, exit with the verdict."""
import json
import sys

_ok = True


def load(path):
    """Every event of an eve.json file."""
    with open(path) as f:
        return [json.loads(line) for line in f]


def events(evs, kind):
    """The events of one event_type."""
    return [e for e in evs if e["event_type"] == kind]


def check(cond, what):
    """Records a check; a false one is printed."""
    global _ok
    if not cond:
        _ok = False
        print("   not true:", what)


def done():
    """Exits 0 when every check held, else 1."""
    sys.exit(0 if _ok else 1)
