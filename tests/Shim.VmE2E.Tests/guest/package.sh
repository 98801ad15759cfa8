#!/bin/bash
# Runs INSIDE the systemd guest of scripts/vm/run.sh (RCS_VM_SUITE=package): the shim installed
# and upgraded as a node operator does it, with the system's containerd (Debian's 1.6, run by
# systemd from /usr/bin, its config in /etc/containerd) and apt:
#   1. `apt install ./<previous release>.deb`, the 1.6 example drop-in into /etc/containerd/conf.d
#      (plus the imports line 1.6 needs in config.toml), `systemctl restart containerd`, two
#      containers u1 and u2 started by the previous release's shim;
#   2. `apt install ./<this release>.deb` over it with u1 and u2 running, `systemctl restart
#      containerd`: containerd reconnects to the old shims; exec, pause/resume, metrics, kill and
#      delete work on u1; u2's old shim is SIGKILLed and containerd's cleanup runs the new
#      binary's `delete`; a new container and a CRI pod (handler runcsharp) run the new binary;
#   3. `apt remove runcsharp` leaves no file behind.
# One result line per check goes to $RCS_VM_OUT/results.tsv as in checks.sh (line "1.6").
#
# Usage: package.sh REPO OLD.deb NEW.deb
# Environment: RCS_VM_CRI (the rcs-cri binary), RCS_VM_OUT (set by run.sh).
set -u
repo=${1:?package.sh REPO OLD.deb NEW.deb}; old_deb=${2:?}; new_deb=${3:?}
out=${RCS_VM_OUT:?not in the VM}
cri=${RCS_VM_CRI:-$repo/tests/Shim.VmE2E.Tests/CriTool/bin/publish/rcs-cri}
results=$out/results.tsv
: > "$results"
line=1.6 line_start=$SECONDS ns=upg shim=/usr/bin/containerd-shim-runcsharp-v2
# shellcheck source=common.sh
. "$repo/tests/Shim.VmE2E.Tests/guest/common.sh"
C() { ctr -n $ns "$@"; }
task_status() { C task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
# the pid of the shim serving container $1 (namespace upg): the parent of its init, as the shim is
# its subreaper
shim_pid() { local init; init=$(C task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}'); parent_of "$init"; }
parent_of() { [ -n "$1" ] && awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
exe_of() { readlink "/proc/$1/exe" 2>&1; }
revision() { "$shim" -v 2>&1 | awk '/Revision:/ {print $2}'; }
export DEBIAN_FRONTEND=noninteractive
# apt as the operator types it, but reading none of the host's package lists (tens of MB parsed
# under TCG took 5 min; the guest has no network and the .deb's dependencies are installed), and
# man-db's trigger not rebuilding its index for the new page (minutes under TCG; the page itself
# is checked by PackageTests)
mkdir -p /tmp/apt-lists/partial
apt() { command apt -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=/tmp/apt-lists "$@"; }
rm -f /var/lib/man-db/auto-update   # what man-db's postinst does for man-db/auto-update=false
# what a package could leave: the folders dpkg writes into, and dpkg's own records of the package
# (less /etc/cni: containerd's CRI plugin makes its CNI conf_dir, /etc/cni/net.d, when it starts)
snapshot() { find /etc /usr/bin /usr/sbin /usr/local /usr/share/doc /usr/share/man/man8 /usr/share/lintian /opt -path /etc/cni -prune -o -print 2>/dev/null | sort; ls /var/lib/dpkg/info/runcsharp.* 2>/dev/null; }
snapshot > "$out/files.before"

# the busybox rootfs of checks.sh
rootfs=/tmp/rcs-rootfs
make_rootfs "$rootfs"

# the guest's systemd masks containerd.service (scripts/vm/guest/systemd.sh: boot time); an
# operator's host has it as the package installed it
rm -f /run/systemd/system/containerd.service && systemctl daemon-reload
restart_containerd() {
  local t0=$SECONDS
  systemctl restart containerd || return 1
  wait_for 120 'ctr version >/dev/null 2>&1' || return 1
  echo "$((SECONDS - t0))"
}

# --- 1. the previous release, as a user installs it
old_rev=$(dpkg-deb -f "$old_deb" Version)
t0=$SECONDS; o=$(apt install -y "$old_deb" 2>&1); rc=$?; took=$((SECONDS - t0))
echo "$o" > "$out/apt-install-old.log"
check upgrade.old-installed '[ $rc = 0 ] && [ "$(dpkg-query -W -f "\${Version}" runcsharp 2>&1)" = "$old_rev" ] && [ -x $shim ]' \
  "apt install $old_deb: rc $rc in $took s; installed $(dpkg-query -W -f '${Version}' runcsharp 2>&1); $shim -v: $("$shim" -v 2>&1 | tr '\n' ' ')"
old_commit=$(revision)

mkdir -p /etc/containerd/conf.d
cp /usr/share/doc/runcsharp/examples/containerd-1.6.toml /etc/containerd/conf.d/runcsharp.toml
cp /etc/containerd/config.toml "$out/config.toml.orig"
# 1.6 imports nothing by itself: the one line its main file needs, before any table
sed -i '1i imports = ["/etc/containerd/conf.d/*.toml"]' /etc/containerd/config.toml
took=$(restart_containerd); rc=$?
dump=$(containerd config dump 2>&1)
check package.containerd-restart '[ $rc = 0 ] && [[ "$dump" == *"runtimes.runcsharp]"* ]] && [[ "$dump" == *"runtimes.runc]"* ]]' \
  "systemctl restart containerd: rc $rc in ${took:-?} s; config dump: $(printf '%s' "$dump" | grep -A1 'runtimes\.' | tr -s ' \n' '  ')"

for id in u1 u2; do
  C run -d --runtime io.containerd.runcsharp.v2 --env PATH=/bin --rootfs "$rootfs" $id /bin/sleep 3000 > "$out/$id.out" 2>&1
done
wait_for 60 '[ "$(task_status u1)" = RUNNING ] && [ "$(task_status u2)" = RUNNING ]'
u1_shim=$(shim_pid u1) u2_shim=$(shim_pid u2)
u2_init=$(C task ls 2>/dev/null | awk '$1 == "u2" {print $2}')
check upgrade.old-running '[ "$(task_status u1)" = RUNNING ] && [ "$(task_status u2)" = RUNNING ] && [ -n "$u1_shim" ] && [ -n "$u2_shim" ]' \
  "u1 $(task_status u1) (shim ${u1_shim:-none}), u2 $(task_status u2) (shim ${u2_shim:-none}, init ${u2_init:-none}); old commit $old_commit; $(cat "$out"/u?.out | tr '\n' ' ')"

# --- 2. this release over it, the containers running
new_rev=$(dpkg-deb -f "$new_deb" Version)
t0=$SECONDS; o=$(apt install -y "$new_deb" 2>&1); rc=$?; took=$((SECONDS - t0))
echo "$o" > "$out/apt-install-new.log"
new_commit=$(revision)
check upgrade.binary-replaced '[ $rc = 0 ] && [ "$(dpkg-query -W -f "\${Version}" runcsharp 2>&1)" = "$new_rev" ] && [ "$new_commit" != "$old_commit" ] && [[ "$(exe_of $u1_shim)" == *"(deleted)"* ]] && [ "$(task_status u1)" = RUNNING ]' \
  "apt install $new_deb: rc $rc in $took s; installed $(dpkg-query -W -f '${Version}' runcsharp 2>&1); revision $old_commit -> $new_commit; u1's shim runs $(exe_of "$u1_shim"); u1 $(task_status u1)"
took=$(restart_containerd); rc=$?
C events > "$out/events.log" 2>&1 &
epid=$!
sleep 0.5
check upgrade.reconnect '[ $rc = 0 ] && [ "$(task_status u1)" = RUNNING ] && [ "$(task_status u2)" = RUNNING ] && [ "$(shim_pid u1)" = "$u1_shim" ]' \
  "containerd restarted (rc $rc, ${took:-?} s): u1 $(task_status u1) shim $(shim_pid u1) (was $u1_shim), u2 $(task_status u2)"

o=$(C task exec --exec-id e1 u1 /bin/sh -c 'echo exec-ok; exit 3' 2>&1); rc=$?
check upgrade.exec '[ $rc = 3 ] && [ "$o" = exec-ok ]' "old shim, new daemon: rc $rc, output: $o"
C task pause u1 > "$out/pause.out" 2>&1; paused=$(task_status u1)
C task resume u1 >> "$out/pause.out" 2>&1; resumed=$(task_status u1)
check upgrade.pause-resume '[ "$paused" = PAUSED ] && [ "$resumed" = RUNNING ]' "after pause: $paused, after resume: $resumed; $(cat "$out/pause.out")"
m=$(C task metrics --format json u1 2>&1); rc=$?
check upgrade.metrics '[ $rc = 0 ] && [[ "$m" == *'"'"'"memory"'"'"'* ]] && [[ "$m" == *'"'"'"pids"'"'"'* ]]' "rc $rc: $(printf '%s' "$m" | head -c 400)"
C task kill -s SIGKILL u1 > /dev/null 2>&1
wait_for 30 '[ "$(task_status u1)" = STOPPED ]'
killed=$(task_status u1)
o=$(C task delete u1 2>&1); rc=$?
C container delete u1 > /dev/null 2>&1
wait_for 20 '! kill -0 $u1_shim 2>/dev/null'
check upgrade.kill-delete '[ "$killed" = STOPPED ] && [ $rc = 0 ] && [ -z "$(task_status u1)" ] && ! kill -0 $u1_shim 2>/dev/null' \
  "after SIGKILL: $killed; task delete rc $rc: $o; old shim $u1_shim $(kill -0 "$u1_shim" 2>/dev/null && echo 'still runs' || echo gone)"

# u2: its old shim dies; containerd cleans up with the binary on disk now, the new one (`delete`
# in the bundle: runc delete --force, unmount, the exit status the old shim kept)
kill -9 "$u2_shim"
wait_for 60 '[ "$(task_status u2)" != RUNNING ]'
wait_for 30 'grep -q "/tasks/exit.*u2" "$out/events.log"'
left=""
[ -n "$u2_init" ] && kill -0 "$u2_init" 2>/dev/null && left+="init $u2_init still runs; "
[ -e /run/containerd/runc/$ns/u2 ] && left+="runc state /run/containerd/runc/$ns/u2; "
[ -e /run/containerd/io.containerd.runtime.v2.task/$ns/u2 ] && left+="bundle /run/containerd/io.containerd.runtime.v2.task/$ns/u2; "
grep -q "/u2/rootfs" /proc/self/mountinfo && left+="rootfs mounted; "
cleanup=$(journalctl -b -q --no-pager -u containerd 2>&1 | grep -i 'u2' | grep -iE 'cleanup|clean up|dead shim|disconnect' | tail -n 3)
check upgrade.killed-shim-cleanup '[ -z "$left" ] && grep -q "/tasks/exit.*u2" "$out/events.log" && ! [[ "$cleanup" == *"level=error"* ]]' \
  "${left:-nothing left}; status '$(task_status u2)'; exit event: $(grep '/tasks/exit.*u2' "$out/events.log" | tail -n1); containerd: $cleanup"
C task delete u2 > /dev/null 2>&1; C container delete u2 > /dev/null 2>&1

C run -d --runtime io.containerd.runcsharp.v2 --env PATH=/bin --rootfs "$rootfs" n1 /bin/sleep 3000 > "$out/n1.out" 2>&1
wait_for 30 '[ "$(task_status n1)" = RUNNING ]'
n1_shim=$(shim_pid n1)
check upgrade.new-container-new-binary '[ "$(task_status n1)" = RUNNING ] && [ -n "$n1_shim" ] && [ "$(exe_of $n1_shim)" = $shim ]' \
  "n1 $(task_status n1), its shim $n1_shim runs $(exe_of "$n1_shim") ($new_commit); $(cat "$out/n1.out")"
C task kill -s SIGKILL n1 > /dev/null 2>&1; wait_for 30 '[ "$(task_status n1)" = STOPPED ]'
C task delete n1 > /dev/null 2>&1; C container delete n1 > /dev/null 2>&1

# a CRI pod with the handler of the drop-in (1.6's default sandbox image is registry.k8s.io/pause:3.6:
# an image of ours under that name, the guest has no network)
K="ctr -n k8s.io"
python3 "$repo/tests/Shim.VmE2E.Tests/guest/oci-image.py" "$rootfs" localhost/rcs/busybox:1 /tmp/busybox.tar
python3 "$repo/tests/Shim.VmE2E.Tests/guest/oci-image.py" "$rootfs" registry.k8s.io/pause:3.6 /tmp/pause.tar /bin/sleep 2147483647
$K images import /tmp/busybox.tar > /dev/null && $K images import /tmp/pause.tar > /dev/null
pod= app= app_pid= kv
for i in 1 2 3; do o=$("$cri" /run/containerd/containerd.sock up rcs-pod runcsharp /rcs-pods 2>&1) && break; sleep 2; done
for kv in $o; do case $kv in pod=*) pod=${kv#*=} ;; app=*) app=${kv#*=} ;; app_pid=*) app_pid=${kv#*=} ;; esac; done
pod_shim=$(parent_of "${app_pid:-}")
check package.cri-pod '[ -n "$app" ] && [ -n "$pod_shim" ] && [ "$(exe_of $pod_shim)" = $shim ]' "rcs-cri up (handler runcsharp): $o; the pod's shim ${pod_shim:-none} runs $(exe_of "${pod_shim:-0}")"
[ -n "$pod" ] && "$cri" /run/containerd/containerd.sock down "$pod" > "$out/cri-down.out" 2>&1
[ -n "$pod_shim" ] && wait_for 30 '! kill -0 $pod_shim 2>/dev/null'
kill $epid 2>/dev/null

# --- 3. the operator takes the drop-in back and removes the package
rm -f /etc/containerd/conf.d/runcsharp.toml; rmdir /etc/containerd/conf.d
cp "$out/config.toml.orig" /etc/containerd/config.toml
listed=$(dpkg -L runcsharp 2>/dev/null)
t0=$SECONDS; o=$(apt remove -y runcsharp 2>&1); rc=$?; took=$((SECONDS - t0))
echo "$o" > "$out/apt-remove.log"
snapshot > "$out/files.after"
left=""
for f in $listed; do [ -f "$f" ] || [ -L "$f" ] && left+="$f "; done
[ -d /usr/share/doc/runcsharp ] && left+="/usr/share/doc/runcsharp/ "
changed=$(diff "$out/files.before" "$out/files.after" | grep '^[<>]' | head -n 20 | tr '\n' ' ')
status=$(dpkg-query -W -f '${db:Status-Abbrev}' runcsharp 2>&1)
check package.remove-leaves-nothing '[ $rc = 0 ] && [ -z "$left" ] && [ -z "$changed" ] && [[ "$status" != ii* ]]' \
  "apt remove: rc $rc in $took s; status '$status'; files of the package left: ${left:-none}; differences from before install: ${changed:-none} ($(wc -l < "$out/files.before") paths compared)"
systemctl stop containerd
record teardown PASS "done in $((SECONDS - line_start)) s"
echo "package: $(grep -c $'\tPASS\t' "$results") passed, $(grep -c $'\tFAIL\t' "$results") failed"
grep $'\tFAIL\t' "$results"
exit 0
