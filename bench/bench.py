#!/usr/bin/env python3
"""bench/bench.py -- runcsharp against the Go shims, under containerd 1.6 and 2.1 (issues 7 and 14).

Run it through bench/run.sh (which builds first). For every containerd line it starts one private
daemon (own root, state, sockets and runc namespace under /tmp/rcs-b-XXXX; never the system's),
then measures, runtimes interleaved round by round (the order rotates each round):

  latency  wall time of `ctr run --rm --rootfs <busybox> <id> true`; `runc run` of an OCI bundle
           on the same rootfs is the floor (no containerd, no shim)
  exec     wall time of `ctr task exec <running container> true`
  idle     N idle `sleep` containers per runtime (one runtime at a time): Pss / Pss_Anon from
           /proc/<shim>/smaps_rollup, VmRSS / Threads from /proc/<shim>/status, averaged per shim
  start    the `start` action of each shim binary run by hand in a prepared bundle
           (`<shim> -namespace <ns> -address <sock> -publish-binary <containerd> -id <id> start`,
           stdin /dev/null, stdout to a file): wall time from spawn to exit; the daemon it leaves
           behind is then found by its argv (-id <id> -address <sock>), killed by PID, its socket
           removed. The same spawn-and-wait of /bin/true is reported as the method's overhead.
  stdout   `ctr run --rm ... sh -c 'sleep 0.5; <writer>; sleep 1'`, ctr's stdout a pipe read to
           nowhere by this script. Two writers: `head -c 1GiB /dev/zero` (busybox head: 4 KiB
           writes, one shim wake-up per write) and `dd if=/dev/zero bs=1M count=1024` (large
           writes: the pipe fills, each wake-up moves up to a pipe's worth). MB/s = bytes / (last byte - first byte). Shim CPU:
           a helper thread finds the shim by its argv while the container sleeps 0.5 s and reads
           utime+stime from /proc/<pid>/stat; the reader reads it again the moment the last byte
           has arrived (the container then still sleeps 1 s, so the shim is alive): CPU of the
           transfer = the difference. ctr's own CPU comes from wait4's rusage.
  execmem  one `sleep` container per runtime; shim memory right after start, then after E execs
           (`ctr task exec ... true`, P at a time, round-robin over the selected runtimes: ours by
           default, RCS_BENCH_EXECMEM_RUNTIMES=all for the Go shims too) and 2 s to settle
  probe    P pods per runtime (one shim each, or grouped G to a shim), all at once, each probed by
           `ctr task exec ... /bin/true` every S s for T s: shim CPU per probe and per pod-hour from
           the threads' /proc/<pid>/task/*/schedstat, then wake-ups (switch-ins) per idle minute,
           PSS and threads per shim at the end

Writes bench/results/latest.json (every sample) and prints a markdown table. Everything the run
created is removed on exit: tasks, containers, the daemon by its PID, shims by PID whose argv
holds this daemon's socket, mounts under the temp dir, the runc namespace dir and cgroup parent,
the temp dir. Nothing is ever stopped by name.
"""
import concurrent.futures as cf
import datetime
import fcntl
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = os.path.join(REPO, "dist")
OURS_RT = os.environ.get("RCS_RUNTIME", "io.containerd.runcsharp.v2")
VERSIONS = os.path.join(os.environ.get("RCS_VERSIONS_DIR", "/var/cache/runcsharp-versions"), "versions.env")


def knob(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


LINES = os.environ.get("RCS_BENCH_LINES", "1.6 2.1").split()
PHASES = os.environ.get("RCS_BENCH_PHASES", "latency exec idle start stdout execmem probe").split()
SAMPLES = knob("RCS_BENCH_SAMPLES", 20)          # ctr run --rm latency, per runtime
EXEC_SAMPLES = knob("RCS_BENCH_EXEC_SAMPLES", 20)
IDLE = knob("RCS_BENCH_IDLE", 20)
START_SAMPLES = knob("RCS_BENCH_START_SAMPLES", 20)
STDOUT_RUNS = knob("RCS_BENCH_STDOUT_RUNS", 3)
STDOUT_BYTES = knob("RCS_BENCH_STDOUT_BYTES", 1 << 30)
STDOUT_WRITERS = os.environ.get("RCS_BENCH_STDOUT_WRITERS", "head dd").split()
EXECS = knob("RCS_BENCH_EXECS", 500)
EXEC_PAR = knob("RCS_BENCH_EXEC_PAR", 2)
EXECMEM_RUNTIMES = os.environ.get("RCS_BENCH_EXECMEM_RUNTIMES", "ours").split()   # keys, or "all"
PROBE_PODS = knob("RCS_BENCH_PROBE_PODS", 6)           # pods per runtime (3 runtimes under 2.1)
PROBE_PERIOD = float(os.environ.get("RCS_BENCH_PROBE_PERIOD") or 2)    # seconds between probes of a pod
PROBE_SECONDS = knob("RCS_BENCH_PROBE_SECONDS", 120)  # probing time per mode
PROBE_IDLE = knob("RCS_BENCH_PROBE_IDLE", 60)         # idle window after probing (wake-ups)
PROBE_SETTLE = knob("RCS_BENCH_PROBE_SETTLE", 15)     # quiet time before the idle window (trims, pool retirement)
PROBE_GROUP = knob("RCS_BENCH_PROBE_GROUP", 3)        # pods per shim in the grouped mode
PROBE_MODES = os.environ.get("RCS_BENCH_PROBE_MODES", "separate grouped").split()
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def read_env_file(path):
    out = {}
    try:
        for line in open(path):
            line = line.strip()
            if "=" in line and line[:1].isupper():
                k, v = line.split("=", 1)
                v = v.split("#", 1)[0].strip() if not v.startswith("'") else v[1:v.index("'", 1)]
                out[k] = v
    except OSError:
        pass
    return out


def which(name):
    return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except Exception:
        return "?"


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]


