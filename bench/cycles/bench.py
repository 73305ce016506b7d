#!/usr/bin/env python3
"""Cycles per packet and per byte (issue 8): called by bench/cycles/run.sh, which builds the
tools, makes the captures and the testbed.  See docs/BENCHMARKS.md, "Cycles per packet and per
byte (issue 8)", for the method; in short:

Every round (ROUNDS, default 3; the order of the middles rotates) measures, side by side:
  offline   openssl speed -evp (aes-256-gcm, aes-128-gcm, chacha20-poly1305, 16 KB blocks),
            evp_open (the same ciphers through EVP decryption, per-record nonce set-up and tag
            check), mmtlsd -r on the big capture: with keys (defaults), with keys "lean"
            (--reasm-keep 0, eve to /dev/null, --no-stats) and without keys;
  fwd       a bounded plain-HTTP download (curl of FWD_MB / FWD_MB_B MiB from nginx, sendfile)
            through each forwarding middle, plus the same download over a direct veth pair (no middle);
            group A at the veth defaults (TSO/GSO): direct, bridge (Linux br0), bare-afp
            (mmtls-bridge AF_PACKET, TPACKET_V2 frame rings as mmtlsd's default), mmtlsd-afp,
            mmtlsd-fast; group B with tx checksumming off at the end hosts (what AF_XDP copy
            mode and DPDK's net_af_packet need; no TSO, MTU-sized frames): direct, bridge,
            bare-xdp, mmtlsd-xdp (both --xdp-mode copy), bare-dpdk, mmtlsd-dpdk;
  attrib    group A again under `perf record -a -g`: the middle's processes plus the kernel
            samples under its receive hook (see attrib_run);
  tls64k    h2load, 8 persistent TLS connections fetching 1 MB objects: direct, bridge, mmtlsd
            AF_PACKET and mmtlsd --io fast, both --inspect-depth 65536 (keys from the shim);
  decrypt   per back end (DEC_KINDS: mmtlsd AF_PACKET, --io fast, AF_XDP, DPDK), h2load 8
            connections of 1 MB objects inspected to 64 KB and decrypted whole, each under perf
            (decrypt_run): the engine's cost per byte, its difference per decrypted byte, and
            the AEAD's, against openssl speed aes-256-gcm in the same round;
  scale     h2load, SCALE_CONNS connections, 1 MB objects, mmtlsd AF_PACKET decrypting
            everything with --workers 1 and 2 (nothing pinned) and the bridge as reference.
After the rounds: perf profiles (inline decrypt-all under load, offline decrypt) and callgrind
instruction counts (mmtlsd -r on the small capture, evp_open).

CPU accounting: the machine runs other jobs (a SCHED_IDLE fuzzer soaks every idle cycle), so
machine-wide busy time is useless.  We sum the CPU time (schedstat, ns) of the benchmark's own
processes: client (wait4 rusage), server nginx, the middle's threads, ksoftirqd/*, plus the
system time of two nice-19 "soakers" (one per CPU, pure user-space loops) that take the idle
time away from the fuzzer, so that softirq work landing on an otherwise idle CPU (RPS IPIs) is
charged to a process we watch.  A middle's cost is that total minus the direct link's total in
the same round and group, per byte received by the client and per frame sent by the end hosts.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
B = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build-cycles"))
MMTLSD = os.path.join(B, "tools/mmtlsd/mmtlsd")
BRIDGE = os.path.join(B, "tools/mmtls-bridge/mmtls-bridge")
SHIM = os.path.join(B, "lib/keyshare/libmmtls-preload.so")
EVP = os.environ.get("EVP_OPEN", os.path.join(B, "evp_open"))
P = os.environ.get("PREFIX", "b8")
NS_C, NS_M, NS_S = P + "-client", P + "-mbox", P + "-server"
W = os.environ["WORK"]  # work directory (pki, eve, perf data)
SHM = os.environ["SHMDIR"]  # objects served (tmpfs)
CAP_BIG = os.environ["CAP_BIG"]
CAP_SMALL = os.environ["CAP_SMALL"]
OUT = os.environ["OUT"]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
FWD_MB = int(os.environ.get("FWD_MB", "2048"))  # group A (GSO frames)
FWD_MB_B = int(os.environ.get("FWD_MB_B", "512"))  # group B (MTU frames: slower)
TLS_SECS = float(os.environ.get("TLS_SECS", "4"))
SCALE_CONNS = int(os.environ.get("SCALE_CONNS", "32"))
SCALE_FAST = int(os.environ.get("SCALE_FAST", "1"))  # also --io fast with 1 and 2 workers
PARTS = os.environ.get("PARTS",
                       "offline fwd attrib tls64k decrypt scale profile callgrind").split()
TLS_KINDS = os.environ.get("TLS_KINDS", "").split()  # middles of tls64k/tlsattrib (default: all)
# back ends of the decrypt part
DEC_KINDS = os.environ.get("DEC_KINDS", "mmtlsd-afp mmtlsd-fast mmtlsd-xdp mmtlsd-dpdk").split()
ATTRIB_MB = int(os.environ.get("ATTRIB_MB", "1024"))
OPENSSL_SECS = int(os.environ.get("OPENSSL_SECS", "1"))
SERVER, DIRECT_S = "198.18.4.2", "198.18.7.2"
HZ = os.sysconf("SC_CLK_TCK")
CIPHERS = ["aes-256-gcm", "aes-128-gcm", "chacha20-poly1305"]


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, **kw)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns] + list(args)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- CPU accounting


def task_ns(pids):
    """sum_exec_runtime (ns) of every thread of the given processes"""
    t = 0
    for pid in pids:
        for f in glob.glob("/proc/%d/task/*/schedstat" % pid):
            try:
                with open(f) as fh:
                    t += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return t


def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def stime_ticks(pids):
    t = 0
    for pid in pids:
        try:
            t += int(stat_fields(pid)[12])
        except (OSError, ValueError, IndexError):
            pass
    return t


def children_pids(pid):
    out = [pid]
    try:
        for f in glob.glob("/proc/%d/task/*/children" % pid):
            with open(f) as fh:
                for c in fh.read().split():
                    out += children_pids(int(c))
    except OSError:
        pass
    return out


def ksoftirqd_pids():
    r = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().startswith("ksoftirqd/"):
                        r.append(int(d))
            except OSError:
                pass
    return r


def proc_stat():
    """per-CPU softirq and busy jiffies"""
    r = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                v = line.split()
                n = [int(x) for x in v[1:9]]
                r[v[0] + "_si"] = n[6]
                r[v[0] + "_busy"] = n[0] + n[1] + n[2] + n[5] + n[6] + n[7]
    return r


class Soakers:
    """One nice-19 busy loop per CPU: takes idle time from the SCHED_IDLE fuzzer so that softirq
    work that lands on an otherwise idle CPU is charged to a process we watch (its system
    time; a pure user-space loop has none of its own)."""

    def __init__(self):
        self.procs = []

    def start(self):
        for cpu in range(os.cpu_count()):
            self.procs.append(subprocess.Popen(
                ["nice", "-n", "19", "taskset", "-c", str(cpu), "/usr/bin/python3", "-c",
                 "while True: pass"]))

    def stime(self):
        return stime_ticks([p.pid for p in self.procs])

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []


SOAK = Soakers()


def link_stats(ns, dev):
    r = sh(["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True, text=True)
    s = json.loads(r.stdout)[0]["stats64"]
    return {"rx_bytes": s["rx"]["bytes"], "rx_packets": s["rx"]["packets"],
            "tx_bytes": s["tx"]["bytes"], "tx_packets": s["tx"]["packets"]}


def ends(direct):
    """(client device, server device) of the path in use"""
    return ("d0", "d0") if direct else ("veth0", "veth0")


class Sample:
    def __init__(self, mid, server_pids, direct):
        self.mid, self.server_pids, self.direct = mid, server_pids, direct
        self.ksi = ksoftirqd_pids()

    def take(self):
        cd, sd = ends(self.direct)
        return {"t": time.monotonic(), "mid_ns": task_ns(self.mid.pids()),
                "srv_ns": task_ns(self.server_pids), "ksi_ns": task_ns(self.ksi),
                "soak_st": SOAK.stime(), "stat": proc_stat(),
                "c": link_stats(NS_C, cd), "s": link_stats(NS_S, sd)}


def delta(a, b, client_s):
    mid = (b["mid_ns"] - a["mid_ns"]) / 1e9
    srv = (b["srv_ns"] - a["srv_ns"]) / 1e9
    ksi = (b["ksi_ns"] - a["ksi_ns"]) / 1e9
    soak = (b["soak_st"] - a["soak_st"]) / HZ
    return {"wall": b["t"] - a["t"], "middle_proc": mid, "server_proc": srv,
            "client_proc": client_s, "ksoftirqd": ksi, "soak_sys": soak,
            "total": mid + srv + client_s + ksi + soak,
            "softirq_machine": (b["stat"]["cpu_si"] - a["stat"]["cpu_si"]) / HZ,
            "rx_bytes": b["c"]["rx_bytes"] - a["c"]["rx_bytes"],
            "frames_in": (b["c"]["tx_packets"] - a["c"]["tx_packets"]) +
                         (b["s"]["tx_packets"] - a["s"]["tx_packets"]),
            "bytes_in": (b["c"]["tx_bytes"] - a["c"]["tx_bytes"]) +
                        (b["s"]["tx_bytes"] - a["s"]["tx_bytes"]),
            "loadavg": os.getloadavg()[0]}


def run_child(cmd, env=None, timeout=120):
    """run cmd, return (rc, stdout, CPU seconds of the child (wait4 rusage, µs resolution))"""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    out = b""
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    out = p.stdout.read().decode(errors="replace")
    err = p.stderr.read().decode(errors="replace")
    return p.returncode, out, err, ru.ru_utime + ru.ru_stime, ru


# ---------------------------------------------------------------- servers and middles


def nginx_conf():
    d = os.path.join(W, "nginx")
    os.makedirs(d, exist_ok=True)
    c = """
