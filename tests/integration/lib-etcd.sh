# shellcheck shell=bash
# Real etcd members for shell integration tests (source this file; bash only).
#
#   etcd_start N            N members (1..5) on 127.0.0.1, free ports, data under a temp dir;
#                           waits until every member is healthy. Sets:
#                             ETCD_DIR, ETCD_ENDPOINTS (comma-separated client URLs),
#                             ETCD_CLIENT_URLS[i], ETCD_PEER_URLS[i], ETCD_PIDS[i]
#   etcd_start_tls          one https member with --client-cert-auth, certificates made by openssl;
#                           also sets ETCD_CAFILE, ETCD_CERTFILE, ETCD_KEYFILE (client side)
#   etcd_kill_member I      SIGKILL member I and wait until it is gone
#   etcd_stop_member I      SIGTERM (then SIGKILL after 10 s)
#   etcd_restart_member I   start member I again on its data dir, wait for health
#   etcd_member_healthy I   exit status 0 if /health says true
#   etcd_member_index URL   prints the index of the member with that client URL
#   etcd_ctl ARGS...        etcdctl with the endpoints (and TLS files) filled in
#   etcd_stop_all           kills every member, removes ETCD_DIR and removes ETCD_DIR; never fails, safe to call
#                           twice: use it in a trap:  trap etcd_stop_all EXIT
#   etcd_install_trap       trap etcd_stop_all on EXIT, INT, TERM, HUP
#
# Members run under `setpriv --pdeathsig KILL` when available, so they die with the script
# even if it is killed with SIGKILL.

ETCD_DIR=
ETCD_ENDPOINTS=
ETCD_TLS=0
ETCD_CAFILE=
ETCD_CERTFILE=
ETCD_KEYFILE=
ETCD_SERVER_CERT=
ETCD_SERVER_KEY=
ETCD_INITIAL_CLUSTER=
ETCD_CLUSTER_TOKEN=
ETCD_CLIENT_URLS=()
ETCD_PEER_URLS=()
ETCD_PIDS=()
ETCD_START_TIMEOUT=${ETCD_START_TIMEOUT:-40}

_etcd_log() { echo "lib-etcd: $*" >&2; }

# Sets _etcd_port to a loopback port with no listener that we have not handed out yet (no
# subshell: the list of ports taken must survive).
_etcd_taken=" "
_etcd_port=
_etcd_free_port() {
        local p i
        for ((i = 0; i < 200; i++)); do
                # below the kernel's ephemeral range (32768+), where outgoing connections can take a port
                p=$((20000 + RANDOM % 12000))
                case "$_etcd_taken" in *" $p "*) continue ;; esac
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                        _etcd_taken="$_etcd_taken$p "
                        _etcd_port=$p
                        return 0
                fi
        done
        return 1
}

_etcd_curl_tls() {
        if [ "$ETCD_TLS" = 1 ]; then
                echo --cacert "$ETCD_CAFILE" --cert "$ETCD_CERTFILE" --key "$ETCD_KEYFILE"
        fi
}

etcd_member_healthy() {
        local i=$1
        # shellcheck disable=SC2046
        curl -s --noproxy '*' -m 2 $(_etcd_curl_tls) "${ETCD_CLIENT_URLS[$i]}/health" 2>/dev/null |
                grep -q '"health":"true"'
}

etcd_member_index() {
        local i
        for i in "${!ETCD_CLIENT_URLS[@]}"; do
                if [ "${ETCD_CLIENT_URLS[$i]}" = "$1" ]; then
                        echo "$i"
                        return 0
                fi
        done
        return 1
}

_etcd_spawn() {
        local i=$1 listen tlsargs=() wrap=()
        listen=${ETCD_CLIENT_URLS[$i]}
        if [ "$ETCD_TLS" = 1 ]; then
                tlsargs=(--cert-file "$ETCD_SERVER_CERT" --key-file "$ETCD_SERVER_KEY"
                        --trusted-ca-file "$ETCD_CAFILE" --client-cert-auth)
        fi
        if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
                wrap=(setpriv --pdeathsig KILL --)
        fi
        "${wrap[@]}" etcd --name "m$i" --data-dir "$ETCD_DIR/m$i" \
                --listen-client-urls "$listen" --advertise-client-urls "$listen" \
                --listen-peer-urls "${ETCD_PEER_URLS[$i]}" --initial-advertise-peer-urls "${ETCD_PEER_URLS[$i]}" \
                --initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-state new \
                --initial-cluster-token "$ETCD_CLUSTER_TOKEN" \
                --logger zap --log-outputs stderr --heartbeat-interval 100 --election-timeout 1000 \
                "${tlsargs[@]}" </dev/null >>"$ETCD_DIR/m$i.log" 2>&1 &
        ETCD_PIDS[i]=$!
        disown "$!" 2>/dev/null # no "Killed" job notices; bash still reaps it
}

_etcd_wait_healthy() {
        local deadline=$((SECONDS + ETCD_START_TIMEOUT)) i ok
        while :; do
                ok=1
                for i in "$@"; do
                        if ! kill -0 "${ETCD_PIDS[$i]}" 2>/dev/null; then
                                _etcd_log "member m$i exited during start-up; log tail:"
                                tail -n 15 "$ETCD_DIR/m$i.log" >&2
                                return 1
                        fi
                        etcd_member_healthy "$i" || ok=0
                done
                [ "$ok" = 1 ] && return 0
                if [ "$SECONDS" -ge "$deadline" ]; then
                        _etcd_log "members not healthy after ${ETCD_START_TIMEOUT}s"
                        for i in "$@"; do tail -n 15 "$ETCD_DIR/m$i.log" >&2; done
                        return 1
                fi
                sleep 0.1
        done
}

