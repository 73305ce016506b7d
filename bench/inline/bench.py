#!/usr/bin/env python3
"""Inline middlebox benchmark: E2E kernel bridge vs split-TLS nginx vs mmtlsd inline vs bare
AF_PACKET forwarder, on the scripts/testbed.sh namespaces.  Called by bench/inline/run.sh
(which builds and checks the tools); see the docstring of main() and docs/BENCHMARKS.md.

Every measurement is one bounded h2load run (-D SECS, plus a hard timeout).  Around it we sample:
  - /proc/stat per-CPU busy jiffies (user nice system irq softirq steal) for cpu0 and cpu1;
  - the middle's processes (utime+stime, /proc/PID/stat; none for the kernel bridge);
  - the server nginx worker and h2load itself (RUSAGE_CHILDREN delta);
  - the client's veth0 rx bytes (what crossed the middle towards the client).
Client h2load and server nginx are pinned to CPU 0, the middle to CPU 1.
"""
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
B = os.environ.get("MMTLS_BUILDDIR", os.path.join(ROOT, "build-inbench"))
MMTLSD = os.path.join(B, "tools/mmtlsd/mmtlsd")
BRIDGE = os.path.join(B, "tools/mmtls-bridge/mmtls-bridge")
SHIM = os.path.join(B, "lib/keyshare/libmmtls-preload.so")
P = os.environ.get("PREFIX", "mmtls-ib%d" % os.getpid())
NS_C, NS_M, NS_S = P + "-client", P + "-mbox", P + "-server"
W = os.environ["WORK"]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = float(os.environ.get("SECS", "3"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))
EPH_CLIENTS = int(os.environ.get("EPH_CLIENTS", "16"))
EPH_N = int(os.environ.get("EPH_N", "800"))
WARM = float(os.environ.get("WARM", "1"))
EPH = os.environ.get("EPH", "1") != "0"  # EPH=0: persistent runs only
SIZES = os.environ.get("SIZES", "1k 16k 64k 256k 1m 4m").split()
MIDDLES = os.environ.get("MIDDLES", "e2e split mmtls64k mmtlsall bare").split()
DEPTH = int(os.environ.get("DEPTH", "65536"))
RULES = os.environ.get("RULES", os.path.join(ROOT, "..", "shared", "data", "snort3-community-rules",
                                             "snort3-community.rules"))
OUT = os.environ["OUT"]
HZ = os.sysconf("SC_CLK_TCK")
SPLIT_C, SPLIT_S = "198.18.4.3", "198.18.4.4"  # the proxy's addresses on c0 and s0 (split only)
SERVER = "198.18.4.2"


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, **kw)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns] + list(args)


def cpu_busy():
    """{cpuN: busy jiffies} (user nice system irq softirq steal), {cpuN + "si": softirq}"""
    r = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                v = line.split()
                n = [int(x) for x in v[1:9]]
                r[v[0]] = n[0] + n[1] + n[2] + n[5] + n[6] + n[7]
                r[v[0] + "si"] = n[6]
    return r


def proc_cpu(pids):
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                s = f.read()
            v = s[s.rindex(")") + 2:].split()
            t += int(v[11]) + int(v[12])  # utime stime (fields 14, 15)
        except (OSError, ValueError):
            pass
    return t


def children_pids(pid):
    """pid and all its descendants (for nginx master + worker)"""
    out = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            for c in f.read().split():
                out += children_pids(int(c))
    except OSError:
        pass
    return out


TCP_COUNTERS = ("Tcp:RetransSegs", "TcpExt:TCPFastRetrans", "TcpExt:TCPLossProbes",
                "TcpExt:TCPTimeouts", "TcpExt:TCPSACKReorder", "TcpExt:TCPDSACKRecv",
                "TcpExt:TCPDSACKUndo", "TcpExt:TCPSpuriousRTOs", "TcpExt:TCPOFOQueue")


def tcp_counters(ns):
    """{"Tcp:RetransSegs": n, ...} of a namespace (/proc/net/snmp and netstat), for the counters
    above: retransmissions and reordering explain throughput differences between middles"""
    r = sh(in_ns(ns, "cat", "/proc/net/snmp", "/proc/net/netstat"), capture_output=True,
           text=True)
    lines, out = r.stdout.splitlines(), {}
    for names, values in zip(lines[0::2], lines[1::2]):
        proto = names.split(":")[0]
        for k, v in zip(names.split()[1:], values.split()[1:]):
            key = proto + ":" + k
            if key in TCP_COUNTERS:
                out[key] = int(v)
    return out