def summary(v):
    if not v:
        return None
    return {"n": len(v), "median": round(statistics.median(v), 3), "p90": round(pct(v, 0.9), 3),
            "min": round(min(v), 3), "samples": [round(x, 3) for x in v]}


# ------------------------------------------------------------------------------------------------
class Runtime:
    def __init__(self, key, name, binary):
        self.key, self.name, self.binary = key, name, binary


class Line:
    """One containerd line: its binaries, runc, runtimes; a private daemon while started."""

    def __init__(self, name):
        self.name = name
        self.dir = None
        self.pid = None
        self.proc = None
        self.ns = None
        self.sockets = []    # shim sockets of the hand-driven start action, removed at the end
        env = read_env_file(VERSIONS)
        ours = Runtime("ours", OURS_RT, os.path.join(DIST, "containerd-shim-runcsharp-v2")
                       if OURS_RT == "io.containerd.runcsharp.v2" else None)
        if name == "1.6":
            self.bindir = os.path.dirname(which("containerd") or "/usr/bin/containerd")
            self.runc = which("runc") or "/usr/sbin/runc"
            self.version = 2
            self.runtimes = [ours, Runtime("go16", "io.containerd.runc.v2", os.path.join(self.bindir, "containerd-shim-runc-v2"))]
        else:
            key = "RCS_CONTAINERD_" + name.replace(".", "_") + "_BIN"
            if key not in env or not os.path.exists(os.path.join(env[key], "containerd")):
                raise SystemExit(f"bench: FAILED: containerd {name} not found in {VERSIONS} (run scripts/fetch-versions.sh)")
            self.bindir = env[key]
            self.runc = env.get("RCS_RUNC") or which("runc")
            self.version = 3
            go16 = which("containerd-shim-runc-v2")
            if not go16:
                raise SystemExit("bench: FAILED: no containerd 1.6 shim (containerd-shim-runc-v2) on the system PATH")
            self.go16_src = go16
            self.runtimes = [ours,
                             Runtime("go21", "io.containerd.runc.v2", os.path.join(self.bindir, "containerd-shim-runc-v2")),
                             Runtime("go16", "io.containerd.runc16.v2", None)]   # binary set in start()
        for r in self.runtimes:
            if r.key == "ours" and r.binary is None:   # A/A run: "ours" is a Go shim
                r.binary = self.runtimes[1].binary
        self.containerd = os.path.join(self.bindir, "containerd")
        self.ctr_bin = os.path.join(self.bindir, "ctr")

    # -- daemon ---------------------------------------------------------------------------------
    def config(self):
        d = self.dir
        if self.version == 3:
            disabled = ('["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", '
                        '"io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]')
            q = "'"
        else:
            disabled, q = '["io.containerd.grpc.v1.cri"]', '"'
        s = f"""version = {self.version}
root = "{d}/root"
state = "{d}/state"
disabled_plugins = {disabled}

[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "info"
[metrics]
  address = ""

[plugins]
  [plugins.{q}io.containerd.internal.v1.opt{q}]
    path = "{d}/opt"
  [plugins.{q}io.containerd.nri.v1.nri{q}]
    disable = true
"""
        if self.version == 3:
            s += f"""  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = "{d}/image-verifier"
"""
        return s

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="rcs-b-", dir="/tmp")
        self.sock = os.path.join(self.dir, "c.sock")
        # containerd namespaces are letters and digits joined by single . _ or -: mkdtemp may give "_" next to "-"
        self.ns = "rcsb" + "".join(c for c in os.path.basename(self.dir)[6:].lower() if c.isalnum())
        for sub in ("root", "state", "opt", "fifo", "image-verifier", "bin", "bundles", "runc-floor"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        path = [DIST, os.path.join(self.dir, "bin"), os.path.dirname(self.runc), self.bindir,
                "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        if self.version == 3:
            # the 1.6 Go shim under a name of its own (it prints a plain address: task API v2)
            dst = os.path.join(self.dir, "bin", "containerd-shim-runc16-v2")
            shutil.copy2(self.go16_src, dst)
            self.runtimes[2].binary = dst
        self.path = ":".join(path)
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(self.config())
        self.log_f = open(os.path.join(self.dir, "containerd.log"), "w")
        self.proc = subprocess.Popen([self.containerd, "--config", os.path.join(self.dir, "config.toml")],
                                     stdin=subprocess.DEVNULL, stdout=self.log_f, stderr=self.log_f,
                                     env={**os.environ, "PATH": self.path}, start_new_session=True)
        self.pid = self.proc.pid
        for _ in range(150):
            if subprocess.run([self.ctr_bin, "--address", self.sock, "version"], capture_output=True).returncode == 0:
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: FAILED: containerd {self.name} exited at start: {self.log_tail()}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"bench: FAILED: containerd {self.name} did not answer on {self.sock}")
        self.rootfs = os.path.join(self.dir, "rootfs")
        subprocess.run(["bash", "-c", f'. "{REPO}/scripts/lib/rootfs.sh" && mkrootfs "$1"', "_", self.rootfs], check=True)
        # the floor's bundle and the bundle for the hand-driven start action
        self.bundle = os.path.join(self.dir, "bundle")
        os.makedirs(self.bundle)
        subprocess.run([self.runc, "spec"], cwd=self.bundle, check=True)
        spec = json.load(open(os.path.join(self.bundle, "config.json")))
        spec["root"] = {"path": self.rootfs, "readonly": True}
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/bin/true"]
        spec["process"]["env"] = ["PATH=/bin"]
        json.dump(spec, open(os.path.join(self.bundle, "config.json"), "w"))
        log(f"containerd {self.name}: {first_line([self.containerd, '--version'])}; runc {self.runc}; dir {self.dir}")

    def log_tail(self, n=15):
        try:
            return "".join(open(os.path.join(self.dir, "containerd.log")).readlines()[-n:])
        except OSError:
            return ""

    def ctr(self, *args, check=True, **kw):
        cmd = [self.ctr_bin, "--address", self.sock, "-n", self.ns, *args]
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.run(cmd, **kw)
        if check and p.returncode != 0:
            err = p.stderr.decode(errors="replace") if isinstance(p.stderr, bytes) else ""
            raise RuntimeError(f"{' '.join(args[:4])}... failed ({p.returncode}): {err.strip()}\n{self.log_tail()}")
        return p

    def run_args(self, rt, cid, *cmd, detach=False):
        a = ["run"] + (["-d"] if detach else ["--rm"])
        return a + ["--fifo-dir", os.path.join(self.dir, "fifo"), "--runtime", rt.name, "--rootfs",
                    "--env", "PATH=/bin", self.rootfs, cid, *cmd]

    def shim_pids(self, cid=None):
        """PIDs whose argv holds `-address <this daemon's socket>` (and `-id <cid>` if given)."""
        want = f" -address {self.sock} "
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if want in cmd and (cid is None or f"-id {cid} " in cmd) and not cmd.endswith(" start ") \
                    and not cmd.endswith(" delete "):
                out.append(int(d))
        return out

    def clean_tasks(self):
        c = [self.ctr_bin, "--address", self.sock, "-n", self.ns]

        def q(*a):
            p = subprocess.run(c + list(a), capture_output=True, text=True, timeout=30)
            return p.stdout.split() if p.returncode == 0 else []
        tasks = q("tasks", "ls", "-q")
        par(lambda t: subprocess.run(c + ["tasks", "kill", "-s", "SIGKILL", t], capture_output=True, timeout=30), tasks)
        par(lambda t: subprocess.run(c + ["tasks", "delete", "-f", t], capture_output=True, timeout=30), q("tasks", "ls", "-q"))
        par(lambda i: subprocess.run(c + ["containers", "rm", i], capture_output=True, timeout=30), q("containers", "ls", "-q"))
        for _ in range(100):
            if not self.shim_pids():
                return
            time.sleep(0.1)
        log(f"shims still running after clean-up: {self.shim_pids()}")

    def stop(self):
        if self.dir is None:
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.clean_tasks()
            except Exception as e:
                log(f"clean-up of tasks failed: {e}")
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in self.shim_pids():
            log(f"killing leftover shim {p}")
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for s in self.sockets:
            try:
                os.unlink(s)
            except OSError:
                pass
        # mounts under the dir, deepest first
        mounts = []
        for line in open("/proc/self/mountinfo"):
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp.startswith(self.dir + "/"):
                mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for d in [f"/run/containerd/runc/{self.ns}"] + [f"/sys/fs/cgroup/{c}/{self.ns}" for c in os.listdir("/sys/fs/cgroup")]:
            try:
                os.rmdir(d)
            except OSError:
                pass
        try:
            self.log_f.close()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


def par(fn, items, workers=4):
    items = list(items)
    if not items:
        return []
    with cf.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


def rotate(seq, i):
    i %= len(seq)
    return seq[i:] + seq[:i]


def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def proc_mem(pid):
    m = {"pid": pid}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            k, _, rest = line.partition(":")
            if k in ("Pss", "Pss_Anon", "Rss", "Anonymous"):
                m[k.lower()] = int(rest.split()[0])
        for line in open(f"/proc/{pid}/status"):
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "RssAnon", "Threads"):
                m[k.lower()] = int(rest.split()[0])
    except OSError:
        return None
    return m


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICK   # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return None


