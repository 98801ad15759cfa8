# shellcheck shell=bash
# scripts/lib/ctrd.sh -- a private containerd (own root, state, sockets) for demo.sh and
# bench/run.sh. Source it, then:
#
#   ctrd_start DIR [EXTRA_PATH]   write DIR/config.toml, start containerd, wait for its socket
#   ctrd_ctr NS ARGS...           ctr --address DIR/c.sock -n NS ARGS...
#   ctrd_shim_pids                PIDs of processes whose cmdline has "-address DIR/c.sock"
#   ctrd_stop                     kill tasks, stop the daemon by its PID, kill leftover shims by
#                                 PID, unmount anything under DIR, remove DIR (idempotent)
#
# DIR must be short: the shim's sockets live elsewhere, but containerd's own socket
# DIR/c.sock.ttrpc must stay under the 108-byte unix socket path limit.
# Nothing here ever stops a process by name: only the daemon's recorded PID and shims that carry
# this daemon's own socket address in their argv.

CTRD_DIR=""
CTRD_SOCK=""
CTRD_PID=""
CTRD_NAMESPACES=()

ctrd_config() {
  cat <<TOML
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$CTRD_DIR/debug.sock"
  level = "debug"
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTRD_DIR/opt"
TOML
}

ctrd_start() {
  CTRD_DIR=${1:?ctrd_start DIR [EXTRA_PATH]}
  local extra=${2:-}
  CTRD_SOCK=$CTRD_DIR/c.sock
  if [ ${#CTRD_SOCK} -gt 90 ]; then
    echo "ctrd: $CTRD_SOCK is too long for a unix socket path" >&2; return 1
  fi
  mkdir -p "$CTRD_DIR"/{root,state,opt,fifo}
  ctrd_config > "$CTRD_DIR/config.toml"
  local runc_dir path
  runc_dir=$(dirname "$(command -v runc)")
  path="$runc_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  if [ -n "$extra" ]; then path="$extra:$path"; fi
  # setsid: the daemon must not get the terminal's SIGINT before our trap has stopped its tasks
  PATH=$path setsid containerd --config "$CTRD_DIR/config.toml" \
    >"$CTRD_DIR/containerd.log" 2>&1 </dev/null &
  CTRD_PID=$!
  echo "$CTRD_PID" > "$CTRD_DIR/containerd.pid"
  local i
  for i in $(seq 1 100); do
    if ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$CTRD_PID" 2>/dev/null; then
      echo "ctrd: containerd exited at start; tail of its log:" >&2
      tail -n 20 "$CTRD_DIR/containerd.log" >&2
      CTRD_PID=""
      return 1
    fi
    sleep 0.2
  done
  echo "ctrd: timed out waiting for $CTRD_SOCK" >&2
  return 1
}

ctrd_ctr() {
  local ns=$1; shift
  case " ${CTRD_NAMESPACES[*]} " in *" $ns "*) ;; *) CTRD_NAMESPACES+=("$ns") ;; esac
  ctr --address "$CTRD_SOCK" -n "$ns" "$@"
}

ctrd_shim_pids() {
  [ -n "$CTRD_SOCK" ] || return 0
  local d cmd
  for d in /proc/[0-9]*; do
    cmd=$( { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null) || continue
    # a space before -address: ctr itself runs with --address and must not be taken for a shim
    case " $cmd" in *" -address $CTRD_SOCK "*) echo "${d#/proc/}" ;; esac
  done
}

# tasks, containers and snapshots of every namespace this daemon knows
ctrd_clean_namespaces() {
  local c=(ctr --address "$CTRD_SOCK") ns t id
  local all
  all=$("${c[@]}" namespaces ls -q 2>/dev/null || true)
  for ns in $all; do
    for t in $("${c[@]}" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 15 "${c[@]}" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $("${c[@]}" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 15 "${c[@]}" -n "$ns" tasks delete -f "$t" >/dev/null 2>&1 || true
    done
    for id in $("${c[@]}" -n "$ns" containers ls -q 2>/dev/null); do
      timeout 15 "${c[@]}" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
    done
    for id in $("${c[@]}" -n "$ns" snapshots ls 2>/dev/null | awk 'NR>1 {print $1}'); do
      timeout 15 "${c[@]}" -n "$ns" snapshots rm "$id" >/dev/null 2>&1 || true
    done
  done
  # runc keeps an empty per-namespace state dir and the cgroup parent /<ns>; both are ours
  # (our namespaces have unique names), remove them when empty
  for ns in $all "${CTRD_NAMESPACES[@]}"; do
    rmdir "/run/containerd/runc/$ns" 2>/dev/null || true
    local cg
    for cg in /sys/fs/cgroup/*/"$ns"; do rmdir "$cg" 2>/dev/null || true; done
  done
}

ctrd_unmount_under() {
  local dir=$1 m
  # mountinfo field 5 is the mount point (octal-escaped); deepest first
  for m in $(awk -v d="$dir/" 'index($5, d) == 1 {print length($5) " " $5}' /proc/self/mountinfo \
             | sort -rn | cut -d' ' -f2-); do
    umount -l "$(printf '%b' "$m")" 2>/dev/null || true
  done
}

ctrd_stop() {
  [ -n "$CTRD_DIR" ] || return 0
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    ctrd_clean_namespaces
    kill -TERM "$CTRD_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$CTRD_PID" 2>/dev/null; then kill -KILL "$CTRD_PID" 2>/dev/null || true; fi
    wait "$CTRD_PID" 2>/dev/null || true
  fi
  CTRD_PID=""
  local p
  for p in $(ctrd_shim_pids); do
    echo "ctrd: killing leftover shim $p" >&2
    kill -KILL "$p" 2>/dev/null || true
  done
  ctrd_unmount_under "$CTRD_DIR"
  rm -rf "$CTRD_DIR"
  CTRD_DIR=""
}
