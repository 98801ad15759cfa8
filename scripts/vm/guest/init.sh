#!/bin/busybox sh
# /init of the VM's initramfs (scripts/vm/image.sh puts it there; it runs in the GUEST only).
# The host's / arrives read-only over virtio-9p ("hostroot") and becomes the lower layer of an
# overlay on guest RAM; the job folder ("job", writable) appears at /.rcsvm/job. cgroup2 is the
# only hierarchy (the kernel runs with cgroup_no_v1=all), every controller enabled at the root
# and PID 1 in /init.scope, as systemd lays it out. Then stage 2 ($job/stage2) becomes PID 1.
[ $$ = 1 ] || { echo "rcsvm: init.sh is the guest's PID 1" >&2; exit 1; }
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
die() { echo "rcsvm: init: $*" > /dev/ttyS0; echo o > /proc/sysrq-trigger; sleep 5; exit 1; }
for m in virtio_pci virtio_blk 9pnet_virtio 9p overlay; do modprobe $m || echo "rcsvm: modprobe $m failed" > /dev/ttyS0; done
moddir=
for a in $(cat /proc/cmdline); do case $a in rcsvm.modules=*) moddir=${a#*=} ;; esac; done
p9="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o $p9,ro,cache=loose hostroot /host || die "9p hostroot"
mount -t 9p -o $p9 job /job || die "9p job"
mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || die "overlay root"
R=/newroot
mkdir -p $R/.rcsvm/job && mount --move /job $R/.rcsvm/job
[ -f $R/.rcsvm/job/stage2 ] || die "no stage2 in the job folder"
for d in proc sys dev; do mount --move /$d $R/$d; done
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || die "cgroup2"
mount -t tmpfs -o mode=755 run $R/run
# containerd's overlayfs snapshotter cannot put its upper dirs on an overlay: real tmpfs here
mount -t tmpfs -o mode=1777 tmp $R/tmp
mkdir -p $R/var/lib/containerd && mount -t tmpfs -o mode=711 containerd $R/var/lib/containerd
mount -t securityfs securityfs $R/sys/kernel/security 2>/dev/null
mount -t bpf bpf $R/sys/fs/bpf 2>/dev/null
# the caller's folder (run.sh writes it to cwd) when a fresh tmpfs above hid it: the host's copy
# again, read-only under its own overlay so the guest may write there as everywhere else
cwd=$(cat $R/.rcsvm/job/cwd 2>/dev/null)
case $cwd in
  /tmp/*|/run/*|/var/lib/containerd/*)
    mkdir -p /rw/cwd-upper /rw/cwd-work $R$cwd
    mount -t overlay overlay -o lowerdir=/host$cwd,upperdir=/rw/cwd-upper,workdir=/rw/cwd-work $R$cwd || die "overlay $cwd" ;;
esac
# the guest kernel's modules where modprobe looks (the host keeps them in the image folder)
k=$(uname -r)
if [ -n "$moddir" ] && [ -d "$R$moddir" ]; then
  mkdir -p $R/usr/lib/modules/$k && mount --bind "$R$moddir" $R/usr/lib/modules/$k
fi
ip link set lo up
hostname rcsvm
C=$R/sys/fs/cgroup
mkdir -p $C/init.scope && echo 1 > $C/init.scope/cgroup.procs
for c in $(cat $C/cgroup.controllers); do echo "+$c" > $C/cgroup.subtree_control; done
echo "rcsvm: init done at $(cut -d' ' -f1 $R/proc/uptime)s" > $R/dev/ttyS0
exec switch_root $R /bin/bash /.rcsvm/job/stage2