_etcd_make_certs() (
        set -e
        cd "$ETCD_DIR"
        ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        openssl req -x509 "${ec[@]}" -days 2 -subj /CN=lib-etcd-ca -keyout ca.key -out ca.crt \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out server.crt
        openssl req "${ec[@]}" -subj /CN=secrets-encrypt -keyout client.key -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile client.ext -out client.crt
        chmod 600 ./*.key
) >/dev/null 2>&1

_etcd_start() {
        local n=$1 i scheme=http cp pp
        if [ -n "$ETCD_DIR" ]; then
                _etcd_log "a cluster is already running (etcd_stop_all first)"
                return 1
        fi
        if [ "$n" -lt 1 ] || [ "$n" -gt 5 ]; then
                _etcd_log "1 to 5 members"
                return 1
        fi
        ETCD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/se-etcd-sh.XXXXXX") || return 1
        ETCD_CLUSTER_TOKEN="lib-etcd-$$-$RANDOM"
        if [ "$ETCD_TLS" = 1 ]; then
                scheme=https
                ETCD_CAFILE=$ETCD_DIR/ca.crt
                ETCD_CERTFILE=$ETCD_DIR/client.crt
                ETCD_KEYFILE=$ETCD_DIR/client.key
                ETCD_SERVER_CERT=$ETCD_DIR/server.crt
                ETCD_SERVER_KEY=$ETCD_DIR/server.key
                if ! _etcd_make_certs; then
                        _etcd_log "openssl failed"
                        etcd_stop_all
                        return 1
                fi
        fi
        ETCD_CLIENT_URLS=()
        ETCD_PEER_URLS=()
        ETCD_PIDS=()
        ETCD_INITIAL_CLUSTER=
        ETCD_ENDPOINTS=
        for ((i = 0; i < n; i++)); do
                if ! _etcd_free_port; then
                        _etcd_log "no free port"
                        etcd_stop_all
                        return 1
                fi
                cp=$_etcd_port
                if ! _etcd_free_port; then
                        _etcd_log "no free port"
                        etcd_stop_all
                        return 1
                fi
                pp=$_etcd_port
                ETCD_CLIENT_URLS[i]="$scheme://127.0.0.1:$cp"
                ETCD_PEER_URLS[i]="http://127.0.0.1:$pp"
                ETCD_INITIAL_CLUSTER="${ETCD_INITIAL_CLUSTER:+$ETCD_INITIAL_CLUSTER,}m$i=${ETCD_PEER_URLS[i]}"
                ETCD_ENDPOINTS="${ETCD_ENDPOINTS:+$ETCD_ENDPOINTS,}${ETCD_CLIENT_URLS[i]}"
        done
        for ((i = 0; i < n; i++)); do
                _etcd_spawn "$i"
        done
        if ! _etcd_wait_healthy "${!ETCD_PIDS[@]}"; then
                etcd_stop_all
                return 1
        fi
        export ETCD_DIR ETCD_ENDPOINTS ETCD_CAFILE ETCD_CERTFILE ETCD_KEYFILE
}

etcd_start() {
        ETCD_TLS=0
        _etcd_start "${1:-1}"
}

etcd_start_tls() {
        ETCD_TLS=1
        _etcd_start 1
}

_etcd_wait_gone() {
        local pid=$1 sig=$2 grace=$3 deadline
        [ -n "$pid" ] || return 0
        kill "-$sig" "$pid" 2>/dev/null || return 0
        deadline=$((SECONDS + grace))
        while kill -0 "$pid" 2>/dev/null; do
                # a zombie is gone for our purpose; wait reaps our own children
                if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
                        break
                fi
                if [ "$SECONDS" -ge "$deadline" ]; then
                        kill -KILL "$pid" 2>/dev/null
                fi
                sleep 0.05
        done
        return 0
}

etcd_kill_member() {
        _etcd_wait_gone "${ETCD_PIDS[$1]}" KILL 5
        ETCD_PIDS[$1]=
}

etcd_stop_member() {
        _etcd_wait_gone "${ETCD_PIDS[$1]}" TERM 10
        ETCD_PIDS[$1]=
}

etcd_restart_member() {
        local i=$1
        if [ -n "${ETCD_PIDS[$i]}" ]; then
                _etcd_log "member m$i is running"
                return 1
        fi
        _etcd_spawn "$i"
        _etcd_wait_healthy "$i"
}

etcd_ctl() {
        local tls=()
        if [ "$ETCD_TLS" = 1 ]; then
                tls=(--cacert "$ETCD_CAFILE" --cert "$ETCD_CERTFILE" --key "$ETCD_KEYFILE")
        fi
        ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" --dial-timeout=5s --command-timeout=10s "${tls[@]}" "$@"
}

etcd_stop_all() {
        local i
        # test data only: no graceful shutdown needed
        for i in "${!ETCD_PIDS[@]}"; do
                _etcd_wait_gone "${ETCD_PIDS[$i]}" KILL 5
        done
        ETCD_PIDS=()
        if [ -n "$ETCD_DIR" ] && [ -d "$ETCD_DIR" ]; then
                rm -rf -- "$ETCD_DIR"
        fi
        ETCD_DIR=
        ETCD_ENDPOINTS=
        _etcd_taken=" "
        return 0
}

etcd_install_trap() {
        trap 'etcd_stop_all' EXIT
        trap 'etcd_stop_all; trap - INT; kill -INT $$' INT
        trap 'etcd_stop_all; trap - TERM; kill -TERM $$' TERM
        trap 'etcd_stop_all; trap - HUP; kill -HUP $$' HUP
}
