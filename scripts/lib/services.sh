# Throwaway servers for tests and benchmarks. Source this file; every
# server started here is stopped by `stop_services` (registered on EXIT).
#
# Nothing here touches the machine's own MariaDB or RabbitMQ: each server
# gets its own data directory under $XCAT3_RUN_DIR and a free port.

XCAT3_RUN_DIR="${XCAT3_RUN_DIR:-$(mktemp -d /tmp/xcat3-run.XXXXXX)}"
_XCAT3_PIDS=()
_APT_UPDATED=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ensure_packages CMD PKG...: installs PKG... with apt when CMD is missing.
ensure_packages() {
    local cmd="$1"; shift
    if command -v "$cmd" >/dev/null 2>&1; then return 0; fi
    log "installing $* (for $cmd)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "need root to apt-get install $*" >&2; return 1
    fi
    if [ "$_APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ensure_libvirtd: the machine's libvirtd with the qemu driver, installed
# and started when missing (without systemd; ecosystem.md §4). It is the
# host's hypervisor, not a throwaway server, so it is left running.
ensure_libvirtd() {
    ensure_packages libvirtd libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
    ensure_packages virsh libvirt-clients
    # mkvm: libvirtd creates qcow2 volumes with qemu-img.
    ensure_packages qemu-img qemu-utils
    if virsh -c qemu:///system version >/dev/null 2>&1; then return 0; fi
    log "starting libvirtd"
    getent group kvm >/dev/null || groupadd -r kvm
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
    id libvirt-qemu >/dev/null 2>&1 || useradd -r -g kvm -M libvirt-qemu
    # /dev/kvm is root's only; guests run as root.
    grep -q '^user *= *"root"' /etc/libvirt/qemu.conf 2>/dev/null \
        || printf 'user = "root"\ngroup = "root"\n' >> /etc/libvirt/qemu.conf
    mkdir -p /var/log/libvirt /run/libvirt
    pgrep -x virtlogd >/dev/null || virtlogd -d
    pgrep -x libvirtd >/dev/null || libvirtd -d
    wait_for virsh -c qemu:///system version
}

# ensure_daemon_package CMD PKG...: like ensure_packages, for packages whose
# install would start a system service (openssh-server on port 22): a
# policy-rc.d forbids that for the time of the install.
ensure_daemon_package() {
    if command -v "$1" >/dev/null 2>&1; then return 0; fi
    [ -e /usr/sbin/policy-rc.d ] && { ensure_packages "$@"; return; }
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    local rc=0
    ensure_packages "$@" || rc=$?
    rm -f /usr/sbin/policy-rc.d
    return $rc
}

# free_port: prints a TCP port nobody listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for CMD...: retries CMD for up to 60 s.
wait_for() {
    local i
    for i in $(seq 1 120); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    echo "timed out waiting for: $*" >&2
    return 1
}

# start_mariadb: starts a throwaway MariaDB and sets MARIADB_URL to its root
# URL (mysql://root@127.0.0.1:PORT/xcat3). Call it directly, not in $(...),
# so that stop_services knows its pid.
start_mariadb() {
    # mariadb-server brings mariadbd, mariadb-install-db and the client.
    ensure_packages mariadb-install-db mariadb-server mariadb-client
    local dir="$XCAT3_RUN_DIR/mariadb" port
    port="$(free_port)"
    mkdir -p "$dir"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; return 1; }
    local daemon; daemon="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
    "$daemon" --no-defaults --datadir="$dir/data" --user="$(id -un)" --socket="$dir/mdb.sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mdb.pid" \
        --innodb-flush-log-at-trx-commit=2 --max-connections=500 \
        >"$dir/server.log" 2>&1 &
    _XCAT3_PIDS+=("$!")
    wait_for mariadb-admin --no-defaults -h127.0.0.1 -P"$port" -uroot ping \
        || { tail -20 "$dir/server.log" >&2; return 1; }
    mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -e "CREATE DATABASE IF NOT EXISTS xcat3"
    log "throwaway MariaDB on 127.0.0.1:$port (data in $dir)"
    MARIADB_URL="mysql://root@127.0.0.1:$port/xcat3"
}

# start_rabbitmq: starts a throwaway RabbitMQ node (own node name, ports,
# config, data; no plugins) and sets RABBITMQ_URL. The machine's own broker
# and its /etc/rabbitmq config are left alone.
start_rabbitmq() {
    ensure_packages rabbitmq-server rabbitmq-server
    local dir="$XCAT3_RUN_DIR/rabbitmq" port dist
    port="$(free_port)"; dist="$(free_port)"
    mkdir -p "$dir"
    printf 'listeners.tcp.default = 127.0.0.1:%s\n' "$port" >"$dir/rabbitmq.conf"
    echo '[].' >"$dir/enabled_plugins"
    : >"$dir/env.conf"
    (cd "$dir" && RABBITMQ_CONF_ENV_FILE="$dir/env.conf" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_NODENAME="xcat3-$port@localhost" RABBITMQ_DIST_PORT="$dist" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_PID_FILE="$dir/pid" \
        ERL_EPMD_ADDRESS=127.0.0.1 exec /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/server.log" 2>&1) &
    _XCAT3_PIDS+=("$!")
    wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || { tail -20 "$dir/server.log" >&2; return 1; }
    log "throwaway RabbitMQ on 127.0.0.1:$port (node xcat3-$port@localhost)"
    RABBITMQ_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
}

stop_services() {
    local pid
    for pid in "${_XCAT3_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${_XCAT3_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    _XCAT3_PIDS=()
    case "$XCAT3_RUN_DIR" in /tmp/xcat3-run.*) rm -rf "$XCAT3_RUN_DIR" ;; esac
}
trap stop_services EXIT
