#!/bin/bash
# Stage 2 of a plain guest (runs in the GUEST only, as PID 1; run.sh copies it into the job
# folder): no init system, the job runs as PID 1's child, its status goes to $job/rc, then the
# VM powers off. init.sh has mounted everything.
[ $$ = 1 ] || { echo "rcsvm: plain.sh is the guest's PID 1" >&2; exit 1; }
job=/.rcsvm/job
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
read -r up _ < /proc/uptime
echo "rcsvm: job starts at ${up}s" > /dev/ttyS0
bash $job/cmd >> $job/output 2>&1 < /dev/null
echo $? > $job/rc.tmp && mv $job/rc.tmp $job/rc
sync
echo o > /proc/sysrq-trigger
sleep 10