daemon off; error_log {d}/error.log; worker_processes 1; worker_rlimit_nofile 16384;
pid {d}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off; sendfile on; tcp_nopush on;
    client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
    uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
    ssl_protocols TLSv1.3; ssl_session_tickets off; ssl_session_cache off;
    keepalive_requests 100000000; keepalive_timeout 120;
    server {{ listen 8080 backlog=4096; root {shm}; }}
    server {{
        listen 443 ssl backlog=4096; server_name server.test; root {shm};
        ssl_certificate {w}/pki/rsa.crt; ssl_certificate_key {w}/pki/rsa.key;
    }}
}}
""".format(d=d, w=W, shm=SHM)
    p = os.path.join(W, "nginx.conf")
    with open(p, "w") as f:
        f.write(c)
    return p, d


def start_nginx():
    conf, d = nginx_conf()
    p = subprocess.Popen(["taskset", "-c", "0"] + in_ns(NS_S, "nginx", "-c", conf, "-p", d),
                         stderr=open(os.path.join(d, "stderr"), "w"))
    for _ in range(50):
        time.sleep(0.1)
        if len(children_pids(p.pid)) >= 2 and os.path.exists(os.path.join(d, "nginx.pid")):
            break
    return p


def stop(p, sig=signal.SIGINT):
    if p is None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def set_tx(on):
    """tx checksumming (and with it TSO) of the end hosts' devices (AF_XDP copy mode needs it
    off: a CHECKSUM_PARTIAL frame would leave an AF_XDP port with an unfinished checksum)"""
    v = "on" if on else "off"
    for ns in (NS_C, NS_S):
        for dev in ("veth0", "d0"):
            sh(in_ns(ns, "ethtool", "-K", dev, "tx", v) + (["tso", "on"] if on else []),
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


# experiment: rps_cpus of the end hosts' veth0 (END_RPS=1: their receive work on CPU 0, where
# they run, whoever sent the frame; without it a frame the middle sends from CPU 1 is received
# there, in the middle's process, as veth delivers inside the sender's transmit)
END_RPS = os.environ.get("END_RPS", "")


def set_rps(mask, ns=NS_M, devs="[cs]0"):
    """rps_cpus of every RX queue of devs (a glob) in ns; by default the middle's ports c0, s0"""
    sh(in_ns(ns, "sh", "-c", "for q in /sys/class/net/" + devs + "/queues/rx-*/rps_cpus; do "
             "echo %s > $q; done" % mask))


