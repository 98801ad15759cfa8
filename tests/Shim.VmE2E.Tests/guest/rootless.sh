#!/bin/bash
# Runs INSIDE the cgroup v2 guest of scripts/vm/run.sh (RCS_VM_SUITE=rootless): containerd run
# rootless, as Docker's and nerdctl's rootless modes run it: by the unprivileged user rcsrootless,
# inside rootlesskit (a user namespace mapping the user to root and its subordinate ids, a mount
# namespace with /etc and /run copied up, slirp4netns for the network), with the runtime under
# test, driven with ctr entered into rootlesskit's namespaces (`nsenter -U -m`, what
# `containerd-rootless-setuptool.sh nsenter` does). For each containerd line given:
#   plain guest: no cgroup is the user's. A container asking for a cgroup fails, with a clear
#     error and nothing left; one whose spec has no cgroupsPath (ctr run --config) runs.
#   systemd guest: the user's session manager (user@UID.service, whose cgroup systemd delegates to
#     the user) runs containerd as a user unit with Delegate=yes, as Docker's rootless mode runs
#     dockerd; containerd moves itself into a leaf of the unit's cgroup and enables the controllers
#     below; containers get cgroups under the unit (ctr run --cgroup), so pause, resume and metrics
#     work too.
# Results go to $RCS_VM_OUT/results.tsv as in checks.sh, under the line's name.
#
# Usage: rootless.sh REPO LINE...      (LINE: 1.6 | 2.1)
# Environment: RCS_E2E_RUNTIME (default io.containerd.runcsharp.v2), RCS_VM_MODE (plain|systemd),
#   RCS_VERSIONS_DIR (default /var/cache/runcsharp-versions).
set -u
repo=${1:?rootless.sh REPO LINE...}; shift
# shellcheck source=common.sh
. "$repo/tests/Shim.VmE2E.Tests/guest/common.sh"
guest_start

# the user: the guest's /etc is a RAM overlay of the host's, so this changes nothing on the host
user=rcsrootless
id -u $user > /dev/null 2>&1 || useradd -m -s /bin/sh $user || { record user FAIL "useradd $user failed"; exit 0; }
uid=$(id -u $user) gid=$(id -g $user) home=$(getent passwd $user | cut -d: -f6)
# what the kernel and udev's rule do on a real host (the guests load no modules and run no udev):
# the tun device is there and anyone may open it, so slirp4netns can make rootlesskit's tap
modprobe tun 2>/dev/null; chmod 0666 /dev/net/tun 2>/dev/null
as_user() { setpriv --reuid="$uid" --regid="$gid" --init-groups env HOME="$home" USER=$user "$@"; }

rootless_line() {
  line=$1 line_start=$SECONDS
  local bin runc_dir dir=/tmp/rcs-rl-$1 ns=rl
  case $line in
    1.6) bin=/usr/bin; runc_dir=/usr/sbin ;;
    2.1) bin=$RCS_CONTAINERD_2_1_BIN; runc_dir=$(dirname "$RCS_RUNC") ;;
    *) record setup FAIL "unknown line $line"; return ;;
  esac
  mkdir -p "$dir"/{root,state,shims,run} "$out/$line"
  ln -sf "$repo/dist/containerd-shim-runcsharp-v2" "$dir/shims/containerd-shim-runcsharp-v2"
  make_rootfs "$dir/rootfs"
  local disabled='"io.containerd.grpc.v1.cri"' version=2
  if [ "${line%%.*}" -ge 2 ]; then
    version=3 disabled='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"'
  fi
  config_head $version "$dir" "disabled_plugins = [$disabled]" > "$dir/config.toml"
  # runs as the user; with $4 = 1 in the unit's delegated cgroup, which it hands on: itself into a
  # leaf (cgroup v2 puts no process in a cgroup whose controllers are enabled for its children)
  cat > "$dir/launch.sh" <<'SH'
dir=$1 bin=$2 runc_dir=$3
if [ "$4" = 1 ]; then
  cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
  mkdir -p "$cg/supervisor" && echo $$ > "$cg/supervisor/cgroup.procs" || exit 1
  for c in $(cat "$cg/cgroup.controllers"); do echo "+$c" > "$cg/cgroup.subtree_control"; done
  echo "${cg#/sys/fs/cgroup}" > "$dir/cgroup"