def set_rps(ns, dev, mask):
    """rps_cpus of dev's (single) RX queue in namespace ns; mask in hex, 0 = off"""
    sh(in_ns(ns, "sh", "-c", "echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus" % (mask, dev)))


def rx_bytes():
    r = sh(in_ns(NS_C, "cat", "/sys/class/net/veth0/statistics/rx_bytes"), capture_output=True,
           text=True)
    return int(r.stdout)


# ---------------------------------------------------------------- servers and middles

NGINX_COMMON = """
daemon off; error_log {d}/error.log; worker_processes 1; worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
    uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
    ssl_protocols TLSv1.3; ssl_session_tickets off; ssl_session_cache off;
    keepalive_requests 100000000;
"""


def server_conf():
    d = os.path.join(W, "nginx-server")
    os.makedirs(d, exist_ok=True)
    c = NGINX_COMMON.format(d=d) + """
    server {{
        listen {ip}:443 ssl backlog=4096; server_name server.test; root {w}/www;
        ssl_certificate {w}/pki/rsa.crt; ssl_certificate_key {w}/pki/rsa.key;
        keepalive_timeout 120;
    }}
    server {{
        listen {ip}:8443 ssl backlog=4096; server_name server.test; root {w}/www;
        ssl_certificate {w}/pki/rsa.crt; ssl_certificate_key {w}/pki/rsa.key;
        keepalive_timeout 0;
    }}
}}
pid {d}/nginx.pid;
""".format(ip=SERVER, w=W, d=d)
    p = os.path.join(W, "server.conf")
    open(p, "w").write(c)
    return p, d


def proxy_conf():
    d = os.path.join(W, "nginx-proxy")
    os.makedirs(d, exist_ok=True)
    loc = """
        location / {{
            proxy_pass https://origin; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_ssl_session_reuse on; proxy_ssl_protocols TLSv1.3;
            proxy_buffering on; proxy_buffer_size 16k; proxy_buffers 32 16k;
            proxy_busy_buffers_size 64k; proxy_max_temp_file_size 0;
        }}"""
    c = NGINX_COMMON.format(d=d) + """
    upstream origin {{ server {srv}:443; keepalive 64; keepalive_requests 100000000; }}
    server {{
        listen {ip}:443 ssl backlog=4096; server_name server.test;
        ssl_certificate {w}/pki/proxy.crt; ssl_certificate_key {w}/pki/proxy.key;
        keepalive_timeout 120;{loc}
    }}
    server {{
        listen {ip}:8443 ssl backlog=4096; server_name server.test;
        ssl_certificate {w}/pki/proxy.crt; ssl_certificate_key {w}/pki/proxy.key;
        keepalive_timeout 0;{loc}
    }}
}}
pid {d}/nginx.pid;
""".format(ip=SPLIT_C, srv=SERVER, w=W, d=d, loc=loc.format())
    p = os.path.join(W, "proxy.conf")
    open(p, "w").write(c)
    return p, d


def start_nginx(ns, cpu, conf, d):
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + in_ns(ns, "nginx", "-c", conf, "-p", d),
                         stderr=open(os.path.join(d, "stderr"), "w"))
    for _ in range(50):
        time.sleep(0.1)
        kids = children_pids(p.pid)
        if len(kids) >= 2 and os.path.exists(os.path.join(d, "nginx.pid")):
            break
    return p


