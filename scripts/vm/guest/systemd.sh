#!/bin/bash
# Stage 2 of a systemd guest (runs in the GUEST only; run.sh copies it into the job folder).
#
# As PID 1: writes units and masks into /run/systemd (guest RAM) and execs the host's systemd,
# which boots into rcsvm.target (systemd.unit= on the kernel command line): sysinit, basic,
# D-Bus (runc's systemd cgroup driver talks to systemd over the system bus) and the job as
# rcsvm-job.service. The job's end powers the VM off.
# As `systemd.sh --job` (ExecStart of rcsvm-job.service): runs the job, writes rc.
# Builtins where it can: under TCG every exec of a dynamic binary costs 50-75 ms.
job=/.rcsvm/job
if [ "${1:-}" = --job ]; then
  read -r up _ < /proc/uptime
  echo "rcsvm: job starts at ${up}s (systemd)" > /dev/ttyS0
  bash $job/cmd >> $job/output 2>&1 < /dev/null
  echo $? > $job/rc.tmp && mv $job/rc.tmp $job/rc
  exit 0
fi
[ $$ = 1 ] || { echo "rcsvm: systemd.sh is the guest's PID 1" >&2; exit 1; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
die() { echo "rcsvm: systemd stage: $*" > /dev/ttyS0; echo o > /proc/sysrq-trigger; sleep 10; exit 1; }
[ -x /lib/systemd/systemd ] || die "no /lib/systemd/systemd on the host"
units=/run/systemd/system gens=/run/systemd/system-generators
mkdir -p $units $gens /run/systemd/journald.conf.d || die "mkdir /run/systemd"
put() { local text; IFS= read -r -d '' text; printf '%s' "$text" > "$1"; }

# an empty file of a generator's name in /run/systemd/system-generators masks that generator:
# nothing here needs fstab, getty, SysV or GPT units
shopt -s nullglob
for g in /usr/lib/systemd/system-generators/* /usr/local/lib/systemd/system-generators/* /etc/systemd/system-generators/*; do
  : > "$gens/${g##*/}"
done
# masked (empty unit files): what needs a network, persistent state, udev or first-boot work, and
# what the host enabled for itself; each costs 0.3-0.6 s of boot under TCG
for u in systemd-timesyncd.service systemd-pstore.service systemd-random-seed.service \
         systemd-update-utmp.service systemd-journal-flush.service systemd-firstboot.service \
         systemd-machine-id-commit.service systemd-repart.service systemd-pcrphase.service \
         systemd-pcrphase-sysinit.service ldconfig.service systemd-hwdb-update.service \
         systemd-journal-catalog-update.service systemd-update-done.service systemd-binfmt.service \
         proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-modules-load.service \
         sys-kernel-config.mount sys-fs-fuse-connections.mount systemd-journald-audit.socket \
         timers.target docker.socket containerd.service getty.target systemd-sysusers.service \
         kmod-static-nodes.service systemd-tmpfiles-setup-dev.service dev-hugepages.mount \
         sys-kernel-tracing.mount sys-kernel-debug.mount; do
  : > "$units/$u"
done
put /run/systemd/journald.conf.d/rcsvm.conf <<'UNIT'
[Journal]
Storage=volatile
RuntimeMaxUse=32M
UNIT
put $units/rcsvm.target <<'UNIT'
[Unit]
Description=rcsvm: basic system, D-Bus and the job
Requires=basic.target
Wants=dbus.socket dbus.service rcsvm-job.service
After=basic.target
AllowIsolate=yes
JobTimeoutSec=300
JobTimeoutAction=poweroff-force
UNIT
# OOMPolicy=continue: an OOM kill the job provokes in a container must not stop the job
put $units/rcsvm-job.service <<'UNIT'
[Unit]
Description=rcsvm job
Wants=dbus.service
After=basic.target dbus.service
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

[Service]
Type=exec
ExecStart=/bin/bash /.rcsvm/job/stage2 --job
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
WorkingDirectory=/
StandardInput=null
StandardOutput=journal+console
StandardError=inherit
TimeoutStartSec=infinity
TimeoutStopSec=10
TasksMax=infinity
OOMPolicy=continue
Delegate=no
UNIT
# emergency or rescue mode means the boot failed: say so on the console and power off
for m in emergency rescue; do
  put $units/$m.service <<UNIT
[Unit]
Description=rcsvm: $m mode, the boot failed
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=oneshot
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
ExecStart=-/bin/sh -c 'echo "rcsvm: systemd entered $m mode"; systemctl --no-pager --failed'
ExecStart=/bin/systemctl --force --force poweroff
UNIT
done
# a /.dockerenv on the host makes systemd believe it runs in Docker and ignore the kernel command
# line (systemd.unit=); the overlay hides it from the guest only
rm -f /.dockerenv
for v in $(compgen -e); do unset "$v" 2>/dev/null; done
exec /lib/systemd/systemd
