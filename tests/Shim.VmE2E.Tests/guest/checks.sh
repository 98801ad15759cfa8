#!/bin/bash
# Runs INSIDE the cgroup v2 guest of scripts/vm/run.sh (plain or systemd mode): for each containerd
# line given, a private containerd (CRI on) with the runtime under test, the cgroup v2 checks
# through ctr, then a CRI pod through rcs-cri. One result line per check goes to
# $RCS_VM_OUT/results.tsv:
#   <line> TAB <check id> TAB PASS|FAIL TAB <what was seen>
# tests/Shim.VmE2E.Tests asserts each line on the host. Logs (containerd, events, metrics) go to
# $RCS_VM_OUT/<line>/; the host keeps them when a check failed.
#
# Usage: checks.sh REPO LINE...      (LINE: 1.6 | 2.1, as in RCS_CONTAINERD)
# Environment: RCS_E2E_RUNTIME (default io.containerd.runcsharp.v2), RCS_VM_MODE (plain|systemd),
#   RCS_VERSIONS_DIR (default /var/cache/runcsharp-versions), RCS_VM_CRI (the rcs-cri binary),
#   RCS_VM_BINARIES (default runc): the runtime binaries each line runs the checks with, in turn;
#   "crun" is $RCS_CRUN (scripts/fetch-versions.sh) given as the runc option BinaryName (ctr's
#   options file or --runc-binary, the CRI handler's options), and its results are recorded under
#   the line "<LINE>-crun" (runc's under "<LINE>", as before).
set -u
repo=${1:?checks.sh REPO LINE...}; shift
# shellcheck source=common.sh
. "$repo/tests/Shim.VmE2E.Tests/guest/common.sh"
guest_start
rootfs=/tmp/rcs-rootfs
make_rootfs "$rootfs" || { echo "checks: no rootfs"; exit 1; }

# run_line LINE [BINARY]: BINARY runc (the one on containerd's PATH) or crun (BinaryName $RCS_CRUN)
run_line() {
  line=$1
  local binary=${2:-runc} bin runc_dir ctrbin dir=/tmp/rcs-$1 ns=vm binary_name= sub=
  case $line in
    1.6) bin=/usr/bin; runc_dir=/usr/sbin ;;
    2.1) bin=$RCS_CONTAINERD_2_1_BIN; runc_dir=$(dirname "$RCS_RUNC") ;;
    *) record setup FAIL "unknown line $line"; return ;;
  esac
  if [ "$binary" != runc ]; then
    line=$1-$binary dir=/tmp/rcs-$1-$binary
    case $binary in
      crun) binary_name=${RCS_CRUN:-} ;;
    esac
    if [ ! -x "$binary_name" ]; then record setup FAIL "no $binary binary (RCS_CRUN in $versions/versions.env: run scripts/fetch-versions.sh)"; return; fi
  fi
  mkdir -p "$dir"/{root,state,shims} "$out/$line"
  ctrbin=$bin/ctr
  ln -sf "$repo/dist/containerd-shim-runcsharp-v2" "$dir/shims/containerd-shim-runcsharp-v2"
  local v3=0; [ "${line%%.*}" -ge 2 ] && v3=1
  local systemd=false; [ "$mode" = systemd ] && systemd=true
  mkdir -p "$dir/cni"
  # CRI: one handler "rcs" for the runtime under test; its options reach our shim as
  # runtimeoptions.v1 (TOML text) and the Go shim as runc options. Host-network pods only.
  if [ $v3 = 1 ]; then
    { config_head 3 "$dir"; cat <<TOML
[plugins]
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "localhost/rcs/pause:1"
  [plugins.'io.containerd.cri.v1.runtime']
    enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "rcs"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.rcs]
    runtime_type = "$runtime"
    $([ "$runtime" = io.containerd.runc.v2 ] || echo "runtime_path = \"$repo/dist/containerd-shim-runcsharp-v2\"")
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.rcs.options]
    SystemdCgroup = $systemd
    ShimCgroup = "/rcs-shims"
    $([ -z "$binary_name" ] || echo "BinaryName = \"$binary_name\"")