class Middle:
    """kind: direct | bridge | bridge-rps (with RPS on its ports, as --io fast sets it) |
    bridge-rps0 (RPS on CPU 0 only) | bare-afp | bare-xdp | bare-dpdk | mmtlsd-afp | mmtlsd-xdp |
    mmtlsd-dpdk | mmtlsd-fast | mmtlsd-fastw (--depth-count wire) | mmtlsd-fastw-rps0 (and
    --fast-rps 0),
    with options: depth (bytes, 0 = decrypt all), workers, cpus (taskset list or None)"""

    def __init__(self, kind, tag, depth=0, workers=1, cpus="1"):
        self.kind, self.tag, self.depth, self.workers, self.cpus = kind, tag, depth, workers, cpus
        self.proc, self.evedir, self.errf = None, None, None
        self.quiet = True  # mmtlsd -q: no summary on stderr

    @property
    def direct(self):
        return self.kind == "direct"

    def target(self):
        return DIRECT_S if self.direct else SERVER

    def shim(self):
        return self.kind.startswith("mmtlsd")

    def pin(self):
        return ["taskset", "-c", self.cpus] if self.cpus else []

    def start(self):
        k = self.kind
        self.errf = os.path.join(W, "mid-%s.err" % self.tag)
        if k == "direct":
            return
        if k in ("bridge", "bridge-rps", "bridge-rps0"):
            if k == "bridge-rps":  # the RPS that --io fast sets (src/io/io_fast.c), for reference
                set_rps("3")
            if k == "bridge-rps0":  # the RPS of mmtlsd-fastw-rps0: every frame to CPU 0
                set_rps("1")
            sh(["ip", "-n", NS_M, "link", "add", "br0", "type", "bridge"])
            sh(["ip", "-n", NS_M, "link", "set", "c0", "master", "br0"])
            sh(["ip", "-n", NS_M, "link", "set", "s0", "master", "br0"])
            sh(["ip", "-n", NS_M, "link", "set", "br0", "up"])
            time.sleep(0.2)
            return
        if k.endswith("dpdk"):
            # net_af_packet reads what the veth hands it: no GRO super-frames (as test_inline)
            for dev in ("c0", "s0"):
                sh(in_ns(NS_M, "ethtool", "-K", dev, "gro", "off"), stdout=subprocess.DEVNULL,
                   check=False)
        if k.startswith("bare"):
            args = [BRIDGE, "c0", "s0"]
            if k == "bare-afp":
                args += ["--frame-ring"]  # TPACKET_V2 frames, as mmtlsd's default --afp-ring
            if k == "bare-xdp":
                args += ["--io", "xdp", "--xdp-mode", "copy"]
            if k == "bare-dpdk":
                args += ["--io", "dpdk"]
            self.proc = subprocess.Popen(self.pin() + in_ns(NS_M, *args),
                                         stdout=subprocess.DEVNULL, stderr=open(self.errf, "w"))
            for _ in range(50):
                time.sleep(0.1)
                if "<->" in open(self.errf).read() or self.proc.poll() is not None:
                    break
            time.sleep(0.2)
        else:
            self.evedir = os.path.join(W, "eve", self.tag)
            os.makedirs(self.evedir, exist_ok=True)
            args = [MMTLSD, "-i", "c0:s0", "--key-listen", "198.18.6.2:4433",
                    "--cert", W + "/pki/mbox.crt", "--key", W + "/pki/mbox.key",
                    "--client-ca", W + "/pki/ca.crt", "-l", self.evedir] + (
                        ["-q"] if self.quiet else ["-v"])
            if k == "mmtlsd-xdp":
                args += ["--io", "xdp", "--xdp-mode", "copy"]
            elif k == "mmtlsd-dpdk":
                args += ["--io", "dpdk"]
            elif k in ("mmtlsd-fast", "mmtlsd-fastw", "mmtlsd-fastw-rps0"):
                args += ["--io", "fast"]
            if k in ("mmtlsd-fastw", "mmtlsd-fastw-rps0"):
                args += ["--depth-count", "wire"]  # the kernel applies the depth itself
            if k == "mmtlsd-fastw-rps0":
                # the ports' RPS on CPU 0 (the end hosts'), none on the middle's CPU 1
                args += ["--fast-rps", "0"]
            if self.depth:
                args += ["--inspect-depth", str(self.depth)]
            if self.workers != 1:
                args += ["--workers", str(self.workers)]
            self.proc = subprocess.Popen(self.pin() + in_ns(NS_M, *args),
                                         stderr=open(self.errf, "w"))
            for _ in range(80):
                time.sleep(0.1)
                r = subprocess.run(in_ns(NS_M, "ss", "-ltnH", "sport", "= :4433"),
                                   capture_output=True, text=True)
                if "4433" in r.stdout or self.proc.poll() is not None:
                    break
            time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("%s did not start: %s" % (k, open(self.errf).read()[-800:]))

    def pids(self):
        if self.proc is None:
            return []
        self.last_pids = children_pids(self.proc.pid)
        return self.last_pids

    def stop(self):
        if self.kind in ("bridge", "bridge-rps", "bridge-rps0"):
            sh(["ip", "-n", NS_M, "link", "del", "br0"])
            if self.kind in ("bridge-rps", "bridge-rps0"):
                set_rps("0")
        elif self.proc is not None:
            stop(self.proc)
        self.proc = None


