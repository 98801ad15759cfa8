# Sourced by the guest scripts (checks.sh, package.sh, rootless.sh) INSIDE the guest: the result
# lines the host reads back, polling, and the busybox rootfs. record needs $results, $line, $line_start.

# guest_start: what a script of one result line per check starts with: the runtime under test,
# the guest's mode, the results file (emptied), the other lines' paths (versions.env)
guest_start() {
  runtime=${RCS_E2E_RUNTIME:-io.containerd.runcsharp.v2}
  mode=${RCS_VM_MODE:-plain}
  out=${RCS_VM_OUT:?not in the VM}
  versions=${RCS_VERSIONS_DIR:-/var/cache/runcsharp-versions}
  results=$out/results.tsv
  : > "$results"
  # shellcheck disable=SC1091
  . "$versions/versions.env"
  line= line_start=0
}

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

# config_head VERSION DIR [LINE...]: the top of a private containerd's config.toml: its version,
# root and state in DIR, the top-level LINEs given, then its sockets in DIR and no metrics
config_head() {
  local version=$1 dir=$2; shift 2
  printf 'version = %s\nroot = "%s/root"\nstate = "%s/state"\n' "$version" "$dir" "$dir"
  [ $# = 0 ] || printf '%s\n' "$@"
  printf '[grpc]\n  address = "%s/c.sock"\n[ttrpc]\n  address = "%s/c.sock.ttrpc"\n[metrics]\n  address = ""\n' "$dir" "$dir"
}
