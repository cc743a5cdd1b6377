#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for test/slurm.test.ts: installs Debian's
# slurm-wlm and munge when missing, writes a minimal slurm.conf (this host, its CPUs,
# no cgroups, no systemd; daemons on 127.0.0.1, so the host name need not resolve),
# starts munged, slurmctld and slurmd in the background and waits until the node is idle. Idempotent: running daemons are left alone. Needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm-up: needs root (installs packages and starts daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge
fi

host="$(hostname -s)"
cpus="$(nproc)"
conf=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge
chown -R slurm:slurm /var/lib/slurm /var/log/slurm 2>/dev/null || true

want="$(cat <<EOF
# Written by modelprint .ci/slurm-up.sh: one node, no cgroups, no accounting.
ClusterName=modelprint
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MaxArraySize=1001
MinJobAge=600
KillWait=10
SchedulerParameters=defer_batch
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)"
changed=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" >"$conf"
  changed=1
fi

# munge: the key comes with the package; create one if it is missing.
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then mungekey --create --force; else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$changed" = 1 ]; then
  # A new configuration: restart whatever runs with the old one.
  for pid in /run/slurmd.pid /run/slurmctld.pid; do
    if running "$pid"; then kill "$(cat "$pid")"; for _ in $(seq 1 50); do running "$pid" || break; sleep 0.2; done; fi
  done
fi
running /run/slurmctld.pid || slurmctld
running /run/slurmd.pid || slurmd

# Wait for the node to be usable.
for i in $(seq 1 120); do
  state="$(sinfo -h -n "$host" -o '%t' 2>/dev/null || true)"
  case "$state" in
    idle*|mix*|alloc*) echo "slurm-up: node ${host} is ${state} (${cpus} CPUs)"; exit 0 ;;
    down*|drain*|fail*) [ "$i" -gt 5 ] && scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
echo "slurm-up: node ${host} did not become idle (state: ${state:-unknown}); see /var/log/slurm/" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