def stop(p, sig=2):
    if p is None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Middle:
    """start()/stop() one middle; pids() = processes whose CPU is the middle's"""

    def __init__(self, kind, tag):
        self.kind, self.tag, self.proc, self.evedir = kind, tag, None, None

    def target(self):
        return SPLIT_C if self.kind == "split" else SERVER

    def shim(self):
        return self.kind.startswith(("mmtls", "rules", "depth"))

    def start(self):
        k = self.kind
        if k in ("e2e", "e2erps"):
            if k == "e2erps":
                # the Linux bridge with the RPS the fast path sets on its ports (docs/FASTPATH.md
                # "Frame order: RPS"): the reference for what RPS alone costs on veth
                for dev in ("c0", "s0"):
                    set_rps(NS_M, dev, "%x" % ((1 << os.cpu_count()) - 1))
            sh(["ip", "-n", NS_M, "link", "add", "br0", "type", "bridge"])
            sh(["ip", "-n", NS_M, "link", "set", "c0", "master", "br0"])
            sh(["ip", "-n", NS_M, "link", "set", "s0", "master", "br0"])
            sh(["ip", "-n", NS_M, "link", "set", "br0", "up"])
        elif k in ("bare", "barev3"):
            # bare: TPACKET_V2 frame rings, as mmtlsd's default (--afp-ring frames); barev3:
            # TPACKET_V3 blocks, as mmtlsd --afp-ring blocks (and both before 2026-11-22)
            ring = ["--frame-ring"] if k == "bare" else []
            self.proc = subprocess.Popen(
                ["taskset", "-c", "1"] + in_ns(NS_M, BRIDGE, *ring, "c0", "s0"),
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(W, "bridge.err"), "a"))
            time.sleep(0.5)
        elif k == "split":
            # Split-TLS variant of the testbed: the mbox gets an address on each side and /32
            # routes; the client connects to the proxy (h2load --connect-to), the proxy to the
            # server.  Client and server are unchanged (same addresses, same nginx).
            sh(["ip", "-n", NS_M, "addr", "add", SPLIT_C + "/32", "dev", "c0"])
            sh(["ip", "-n", NS_M, "addr", "add", SPLIT_S + "/32", "dev", "s0"])
            sh(["ip", "-n", NS_M, "route", "replace", "198.18.4.1/32", "dev", "c0", "src",
                SPLIT_C])
            sh(["ip", "-n", NS_M, "route", "add", SERVER + "/32", "dev", "s0", "src", SPLIT_S])
            conf, d = proxy_conf()
            self.proc = start_nginx(NS_M, 1, conf, d)
        else:
            self.evedir = os.path.join(W, "eve", self.tag)
            os.makedirs(self.evedir, exist_ok=True)
            args = [MMTLSD, "-i", "c0:s0", "--key-listen", "198.18.6.2:4433",
                    "--cert", W + "/pki/mbox.crt", "--key", W + "/pki/mbox.key",
                    "--client-ca", W + "/pki/ca.crt", "-l", self.evedir, "-q"]
            if k in ("mmtls64k", "mmtls64kv3", "mmtlsfast64k", "mmtlsfastw64k",
                     "mmtlsfastw64krps0"):
                args += ["--inspect-depth", str(DEPTH)]
            if k == "mmtls64kv3":
                args += ["--afp-ring", "blocks"]  # TPACKET_V3 blocks (the default until 2026-11-22)
            if k in ("mmtlsfast64k", "mmtlsfastw64k", "mmtlsfastw64krps0"):
                args += ["--io", "fast"]  # issue 8: the kernel fast path (docs/FASTPATH.md)
            if k in ("mmtlsfastw64k", "mmtlsfastw64krps0"):
                args += ["--depth-count", "wire"]  # the kernel applies the depth itself
            if k == "mmtlsfastw64krps0":
                args += ["--fast-rps", "0"]  # RPS on CPU 0 (the end hosts'), not mmtlsd's CPU 1
            m = re.match(r"(rules|depth)(\d+)k$", k)
            if m:
                # issue 6: the Snort 3 community ruleset (rulesNk) against the same inspection
                # depth without rules (depthNk)
                args += ["--inspect-depth", str(int(m.group(2)) * 1024)]
                if m.group(1) == "rules":
                    args += ["--rules", RULES]
            args += os.environ.get("MMTLSD_ARGS", "").split()
            self.proc = subprocess.Popen(["taskset", "-c", "1"] + in_ns(NS_M, *args),
                                         stderr=open(self.evedir + ".err", "w"))
            for _ in range(50):
                time.sleep(0.1)
                r = subprocess.run(in_ns(NS_M, "ss", "-ltnH", "sport", "= :4433"),
                                   capture_output=True, text=True)
                if "4433" in r.stdout:
                    break
            time.sleep(0.2)

    def pids(self):
        if self.proc is None:
            return []
        return children_pids(self.proc.pid)

    def stop(self):
        k = self.kind
        if k in ("e2e", "e2erps"):
            sh(["ip", "-n", NS_M, "link", "del", "br0"])
            for dev in ("c0", "s0"):
                set_rps(NS_M, dev, "0")
        elif k == "split":
            stop(self.proc, 3)  # SIGQUIT: graceful
            sh(["ip", "-n", NS_M, "addr", "del", SPLIT_C + "/32", "dev", "c0"], check=False)
            sh(["ip", "-n", NS_M, "addr", "del", SPLIT_S + "/32", "dev", "s0"], check=False)
            sh(["ip", "-n", NS_M, "route", "replace", "198.18.4.1/32", "dev", "mgmt0"])
            sh(["ip", "-n", NS_M, "route", "del", SERVER + "/32"], check=False,
               stderr=subprocess.DEVNULL)
        else:
            stop(self.proc, 2)
        self.proc = None


