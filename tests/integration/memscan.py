#!/usr/bin/python3
"""memscan.py: where do known secrets sit in a live process, and are they in a core file?

  memscan.py live PID SECRETS_FILE     for every secret (one hex string a line) found in the
                                       process memory (/proc/PID/mem), print the mapping and its
                                       VmFlags; exit 1 if one is in a mapping without "dd"
                                       (MADV_DONTDUMP), or if none is found at all
  memscan.py core CORE SECRETS_FILE MARKER...
                                       exit 1 if any secret (raw bytes, lower or upper hex) is in
                                       the core file, or if a marker is not

Used by tests/integration/test_hygiene.sh (as root).
"""
import re
import sys


def secrets(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line:
            out.append(bytes.fromhex(line))
    return out


def mappings(pid):
    """[(lo, hi, name, vmflags)] from /proc/PID/smaps."""
    out = []
    cur = None
    for line in open("/proc/%d/smaps" % pid):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
        if m:
            cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip(), ""]
            out.append(cur)
        elif line.startswith("VmFlags:") and cur is not None:
            cur[3] = line[8:].strip()
    return out


def live(pid, path):
    want = secrets(path)
    found = {}
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for lo, hi, name, flags in mappings(pid):
            if "rd" not in flags.split() or name in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue  # guard pages, device mappings
            for i, s in enumerate(want):
                if data.find(s) >= 0:
                    found.setdefault(i, []).append((lo, hi, name, flags))
    bad = 0
    for i, where in sorted(found.items()):
        for lo, hi, name, flags in where:
            dd = "dd" in flags.split()
            bad += 0 if dd else 1
            print("   secret %d at %x-%x %s [%s]%s" % (i, lo, hi, name or "anon",
                  "dd" if dd else "NOT dd", "" if dd else ": " + flags))
    print("   %d of %d secrets found in memory, %d in dumpable mappings"
          % (len(found), len(want), bad))
    if not found:
        print("   no secret found at all: the scan proves nothing")
        return 1
    return 1 if bad else 0


def core(path, spath, markers):
    data = open(path, "rb").read()
    rc = 0
    for i, s in enumerate(secrets(spath)):
        for form, b in (("raw", s), ("hex", s.hex().encode()), ("HEX", s.hex().upper().encode())):
            if data.find(b) >= 0:
                print("   secret %d (%s) IS in the core" % (i, form))
                rc = 1
    for m in markers:
        if data.find(m.encode()) < 0:
            print("   marker %r is NOT in the core (the core is not a real image?)" % m)
            rc = 1
        else:
            print("   marker %r found in the core" % m)
    return rc


if __name__ == "__main__":
    if sys.argv[1] == "live":
        sys.exit(live(int(sys.argv[2]), sys.argv[3]))
    sys.exit(core(sys.argv[2], sys.argv[3], sys.argv[4:]))
