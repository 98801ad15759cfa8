# Sourced by the guest scripts (checks.sh, package.sh, rootless.sh) INSIDE the guest: the result
# lines the host reads back, polling, and the busybox rootfs. Needs $results, $line, $line_start.

# record ID PASS|FAIL DETAIL: one line of $results: <line> TAB <id> TAB PASS|FAIL TAB <detail>
record() { printf '%s\t%s\t%s\t%s [at %d s]\n' "$line" "$1" "$2" "$(printf '%s' "$3" | tr '\t\n' '  ' | cut -c1-900)" $((SECONDS - line_start)) >> "$results"; }
# check ID CONDITION-COMMAND DETAIL
check() { local id=$1 detail=$3; if eval "$2"; then record "$id" PASS "$detail"; else record "$id" FAIL "$detail"; fi; }
# wait_for SECONDS COMMAND: poll (0.2 s) until COMMAND succeeds
wait_for() { local end=$((SECONDS + $1)); shift; until eval "$*"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done; }

# make_rootfs DIR: the busybox rootfs of scripts/lib/rootfs.sh, with its ~400 applet links made by
# one python3 instead of one `ln` each (every exec costs 50-75 ms under TCG)
make_rootfs() {
  mkdir -p "$1"/{bin,dev,proc,sys,tmp,etc,root,run,var} && cp /bin/busybox "$1/bin/busybox" || return 1
  python3 -c 'import os, sys; [os.symlink("busybox", sys.argv[1] + "/bin/" + a) for a in sys.argv[2:] if a != "busybox"]' \
    "$1" $(/bin/busybox --list)
  echo 'root:x:0:0:root:/root:/bin/sh' > "$1/etc/passwd"; echo 'root:x:0:' > "$1/etc/group"
  : > "$1/etc/hosts"; : > "$1/etc/resolv.conf"; chmod 1777 "$1/tmp"
}