# ---------------------------------------------------------------- one h2load run

H2_RE = {
    "secs": re.compile(r"finished in ([\d.]+)(ms|s)"),
    "done": re.compile(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed"),
    "bytes": re.compile(r"traffic: .*?\((\d+)\) total"),
}


def h2load(mid, obj, ephemeral, server_pids):
    port = 8443 if ephemeral else 443
    clients = EPH_CLIENTS if ephemeral else CLIENTS
    env = dict(os.environ)
    if mid.shim():
        env.update(LD_PRELOAD=SHIM, MMTLS_KEYSERVER="198.18.6.2:4433",
                   MMTLS_CA=W + "/pki/ca.crt", MMTLS_CERT=W + "/pki/client.crt",
                   MMTLS_KEY=W + "/pki/client.key")
    if ephemeral:
        # -D does not end while h2load reconnects (it hangs): bound by the request count
        bound = ["-n", str(EPH_N)]
    else:
        bound = ["-D", "%dms" % int(SECS * 1000), "--warm-up-time", "%dms" % int(WARM * 1000)]
    cmd = ["taskset", "-c", "0", "ip", "netns", "exec", NS_C, "h2load", "--h1", "-t", "1",
           "-c", str(clients), "-m", "1"] + bound + [
           "--connect-to", "%s:%d" % (mid.target(), port),
           "https://server.test:%d/%s.bin" % (port, obj)]
    c0 = cpu_busy()
    m0 = proc_cpu(mid.pids())
    s0 = proc_cpu(server_pids)
    r0 = rx_bytes()
    t0c, t0s = tcp_counters(NS_C), tcp_counters(NS_S)
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=60)
        out = r.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\nTIMEOUT"
    t1 = time.monotonic()
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r1 = rx_bytes()
    t1c, t1s = tcp_counters(NS_C), tcp_counters(NS_S)
    s1 = proc_cpu(server_pids)
    m1 = proc_cpu(mid.pids())
    c1 = cpu_busy()
    rec = {"middle": mid.kind, "object": obj, "ephemeral": ephemeral, "wall": t1 - t0,
           "cpu0": (c1["cpu0"] - c0["cpu0"]) / HZ, "cpu1": (c1["cpu1"] - c0["cpu1"]) / HZ,
           "machine": (c1["cpu"] - c0["cpu"]) / HZ,
           "softirq": (c1["cpusi"] - c0["cpusi"]) / HZ,
           "cpu1_si": (c1["cpu1si"] - c0["cpu1si"]) / HZ, "middle_proc": (m1 - m0) / HZ,
           "server_proc": (s1 - s0) / HZ,
           "client_proc": (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime),
           "rx_bytes": r1 - r0, "loadavg": os.getloadavg()[0],
           "tcp_client": {k: t1c[k] - t0c.get(k, 0) for k in t1c},
           "tcp_server": {k: t1s[k] - t0s.get(k, 0) for k in t1s}}
    m = H2_RE["secs"].search(out)
    rec["h2_secs"] = (float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)) if m else None
    m = H2_RE["done"].search(out)
    rec["done"], rec["ok"], rec["failed"] = ([int(x) for x in m.groups()] if m
                                              else (0, 0, 0))
    m = H2_RE["bytes"].search(out)
    rec["h2_bytes"] = int(m.group(1)) if m else 0
    if rec["ok"] == 0 or rec["failed"] > 0 or "TIMEOUT" in out:
        rec["h2_out"] = out[-1500:]
    return rec


