#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the workflow's SLURM test (tests/test_slurm.py)
# and for trying the SLURM profile by hand. Debian's slurmctld, slurmd, slurm-client and munge;
# no systemd: the daemons are started here by hand, as root, each with its own PID file, socket
# and state inside DIR, so nothing of an existing SLURM or munge installation is touched.
#
#   tests/slurm/cluster.sh start DIR   install (as root, with apt-get) when missing, write
#                                      DIR/slurm.conf, start munged, slurmctld and slurmd, wait
#                                      until the node is idle; prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh stop DIR    stop the daemons started in DIR, by PID
#
# Then:  export SLURM_CONF=DIR/slurm.conf; sbatch / squeue / snakemake --profile profiles/slurm
#
# One file outside DIR: /etc/slurm/slurm.conf becomes a symbolic link to DIR/slurm.conf (and is
# removed by `stop`). Snakemake's job-step executor runs `srun` inside each job with every SLURM_*
# variable but a few removed, SLURM_CONF included, so srun must find the configuration at its
# default path, as it does on a real cluster. An existing /etc/slurm/slurm.conf that is not such a
# link is never replaced: start refuses instead.
#
# The node has the machine's CPUs and memory, partition `main`, and one GPU declared as gres
# (a character device made with mknod; AutoDetect=off), so that GPU requests can be tested on a
# machine without one: a job that asks for `--gpus=1` is scheduled and sees CUDA_VISIBLE_DEVICES.
set -euo pipefail

MARK="# Written by tests/slurm/cluster.sh"
LINK=/etc/slurm/slurm.conf

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
export PATH=$PATH:/usr/sbin

# /etc/slurm/slurm.conf is ours when it is a link to a file this script wrote (or a dangling
# link left by it); anything else belongs to the machine and is never touched.
link_is_ours() {
    [ -L "$LINK" ] || return 1
    local target
    target=$(readlink "$LINK")
    [ ! -e "$target" ] || head -n 1 "$target" | grep -qxF "$MARK"
}

stop_dir() { # stop what was started with state in $1, by PID
    local d=$1 name pid
    if [ -f "$d/slurm.conf" ] && [ -f "$d/run/slurmctld.pid" ]; then
        # jobs first: their processes (slurmstepd, the job's own) are not the daemons' children
        local ids
        ids=$(SLURM_CONF=$d/slurm.conf timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [ -n "$ids" ]; then
            SLURM_CONF=$d/slurm.conf timeout 10 scancel $ids 2>/dev/null || true
            for _ in $(seq 50); do
                [ -z "$(SLURM_CONF=$d/slurm.conf timeout 10 squeue -h -o %i 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
    fi
    for name in slurmd slurmctld munged; do
        [ -f "$d/run/$name.pid" ] || continue
        pid=$(cat "$d/run/$name.pid")
        # only the daemon it names: after a reboot the PID may belong to something else
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            sleep 0.1
            if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/stat" 2>/dev/null | awk '{print $3}')" != Z ]; then
                echo "could not stop $name (PID $pid); its PID file stays in $d/run" >&2
                return 1
            fi
        fi
        rm -f "$d/run/$name.pid"
    done
    if link_is_ours && [ "$(readlink "$LINK")" = "$d/slurm.conf" ]; then
        rm -f "$LINK"
    fi
}

stop() {
    if [ "$(id -u)" != 0 ]; then
        echo "stopping the test cluster needs root, as starting it did" >&2
        exit 3
    fi
    stop_dir "$dir"
}

install() {
    local missing=()
    for bin in slurmctld slurmd sbatch munged; do
        command -v "$bin" >/dev/null || missing+=("$bin")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "SLURM is not installed (missing: ${missing[*]}); on Debian/Ubuntu, as root:" >&2
        echo "  apt-get install slurmctld slurmd slurm-client munge" >&2
        exit 3
    fi
    echo "installing slurmctld slurmd slurm-client munge with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        slurmctld slurmd slurm-client munge) >"$dir/apt.log" 2>&1 ||
        { cat "$dir/apt.log" >&2; exit 3; }
}

start() {
    if [ "$(id -u)" != 0 ]; then
        echo "starting slurmd needs root (it launches jobs as their users)" >&2
        exit 3
    fi
    if [ -e "$LINK" ] || [ -L "$LINK" ]; then
        if ! link_is_ours; then
            echo "$LINK exists and was not written by this script: not replacing it. This" >&2
            echo "script is for machines without a SLURM of their own (CI, a laptop)." >&2
            exit 3
        fi
        # a cluster of an earlier start (in this or another DIR) that was never stopped
        stop_dir "$(dirname "$(readlink "$LINK")")"
    fi
    install
    stop_dir "$dir"
    trap 'echo "start failed; stopping what was started" >&2; stop_dir "$dir"' ERR
    mkdir -p "$dir"/{run,log,state,spool,munge,dev}
    chmod 700 "$dir/munge"

    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [ -n "$mem" ] || { echo "slurmd -C reported no RealMemory" >&2; exit 1; }
    # one fake GPU: a character device with the NVIDIA major number, used only as a gres file
    [ -e "$dir/dev/nvidia0" ] || mknod "$dir/dev/nvidia0" c 195 0

    # munge: own key, socket and PID file
    [ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed"

    cat >"$dir/slurm.conf" <<EOF
$MARK
# A single-node test cluster.
ClusterName=actflow-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$((6817 + 10))
SlurmdPort=$((6818 + 10))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=3600
DefMemPerCPU=1000
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$dir/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu File=$dir/dev/nvidia0
EOF
    mkdir -p /etc/slurm
    ln -sfn "$dir/slurm.conf" "$LINK"
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"

    # wait for the node; a node drained in an earlier run stays drained: resume it
    local state=""
    for _ in $(seq 300); do
        state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
        case $state in
            idle) break ;;
            drain* | drng | down*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    if [ "$state" != idle ]; then
        echo "the SLURM node did not become idle (state: '${state:-none}'); logs in $dir/log:" >&2
        tail -n 20 "$dir"/log/*.log >&2 || true
        stop_dir "$dir"
        exit 1
    fi
    trap - ERR
    echo "export SLURM_CONF=$SLURM_CONF"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