TOML
    } > "$dir/config.toml"
  else
    local cri='plugins."io.containerd.grpc.v1.cri"' opts
    # 1.6 decodes a handler's [options] into the runtime_type's own options type; for any type but
    # runc's that is runtimeoptions.v1, of which only ConfigPath/ConfigBody survive (1.7+ pass the
    # whole table as ConfigBody): SystemdCgroup and ShimCgroup go into a file named by ConfigPath
    if [ "$runtime" = io.containerd.runc.v2 ]; then
      opts=$(printf 'SystemdCgroup = %s\n          ShimCgroup = "/rcs-shims"' $systemd)
      [ -z "$binary_name" ] || opts+=$(printf '\n          BinaryName = "%s"' "$binary_name")
    else
      printf 'SystemdCgroup = %s\nShimCgroup = "/rcs-shims"\n' $systemd > "$dir/cri-options.toml"
      [ -z "$binary_name" ] || printf 'BinaryName = "%s"\n' "$binary_name" >> "$dir/cri-options.toml"
      opts="ConfigPath = \"$dir/cri-options.toml\""
    fi
    { config_head 2 "$dir"; cat <<TOML
[plugins]
  [$cri]
    sandbox_image = "localhost/rcs/pause:1"
    [$cri.cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$dir/cni"
    [$cri.containerd]
      default_runtime_name = "rcs"
      [$cri.containerd.runtimes.rcs]
        runtime_type = "$runtime"
        [$cri.containerd.runtimes.rcs.options]
          $opts
TOML
    } > "$dir/config.toml"
  fi
  mkdir -p /sys/fs/cgroup/rcs-shims
  local t0=$SECONDS
  line_start=$SECONDS
  PATH="$dir/shims:$runc_dir:$bin:$PATH" "$bin/containerd" --config "$dir/config.toml" > "$out/$line/containerd.log" 2>&1 &
  local cpid=$!
  C() { "$ctrbin" --address "$dir/c.sock" -n $ns "$@"; }
  if ! wait_for 120 'C version >/dev/null 2>&1'; then
    record setup FAIL "containerd $line did not answer within 120 s: $(tail -n 5 "$out/$line/containerd.log")"
    kill $cpid; return
  fi
  record setup PASS "containerd $line up in $((SECONDS - t0)) s; runtime $runtime; mode $mode; ctr $ctrbin; binary ${binary_name:-runc from PATH}$([ -z "$binary_name" ] || echo " ($("$binary_name" --version 2>&1 | head -n1))")"
  C events > "$out/$line/events.log" 2>&1 &
  local epid=$!
  sleep 0.5

  # the container's cgroup and the arguments that put it there, per mode. Under the systemd driver
  # crun puts the container in a sub-cgroup of its scope, "container" on cgroup v2 (crun(1),
  # annotation run.oci.systemd.subgroup: "If not specified, it defaults to container on cgroup v2");
  # the scope is systemd's, the sub-cgroup is where the processes, limits and freezer are
  local cgopt=() cg
  sub=; [ "$binary" = crun ] && [ "$mode" = systemd ] && sub=/container
  cgroup_of() { if [ "$mode" = systemd ]; then echo "/sys/fs/cgroup/system.slice/rcs-$1.scope$sub"; else echo "/sys/fs/cgroup/$ns/$1"; fi; }
  # ctr sets SystemdCgroup and BinaryName itself (--runc-systemd-cgroup, --runc-binary) only for
  # io.containerd.runc.v2 (in 1.6 and 2.1 alike); any other runtime gets an options file
  # (runtimeoptions.v1 config_path)
  : > "$dir/systemd.toml"
  [ "$mode" = systemd ] && printf 'SystemdCgroup = true\n' >> "$dir/systemd.toml"
  [ -z "$binary_name" ] || printf 'BinaryName = "%s"\n' "$binary_name" >> "$dir/systemd.toml"
  # cgargs ID [RUNTIME]: the cgroup (and binary) arguments of `ctr run` for the runtime under test (or RUNTIME)
  cgargs() {
    if [ "${2:-$runtime}" = io.containerd.runc.v2 ]; then
      [ -z "$binary_name" ] || echo "--runc-binary $binary_name"
      [ "$mode" = systemd ] && echo "--runc-systemd-cgroup --cgroup system.slice:rcs:$1"
    else
      [ -s "$dir/systemd.toml" ] && echo "--runtime-config-path $dir/systemd.toml"
      [ "$mode" = systemd ] && echo "--cgroup system.slice:rcs:$1"
    fi
    return 0
  }
  R() { local id=$1; shift; C run --runtime "$runtime" --env PATH=/bin $(cgargs "$id") "$@"; }
  task_status() { C task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }

  if [ "${RCS_VM_SUITE:-checks}" = oom-loop ]; then
    oom_loop "$runtime" oom.loop
    sigkill_no_oom
    # containerd's own shim in the same loop, for comparison (recorded, never failed)
    [ "$runtime" = io.containerd.runc.v2 ] || oom_loop io.containerd.runc.v2 oom.loop.containerd-shim
    kill $epid 2>/dev/null
    kill $cpid; wait $cpid 2>/dev/null
    record teardown PASS "line $line done in $((SECONDS - t0)) s"
    return
  fi

  # --- run: the container sees itself in its own cgroup (ctr gives it no cgroup namespace)
  local o rc
  o=$(R r1 --rm --rootfs "$rootfs" r1 /bin/sh -c 'cat /proc/self/cgroup; echo ok' 2>&1); rc=$?
  cg=$(cgroup_of r1)
  check run '[ $rc = 0 ] && [ "$o" = "0::${cg#/sys/fs/cgroup}"$'"'"'\n'"'"'ok ]' "rc $rc, output: $o (expected 0::${cg#/sys/fs/cgroup}, ok)"

  # --- OOM: 32 MiB limit, 200 MiB wanted; TaskOOM must come before TaskExit
  R oom1 -d --memory-limit 33554432 --rootfs "$rootfs" oom1 /bin/sh -c 'a=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived' > "$out/$line/oom1.out" 2>&1
  wait_for 120 '[ "$(task_status oom1)" != RUNNING ]'
  cg=$(cgroup_of oom1)
  if [ "$mode" = systemd ]; then
    # systemd stops a transient scope (and removes its cgroup) once it is empty: what stays is
    # what systemd saw in the scope's memory.events, in its journal
    local said; said=$(journalctl -b -q --no-pager -u rcs-oom1.scope 2>&1 | grep -i oom)
    check oom.systemd-saw-it '[ -n "$said" ]' "journal of rcs-oom1.scope: ${said:-no OOM line: $(journalctl -b -q --no-pager -u rcs-oom1.scope 2>&1 | tail -n 3)}"
  else
    local kills; kills=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.events" 2>/dev/null)
    check oom.memory-events '[ "${kills:-0}" -ge 1 ]' "$cg/memory.events: $(tr '\n' ' ' < "$cg/memory.events" 2>&1)"
  fi
  [ -n "$(task_status oom1)" ] && wait_for 30 'grep -q "/tasks/exit.*oom1" "$out/$line/events.log"'
  local order; order=$(grep -E '/tasks/(oom|exit)' "$out/$line/events.log" | grep oom1 | awk '{for (i=1;i<=NF;i++) if ($i ~ /^\/tasks\//) print $i}' | tr '\n' ' ')
  check oom.event-before-exit '[ "${order%% *}" = /tasks/oom ] && [[ "$order" == *"/tasks/exit"* ]]' "events for oom1 in order: $order"
  local st; st=$(C task delete oom1 2>&1)
  check oom.exit-status '[[ "$st" == *137* ]] || grep -q "/tasks/exit.*exit_status.*137" "$out/$line/events.log"' "task delete: $st; exit event: $(grep '/tasks/exit.*oom1' "$out/$line/events.log")"
  C container delete oom1 >/dev/null 2>&1

  # --- a long-running container: exec, metrics, pause/resume, kill --all, delete
  R c1 -d --privileged --rootfs "$rootfs" c1 /bin/sh -c 'dd if=/dev/vda of=/dev/null bs=64k count=64 2>/dev/null; exec sleep 600' > "$out/$line/c1.out" 2>&1
  cg=$(cgroup_of c1)
  if [ "$(task_status c1)" != RUNNING ]; then
    for id in cgroup.placement systemd.scope-active exec exec.stdin exec.tty metrics.memory metrics.cpu metrics.pids metrics.io pause resume kill-all; do
      [ $id = systemd.scope-active ] && [ "$mode" != systemd ] && continue
      record $id FAIL "container c1 did not start: $(tr '\n' ' ' < "$out/$line/c1.out")"
    done
  else
  local pid; pid=$(C task ls 2>/dev/null | awk '$1 == "c1" {print $2}')
  local where; where=$(cat "/proc/$pid/cgroup" 2>&1)
  check cgroup.placement '[ "$where" = "0::${cg#/sys/fs/cgroup}" ]' "init pid $pid is in $where; expected 0::${cg#/sys/fs/cgroup}"
  if [ "$mode" = systemd ]; then
    local unit; unit=$(systemctl show -p ActiveState -p ControlGroup "rcs-c1.scope" 2>&1 | tr '\n' ' ')
    check systemd.scope-active '[[ "$unit" == *"ActiveState=active"* ]]' "systemctl show rcs-c1.scope: $unit"
  fi
  o=$(C task exec --exec-id e1 c1 /bin/sh -c 'echo exec-ok; exit 3' 2>&1); rc=$?
  check exec '[ $rc = 3 ] && [ "$o" = exec-ok ]' "rc $rc, output: $o"
  # exec with stdin (ctr copies its own stdin in and closes it at EOF) and with a terminal (under
  # script(1), so ctr has a pty of its own to put in raw mode and the exec gets /dev/pts/N)
  local want=$'in-1\nin-2'
  o=$(printf 'in-1\nin-2\n' | timeout 120 "$ctrbin" --address "$dir/c.sock" -n $ns task exec --exec-id e3 c1 /bin/sh -c 'cat; exit 4' 2>&1); rc=$?
  check exec.stdin '[ $rc = 4 ] && [ "$o" = "$want" ]' "rc $rc, output: $o"
  o=$(timeout 120 script -qefc "$ctrbin --address $dir/c.sock -n $ns task exec -t --exec-id e4 c1 /bin/sh -c 'tty; exit 5'" /dev/null < /dev/null 2>&1); rc=$?
  check exec.tty '[ $rc = 5 ] && [[ "$o" == */dev/pts/* ]]' "rc $rc, output: $(printf '%s' "$o" | tr -d '\r')"
  wait_for 20 '[ -n "$(cat $cg/io.stat 2>/dev/null)" ]'
  C task metrics --format json c1 > "$out/$line/metrics.json" 2>&1
  local m; m=$(python3 - "$out/$line/metrics.json" <<'PY'
import json, sys
raw = open(sys.argv[1]).read()
try:
    d = json.loads(raw[raw.index("{"):])
except Exception as e:
    print("memory=- cpu=- pids=- io=- unparsable:", raw[:300].replace("\n", " ")); sys.exit()
def find(o, *path):
    for p in path:
        if isinstance(o, dict):
            o = {k.lower(): v for k, v in o.items()}.get(p)
        else:
            return None
    return o
io = find(d, "io", "usage") or []
print("memory=%s cpu=%s pids=%s io=%s" % (find(d, "memory", "usage"), find(d, "cpu", "usage_usec"),
      find(d, "pids", "current"), sum(int(e.get("rbytes", 0)) for e in io)))
PY
)
  local mem cpu pids iob; for kv in $m; do case $kv in memory=*) mem=${kv#*=} ;; cpu=*) cpu=${kv#*=} ;; pids=*) pids=${kv#*=} ;; io=*) iob=${kv#*=} ;; esac; done
  isnum() { [[ "$1" =~ ^[0-9]+$ ]]; }
  check metrics.memory 'isnum "${mem:-}" && [ "$mem" -gt 0 ]' "$m; memory.current $(cat $cg/memory.current 2>&1)"
  check metrics.cpu 'isnum "${cpu:-}" && [ "$cpu" -gt 0 ]' "$m"
  check metrics.pids 'isnum "${pids:-}" && [ "$pids" -ge 1 ]' "$m; pids.current $(cat $cg/pids.current 2>&1)"
  check metrics.io 'isnum "${iob:-}" && [ "$iob" -gt 0 ]' "$m; io.stat $(tr '\n' ' ' < $cg/io.stat 2>&1)"

  C task pause c1 > /dev/null 2>&1
  wait_for 20 'grep -q "^frozen 1" $cg/cgroup.events'
  check pause '[ "$(cat $cg/cgroup.freeze)" = 1 ] && grep -q "^frozen 1" $cg/cgroup.events && [ "$(task_status c1)" = PAUSED ]' \
    "cgroup.freeze $(cat $cg/cgroup.freeze 2>&1), $(grep frozen $cg/cgroup.events 2>&1), status $(task_status c1)"
  C task resume c1 > /dev/null 2>&1
  wait_for 20 'grep -q "^frozen 0" $cg/cgroup.events'
  check resume '[ "$(cat $cg/cgroup.freeze)" = 0 ] && grep -q "^frozen 0" $cg/cgroup.events && [ "$(task_status c1)" = RUNNING ]' \
    "cgroup.freeze $(cat $cg/cgroup.freeze 2>&1), $(grep frozen $cg/cgroup.events 2>&1), status $(task_status c1)"

  # kill --all: the init and an exec die together, each with its exit event
  C task exec -d --exec-id e2 c1 /bin/sleep 500 > /dev/null 2>&1
  wait_for 20 '[ "$(wc -l < $cg/cgroup.procs)" -ge 2 ]'
  local before; before=$(wc -l < "$cg/cgroup.procs")
  C task kill --all -s SIGKILL c1 > /dev/null 2>&1
  wait_for 30 '[ "$(task_status c1)" = STOPPED ]'
  wait_for 10 'grep -q "/tasks/exit.*c1.*\"e2\"\|/tasks/exit.*\"e2\".*c1" "$out/$line/events.log"'
  check kill-all '[ "$(task_status c1)" = STOPPED ] && [ -z "$(cat $cg/cgroup.procs 2>/dev/null)" ] && grep -q "/tasks/exit.*e2" "$out/$line/events.log"' \
    "$before processes before; status $(task_status c1); left in cgroup: $(cat $cg/cgroup.procs 2>/dev/null | tr '\n' ' '); exit events: $(grep '/tasks/exit.*c1' "$out/$line/events.log" | awk '{print $NF}' | tr '\n' ' ')"

  fi

  # delete: nothing of c1 left (cgroup or scope, runc state, mounts)
  C task delete c1 > /dev/null 2>&1; C container delete c1 > /dev/null 2>&1
  local left=""
  [ -d "$cg" ] && left+="cgroup $cg; "
  grep -q "/c1/rootfs\|/c1 " /proc/self/mountinfo && left+="mounts: $(grep '/c1' /proc/self/mountinfo | awk '{print $5}' | tr '\n' ' '); "
  if [ "$mode" = systemd ]; then
    local ls; ls=$(systemctl show -p LoadState -p ActiveState rcs-c1.scope 2>&1 | tr '\n' ' ')
    [[ "$ls" == *"LoadState=not-found"* ]] || left+="unit: $ls; "
  fi
  check delete.nothing-left '[ -z "$left" ]' "${left:-nothing left}"

  # --- the shim's own cgroup (runc option shim_cgroup; ctr passes it to a runtime other than
  # io.containerd.runc.v2 as runtimeoptions.v1 config_path, which only our shim reads)
  if [ "$runtime" != io.containerd.runc.v2 ]; then
    printf 'ShimCgroup = "/rcs-shims"\n' > "$dir/shim-options.toml"
    [ "$mode" = systemd ] && printf 'SystemdCgroup = true\n' >> "$dir/shim-options.toml"
    [ -z "$binary_name" ] || printf 'BinaryName = "%s"\n' "$binary_name" >> "$dir/shim-options.toml"
    local sc=(); [ "$mode" = systemd ] && sc=(--cgroup "system.slice:rcs:s1")
    C run --runtime "$runtime" --env PATH=/bin --runtime-config-path "$dir/shim-options.toml" "${sc[@]}" -d --rootfs "$rootfs" s1 /bin/sleep 300 > "$out/$line/s1.out" 2>&1
    local shims=""; for p in $(cat /sys/fs/cgroup/rcs-shims/cgroup.procs 2>/dev/null); do shims+="$p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null); "; done
    check shim-cgroup '[[ "$shims" == *"-id s1"* ]] && [[ "$shims" == *"$dir/c.sock"* ]]' "in /rcs-shims: ${shims:-nothing}; $(cat "$out/$line/s1.out")"
    C task kill -s SIGKILL s1 > /dev/null 2>&1; wait_for 20 '[ "$(task_status s1)" = STOPPED ]'
    C task delete s1 > /dev/null 2>&1; C container delete s1 > /dev/null 2>&1
  fi

  cri_checks

  kill $epid 2>/dev/null
  kill $cpid; wait $cpid 2>/dev/null
  record teardown PASS "line $line done in $((SECONDS - t0)) s"
}