fi
# containerd-rootless.sh's child step: the copied-up /run holds links to the host's entries;
# containerd makes its own /run/containerd (the host's is not touched)
exec rootlesskit --state-dir="$dir/rk" --net=slirp4netns --disable-host-loopback --copy-up=/etc --copy-up=/run \
  sh -c 'rm -f /run/containerd && exec "$@"' child \
  env PATH="$dir/shims:$runc_dir:$bin:$PATH" XDG_RUNTIME_DIR="$dir/run" "$bin/containerd" --config "$dir/config.toml"
SH
  chown -R "$uid:$gid" "$dir"
  local t0=$SECONDS unit=rcs-rootless-${line//./-} delegated=0 lpid=
  if [ "$mode" = systemd ]; then
    delegated=1
    # lingering, as Docker's rootless guide asks: without it logind stops the user's manager (and
    # containerd with it) 10 s after the user's last session ends
    loginctl enable-linger "$user" && systemctl start "user@$uid.service" && wait_for 60 'systemctl -q is-active "user@$uid.service"' \
      || { record setup FAIL "loginctl enable-linger $user: user@$uid.service is $(systemctl is-active "user@$uid.service")"; return; }
    systemd-run -q --user --machine="$user@.host" --unit="$unit" -p Delegate=yes \
      bash -c "exec bash $dir/launch.sh $dir $bin $runc_dir 1 > $dir/containerd.log 2>&1"
  else
    as_user bash -c "exec bash $dir/launch.sh $dir $bin $runc_dir 0 > $dir/containerd.log 2>&1" &
    lpid=$!
  fi
  child() { cat "$dir/rk/child_pid" 2>/dev/null; }
  U() { as_user nsenter -U --preserve-credentials -m -t "$(child)" "$bin/ctr" --address "$dir/c.sock" -n $ns "$@"; }
  task_status() { U task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
  stop_containerd() {
    # rootlesskit's parent (the child's parent) hands SIGTERM on to containerd
    if [ "$mode" = systemd ]; then systemctl --user --machine="$user@.host" stop "$unit"; else kill "$(awk '/^PPid:/ {print $2}' "/proc/$(child)/status")" 2>/dev/null; wait "$lpid" 2>/dev/null; fi
    cp "$dir/containerd.log" "$out/$line/containerd.log" 2>/dev/null
    [ "$mode" = systemd ] && journalctl -b -q --no-pager _UID="$uid" + _SYSTEMD_USER_UNIT="$unit" + UNIT="user@$uid.service" > "$out/$line/journal.log" 2>&1
  }
  alive() { if [ "$mode" = systemd ]; then systemctl --user --machine="$user@.host" -q is-active "$unit"; else kill -0 "$lpid" 2>/dev/null; fi; }
  wait_for 120 '{ [ -n "$(child)" ] && U version >/dev/null 2>&1; } || ! alive'
  if ! { [ -n "$(child)" ] && U version >/dev/null 2>&1; }; then
    record setup FAIL "rootless containerd $line did not answer within 120 s: $(tail -n 5 "$dir/containerd.log" | tr '\n' ' ')"
    stop_containerd; return
  fi
  local cpid; cpid=$(pgrep -u "$uid" -x containerd | head -n1)
  local cg=""; [ $delegated = 1 ] && cg=$(cat "$dir/cgroup")
  record setup PASS "rootless containerd $line up in $((SECONDS - t0)) s as uid $(awk '/^Uid:/ {print $2}' /proc/$cpid/status) (uid_map: $(tr -s ' \n' ' ' < /proc/$cpid/uid_map)); runtime $runtime; mode $mode; ${cg:+delegated cgroup $cg}"
  U events > "$out/$line/events.log" 2>&1 &
  local epid=$!
  # what ctr run needs for a container: plain, a spec of ctr's own without cgroupsPath or resources
  # (runc, and crun, refuse a cgroup they cannot create; containerd's Go client leaves no other way);
  # delegated, ctr's options with a cgroup under the unit's
  U oci spec > "$dir/base.json" 2>/dev/null
  spec() {   # spec ID ARG...: $dir/ID.json, the base spec running ARG... in the rootfs, no cgroup
    local id=$1; shift
    python3 - "$dir/base.json" "$dir/$id.json" "$dir/rootfs" "$@" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["root"] = {"path": sys.argv[3]}
s["process"]["args"], s["process"]["env"] = sys.argv[4:], ["PATH=/bin"]
s["linux"].pop("cgroupsPath", None); s["linux"].pop("resources", None)
json.dump(s, open(sys.argv[2], "w"))
PY
    chown "$uid:$gid" "$dir/$id.json"
  }
  R() {      # R ID [ctr run options...] -- ARG...
    local id=$1; shift; local opts=(); while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
    if [ $delegated = 1 ]; then U run --runtime "$runtime" --env PATH=/bin --cgroup "$cg/$id" "${opts[@]}" --rootfs "$dir/rootfs" "$id" "$@"
    else spec "$id" "$@"; U run --runtime "$runtime" "${opts[@]}" --config "$dir/$id.json" "$id"; fi
  }

  # --- a cgroup the user cannot make: a clear error, no task, no container, no shim left
  local o rc
  o=$(U run --rm --runtime "$runtime" --env PATH=/bin --rootfs "$dir/rootfs" r0 /bin/true 2>&1); rc=$?
  local left=""
  U c ls -q 2>/dev/null | grep -qx r0 && left+="container r0; "
  pgrep -u "$uid" -f -- "-id r0 -address $dir/c.sock" > /dev/null && left+="shim: $(pgrep -a -u "$uid" -f -- "-id r0 -address $dir/c.sock"); "
  [ -d "$dir/state/io.containerd.runtime.v2.task/$ns/r0" ] && left+="state $dir/state/io.containerd.runtime.v2.task/$ns/r0; "
  check no-cgroup.clear-error '[ $rc != 0 ] && [[ "$o" == *"permission denied"* ]] && [[ "$o" == */sys/fs/cgroup* ]] && [ -z "$left" ]' \
    "rc $rc, output: $o; left: ${left:-nothing}"

  # --- run: output and exit code (delegated: in its cgroup under the unit's)
  local want=ok; [ $delegated = 1 ] && want=$'0::'"$cg/r1"$'\nok'
  local cmd='echo ok; exit 3'; [ $delegated = 1 ] && cmd="cat /proc/self/cgroup; $cmd"
  o=$(R r1 --rm -- /bin/sh -c "$cmd" 2>&1); rc=$?
  check run '[ $rc = 3 ] && [ "$o" = "$want" ]' "rc $rc, output: $o (expected rc 3, $(printf '%s' "$want" | tr '\n' ' '))"

  # --- a long-running container: its log, exec with stdin, (delegated) metrics, pause and resume,
  # kill --all, delete
  R c1 -d --log-uri "file://$dir/c1.log" -- /bin/sh -c 'echo logged; exec sleep 600' > "$out/$line/c1.out" 2>&1
  if ! wait_for 60 '[ "$(task_status c1)" = RUNNING ]'; then
    for id in logs exec.stdin kill-all; do record $id FAIL "container c1 did not start: $(tr '\n' ' ' < "$out/$line/c1.out")"; done
  else
    wait_for 20 'grep -q logged "$dir/c1.log"'
    check logs 'grep -qx logged "$dir/c1.log"' "$dir/c1.log: $(head -c 300 "$dir/c1.log" 2>&1 | tr '\n' ' ')"
    local want_in=$'in-1\nin-2'
    o=$(printf 'in-1\nin-2\n' | timeout 120 setpriv --reuid="$uid" --regid="$gid" --init-groups nsenter -U --preserve-credentials -m -t "$(child)" \
        "$bin/ctr" --address "$dir/c.sock" -n $ns task exec --exec-id e1 c1 /bin/sh -c 'cat; exit 4' 2>&1); rc=$?
    check exec.stdin '[ $rc = 4 ] && [ "$o" = "$want_in" ]' "rc $rc, output: $o"
    if [ $delegated = 1 ]; then
      local ccg=/sys/fs/cgroup$cg/c1 m
      m=$(U task metrics --format json c1 2>&1 | python3 -c '
import json, sys
raw = sys.stdin.read()
try:
    d = json.loads(raw[raw.index("{"):])
except Exception:
    print("unparsable:", raw[:300].replace("\n", " ")); sys.exit()
low = lambda o: {k.lower(): v for k, v in o.items()} if isinstance(o, dict) else {}
print("memory=%s cpu=%s pids=%s" % (low(low(d).get("memory")).get("usage"), low(low(d).get("cpu")).get("usage_usec"), low(low(d).get("pids")).get("current")))')
      check metrics '[[ "$m" =~ memory=[1-9][0-9]*\ cpu=[1-9][0-9]*\ pids=[1-9] ]]' "$m; memory.current $(cat "$ccg/memory.current" 2>&1)"
      U task pause c1 > /dev/null 2>&1
      wait_for 20 'grep -q "^frozen 1" "$ccg/cgroup.events"'
      check pause 'grep -q "^frozen 1" "$ccg/cgroup.events" && [ "$(task_status c1)" = PAUSED ]' "$(grep frozen "$ccg/cgroup.events" 2>&1), status $(task_status c1)"
      U task resume c1 > /dev/null 2>&1
      wait_for 20 'grep -q "^frozen 0" "$ccg/cgroup.events"'
      check resume 'grep -q "^frozen 0" "$ccg/cgroup.events" && [ "$(task_status c1)" = RUNNING ]' "$(grep frozen "$ccg/cgroup.events" 2>&1), status $(task_status c1)"
    fi
    U task exec -d --exec-id e2 c1 /bin/sleep 500 > /dev/null 2>&1
    local said; said=$(U task kill --all -s SIGKILL c1 2>&1)
    wait_for 30 '[ "$(task_status c1)" = STOPPED ]'
    wait_for 10 'grep -q "/tasks/exit.*\"e2\"" "$out/$line/events.log"'
    check kill-all '[ "$(task_status c1)" = STOPPED ] && grep -q "/tasks/exit.*\"e2\"" "$out/$line/events.log" && grep -q "/tasks/exit.*\"c1\".*137" "$out/$line/events.log"' \
      "kill: ${said:-no error}; status $(task_status c1); exit events: $(grep '/tasks/exit' "$out/$line/events.log" | grep c1 | cut -c1-200 | tr '\n' ' ')"
  fi
  U task delete c1 > /dev/null 2>&1; U c rm c1 > /dev/null 2>&1
  left=""
  wait_for 20 '! pgrep -u "$uid" -f -- "-id c1 -address $dir/c.sock" > /dev/null'
  pgrep -u "$uid" -f -- "-id c1 -address $dir/c.sock" > /dev/null && left+="shim: $(pgrep -a -u "$uid" -f -- "-id c1 -address $dir/c.sock"); "
  [ -d "$dir/state/io.containerd.runtime.v2.task/$ns/c1" ] && left+="state $dir/state/io.containerd.runtime.v2.task/$ns/c1; "
  grep -q "/c1/\|/c1 " "/proc/$(child)/mountinfo" && left+="mounts: $(grep '/c1' "/proc/$(child)/mountinfo" | awk '{print $5}' | tr '\n' ' '); "
  [ $delegated = 1 ] && [ -d "/sys/fs/cgroup$cg/c1" ] && left+="cgroup /sys/fs/cgroup$cg/c1; "
  check delete.nothing-left '[ -z "$left" ]' "${left:-nothing left}"

  kill $epid 2>/dev/null
  stop_containerd
  # the user's processes but the session's own (systemd --user, its D-Bus): those of the user's
  # manager outside containerd's unit
  user_procs() {
    local p cg
    for p in $(pgrep -u "$uid"); do
      cg=$(cat "/proc/$p/cgroup" 2>/dev/null) || continue
      [[ "$cg" == *"/user@$uid.service/"* && "$cg" != *"/$unit.service"* ]] || ps -o pid=,args= -p "$p"
    done
  }
  wait_for 30 '[ -z "$(user_procs)" ]'
  local procs; procs=$(user_procs)
  check teardown.nothing-left '[ -z "$procs" ]' "processes of $user after containerd stopped: $(printf '%s' "$procs" | tr '\n' ';' | cut -c1-400)"
  pkill -KILL -u "$uid"   # what a failed check left, so the next line starts clean
  rm -rf "$dir"
}

for l in "$@"; do rootless_line "$l"; done
[ "$mode" = systemd ] && loginctl disable-linger "$user" && systemctl stop "user@$uid.service"
echo "rootless: $(grep -c $'\tPASS\t' "$results") passed, $(grep -c $'\tFAIL\t' "$results") failed"
grep $'\tFAIL\t' "$results"
exit 0