def eve_summary(evedir):
    st, status, ciphers = None, {}, {}
    try:
        with open(os.path.join(evedir, "eve.json")) as f:
            for line in f:
                e = json.loads(line)
                if e.get("event_type") == "stats":
                    st = e["stats"]
                elif e.get("event_type") == "tls":
                    k = e["tls"].get("key_status", "?")
                    status[k] = status.get(k, 0) + 1
                    c = e["tls"].get("cipher_suite", "?")
                    ciphers[c] = ciphers.get(c, 0) + 1
    except OSError:
        pass
    return {"key_status": status, "ciphers": ciphers, "has_stats": st is not None}


# ---------------------------------------------------------------- workloads


def fwd_run(mid, server_pids, mb):
    """one bounded plain-HTTP download of mb MiB (a range of fwd.bin) through mid"""
    url = "http://%s:8080/fwd.bin" % mid.target()
    # warm-up (ARP, the middle's first frames), not measured
    run_child(["taskset", "-c", "0"] + in_ns(NS_C, "curl", "-s", "-o", "/dev/null",
                                             "--max-time", "10", "-r", "0-1048575", url),
              timeout=15)
    s = Sample(mid, server_pids, mid.direct)
    a = s.take()
    rc, out, err, cpu, _ = run_child(
        ["taskset", "-c", "0"] + in_ns(NS_C, "curl", "-s", "-o", "/dev/null", "--max-time", "30" if mb < FWD_MB else "60",
                                       "-r", "0-%d" % ((mb << 20) - 1),
                                       "-w", "%{size_download} %{time_total}", url), timeout=70)
    b = s.take()
    rec = delta(a, b, cpu)
    try:
        got, secs = out.split()
        rec["size"], rec["curl_secs"] = int(got), float(secs)
    except ValueError:
        rec["size"], rec["curl_secs"] = 0, 0.0
    rec["ok"] = rc == 0 and rec["size"] == mb << 20
    if not rec["ok"]:
        rec["err"] = (out + err)[-500:]
    return rec


HOOKS = re.compile(r"\b(br_handle_frame|tpacket_rcv|packet_rcv|sch_handle_ingress|tcx_run|"
                   r"tc_run)\b")
# interrupt and softirq context: the work of whatever frames are pending on the CPU (mostly the
# end hosts' receive paths), run in the context of the task it interrupted or that re-enabled
# bottom halves (a sendmsg's __dev_queue_xmit); charged by call chain, not by task
IRQ = re.compile(r"\b(handle_softirqs|__do_softirq|net_rx_action|asm_sysvec_\w+|"
                 r"asm_common_interrupt)\b")
UNRESOLVED = ("handle_softirqs", "net_rx_action", "__irq_exit_rcu")


def attrib_run(mid, server_pids, mb, run=None):
    """fwd_run (or run()) under `perf record -a -g -e cpu-clock`: the middle's own cost =
    samples of its processes + samples whose kernel call chain passes its receive hook
    (br_handle_frame for the bridge, tpacket_rcv/packet_rcv for AF_PACKET, the TC ingress hook
    for --io fast), wherever they ran (the sender's softirq, ksoftirqd, a foreign task)."""
    data = os.path.join(W, "perf-attrib.data")
    pr = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-e", "cpu-clock", "-F", "999",
                           "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        rec = run() if run is not None else fwd_run(mid, server_pids, mb)
    finally:
        pr.send_signal(signal.SIGINT)
        pr.wait(timeout=60)
    mp = set(mid.pids()) | set(getattr(mid, "last_pids", []))
    r = subprocess.run(["perf", "script", "-i", data, "-F", "pid,period,ip,sym"],
                       capture_output=True, text=True, timeout=300)
    ns = dict.fromkeys(("proc", "hook", "all", "proc_irq", "proc_irq_hook", "irq", "irq_hook",
                        "irq_unres"), 0)
    for blk in r.stdout.split("\n\n"):
        lines = blk.strip("\n").splitlines()
        if len(lines) < 2:
            continue
        head = lines[0].split()
        try:
            pid, period = int(head[0]), int(head[1])
        except (ValueError, IndexError):
            continue
        hook, irq = bool(HOOKS.search(blk)), bool(IRQ.search(blk))
        ns["all"] += period
        if pid in mp:
            ns["proc"] += period
            if irq:
                ns["proc_irq"] += period
                ns["proc_irq_hook"] += period if hook else 0
        elif hook:
            ns["hook"] += period
        if irq:
            ns["irq"] += period
            ns["irq_hook"] += period if hook else 0
            # the sample landed where interrupts were re-enabled: no call chain below
            ns["irq_unres"] += period if lines[1].split()[-1] in UNRESOLVED else 0
    rec.update({"attrib_" + k: v / 1e9 for k, v in ns.items()})
    os.unlink(data)
    return rec