# --- a pod through CRI (the guest has no crictl: rcs-cri, see CriTool/), cgroupfs parent /rcs-pods
# in plain mode, rcs.slice (so CRI asks runc for systemd scopes) in systemd mode
cri_checks() {
  local K="$ctrbin --address $dir/c.sock -n k8s.io" cri=${RCS_VM_CRI:-$repo/tests/Shim.VmE2E.Tests/CriTool/bin/publish/rcs-cri}
  local all=(cri.pod-up cri.cgroup.placement cri.stats cri.update cri.pause-resume cri.oom cri.shim-cgroup cri.down.nothing-left)
  [ "$mode" = systemd ] && all+=(cri.systemd.scope-active)
  if [ ! -x "$cri" ]; then for id in "${all[@]}"; do record $id FAIL "no $cri (the test fixture publishes it)"; done; return; fi
  python3 "$repo/tests/Shim.VmE2E.Tests/guest/oci-image.py" "$rootfs" localhost/rcs/busybox:1 "$dir/busybox.tar"
  python3 "$repo/tests/Shim.VmE2E.Tests/guest/oci-image.py" "$rootfs" localhost/rcs/pause:1 "$dir/pause.tar" /bin/sleep 2147483647
  $K images import "$dir/busybox.tar" > /dev/null && $K images import "$dir/pause.tar" > /dev/null
  local parent=/rcs-pods scope_of
  [ "$mode" = systemd ] && parent=rcs.slice
  scope_of() { if [ "$mode" = systemd ]; then echo "/sys/fs/cgroup/rcs.slice/cri-containerd-$1.scope$sub"; else echo "/sys/fs/cgroup/rcs-pods/$1"; fi; }
  local o pod= app= app_pid= oom= kv
  # CRI learns of the imported images from events: give it a few tries
  for i in 1 2 3; do o=$("$cri" "$dir/c.sock" up rcs-pod rcs $parent 2>&1) && break; sleep 2; done
  for kv in $o; do case $kv in pod=*) pod=${kv#*=} ;; app=*) app=${kv#*=} ;; app_pid=*) app_pid=${kv#*=} ;; oom=*) oom=${kv#*=} ;; esac; done
  check cri.pod-up '[ -n "$app" ] && [ -n "$oom" ]' "$o"
  if [ -z "$app" ]; then for id in "${all[@]:1}"; do record $id FAIL "no pod: $o"; done; return; fi
  local cg; cg=$(scope_of "$app")
  local where; where=$(cat "/proc/$app_pid/cgroup" 2>&1)
  check cri.cgroup.placement '[ "$where" = "0::${cg#/sys/fs/cgroup}" ]' "app pid $app_pid is in $where; expected 0::${cg#/sys/fs/cgroup}"
  if [ "$mode" = systemd ]; then
    local unit; unit=$(systemctl show -p ActiveState "cri-containerd-$app.scope" 2>&1 | tr '\n' ' ')
    check cri.systemd.scope-active '[[ "$unit" == *"ActiveState=active"* ]]' "systemctl show cri-containerd-$app.scope: $unit"
  fi
  o=$("$cri" "$dir/c.sock" stats "$app" 2>&1)
  local mem= cpu=; for kv in $o; do case $kv in memory=*) mem=${kv#*=} ;; cpu=*) cpu=${kv#*=} ;; esac; done
  check cri.stats '[[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -gt 0 ] && [[ "$cpu" =~ ^[0-9]+$ ]] && [ "$cpu" -gt 0 ]' "$o"
  o=$("$cri" "$dir/c.sock" update "$app" 67108864 50000 100000 2>&1)
  check cri.update '[ "$(cat $cg/memory.max 2>&1)" = 67108864 ] && [ "$(cat $cg/cpu.max 2>&1)" = "50000 100000" ]' \
    "$o; memory.max $(cat $cg/memory.max 2>&1), cpu.max $(cat $cg/cpu.max 2>&1)"
  $K task pause "$app" > /dev/null 2>&1
  wait_for 20 'grep -q "^frozen 1" $cg/cgroup.events'
  local paused; paused=$(grep frozen $cg/cgroup.events 2>&1)
  $K task resume "$app" > /dev/null 2>&1
  wait_for 20 'grep -q "^frozen 0" $cg/cgroup.events'
  check cri.pause-resume '[ "$paused" = "frozen 1" ] && grep -q "^frozen 0" $cg/cgroup.events' "paused: $paused; resumed: $(grep frozen $cg/cgroup.events 2>&1)"
  wait_for 120 '"$cri" "$dir/c.sock" status "$oom" 2>/dev/null | grep -q "state=ContainerExited"'
  o=$("$cri" "$dir/c.sock" status "$oom" 2>&1)
  check cri.oom '[[ "$o" == *"state=ContainerExited exit=137 reason=OOMKilled"* ]]' "$o"
  local shims=""; for p in $(cat /sys/fs/cgroup/rcs-shims/cgroup.procs 2>/dev/null); do shims+="$p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null); "; done
  check cri.shim-cgroup '[[ "$shims" == *"-id $pod"* ]]' "in /rcs-shims: ${shims:-nothing}"
  o=$("$cri" "$dir/c.sock" down "$pod" 2>&1)
  local left=""
  for c in "$app" "$oom" "$pod"; do
    [ -d "$(scope_of "$c")" ] && left+="cgroup $(scope_of "$c"); "
    grep -q "$c" /proc/self/mountinfo && left+="mounts: $(grep "$c" /proc/self/mountinfo | awk '{print $5}' | tr '\n' ' '); "
  done
  if [ "$mode" = systemd ]; then
    local units; units=$(systemctl list-units --all --no-legend 'cri-containerd-*' 2>&1)
    [ -n "$units" ] && left+="units: $units; "
  fi
  wait_for 20 '[ -z "$(cat /sys/fs/cgroup/rcs-shims/cgroup.procs)" ]'
  [ -n "$(cat /sys/fs/cgroup/rcs-shims/cgroup.procs)" ] && left+="shims still running: $(cat /sys/fs/cgroup/rcs-shims/cgroup.procs | tr '\n' ' '); "
  check cri.down.nothing-left '[ -z "$left" ]' "$o; ${left:-nothing left}"
}