def avg_mem(ms):
    ms = [m for m in ms if m]
    if not ms:
        return None
    keys = ("pss", "pss_anon", "anonymous", "vmrss", "threads")
    out = {k: round(sum(m.get(k, 0) for m in ms) / len(ms), 1) for k in keys}
    out["shims"] = len(ms)
    return out


# ------------------------------------------------------------------------------------------------
def phase_latency(L, res):
    keys = [r.key for r in L.runtimes] + ["floor"]
    rts = {r.key: r for r in L.runtimes}
    samples = {k: [] for k in keys}
    floor_root = os.path.join(L.dir, "runc-floor")

    def one(k, cid):
        if k == "floor":
            subprocess.run([L.runc, "--root", floor_root, "run", "--bundle", L.bundle, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        else:
            L.ctr(*L.run_args(rts[k], cid, "/bin/true"))
    log(f"[{L.name}] latency: ctr run --rm true, {SAMPLES} samples each, {' / '.join(keys)}")
    for w in range(2):
        for k in keys:
            one(k, f"warm-{k}-{w}")
    for i in range(SAMPLES):
        for k in rotate(keys, i):
            samples[k].append(timed(lambda: one(k, f"lat-{k}-{i}")))
    res["latency_ms"] = {k: summary(v) for k, v in samples.items()}


def start_exec_containers(L, prefix):
    cids = {}
    for r in L.runtimes:
        cid = f"{prefix}-{r.key}"
        L.ctr(*L.run_args(r, cid, "sleep", "3600", detach=True))
        cids[r.key] = cid
    return cids


def phase_exec(L, res):
    """exec latency, then (if enabled) memory of each shim before/after EXECS execs."""
    cids = start_exec_containers(L, "ex")
    time.sleep(1.5)
    before = {}
    for r in L.runtimes:
        pids = L.shim_pids(cids[r.key])
        before[r.key] = proc_mem(pids[0]) if len(pids) == 1 else None
    keys = [r.key for r in L.runtimes]
    n = 0

    def ex(k):
        nonlocal n
        with lock:
            n += 1
            eid = f"e{n}"
        L.ctr("task", "exec", "--exec-id", eid, cids[k], "/bin/true")
    lock = threading.Lock()
    if "exec" in PHASES:
        log(f"[{L.name}] exec latency: ctr task exec true, {EXEC_SAMPLES} samples each")
        for k in keys:
            ex(k)   # warm-up
        lat = {k: [] for k in keys}
        for i in range(EXEC_SAMPLES):
            for k in rotate(keys, i):
                lat[k].append(timed(lambda: ex(k)))
        res["exec_ms"] = {k: summary(v) for k, v in lat.items()}
    mkeys = keys if "all" in EXECMEM_RUNTIMES else [k for k in keys if k in EXECMEM_RUNTIMES]
    if "execmem" in PHASES and EXECS > 0 and mkeys:
        log(f"[{L.name}] execmem: {EXECS} execs per shim of {EXECMEM_RUNTIMES}, {EXEC_PAR} at a time, round-robin")
        t0 = time.time()
        par(lambda j: ex(mkeys[j % len(mkeys)]), range(EXECS * len(mkeys)), workers=EXEC_PAR)
        time.sleep(2)
        out = {}
        for r in [x for x in L.runtimes if x.key in mkeys]:
            pids = L.shim_pids(cids[r.key])
            after = proc_mem(pids[0]) if len(pids) == 1 else None
            b = before[r.key]
            out[r.key] = {"execs": EXECS + (EXEC_SAMPLES + 1 if "exec" in PHASES else 0), "before": b, "after": after}
            if b and after:
                out[r.key]["pss_after_over_before"] = round(after["pss"] / b["pss"], 3)
                out[r.key]["anon_after_over_before"] = round(after["anonymous"] / b["anonymous"], 3)
        res["execmem"] = out
        log(f"[{L.name}] execmem took {time.time() - t0:.0f} s")
    L.clean_tasks()


def phase_idle(L, res):
    out = {}
    order = rotate(L.runtimes, LINES.index(L.name))
    for r in order:
        log(f"[{L.name}] idle: {IDLE} sleep containers through {r.name}")
        par(lambda j: L.ctr(*L.run_args(r, f"idle-{r.key}-{j}", "sleep", "3600", detach=True)), range(IDLE), workers=2)
        time.sleep(2)
        out[r.key] = avg_mem([proc_mem(p) for p in L.shim_pids()])
        L.clean_tasks()
    res["idle_per_shim"] = out


def phase_start(L, res):
    """The `start` action run by hand, wall time from spawn to exit."""
    env = {**os.environ, "PATH": L.path, "TTRPC_ADDRESS": L.sock + ".ttrpc", "GRPC_ADDRESS": L.sock,
           "NAMESPACE": L.ns}
    keys = [r.key for r in L.runtimes]
    rts = {r.key: r for r in L.runtimes}
    out = {k: [] for k in keys}
    base = []
    log(f"[{L.name}] start action by hand, {START_SAMPLES} samples each")

    def one(k, i):
        r = rts[k]
        cid = f"st-{k}-{i}"
        b = os.path.join(L.dir, "bundles", cid)
        os.makedirs(b)
        shutil.copy(os.path.join(L.bundle, "config.json"), b)
        outf = os.path.join(b, "start.out")
        with open(outf, "wb") as so, open(os.path.join(b, "start.err"), "wb") as se:
            t0 = time.perf_counter_ns()
            p = subprocess.Popen([r.binary, "-namespace", L.ns, "-address", L.sock, "-publish-binary", L.containerd,
                                  "-id", cid, "start"], cwd=b, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
            rc = p.wait()
            ms = (time.perf_counter_ns() - t0) / 1e6
        txt = open(outf).read().strip()
        if rc != 0:
            raise RuntimeError(f"{r.binary} start exited {rc}: {open(os.path.join(b, 'start.err')).read()[-500:]}")
        addr = json.loads(txt)["address"] if txt.startswith("{") else txt
        if addr.startswith("unix://"):
            L.sockets.append(addr[len("unix://"):])
        # the daemon the start action left behind: by its argv, killed by PID
        for _ in range(50):
            pids = L.shim_pids(cid)
            if pids:
                break
            time.sleep(0.02)
        for p_ in pids:
            try:
                os.kill(p_, signal.SIGKILL)
            except OSError:
                pass
        return ms
    for i in range(2):
        for k in keys:
            one(k, f"w{i}")
    for i in range(START_SAMPLES):
        for k in rotate(keys, i):
            out[k].append(one(k, i))
        base.append(timed(lambda: subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL).wait()))
    res["start_ms"] = {k: summary(v) for k, v in out.items()}
    res["start_ms"]["spawn_true_overhead"] = summary(base)


def writer_command(writer):
    if writer == "head":
        return f"head -c {STDOUT_BYTES} /dev/zero"
    if writer == "dd":
        bs = 1 << 20 if STDOUT_BYTES % (1 << 20) == 0 else 4096
        return f"dd if=/dev/zero bs={bs} count={STDOUT_BYTES // bs} 2>/dev/null"
    raise SystemExit(f"bench: unknown stdout writer {writer!r} (head or dd)")


def phase_stdout(L, res):
    res["stdout"] = {w: stdout_runs(L, w) for w in STDOUT_WRITERS}


def stdout_runs(L, writer):
    keys = [r.key for r in L.runtimes]
    rts = {r.key: r for r in L.runtimes}
    out = {k: [] for k in keys}
    buf = bytearray(1 << 20)
    gen = writer_command(writer)
    log(f"[{L.name}] stdout: {STDOUT_BYTES} bytes through ctr from `{gen}`, {STDOUT_RUNS} runs each")

    def one(k, i):
        cid = f"out-{writer}-{k}-{i}"
        found = {}

        def finder():
            deadline = time.time() + 20
            while time.time() < deadline and "pid" not in found:
                pids = L.shim_pids(cid)
                if pids:
                    found["pid"] = pids[0]
                    found["cpu0"] = proc_cpu(pids[0])
                    found["t"] = time.perf_counter_ns()
                    return
                time.sleep(0.01)
        th = threading.Thread(target=finder, daemon=True)
        t_launch = time.perf_counter_ns()
        th.start()
        cmd = [L.ctr_bin, "--address", L.sock, "-n", L.ns] + L.run_args(
            rts[k], cid, "sh", "-c", f"sleep 0.5; {gen}; sleep 1")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        fd = p.stdout.fileno()
        try:
            fcntl.fcntl(fd, 1031, 1 << 20)   # F_SETPIPE_SZ: a cheaper sink
        except OSError:
            pass
        total, t_first, t_last, cpu_last = 0, None, None, None
        while True:
            n = os.readv(fd, [buf])
            if n == 0:
                break
            if t_first is None:
                t_first = time.perf_counter_ns()
            total += n
            if total >= STDOUT_BYTES and t_last is None:
                t_last = time.perf_counter_ns()
                cpu_last = proc_cpu(found["pid"]) if "pid" in found else None
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode(errors="replace")
        p.stdout.close()
        p.stderr.close()
        th.join()
        if p.returncode != 0 or total != STDOUT_BYTES:
            raise RuntimeError(f"stdout run {cid}: rc {p.returncode}, {total} bytes: {err.strip()}")
        r = {"bytes": total, "mb_s": round(total / 1e6 / ((t_last - t_first) / 1e9), 1),
             "wall_s": round((t_last - t_launch) / 1e9, 3), "ctr_cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
             "ctr_cpu_s_per_gib": round((ru.ru_utime + ru.ru_stime) * (1 << 30) / total, 3)}
        if "pid" in found and cpu_last is not None and found["cpu0"] is not None:
            r["shim_cpu_s"] = round(cpu_last - found["cpu0"], 3)
            r["shim_cpu_total_s"] = round(cpu_last, 3)
            r["shim_found_before_first_byte"] = found["t"] < t_first
            r["shim_cpu_s_per_gib"] = round(r["shim_cpu_s"] * (1 << 30) / total, 3)
        return r
    for i in range(STDOUT_RUNS):
        for k in rotate(keys, i):
            out[k].append(one(k, i))
    agg = {}
    for k, runs in out.items():
        a = {"runs": runs, "mb_s": statistics.median(x["mb_s"] for x in runs),
             "ctr_cpu_s_per_gib": statistics.median(x["ctr_cpu_s_per_gib"] for x in runs)}
        cpus = [x["shim_cpu_s_per_gib"] for x in runs if "shim_cpu_s_per_gib" in x]
        if cpus:
            a["shim_cpu_s_per_gib"] = statistics.median(cpus)
        agg[k] = a
    return agg


# ------------------------------------------------------------------------------------------------
class ShimCpu:
    """One shim's CPU from /proc/<pid>/task/*/schedstat (ns on CPU, per thread: the precise source).
    A thread that exits takes its counters with it, so the last value seen of every thread is kept
    (sample() often enough that a thread cannot work and exit between two samples unseen); the
    tick-based utime+stime of /proc/<pid>/stat (which does include dead threads) is kept beside it
    as a cross-check."""

    def __init__(self, pid):
        self.pid = pid
        self.ns = {}       # tid -> last sum_exec_runtime seen
        self.slices = {}   # tid -> last count of timeslices (times the thread was switched in)
        self.sample()
        self.base_ns, self.base_slices = self.cpu_ns(), self.switches()
        self.base_ticks = proc_cpu(pid)

    def sample(self):
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return False
        for t in tids:
            try:
                with open(f"/proc/{self.pid}/task/{t}/schedstat") as f:
                    run, _, n = f.read().split()
            except (OSError, ValueError):
                continue
            self.ns[t], self.slices[t] = int(run), int(n)
        return True

    def cpu_ns(self):
        return sum(self.ns.values())

    def switches(self):
        return sum(self.slices.values())

    def threads(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return None


def probe_pods(L, mode):
    """(pod id, runtime key, shim key) of every pod: PROBE_PODS per runtime, one shim per pod or
    PROBE_GROUP pods per shim (the spec annotation both shims group by)."""
    pods = []
    for r in L.runtimes:
        for j in range(PROBE_PODS):
            shim = f"{r.key}-{j if mode == 'separate' else j // PROBE_GROUP}"
            pods.append((f"pr-{mode[0]}-{r.key}-{j}", r, shim))
    return pods


def phase_probe(L, res):
    res["probe"] = {m: probe_mode(L, m) for m in PROBE_MODES}


def probe_mode(L, mode):
    """Every pod probed by `ctr task exec` every PROBE_PERIOD s for PROBE_SECONDS s, all runtimes'
    pods at once, each period's probes spread evenly over the period in a rotated order (like a
    kubelet's independent probe timers); then PROBE_SETTLE s of quiet and PROBE_IDLE s idle."""
    pods = probe_pods(L, mode)
    log(f"[{L.name}] probe ({mode}): {len(pods)} pods, every {PROBE_PERIOD:g} s for {PROBE_SECONDS} s, "
        f"then {PROBE_IDLE} s idle")
    load0 = os.getloadavg()

    def run(pod):
        cid, r, shim = pod
        extra = [] if mode == "separate" else ["--annotation", f"io.containerd.runc.v2.group=pr-{L.ns}-{shim}"]
        a = L.run_args(r, cid, "sleep", "3600", detach=True)
        L.ctr(*a[:2], *extra, *a[2:])
    # the first pod of a group starts its shim (its -id), the rest join it
    firsts = [p for p in pods if p[0] == min(q[0] for q in pods if q[2] == p[2])]
    par(run, firsts, workers=2)
    par(run, [p for p in pods if p not in firsts], workers=2)
    time.sleep(2)
    shims = {}
    for cid, r, shim in firsts:
        pids = L.shim_pids(cid)
        if len(pids) != 1:
            raise RuntimeError(f"probe: shim of {cid}: {pids}")
        shims[shim] = (r.key, pids[0])
    if len({p for _, p in shims.values()}) != len(shims):
        raise RuntimeError(f"probe ({mode}): pods did not get their own shims: {shims}")
    time.sleep(PROBE_SETTLE)
    cpu = {k: ShimCpu(pid) for k, (_, pid) in shims.items()}
    done = {k: 0 for k in shims}
    late, failed = [], []
    lock = threading.Lock()
    n = [0]

    def probe(pod, due):
        cid, r, shim = pod
        with lock:
            n[0] += 1
            eid = f"p{n[0]}"
        late.append(time.monotonic() - due)
        p = L.ctr("task", "exec", "--exec-id", eid, cid, "/bin/true", check=False)
        with lock:
            if p.returncode == 0:
                done[shim] += 1
            else:
                failed.append((cid, p.returncode))
    stop = threading.Event()

    def sampler():
        while not stop.wait(0.25):
            for c in cpu.values():
                c.sample()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t0 = time.monotonic()
    rounds = int(PROBE_SECONDS / PROBE_PERIOD)
    with cf.ThreadPoolExecutor(max(4, len(pods) // 2)) as ex:
        for i in range(rounds):
            order = rotate(pods, i)
            for j, pod in enumerate(order):
                due = t0 + i * PROBE_PERIOD + j * PROBE_PERIOD / len(order)
                d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
                ex.submit(probe, pod, due)
    t_probe = time.monotonic() - t0
    for c in cpu.values():
        c.sample()
    stop.set()
    th.join()
    busy = {k: (c.cpu_ns() - c.base_ns, (proc_cpu(c.pid) or 0) - (c.base_ticks or 0)) for k, c in cpu.items()}
    time.sleep(PROBE_SETTLE)
    for c in cpu.values():
        c.sample()
    idle0 = {k: (c.switches(), c.cpu_ns()) for k, c in cpu.items()}
    time.sleep(PROBE_IDLE)
    for c in cpu.values():
        c.sample()
    out = {"pods": len(pods), "shims": len(shims), "period_s": PROBE_PERIOD, "probe_s": round(t_probe, 1),
           "idle_s": PROBE_IDLE, "failed": failed[:10], "n_failed": len(failed),
           "start_lag_s": summary(late) and {k: summary(late)[k] for k in ("median", "p90")},
           "loadavg_before": load0, "loadavg_after": os.getloadavg(), "runtimes": {}}
    for r in L.runtimes:
        ks = [k for k, (rk, _) in shims.items() if rk == r.key]
        probes = sum(done[k] for k in ks)
        cpu_ns = sum(busy[k][0] for k in ks)
        ticks_s = sum(busy[k][1] for k in ks)
        npods = sum(1 for p in pods if p[1].key == r.key)
        wake = [(cpu[k].switches() - idle0[k][0]) * 60 / PROBE_IDLE for k in ks]
        idle_cpu = [(cpu[k].cpu_ns() - idle0[k][1]) / 1e6 * 60 / PROBE_IDLE for k in ks]
        mem = avg_mem([proc_mem(shims[k][1]) for k in ks])
        out["runtimes"][r.key] = {
            "probes": probes,
            "cpu_ms_per_probe": round(cpu_ns / 1e6 / probes, 3) if probes else None,
            "cpu_ms_per_probe_ticks": round(ticks_s * 1e3 / probes, 3) if probes else None,
            "cpu_s_per_pod_hour": round(cpu_ns / 1e9 / npods * 3600 / t_probe, 2),
            "wakeups_per_idle_min_per_shim": round(statistics.mean(wake), 2) if wake else None,
            "wakeups_per_idle_min": [round(w, 1) for w in wake],
            "idle_cpu_ms_per_min_per_shim": round(statistics.mean(idle_cpu), 3) if idle_cpu else None,
            "mem_per_shim": mem}
        log(f"[{L.name}] probe ({mode}) {r.key}: {out['runtimes'][r.key]}")
    L.clean_tasks()
    return out


# ------------------------------------------------------------------------------------------------
LABEL = {"ours": "ours", "go16": "Go 1.6 shim", "go21": "Go 2.1 shim", "floor": "runc run"}


def rows_for(line, r):
    """(metric, target, {key: value}, fmt, better) rows for the table."""
    rows = []
    g = lambda d, *p: _get(d, *p)
    lat = r.get("latency_ms") or {}
    if lat:
        rows.append(("`ctr run --rm true` median ms", "≤ 0.9× faster Go", {k: g(v, "median") for k, v in lat.items()}, "{:.0f}", "low"))
        rows.append(("`ctr run --rm true` p90 ms", "–", {k: g(v, "p90") for k, v in lat.items()}, "{:.0f}", "low"))
    ex = r.get("exec_ms") or {}
    if ex:
        rows.append(("`ctr task exec true` median ms", "≤ 0.9× faster Go", {k: g(v, "median") for k, v in ex.items()}, "{:.0f}", "low"))
    idle = r.get("idle_per_shim") or {}
    if idle:
        rows.append((f"PSS KiB per shim, {IDLE} idle", "≤ 0.5× Go 1.6", {k: g(v, "pss") for k, v in idle.items()}, "{:.0f}", "low"))
        rows.append((f"anon PSS KiB per shim, {IDLE} idle", "–", {k: g(v, "pss_anon") for k, v in idle.items()}, "{:.0f}", "low"))
        rows.append((f"RSS KiB per shim, {IDLE} idle", "–", {k: g(v, "vmrss") for k, v in idle.items()}, "{:.0f}", "low"))
        rows.append(("threads per idle shim", "≤ 6", {k: g(v, "threads") for k, v in idle.items()}, "{:.1f}", "low"))
    st = r.get("start_ms") or {}
    if st:
        rows.append(("`start` action wall ms (median)", "≤ 5 ms", {k: g(v, "median") for k, v in st.items() if k != "spawn_true_overhead"}, "{:.1f}", "low"))
        rows.append(("`start` action wall ms (p90)", "–", {k: g(v, "p90") for k, v in st.items() if k != "spawn_true_overhead"}, "{:.1f}", "low"))
    for writer, so in (r.get("stdout") or {}).items():
        w = f"`{writer}`"
        rows.append((f"stdout {STDOUT_BYTES / (1 << 30):g} GiB from {w}, MB/s", "≥ 1.2× Go 2.1", {k: v.get("mb_s") for k, v in so.items()}, "{:.0f}", "high"))
        rows.append((f"shim CPU s per GiB of stdout from {w}", "≤ 0.5× Go 2.1", {k: v.get("shim_cpu_s_per_gib") for k, v in so.items()}, "{:.2f}", "low"))
        rows.append((f"ctr CPU s per GiB from {w} (client)", "–", {k: v.get("ctr_cpu_s_per_gib") for k, v in so.items()}, "{:.2f}", "low"))
    for mode, pr in (r.get("probe") or {}).items():
        rt = pr["runtimes"]
        per = f"{pr['pods'] // len(rt)} pods/runtime in {pr['shims'] // len(rt)} shims, every {pr['period_s']:g} s"
        rows.append((f"probe ({mode}, {per}): shim CPU ms per probe", "≤ 0.3× better Go", {k: v.get("cpu_ms_per_probe") for k, v in rt.items()}, "{:.2f}", "low"))
        rows.append((f"probe ({mode}): same from /proc/pid/stat ticks", "–", {k: v.get("cpu_ms_per_probe_ticks") for k, v in rt.items()}, "{:.2f}", "low"))
        rows.append((f"probe ({mode}): shim CPU s per pod-hour", "–", {k: v.get("cpu_s_per_pod_hour") for k, v in rt.items()}, "{:.1f}", "low"))
        rows.append((f"probe ({mode}): wake-ups per idle minute per shim", "0", {k: v.get("wakeups_per_idle_min_per_shim") for k, v in rt.items()}, "{:.1f}", "low"))
        rows.append((f"probe ({mode}): PSS KiB per shim at the end", "≤ 0.5× Go 1.6", {k: _get(v, "mem_per_shim", "pss") for k, v in rt.items()}, "{:.0f}", "low"))
        rows.append((f"probe ({mode}): threads per shim at the end", "≤ 6", {k: _get(v, "mem_per_shim", "threads") for k, v in rt.items()}, "{:.1f}", "low"))
    em = r.get("execmem") or {}
    if em:
        n = next(iter(em.values())).get("execs")
        rows.append((f"PSS KiB before → after {n} execs", "–",
                     {k: (f"{v['before']['pss']}→{v['after']['pss']}" if v.get("before") and v.get("after") else None) for k, v in em.items()}, "{}", None))
        rows.append((f"PSS after/before {n} execs", "≤ 1.10", {k: v.get("pss_after_over_before") for k, v in em.items()}, "{:.2f}", "low"))
        rows.append((f"anon after/before {n} execs", "≤ 1.10", {k: v.get("anon_after_over_before") for k, v in em.items()}, "{:.2f}", "low"))
    return rows


def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def verdict(target, vals):
    o = vals.get("ours")
    if o is None or target == "–":
        return ""
    gos = [vals[k] for k in ("go16", "go21") if isinstance(vals.get(k), (int, float))]
    try:
        if target == "≤ 0.3× better Go" and gos:
            return "met" if o <= 0.3 * min(gos) else "not met"
        if target == "0":
            return "met" if o == 0 else "not met"
        if target == "≤ 0.9× faster Go" and gos:
            return "met" if o <= 0.9 * min(gos) else "not met"
        if target == "≤ 0.5× Go 1.6" and vals.get("go16"):
            return "met" if o <= 0.5 * vals["go16"] else "not met"
        if target == "≤ 6":
            return "met" if o <= 6 else "not met"
        if target == "≤ 5 ms":
            return "met" if o <= 5 else "not met"
        if target == "≥ 1.2× Go 2.1" and vals.get("go21"):
            return "met" if o >= 1.2 * vals["go21"] else "not met"
        if target == "≤ 0.5× Go 2.1" and vals.get("go21"):
            return "met" if o <= 0.5 * vals["go21"] else "not met"
        if target == "≤ 1.10":
            return "met" if o <= 1.10 else "not met"
    except TypeError:
        return ""
    return "n/a here"


def table(results):
    hdr = "| containerd | metric | ours | Go 1.6 shim | Go 2.1 shim | runc run | ours/Go 1.6 | ours/Go 2.1 | issue 7 target | |"
    lines = [hdr, "|" + "---|" * 10]
    for line, r in results.items():
        for metric, target, vals, fmt, _ in rows_for(line, r):
            def f(k):
                v = vals.get(k)
                if v is None:
                    return "–"
                return fmt.format(v) if not isinstance(v, str) or fmt == "{}" else v

            def ratio(k):
                o, g = vals.get("ours"), vals.get(k)
                if isinstance(o, (int, float)) and isinstance(g, (int, float)) and g:
                    return f"{o / g:.2f}"
                return "–"
            lines.append(f"| {line} | {metric} | {f('ours')} | {f('go16')} | {f('go21')} | {f('floor')} | "
                         f"{ratio('go16')} | {ratio('go21')} | {target} | {verdict(target, vals)} |")
    return "\n".join(lines)


def add_ratios(results):
    for line, r in results.items():
        rat = {}
        for metric, target, vals, fmt, _ in rows_for(line, r):
            o = vals.get("ours")
            for k in ("go16", "go21", "floor"):
                g = vals.get(k)
                if isinstance(o, (int, float)) and isinstance(g, (int, float)) and g:
                    rat.setdefault(metric, {"target": target, "verdict": verdict(target, vals)})[f"ours/{k}"] = round(o / g, 3)
        r["ratios"] = rat


# ------------------------------------------------------------------------------------------------
def main():
    if os.geteuid() != 0:
        raise SystemExit("bench: FAILED: run as root (containerd, runc)")
    lines = []

    def on_signal(sig, _):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    results = {}
    t_all = time.time()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg(),
            "knobs": {"samples": SAMPLES, "exec_samples": EXEC_SAMPLES, "idle": IDLE, "start_samples": START_SAMPLES,
                      "stdout_runs": STDOUT_RUNS, "stdout_bytes": STDOUT_BYTES, "execs": EXECS, "exec_par": EXEC_PAR, "execmem_runtimes": EXECMEM_RUNTIMES,
                      "phases": PHASES, "lines": LINES, "ours_runtime": OURS_RT,
                      "probe": {"pods": PROBE_PODS, "period_s": PROBE_PERIOD, "seconds": PROBE_SECONDS, "idle_s": PROBE_IDLE,
                                "settle_s": PROBE_SETTLE, "group": PROBE_GROUP, "modes": PROBE_MODES}}}
    try:
        for name in LINES:
            L = Line(name)
            lines.append(L)
            t0 = time.time()
            L.start()
            r = {"containerd": first_line([L.containerd, "--version"]), "runc": first_line([L.runc, "--version"]),
                 "runtimes": {x.key: {"runtime": x.name, "binary": x.binary} for x in L.runtimes}}
            results[name] = r
            try:
                if "latency" in PHASES:
                    phase_latency(L, r)
                if "exec" in PHASES or "execmem" in PHASES:
                    phase_exec(L, r)
                if "idle" in PHASES:
                    phase_idle(L, r)
                if "start" in PHASES:
                    phase_start(L, r)
                if "stdout" in PHASES:
                    phase_stdout(L, r)
                if "probe" in PHASES:
                    phase_probe(L, r)
            finally:
                L.stop()
            r["seconds"] = round(time.time() - t0)
            log(f"[{name}] done in {r['seconds']} s")
    finally:
        for L in lines:
            L.stop()
    add_ratios(results)
    meta["seconds"] = round(time.time() - t_all)
    meta["loadavg_at_end"] = os.getloadavg()
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    out = os.path.join(REPO, "bench", "results", "latest.json")
    json.dump({**meta, "lines": results}, open(out, "w"), indent=2)
    print(table(results))
    print()
    print(f"{meta['seconds']} s; load average {meta['loadavg_at_start'][0]:.1f} at start, {meta['loadavg_at_end'][0]:.1f} at end; "
          f"all samples in {os.path.relpath(out, REPO)}")


if __name__ == "__main__":
    main()