def mmtls_stats(evedir):
    """final stats + per-session key status from eve.json"""
    st, status = None, {}
    try:
        with open(os.path.join(evedir, "eve.json")) as f:
            for line in f:
                e = json.loads(line)
                if e.get("event_type") == "stats":
                    st = e["stats"]
                elif e.get("event_type") == "tls":
                    k = e["tls"].get("key_status", "?")
                    status[k] = status.get(k, 0) + 1
    except OSError:
        pass
    return {"stats": st, "key_status": status}


def peak_rss_kb(mid):
    """Peak resident memory (VmHWM) of the middle's processes, kB."""
    kb = 0
    for pid in mid.pids():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kb += int(line.split()[1])
        except OSError:
            pass
    return kb


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.environ.get("END_RPS"):
        # experiment: RPS on the end hosts' veth0 as well (all CPUs), so that frames reaching
        # them from two CPUs (the middle's sends, the kernel's forwarding) share one backlog
        for ns in (NS_C, NS_S):
            set_rps(ns, "veth0", os.environ["END_RPS"])
    srv_conf, srv_d = server_conf()
    server = start_nginx(NS_S, 0, srv_conf, srv_d)
    server_pids = children_pids(server.pid)
    results = {"config": {"rounds": ROUNDS, "secs": SECS, "clients": CLIENTS, "warm": WARM,
                          "eph_n": EPH_N,
                          "eph_clients": EPH_CLIENTS, "sizes": SIZES, "middles": MIDDLES,
                          "depth": DEPTH, "kernel": os.uname().release,
                          "date": time.strftime("%Y-%m-%d %H:%M")},
               "runs": [], "mmtls": []}
    try:
        for rnd in range(1, ROUNDS + 1):
            order = MIDDLES[(rnd - 1) % len(MIDDLES):] + MIDDLES[:(rnd - 1) % len(MIDDLES)]
            for kind in order:
                for eph in ((False, True) if EPH else (False,)):
                    mid = Middle(kind, "%s-r%d-%s" % (kind, rnd, "eph" if eph else "pers"))
                    mid.start()
                    try:
                        for obj in (["1k"] if eph else SIZES):
                            rec = h2load(mid, obj, eph, server_pids)
                            rec["round"] = rnd
                            results["runs"].append(rec)
                            gb = rec["rx_bytes"] / 1e9
                            ts = rec["tcp_server"]
                            print("r%d %-8s %-4s %s %7.0f req/s %6.2f Gbit/s mid %.3f cpu1 %.3f "
                                  "s/GB fail %d; server rtx %d (fast %d, probes %d, RTO %d), "
                                  "reorder %d, DSACK %d" % (
                                      rnd, kind, obj, "eph " if eph else "pers",
                                      rec["ok"] / (rec["h2_secs"] or 1),
                                      rec["h2_bytes"] * 8 / 1e9 / (rec["h2_secs"] or 1),
                                      rec["middle_proc"] / max(gb, 1e-9),
                                      rec["cpu1"] / max(gb, 1e-9), rec["failed"],
                                      ts.get("Tcp:RetransSegs", 0),
                                      ts.get("TcpExt:TCPFastRetrans", 0),
                                      ts.get("TcpExt:TCPLossProbes", 0),
                                      ts.get("TcpExt:TCPTimeouts", 0),
                                      ts.get("TcpExt:TCPSACKReorder", 0),
                                      ts.get("TcpExt:TCPDSACKRecv", 0)), flush=True)
                            if "h2_out" in rec:
                                print(rec["h2_out"], flush=True)
                        hwm = peak_rss_kb(mid)
                    finally:
                        mid.stop()
                    if mid.evedir:
                        s = mmtls_stats(mid.evedir)
                        s["peak_rss_kb"] = hwm
                        s.update(tag=mid.tag, middle=kind, ephemeral=eph, round=rnd)
                        results["mmtls"].append(s)
                        inl = ((s["stats"] or {}).get("tls") or {}).get("inline", {})
                        print("   %s: sessions %s, key stall %s" % (
                            mid.tag, s["key_status"], inl.get("key_stall_us")), flush=True)
                    with open(OUT, "w") as f:
                        json.dump(results, f, indent=1)
    finally:
        stop(server, 3)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