H2_RE = {
    "secs": re.compile(r"finished in ([\d.]+)(ms|s)"),
    "done": re.compile(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed"),
    "bytes": re.compile(r"traffic: .*?\((\d+)\) total"),
}


def h2_run(mid, server_pids, conns, pin_client=True):
    env = dict(os.environ)
    if mid.shim():
        env.update(LD_PRELOAD=SHIM, MMTLS_KEYSERVER="198.18.6.2:4433",
                   MMTLS_CA=W + "/pki/ca.crt", MMTLS_CERT=W + "/pki/client.crt",
                   MMTLS_KEY=W + "/pki/client.key")
    cmd = (["taskset", "-c", "0"] if pin_client else []) + in_ns(
        NS_C, "h2load", "--h1", "-t", "1", "-c", str(conns), "-m", "1",
        "-D", "%dms" % int(TLS_SECS * 1000), "--warm-up-time", "1000ms",
        "--connect-to", "%s:443" % mid.target(), "https://server.test/1m.bin")
    s = Sample(mid, server_pids, mid.direct)
    a = s.take()
    rc, out, err, cpu, _ = run_child(cmd, env=env, timeout=TLS_SECS + 40)
    b = s.take()
    rec = delta(a, b, cpu)
    m = H2_RE["secs"].search(out)
    rec["h2_secs"] = (float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)) if m else None
    m = H2_RE["done"].search(out)
    rec["done"], rec["okreq"], rec["failed"] = [int(x) for x in m.groups()] if m else (0, 0, 0)
    m = H2_RE["bytes"].search(out)
    rec["h2_bytes"] = int(m.group(1)) if m else 0
    rec["ok"] = rc == 0 and rec["okreq"] > 0 and rec["failed"] == 0
    if not rec["ok"]:
        rec["err"] = (out + err)[-800:]
    return rec


PERF_HZ = 1999
PERF_KEEP = os.environ.get("PERF_KEEP", "")  # a directory: keep decrypt's perf data there
ENGINE = "mmtls_engine_packet_inline"  # every back end hands each frame to the engine here


def decrypt_run(mid, server_pids):
    """h2_run with `perf record --call-graph dwarf -p MIDDLE` over a window inside its measured phase: samples
    whose call chain passes the engine's per-frame entry (ENGINE) and no system call (the I/O it
    triggers) nor interrupt (engine_irq: counted apart), those in libcrypto (the AEAD), and all
    of the process's, per byte the server sent in the window.  Independent of polling: a back end that spins (AF_XDP, DPDK) spins outside
    the engine."""
    data = os.path.join(W, "perf-%s.data" % mid.tag)
    win = {}

    def window():
        time.sleep(1.3)  # h2load's warm-up (1 s) and the middle's first sessions
        a = link_stats(NS_S, "veth0")["tx_bytes"]
        t = time.monotonic()
        # dwarf: the Release build keeps no frame pointers (nor do libc and libcrypto)
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(PERF_HZ),
                        "--call-graph", "dwarf", "-o", data, "-p", str(mid.proc.pid), "--", "sleep",
                        str(max(TLS_SECS - 1.0, 1.0))],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        win["secs"] = time.monotonic() - t
        win["bytes"] = link_stats(NS_S, "veth0")["tx_bytes"] - a

    th = threading.Thread(target=window)
    th.start()
    rec = h2_run(mid, server_pids, 8)
    th.join()
    # each sample: its period (ns of task clock) on a line of its own, then its call chain
    n = {"samples": 0, "all": 0, "engine": 0, "engine_irq": 0, "crypto": 0}
    r = subprocess.run(["perf", "script", "-i", data, "-F", "period,ip,sym,dso"],
                       capture_output=True, text=True)
    for smp in r.stdout.split("\n\n"):
        lines = [ln.strip() for ln in smp.strip().splitlines() if ln.strip()]
        if len(lines) < 2 or not lines[0].isdigit():
            continue
        ns = int(lines[0])
        n["samples"] += 1
        n["all"] += ns
        chain = " ".join(lines[1:])
        # an interrupt taken while the engine ran: the kernel's work (with RPS, as the fast path
        # sets it, the softirq of frames the kernel forwards), not the engine's
        irq = bool(IRQ.search(chain))
        if "libcrypto" in lines[1] and not irq:
            n["crypto"] += ns
        if ENGINE in chain and "entry_SYSCALL_64" not in chain:
            n["engine_irq" if irq else "engine"] += ns
    rec["perf_win"] = dict(win, **n)
    if PERF_KEEP:  # for perf report by hand
        os.makedirs(PERF_KEEP, exist_ok=True)
        shutil.move(data, os.path.join(PERF_KEEP, os.path.basename(data)))
    else:
        os.unlink(data)
    return rec


def with_middle(mid, fn):
    mid.start()
    try:
        rec = fn()
    finally:
        mid.stop()
    if mid.evedir:
        rec["eve"] = eve_summary(mid.evedir)
    rec["middle"], rec["tag"] = mid.kind, mid.tag
    return rec


