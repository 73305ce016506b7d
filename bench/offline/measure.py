#!/usr/bin/env python3
"""measure.py - the measuring loop of bench/offline/run.sh (run that instead).

measure.py MMTLSD CAPTURE_DIR RUNS OUT_JSON OUT_MD

Interleaves RUNS rounds of
  1. openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3   (the baseline of the same round)
  2. mmtlsd -r capture.pcap --keylog keys.log -l DIR -q        (decrypting everything)
  3. mmtlsd -r capture.pcap -l DIR -q                          (no keys: reassembly + parsing)
  4. tshark -r capture.pcap -o tls.keylog_file:keys.log -q \\
         -z 'io,stat,0,COUNT(tls.record.content_type)tls.record.content_type==23'
so that the machine's drift (up to 2x within minutes on a shared VM) hits all four alike;
the ratios are taken within each round, then the median over the rounds is reported.

CPU time is the child's user + system time from wait4() (what /usr/bin/time -v reads, at
microsecond resolution), peak memory its ru_maxrss. Throughput "per core" = bytes * 8 / CPU
seconds. Bytes: the TLS application plaintext the capture holds (what mmtlsd's eve.json counts
as plain_bytes, checked against what the peers sent), and also the capture file's size.
openssl speed's figure is per CPU user second too (its default, without -elapsed).

Every mmtlsd run is checked: all sessions "decrypted" (or "no_keys" without the key log), the
cipher TLS_AES_256_GCM_SHA384, the plaintext byte count exact. tshark's count of decrypted
application-data records is checked against mmtlsd's.

Environment: TSHARK_PACKETS=N runs tshark on the first N packets only (editcap) and scales
its throughput per byte of that prefix; TSHARK_TIMEOUT (default 900 s); OPENSSL_SECONDS (3).
"""
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_timed(argv, timeout=None, stdout=subprocess.DEVNULL):
    """Runs argv; returns (rc, user+sys seconds, wall seconds, maxrss kB, stdout, stderr)."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out if stdout is None else stdout, stderr=err)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            if deadline is not None and time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                status = -1
                break
            time.sleep(0.005)
        wall = time.monotonic() - t0
        p.returncode = 0  # reaped by wait4 ourselves; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        rc = os.waitstatus_to_exitcode(status) if status != -1 else -9
        return (rc, ru.ru_utime + ru.ru_stime, wall, ru.ru_maxrss, out.read().decode(),
                err.read().decode(), ru.ru_utime, ru.ru_stime)


def gbps(nbytes, secs):
    return nbytes * 8 / secs / 1e9


def openssl_speed(seconds):
    argv = ["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384", "-seconds",
            str(seconds)]
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    m = re.search(r"^AES-256-GCM\s+([0-9.]+)k\s*$", p.stdout, re.M)
    if not m:
        raise RuntimeError("cannot parse openssl speed output:\n" + p.stdout)
    kbs = float(m.group(1))  # 1000s of bytes per CPU user second, 16384-byte blocks
    return {"kB_per_s": kbs, "gbps": kbs * 1000 * 8 / 1e9}


def evecheck(eve, nokeys, sessions, plain):
    argv = [sys.executable, os.path.join(HERE, "evecheck.py"), eve, str(sessions), str(plain)]
    if nokeys:
        argv.append("--nokeys")
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("mmtlsd output check failed: " + p.stderr + p.stdout)
    return json.loads(p.stdout)


def mmtlsd_run(mmtlsd, cap, keys, meta, plain_bytes, cap_bytes, extra=()):
    d = tempfile.mkdtemp(prefix="mmtls-bench-eve.")
    try:
        argv = [mmtlsd, "-r", cap, "-l", d, "-q"] + list(extra)
        if keys:
            argv[3:3] = ["--keylog", keys]
        rc, cpu, wall, rss, _o, err, ut, st = run_timed(argv)
        if rc != 0:
            raise RuntimeError("mmtlsd failed (%d): %s" % (rc, err))
        chk = evecheck(os.path.join(d, "eve.json"), keys is None, meta["connections"],
                       meta["plain_bytes_toclient"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return {"cpu_s": round(cpu, 4), "user_s": round(ut, 4), "sys_s": round(st, 4),
            "wall_s": round(wall, 4), "maxrss_kB": rss,
            "gbps_plain": gbps(plain_bytes, cpu), "gbps_capture": gbps(cap_bytes, cpu),
            "sessions": chk["sessions"], "key_status": chk["key_status"],
            "plain_bytes": chk["plain_bytes_toserver"] + chk["plain_bytes_toclient"],
            "app_records": chk.get("app_records")}


def tshark_run(cap, keys, timeout):
    argv = ["tshark", "-r", cap, "-o", "tls.keylog_file:" + keys, "-q", "-z",
            "io,stat,0,COUNT(tls.record.content_type)tls.record.content_type==23"]
    rc, cpu, wall, rss, out, err, ut, st = run_timed(argv, timeout=timeout, stdout=None)
    if rc != 0:
        raise RuntimeError("tshark failed or timed out (rc %d): %s" % (rc, err[-2000:]))
    m = re.search(r"<>\s*[0-9.]+\s*\|\s*([0-9]+)\s*\|", out)
    if not m:
        raise RuntimeError("cannot parse tshark io,stat output:\n" + out)
    return {"cpu_s": round(cpu, 4), "user_s": round(ut, 4), "sys_s": round(st, 4),
            "wall_s": round(wall, 4), "maxrss_kB": rss, "decrypted_app_records": int(m.group(1))}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def med(xs):
    return statistics.median(xs)


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    mmtlsd, capdir, runs, out_json, out_md = argv[1], argv[2], int(argv[3]), argv[4], argv[5]
    cap = os.path.join(capdir, "capture.pcap")
    keys = os.path.join(capdir, "keys.log")
    with open(os.path.join(capdir, "meta.json")) as f:
        meta = json.load(f)
    cap_bytes = os.path.getsize(cap)
    ossl_secs = int(os.environ.get("OPENSSL_SECONDS", "3"))
    ts_timeout = float(os.environ.get("TSHARK_TIMEOUT", "900"))
    ts_packets = int(os.environ.get("TSHARK_PACKETS", "0"))

    # The plaintext the capture holds: one untimed decrypting run, checked against the peers.
    first = mmtlsd_run(mmtlsd, cap, keys, meta, 1, cap_bytes)
    plain_bytes = first["plain_bytes"]
    app_records = first["app_records"]
    ts_cap, ts_bytes, ts_plain = cap, cap_bytes, plain_bytes
    tmpdir = None
    if ts_packets > 0:
        tmpdir = tempfile.mkdtemp(prefix="mmtls-bench-tshark.", dir=capdir)
        ts_cap = os.path.join(tmpdir, "prefix.pcap")
        subprocess.run(["editcap", "-r", cap, ts_cap, "1-%d" % ts_packets], check=True)
        ts_bytes = os.path.getsize(ts_cap)
        # Plaintext in the prefix, estimated pro rata of the file's bytes.
        ts_plain = plain_bytes * ts_bytes / cap_bytes

    rounds = []
    try:
        for r in range(runs):
            rd = {"round": r + 1, "started": datetime.datetime.now().isoformat(timespec="seconds"),
                  "loadavg": os.getloadavg()[0]}
            rd["openssl"] = openssl_speed(ossl_secs)
            rd["mmtlsd_keys"] = mmtlsd_run(mmtlsd, cap, keys, meta, plain_bytes, cap_bytes)
            rd["mmtlsd_nokeys"] = mmtlsd_run(mmtlsd, cap, None, meta, plain_bytes, cap_bytes)
            # The same decryption without the retransmission comparison (--reasm-keep 0): the
            # cost of keeping every delivered byte until it is acknowledged.
            rd["mmtlsd_keys_nokeep"] = mmtlsd_run(mmtlsd, cap, keys, meta, plain_bytes, cap_bytes,
                                                  ["--reasm-keep", "0"])
            t = tshark_run(ts_cap, keys, ts_timeout)
            t["gbps_plain"] = gbps(ts_plain, t["cpu_s"])
            t["gbps_capture"] = gbps(ts_bytes, t["cpu_s"])
            if ts_packets == 0 and t["decrypted_app_records"] < app_records:
                raise RuntimeError("tshark decrypted %d application records, mmtlsd %d" %
                                   (t["decrypted_app_records"], app_records))
            rd["tshark"] = t
            o = rd["openssl"]["gbps"]
            k, n = rd["mmtlsd_keys"]["gbps_plain"], rd["mmtlsd_nokeys"]["gbps_plain"]
            rd["ratio_keys_openssl"] = k / o
            rd["ratio_nokeys_openssl"] = n / o
            rd["ratio_keys_nokeep_openssl"] = rd["mmtlsd_keys_nokeep"]["gbps_plain"] / o
            rd["ratio_keys_tshark"] = k / t["gbps_plain"]
            rounds.append(rd)
            print("round %d: openssl %.2f, mmtlsd keys %.2f (keep 0: %.2f), no keys %.2f, "
                  "tshark %.3f Gbit/s; keys/openssl %.3f (keep 0: %.3f), keys/tshark %.1f "
                  "(load %.1f)" %
                  (r + 1, o, k, rd["mmtlsd_keys_nokeep"]["gbps_plain"], n, t["gbps_plain"],
                   rd["ratio_keys_openssl"], rd["ratio_keys_nokeep_openssl"],
                   rd["ratio_keys_tshark"], rd["loadavg"]), file=sys.stderr, flush=True)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def mf(path):
        vals = []
        for rd in rounds:
            v = rd
            for p in path.split("."):
                v = v[p]
            vals.append(v)
        return med(vals)

    medians = {
        "openssl_gbps": mf("openssl.gbps"),
        "mmtlsd_keys_gbps": mf("mmtlsd_keys.gbps_plain"),
        "mmtlsd_keys_gbps_capture": mf("mmtlsd_keys.gbps_capture"),
        "mmtlsd_nokeys_gbps": mf("mmtlsd_nokeys.gbps_plain"),
        "mmtlsd_nokeys_gbps_capture": mf("mmtlsd_nokeys.gbps_capture"),
        "tshark_gbps": mf("tshark.gbps_plain"),
        "tshark_gbps_capture": mf("tshark.gbps_capture"),
        "mmtlsd_keys_cpu_s": mf("mmtlsd_keys.cpu_s"),
        "mmtlsd_keys_wall_s": mf("mmtlsd_keys.wall_s"),
        "mmtlsd_nokeys_cpu_s": mf("mmtlsd_nokeys.cpu_s"),
        "mmtlsd_nokeys_wall_s": mf("mmtlsd_nokeys.wall_s"),
        "tshark_cpu_s": mf("tshark.cpu_s"),
        "tshark_wall_s": mf("tshark.wall_s"),
        "mmtlsd_keys_maxrss_kB": max(rd["mmtlsd_keys"]["maxrss_kB"] for rd in rounds),
        "mmtlsd_nokeys_maxrss_kB": max(rd["mmtlsd_nokeys"]["maxrss_kB"] for rd in rounds),
        "tshark_maxrss_kB": max(rd["tshark"]["maxrss_kB"] for rd in rounds),
        "ratio_keys_openssl": mf("ratio_keys_openssl"),
        "mmtlsd_keys_nokeep_gbps": mf("mmtlsd_keys_nokeep.gbps_plain"),
        "ratio_keys_nokeep_openssl": mf("ratio_keys_nokeep_openssl"),
        "ratio_nokeys_openssl": mf("ratio_nokeys_openssl"),
        "ratio_keys_tshark": mf("ratio_keys_tshark"),
    }
    targets = {"keys_openssl_min": 0.6, "keys_tshark_min": 20.0,
               "keys_openssl_met": medians["ratio_keys_openssl"] >= 0.6,
               "keys_tshark_met": medians["ratio_keys_tshark"] >= 20.0}
    res = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "openssl": subprocess.run(["openssl", "version"], capture_output=True,
                                              text=True).stdout.strip(),
                    "tshark": subprocess.run(["tshark", "--version"], capture_output=True,
                                             text=True).stdout.splitlines()[0]},
        "capture": dict(meta, file=cap, file_bytes=cap_bytes, plain_bytes=plain_bytes,
                        app_records=app_records),
        "tshark_input": {"packets": ts_packets or meta["packets"], "file_bytes": ts_bytes,
                         "plain_bytes_est": ts_plain, "prefix": ts_packets > 0},
        "commands": {
            "openssl": "openssl speed -evp aes-256-gcm -bytes 16384 -seconds %d" % ossl_secs,
            "mmtlsd_keys": "mmtlsd -r CAP --keylog KEYS -l TMP -q",
            "mmtlsd_nokeys": "mmtlsd -r CAP -l TMP -q",
            "tshark": "tshark -r CAP -o tls.keylog_file:KEYS -q -z "
                      "'io,stat,0,COUNT(tls.record.content_type)tls.record.content_type==23'"},
        "runs": runs, "rounds": rounds, "medians": medians, "targets": targets,
    }
    with open(out_json, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")

    m = medians
    lines = [
        "| measure (median of %d interleaved rounds) | Gbit/s per core | ratio |" % runs,
        "| --- | ---: | ---: |",
        "| openssl speed -evp aes-256-gcm, 16 KB blocks | %.2f | 1 |" % m["openssl_gbps"],
        "| mmtlsd -r, decrypting everything | %.2f | %.3f of openssl (target >= 0.6: %s) |" % (
            m["mmtlsd_keys_gbps"], m["ratio_keys_openssl"],
            "met" if targets["keys_openssl_met"] else "NOT met"),
        "| mmtlsd -r, no keys (reassembly + parsing) | %.2f | %.3f of openssl |" % (
            m["mmtlsd_nokeys_gbps"], m["ratio_nokeys_openssl"]),
        "| tshark, decrypting every record%s | %.3f | mmtlsd = %.1fx tshark (target >= 20: %s) |"
        % (" (first %d packets)" % ts_packets if ts_packets else "", m["tshark_gbps"],
           m["ratio_keys_tshark"], "met" if targets["keys_tshark_met"] else "NOT met"),
        "",
        "| other | mmtlsd keys | mmtlsd no keys | tshark |",
        "| --- | ---: | ---: | ---: |",
        "| CPU seconds (median) | %.3f | %.3f | %.2f |" % (
            m["mmtlsd_keys_cpu_s"], m["mmtlsd_nokeys_cpu_s"], m["tshark_cpu_s"]),
        "| wall seconds (median) | %.3f | %.3f | %.2f |" % (
            m["mmtlsd_keys_wall_s"], m["mmtlsd_nokeys_wall_s"], m["tshark_wall_s"]),
        "| Gbit/s of capture file per CPU second | %.2f | %.2f | %.3f |" % (
            m["mmtlsd_keys_gbps_capture"], m["mmtlsd_nokeys_gbps_capture"],
            m["tshark_gbps_capture"]),
        "| peak RSS (max over rounds) | %.1f MB | %.1f MB | %.1f MB |" % (
            m["mmtlsd_keys_maxrss_kB"] / 1024, m["mmtlsd_nokeys_maxrss_kB"] / 1024,
            m["tshark_maxrss_kB"] / 1024),
        "",
        "Capture: %.1f MB file, %d packets, %d TLS 1.3 connections, %.1f MB of plaintext in "
        "%d application records (TLS_AES_256_GCM_SHA384)." % (
            cap_bytes / 1e6, meta["packets"], meta["connections"], plain_bytes / 1e6,
            app_records or 0),
        "",
        "| round | load | openssl | mmtlsd keys | mmtlsd no keys | tshark | keys/openssl |"
        " keys/tshark |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rd in rounds:
        lines.append("| %d | %.1f | %.2f | %.2f | %.2f | %.3f | %.3f | %.1f |" % (
            rd["round"], rd["loadavg"], rd["openssl"]["gbps"], rd["mmtlsd_keys"]["gbps_plain"],
            rd["mmtlsd_nokeys"]["gbps_plain"], rd["tshark"]["gbps_plain"],
            rd["ratio_keys_openssl"], rd["ratio_keys_tshark"]))
    md = "\n".join(lines) + "\n"
    with open(out_md, "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