# --- RCS_VM_SUITE=oom-loop: RCS_VM_OOM_LOOPS (50) containers, each OOM-killed: `tail /dev/zero`
# as the init under a 16 MiB limit, RCS_VM_OOM_PARALLEL (5) at a time (TCG makes one `ctr run`
# cost seconds). Under the systemd driver the scope goes within milliseconds of the kill (issue 20,
# point 6); every init must exit 137 with one TaskOOM, before its TaskExit. Check ID passes when
# all did; for containerd's shim (oom.loop.containerd-shim) the figure is recorded and always passes.
oom_loop() {
  local rt=$1 id=$2 n=${RCS_VM_OOM_LOOPS:-50} k=${RCS_VM_OOM_PARALLEL:-5} i c t0=$SECONDS codes="" tag=ours pids=() p
  [ "$rt" = io.containerd.runc.v2 ] && tag=go
  for i in $(seq 1 "$n"); do
    c=oom-$tag-$i
    # shellcheck disable=SC2046
    C run --rm --runtime "$rt" --env PATH=/bin $(cgargs "$c" "$rt") --memory-limit 16777216 \
      --rootfs "$rootfs" "$c" /bin/tail /dev/zero > "$out/$line/$c.out" 2>&1 &
    pids+=($!)
    if [ ${#pids[@]} -ge "$k" ] || [ "$i" = "$n" ]; then
      # only these: a bare `wait` would wait for containerd and ctr events too
      for p in "${pids[@]}"; do wait "$p"; codes+="$? "; done
      pids=()
    fi
  done
  for c in $(seq 1 "$n"); do [ -s "$out/$line/oom-$tag-$c.out" ] || rm -f "$out/$line/oom-$tag-$c.out"; done
  # a TaskOOM behind its TaskExit is late, not lost: the last one gets a moment to arrive
  wait_for 10 'grep -q "/tasks/exit.*\"oom-$tag-$n\"" "$out/$line/events.log"'
  sleep 2
  local seen; seen=$(python3 - "$out/$line/events.log" "oom-$tag-" "$n" <<'PY'
import re, sys
log, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
order = {}
for row in open(log, errors="replace"):
    topic = next((t for t in row.split() if t.startswith("/tasks/")), None)
    m = re.search(r'"container_id":"([^"]+)"', row)
    if topic in ("/tasks/oom", "/tasks/exit") and m and m.group(1).startswith(prefix):
        order.setdefault(m.group(1), []).append(topic[len("/tasks/"):])
ok, late, lost, twice = [], [], [], []
for i in range(1, n + 1):
    seq = order.get(prefix + str(i), [])
    if "oom" in seq and "exit" in seq and seq.index("oom") < seq.index("exit"):
        ok.append(i)
    elif "oom" in seq:
        late.append(i)
    else:
        lost.append(i)
    if seq.count("oom") > 1:
        twice.append(i)
print(f"ok={len(ok)} late={len(late)} lost={len(lost)} late_runs={late} lost_runs={lost} oom_twice={twice}")
PY
)
  local okn; okn=$(printf '%s' "$seen" | sed -n 's/^ok=\([0-9]*\).*/\1/p')
  local bad; bad=$(printf '%s\n' $codes | grep -cv '^137$')
  local detail="$rt: $n OOM kills in $((SECONDS - t0)) s; TaskOOM before TaskExit: ${okn:-?}/$n; $seen; exits other than 137: $bad ($(printf '%s\n' $codes | sort | uniq -c | tr -s ' \n' '  '))"
  # our shim logs each kill it could only count from the parent (the scope went before it was read)
  [ "$rt" = io.containerd.runc.v2 ] || detail+="; counted from the parent cgroup: $(grep 'OOM kill counted from the parent' "$out/$line/containerd.log" | grep -c "id=oom-$tag-")"
  # each init is the container's only process, killed once: exactly one TaskOOM each
  if [ "$id" = oom.loop ]; then check "$id" '[ "${okn:-0}" = "$n" ] && [ "$bad" = 0 ] && [[ "$seen" == *"oom_twice=[]"* ]]' "$detail"
  else record "$id" PASS "$detail"; fi
}

# A SIGKILLed init whose scope goes at once is no OOM, though a sibling in the same slice was
# OOM-killed while it ran (the shim reads the parent's oom_kill again before it signals the init).
sigkill_no_oom() {
  R k1 -d --rootfs "$rootfs" k1 /bin/sleep 600 > "$out/$line/k1.out" 2>&1
  wait_for 30 '[ "$(task_status k1)" = RUNNING ]'
  local rc
  # shellcheck disable=SC2046
  C run --rm --runtime "$runtime" --env PATH=/bin $(cgargs oom-sib) --memory-limit 16777216 \
    --rootfs "$rootfs" oom-sib /bin/tail /dev/zero > "$out/$line/oom-sib.out" 2>&1; rc=$?
  C task kill -s SIGKILL k1 > /dev/null 2>&1
  wait_for 30 '[ "$(task_status k1)" = STOPPED ]'
  wait_for 10 'grep -q "/tasks/exit.*\"k1\"" "$out/$line/events.log"'
  sleep 1
  C task delete k1 > /dev/null 2>&1; C container delete k1 > /dev/null 2>&1
  local seen; seen=$(grep -E '/tasks/(oom|exit) .*"(k1|oom-sib)"' "$out/$line/events.log" | awk '{for (i=1;i<=NF;i++) if ($i ~ /^\/tasks\//) print $i, $(i+1)}' | cut -c1-80 | tr '\n' ' ')
  check oom.sigkill-is-no-oom '[ $rc = 137 ] && grep -q "/tasks/oom.*\"oom-sib\"" "$out/$line/events.log" && grep -q "/tasks/exit.*\"k1\".*137" "$out/$line/events.log" && ! grep -q "/tasks/oom.*\"k1\"" "$out/$line/events.log"' \
    "sibling exited $rc; events: $seen"
}

for l in "$@"; do for b in ${RCS_VM_BINARIES:-runc}; do run_line "$l" "$b"; done; done
echo "checks: $(grep -c $'\tPASS\t' "$results") passed, $(grep -c $'\tFAIL\t' "$results") failed"
grep $'\tFAIL\t' "$results"
exit 0