# ---------------------------------------------------------------- offline


def openssl_speed(cipher):
    r = sh(["openssl", "speed", "-evp", cipher, "-bytes", "16384", "-seconds",
            str(OPENSSL_SECS)], capture_output=True, text=True)
    # last line: NAME  1234.56k (1000s of bytes per second of user CPU)
    last = [x for x in r.stdout.splitlines() if x.strip()][-1]
    kb = float(last.split()[-1].rstrip("k"))
    return 1e9 / (kb * 1000)  # ns per byte


def evp_open(cipher, count=20000):
    r = sh([EVP, cipher, "16384", str(count)], capture_output=True, text=True)
    return float(r.stdout.split()[3])  # ns per byte


def meta(capdir):
    with open(os.path.join(capdir, "meta.json")) as f:
        return json.load(f)


def mmtlsd_r(capdir, variant):
    args = [MMTLSD, "-r", os.path.join(capdir, "capture.pcap"), "-q"]
    evedir = os.path.join(W, "off-eve")
    os.makedirs(evedir, exist_ok=True)
    if variant != "nokeys":
        args += ["--keylog", os.path.join(capdir, "keys.log")]
    if variant == "lean":
        args += ["--reasm-keep", "0", "--eve", "/dev/null", "--no-stats"]
    else:
        args += ["-l", evedir]
    rc, out, err, cpu, ru = run_child(args, timeout=120)
    rec = {"variant": variant, "rc": rc, "user": ru.ru_utime, "sys": ru.ru_stime, "cpu": cpu}
    if variant == "keys":
        rec["eve"] = eve_summary(evedir)
        rec["ok"] = rc == 0 and set(rec["eve"]["key_status"]) == {"decrypted"}
    else:
        rec["ok"] = rc == 0
    if os.path.exists(os.path.join(evedir, "eve.json")):
        os.unlink(os.path.join(evedir, "eve.json"))
    return rec


def offline_round():
    plain = meta(CAP_BIG)["plain_bytes_toclient"]
    r = {"plain_bytes": plain, "capture_bytes": meta(CAP_BIG)["capture_bytes"]}
    for c in CIPHERS:
        r["speed_" + c] = openssl_speed(c)
        r["evp_" + c] = evp_open(c)
    for v in ("keys", "lean", "nokeys"):
        rec = mmtlsd_r(CAP_BIG, v)
        rec["user_ns_per_byte"] = rec["user"] * 1e9 / plain
        rec["cpu_ns_per_byte"] = rec["cpu"] * 1e9 / plain
        r["mmtlsd_" + v] = rec
    return r


# ---------------------------------------------------------------- profiles and callgrind


def perf_top(data, outtxt):
    """perf report: share per binary and top self symbols"""
    def rep(*extra):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g",
                            "none", "--percent-limit", "0.02"] + list(extra),
                           capture_output=True, text=True)
        return [ln for ln in r.stdout.splitlines() if re.match(r"^\s+[0-9.]+%", ln)]
    dso = rep("--sort", "dso")
    sym = rep("--sort", "dso,sym")
    with open(outtxt, "w") as f:
        f.write("== share per binary ==\n" + "\n".join(dso) + "\n\n== top symbols (self) ==\n" +
                "\n".join(sym[:60]) + "\n")
    return {"dso": dso, "sym": sym[:400]}


def profile_inline(server_pids, kind, depth, conns, name):
    """perf record -g of one middle's process under h2load (1 MB objects), with its syscall
    counts (perf stat) from a second run: WORK/perf-NAME.txt, WORK/trace-NAME.txt"""
    out = {}
    for what in ("perf", "trace"):
        mid = Middle(kind, "profile-%s-%s" % (name, what), depth=depth, workers=1, cpus="1")
        mid.quiet = False  # its summary (WORK/mid-profile-*.err) has the fast path's counters
        mid.start()
        try:
            data = os.path.join(W, "%s-%s.data" % (what, name))
            if what == "perf":
                cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "--call-graph",
                       os.environ.get("PERF_CG", "fp"), "-o", data]
            else:  # syscall and context-switch counts (perf trace -s loses events here)
                cmd = ["perf", "stat", "-o", os.path.join(W, "trace-%s.txt" % name), "-e",
                       ",".join(["syscalls:sys_enter_" + c for c in
                                 ("sendto", "poll", "ppoll", "bpf", "recvfrom", "recvmsg",
                                  "epoll_wait", "write")] +
                                ["raw_syscalls:sys_enter", "context-switches", "cpu-clock"])]
            pr = subprocess.Popen(cmd + ["-p", str(mid.proc.pid), "--", "sleep",
                                         str(TLS_SECS + 1)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rec = h2_run(mid, server_pids, conns)
            pr.wait(timeout=60)
        finally:
            mid.stop()
        if mid.evedir:
            rec["eve"] = eve_summary(mid.evedir)
        out[what + "_run"] = rec
    out["perf"] = perf_top(os.path.join(W, "perf-%s.data" % name),
                           os.path.join(W, "perf-%s.txt" % name))
    return out


def profiles(server_pids):
    res = {}
    # 1. inline, decrypting everything, under load (h2load 32 connections, 1 MB objects)
    p = profile_inline(server_pids, "mmtlsd-afp", 0, SCALE_CONNS, "inline")
    res["inline_run"], res["inline"] = p["perf_run"], p["perf"]
    # 2. offline decrypt of the big capture
    data = os.path.join(W, "perf-offline.data")
    evedir = os.path.join(W, "off-eve")
    sh(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g", "-o", data, MMTLSD, "-r",
        os.path.join(CAP_BIG, "capture.pcap"), "--keylog", os.path.join(CAP_BIG, "keys.log"),
        "-l", evedir, "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res["offline"] = perf_top(data, os.path.join(W, "perf-offline.txt"))
    return res


def callgrind_ir(args):
    out = os.path.join(W, "cg.out")
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + args,
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if not m:
        raise RuntimeError("callgrind failed: " + r.stderr[-500:])
    return int(m.group(1))


def callgrind():
    plain = meta(CAP_SMALL)["plain_bytes_toclient"]
    cap = os.path.join(CAP_SMALL, "capture.pcap")
    keys = os.path.join(CAP_SMALL, "keys.log")
    lean = ["--reasm-keep", "0", "--eve", "/dev/null", "--no-stats", "-q"]
    r = {"plain_bytes": plain}
    r["ir_keys"] = callgrind_ir([MMTLSD, "-r", cap, "--keylog", keys, "-l", W, "-q"])
    r["ir_lean"] = callgrind_ir([MMTLSD, "-r", cap, "--keylog", keys] + lean)
    r["ir_nokeys"] = callgrind_ir([MMTLSD, "-r", cap] + lean)
    n = 2048  # 32 MiB of 16 KB records
    for c in ("aes-256-gcm", "aes-128-gcm"):
        i0 = callgrind_ir([EVP, c, "16384", "0"])
        i1 = callgrind_ir([EVP, c, "16384", str(n)])
        r["evp_ir_per_byte_" + c] = (i1 - i0) / (16384.0 * n)
    return r


# ---------------------------------------------------------------- main


def rotate(lst, k):
    k %= len(lst)
    return lst[k:] + lst[:k]


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    mhz = 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    for ns in (NS_C, NS_S) if END_RPS else ():
        set_rps(END_RPS, ns, "veth0")
    res = {"config": {"rounds": ROUNDS, "fwd_mb": FWD_MB, "fwd_mb_b": FWD_MB_B,
                      "tls_secs": TLS_SECS, "end_rps": END_RPS,
                      "scale_conns": SCALE_CONNS, "parts": PARTS, "mhz": mhz,
                      "perf_hz": PERF_HZ,
                      "kernel": os.uname().release, "date": time.strftime("%Y-%m-%d %H:%M"),
                      "cap_big": meta(CAP_BIG), "cap_small": meta(CAP_SMALL)},
           "offline": [], "fwd": [], "attrib": [], "tls64k": [], "scale": [], "decrypt": []}

    def save():
        with open(OUT, "w") as f:
            json.dump(res, f, indent=1)

    server = start_nginx()
    server_pids = children_pids(server.pid)
    SOAK.start()
    time.sleep(1)
    t0, s0 = time.monotonic(), SOAK.stime()
    time.sleep(2)
    res["config"]["soak_idle_sys_per_s"] = (SOAK.stime() - s0) / HZ / (time.monotonic() - t0)
    try:
        for rnd in range(1, ROUNDS + 1):
            if "offline" in PARTS:
                o = offline_round()
                o["round"] = rnd
                res["offline"].append(o)
                log("r%d offline: speed aes256 %.3f ns/B, evp %.3f, mmtlsd keys %.3f lean %.3f "
                    "nokeys %.3f (user ns/B)" % (
                        rnd, o["speed_aes-256-gcm"], o["evp_aes-256-gcm"],
                        o["mmtlsd_keys"]["user_ns_per_byte"], o["mmtlsd_lean"]["user_ns_per_byte"],
                        o["mmtlsd_nokeys"]["user_ns_per_byte"]))
                save()
            if "fwd" in PARTS:
                for group, kinds in (("A", ["direct", "bridge", "bare-afp", "mmtlsd-afp",
                                            "mmtlsd-fast"]),
                                     ("B", ["direct", "bridge", "bare-xdp", "mmtlsd-xdp",
                                            "bare-dpdk", "mmtlsd-dpdk"])):
                    set_tx(group == "A")
                    for kind in rotate(kinds, rnd - 1):
                        mid = Middle(kind, "fwd%s-%s-r%d" % (group, kind, rnd))
                        rec = with_middle(mid, lambda: fwd_run(
                            mid, server_pids, FWD_MB if group == "A" else FWD_MB_B))
                        rec.update(round=rnd, group=group)
                        res["fwd"].append(rec)
                        log("r%d fwd%s %-12s %5.2f Gbit/s total %.3f s mid %.3f frames %d %s" % (
                            rnd, group, kind, rec["rx_bytes"] * 8e-9 / max(rec["wall"], 1e-9),
                            rec["total"], rec["middle_proc"], rec["frames_in"],
                            "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                        save()
                set_tx(True)
            if "attrib" in PARTS:
                set_tx(True)
                for kind in rotate(["bridge", "bare-afp", "mmtlsd-afp", "mmtlsd-fast"], rnd - 1):
                    mid = Middle(kind, "attrib-%s-r%d" % (kind, rnd))
                    mid.last_pids = []
                    rec = with_middle(mid, lambda: attrib_run(mid, server_pids, ATTRIB_MB))
                    rec["round"] = rnd
                    res["attrib"].append(rec)
                    log("r%d attrib %-12s proc %.3f s hook %.3f s (of %.3f s sampled) %s" % (
                        rnd, kind, rec["attrib_proc"], rec["attrib_hook"], rec["attrib_all"],
                        "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                    save()
            if "tls64k" in PARTS:
                for kind in rotate(TLS_KINDS or ["direct", "bridge", "mmtlsd-afp", "mmtlsd-fast",
                                                 "mmtlsd-fastw"], rnd - 1):
                    mid = Middle(kind, "tls64k-%s-r%d" % (kind, rnd), depth=65536)
                    rec = with_middle(mid, lambda: h2_run(mid, server_pids, 8))
                    rec["round"] = rnd
                    res["tls64k"].append(rec)
                    log("r%d tls64k %-12s %5.2f Gbit/s total %.3f s mid %.3f %s %s" % (
                        rnd, kind, rec["h2_bytes"] * 8e-9 / (rec["h2_secs"] or 1), rec["total"],
                        rec["middle_proc"], rec.get("eve", {}).get("key_status", ""),
                        "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                    save()
            if "decrypt" in PARTS:
                # decryption per back end: the same TLS load inspected to 64 KB and decrypted
                # whole, side by side, under perf (decrypt_run); the engine's difference is the
                # cost of decrypting the other 15/16 (report.py), against openssl speed in the
                # same round
                res["decrypt_speed"] = res.get("decrypt_speed", []) + [
                    {"round": rnd, "speed_aes-256-gcm": openssl_speed("aes-256-gcm")}]
                pairs = [(k, d) for k in DEC_KINDS for d in (65536, 0)]
                for kind, depth in rotate(pairs, 2 * (rnd - 1)):
                    set_tx(kind not in ("mmtlsd-xdp", "mmtlsd-dpdk"))  # MTU frames for those
                    mid = Middle(kind, "dec-%s-d%d-r%d" % (kind, depth, rnd), depth=depth)
                    rec = with_middle(mid, lambda: decrypt_run(mid, server_pids))
                    rec.update(round=rnd, depth=depth)
                    res["decrypt"].append(rec)
                    pw = rec["perf_win"]
                    log("r%d decrypt %-12s depth %-6d %5.2f Gbit/s mid %.3f s perf: %d samples, "
                        "%.3f s, engine %.3f s (+ interrupts in it %.3f s), libcrypto %.3f s, "
                        "%d bytes %s %s" % (
                        rnd, kind, depth, rec["h2_bytes"] * 8e-9 / (rec["h2_secs"] or 1),
                        rec["middle_proc"], pw["samples"], pw["all"] * 1e-9, pw["engine"] * 1e-9,
                        pw["engine_irq"] * 1e-9,
                        pw["crypto"] * 1e-9,
                        pw.get("bytes", 0), rec.get("eve", {}).get("key_status", ""),
                        "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                    save()
                set_tx(True)
            if "tlsattrib" in PARTS:
                for kind in rotate([k for k in TLS_KINDS if k != "direct"] or
                                   ["bridge", "mmtlsd-afp", "mmtlsd-fast", "mmtlsd-fastw"], rnd - 1):
                    mid = Middle(kind, "tlsattrib-%s-r%d" % (kind, rnd), depth=65536)
                    mid.last_pids = []
                    rec = with_middle(mid, lambda: attrib_run(
                        mid, server_pids, 0, run=lambda: h2_run(mid, server_pids, 8)))
                    rec["round"] = rnd
                    res.setdefault("tlsattrib", []).append(rec)
                    log("r%d tlsattrib %-12s %5.2f Gbit/s proc %.3f s hook %.3f s (of %.3f s "
                        "sampled) %s" % (rnd, kind, rec["h2_bytes"] * 8e-9 / (rec["h2_secs"] or 1),
                                         rec["attrib_proc"], rec["attrib_hook"],
                                         rec["attrib_all"],
                                         "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                    save()
            if "scale" in PARTS:
                for kind, wk in rotate([("bridge", 1), ("mmtlsd-afp", 1), ("mmtlsd-afp", 2)] +
                                       [("mmtlsd-fast", 1), ("mmtlsd-fast", 2)] * SCALE_FAST,
                                       rnd - 1):
                    mid = Middle(kind, "scale-%s-w%d-r%d" % (kind, wk, rnd), depth=0,
                                 workers=wk, cpus=None)
                    rec = with_middle(mid, lambda: h2_run(mid, server_pids, SCALE_CONNS,
                                                          pin_client=False))
                    rec.update(round=rnd, workers=wk)
                    res["scale"].append(rec)
                    log("r%d scale %-12s w%d %5.2f Gbit/s total %.3f s mid %.3f %s %s" % (
                        rnd, kind, wk, rec["h2_bytes"] * 8e-9 / (rec["h2_secs"] or 1),
                        rec["total"], rec["middle_proc"],
                        rec.get("eve", {}).get("key_status", ""),
                        "ok" if rec["ok"] else "FAIL " + rec.get("err", "")))
                    save()
        if "profilefast" in PARTS:  # the kernel fast path with the wire depth count
            res["profilefast"] = profile_inline(server_pids, "mmtlsd-fastw", 65536, 8, "fastw")
            log("profile written: %s/perf-fastw.txt, trace-fastw.txt" % W)
            save()
        if "profile" in PARTS:
            res["profile"] = profiles(server_pids)
            log("profiles written: %s/perf-inline.txt, perf-offline.txt" % W)
            save()
    finally:
        SOAK.stop()
        stop(server, signal.SIGQUIT)
        set_tx(True)
    if "callgrind" in PARTS:
        res["callgrind"] = callgrind()
        log("callgrind: %s" % res["callgrind"])
    save()


if __name__ == "__main__":
    main()
