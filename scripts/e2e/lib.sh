#!/usr/bin/env bash
# Helpers of ./scripts/e2e-vm: named phases with timings, the cached Debian image,
# the QEMU VM (boot, root SSH, shutdown), the control plane (`brokeforge serve`)
# and the CLI. Sourced after scripts/lib.sh; the caller sets E2E_RUN_DIR (the run's
# scratch directory) and E2E_ARTIFACTS (where logs are copied on failure).

E2E_STATE_DIR=${BROKEFORGE_VM_DIR:-/var/tmp/brokeforge-vm}
E2E_IMAGE_RECIPE=scripts/e2e/vm-image.sh
# The guest port of the small TCP responder the image runs for firewall checks.
E2E_PROBE_PORT=8080

# ---------------------------------------------------------------------------
# Phases: each is a named step whose duration is recorded and printed in the
# summary. A failing command inside a phase ends the run (set -e); the EXIT trap
# of scripts/e2e-vm reports the phase that was running.

E2E_PHASE_NAMES=()
E2E_PHASE_SECONDS=()
E2E_PHASE_NOTES=()
E2E_CURRENT_PHASE=''
E2E_PHASE_STARTED=0
E2E_PHASE_NOTE=''

now_ms() {
    date +%s%3N
}

# Formats milliseconds as seconds with one decimal.
format_ms() {
    local ms=$1
    printf '%d.%01d s' $((ms / 1000)) $(((ms % 1000) / 100))
}

# phase NAME COMMAND [ARGS...]: runs COMMAND as the phase NAME.
phase() {
    local name=$1
    shift
    E2E_CURRENT_PHASE=$name
    E2E_PHASE_NOTE=''
    E2E_PHASE_STARTED=$(now_ms)
    printf '\n==> [%s] phase: %s\n' "$(date +%H:%M:%S)" "$name"
    "$@"
    local elapsed=$(($(now_ms) - E2E_PHASE_STARTED))
    E2E_PHASE_NAMES+=("$name")
    E2E_PHASE_SECONDS+=("$elapsed")
    E2E_PHASE_NOTES+=("$E2E_PHASE_NOTE")
    E2E_CURRENT_PHASE=''
    printf '<== %s: ok in %s%s\n' "$name" "$(format_ms "$elapsed")" "${E2E_PHASE_NOTE:+ ($E2E_PHASE_NOTE)}"
}

# A note shown next to the current phase's time (e.g. "cache hit").
phase_note() {
    E2E_PHASE_NOTE=$*
}

# Prints the table of phases; $1 is the run's exit code.
print_phase_summary() {
    local status=$1 index total=0
    printf '\n==> e2e-vm summary\n'
    for index in "${!E2E_PHASE_NAMES[@]}"; do
        printf '  %-24s %10s  ok%s\n' "${E2E_PHASE_NAMES[$index]}" "$(format_ms "${E2E_PHASE_SECONDS[$index]}")" \
            "${E2E_PHASE_NOTES[$index]:+  (${E2E_PHASE_NOTES[$index]})}"
        total=$((total + E2E_PHASE_SECONDS[index]))
    done
    if [ -n "$E2E_CURRENT_PHASE" ]; then
        local elapsed=$(($(now_ms) - E2E_PHASE_STARTED))
        printf '  %-24s %10s  FAILED\n' "$E2E_CURRENT_PHASE" "$(format_ms "$elapsed")"
        total=$((total + elapsed))
    fi
    printf '  %-24s %10s\n' 'total' "$(format_ms "$total")"
    local failed=0
    if [ "$status" -ne 0 ]; then
        failed=1
    fi
    printf 'phases: %d passed, %d failed\n' "${#E2E_PHASE_NAMES[@]}" "$failed"
    if [ "$status" -eq 0 ]; then
        printf 'e2e-vm: PASSED\n'
    else
        printf 'e2e-vm: FAILED in phase "%s" (exit code %s)\n' "${E2E_CURRENT_PHASE:-?}" "$status"
    fi
}

fail() {
    printf '\nFAILED: %s\n' "$*" >&2
    return 1
}

# ---------------------------------------------------------------------------
# Host tools

# A free TCP port on the host's loopback, preferring the range $1..$2 if given.
free_port() {
    python3 - "$@" <<'EOF'
import random, socket, sys
candidates = []
if len(sys.argv) == 3:
    candidates = list(range(int(sys.argv[1]), int(sys.argv[2]) + 1))
    random.shuffle(candidates)
for port in candidates + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(s.getsockname()[1])
    break
EOF
}

# ---------------------------------------------------------------------------
# The image, cached by the hash of its recipe.

image_key() {
    sha256sum "$E2E_IMAGE_RECIPE" | cut -c1-16
}

# Sets E2E_IMAGE_DIR to a directory holding disk.img, vmlinuz and initrd.img for the
# current recipe, building it when missing. Other recipes' images are removed.
ensure_image() {
    local key images
    key=$(image_key)
    images="$E2E_STATE_DIR/images"
    E2E_IMAGE_DIR="$images/$key"
    mkdir -p "$images"
    # One build at a time on this machine.
    exec {lock_fd}>"$images/.lock"
    flock "$lock_fd"
    if [ -f "$E2E_IMAGE_DIR/ready" ]; then
        phase_note "cache hit, image $key"
        echo "using the cached image $E2E_IMAGE_DIR"
    else
        phase_note "built image $key"
        echo "building the Debian 12 image $key (recipe $E2E_IMAGE_RECIPE)"
        local building="$images/.building-$key"
        rm -rf "$building"
        "$E2E_IMAGE_RECIPE" "$building"
        touch "$building/ready"
        rm -rf "$E2E_IMAGE_DIR"
        mv "$building" "$E2E_IMAGE_DIR"
    fi
    local other
    for other in "$images"/*; do
        if [ -d "$other" ] && [ "$other" != "$E2E_IMAGE_DIR" ]; then
            echo "removing the image of an older recipe: $other"
            rm -rf "$other"
        fi
    done
    flock -u "$lock_fd"
    exec {lock_fd}>&-
}

# ---------------------------------------------------------------------------
# The VM

E2E_QEMU_PID=''
E2E_VM_SSH_PORT=''
E2E_VM_HTTP_PORT=''
E2E_VM_PROBE_PORT=''
E2E_VM_CONSOLE=''

# Starts a VM from a fresh copy-on-write overlay of the cached image.
#
# SSH ports: BrokeForge connects to the server record's address and SSH port, here
# 127.0.0.1 and a host port forwarded by QEMU. The bootstrap script checks that sshd
# listens on that same port number, and the firewall opens exactly that port. So
# the harness picks one port number N (preferably in 2200-2299) and uses it on both
# sides: QEMU forwards host 127.0.0.1:N to guest port N, and the guest's sshd listens
# on N as well as on 22 (set at boot from the kernel command line, see
# scripts/e2e/vm-image.sh). The server is added with SSH port N, like a VPS whose
# sshd runs on a custom port, and the harness's own SSH uses the same forward, so
# it goes through the firewall BrokeForge configures. Port 22 in the guest is not
# forwarded, and nothing uses it.
vm_start() {
    local overlay="$E2E_RUN_DIR/overlay.qcow2" key_b64 accel
    E2E_VM_SSH_PORT=$(free_port 2200 2299)
    E2E_VM_HTTP_PORT=$(free_port)
    E2E_VM_PROBE_PORT=$(free_port)
    E2E_VM_CONSOLE="$E2E_RUN_DIR/console.log"
    # The overlay is thrown away after the run, so the guest's flushes need not
    # reach the host's disk (cache=unsafe).
    qemu-img create -q -f qcow2 -F raw -b "$E2E_IMAGE_DIR/disk.img" "$overlay"
    key_b64=$(base64 -w0 <"$E2E_RUN_DIR/harness_key.pub")
    # TCG by default: KVM hangs at boot on the machines this runs on. Set
    # BROKEFORGE_VM_ACCEL=kvm where KVM works.
    accel=${BROKEFORGE_VM_ACCEL:-tcg}
    local accel_args=(-accel "tcg,thread=multi" -cpu "${BROKEFORGE_VM_CPU:-max}")
    if [ "$accel" = kvm ]; then
        accel_args=(-accel kvm -cpu "${BROKEFORGE_VM_CPU:-host}")
    fi
    echo "booting the VM ($accel): ssh on 127.0.0.1:$E2E_VM_SSH_PORT, http on 127.0.0.1:$E2E_VM_HTTP_PORT, probe on 127.0.0.1:$E2E_VM_PROBE_PORT"
    qemu-system-x86_64 "${accel_args[@]}" -m "${BROKEFORGE_VM_MEMORY:-2048}" -smp "${BROKEFORGE_VM_CPUS:-2}" \
        -kernel "$E2E_IMAGE_DIR/vmlinuz" -initrd "$E2E_IMAGE_DIR/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 brokeforge_e2e.ssh_port=$E2E_VM_SSH_PORT brokeforge_e2e.key=$key_b64" \
        -drive "file=$overlay,format=qcow2,if=virtio,cache=unsafe" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$E2E_VM_SSH_PORT-:$E2E_VM_SSH_PORT,hostfwd=tcp:127.0.0.1:$E2E_VM_HTTP_PORT-:80,hostfwd=tcp:127.0.0.1:$E2E_VM_PROBE_PORT-:$E2E_PROBE_PORT" \
        -device virtio-net-pci,netdev=n0 \
        -display none -serial "file:$E2E_VM_CONSOLE" -monitor none \
        </dev/null >"$E2E_RUN_DIR/qemu.log" 2>&1 &
    E2E_QEMU_PID=$!
}

vm_running() {
    [ -n "$E2E_QEMU_PID" ] && kill -0 "$E2E_QEMU_PID" 2>/dev/null
}

# Stops the VM (its overlay is thrown away, so there is nothing to save).
vm_stop() {
    if [ -n "$E2E_VM_SSH_PORT" ]; then
        local options
        mapfile -t options < <(vm_ssh_options)
        ssh "${options[@]}" -O exit root@127.0.0.1 >/dev/null 2>&1 || true
    fi
    if vm_running; then
        kill "$E2E_QEMU_PID" 2>/dev/null || true
        local waited=0
        while vm_running && [ "$waited" -lt 20 ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        if vm_running; then
            kill -9 "$E2E_QEMU_PID" 2>/dev/null || true
        fi
        wait "$E2E_QEMU_PID" 2>/dev/null || true
    fi
    E2E_QEMU_PID=''
}

vm_ssh_options() {
    printf '%s\n' -i "$E2E_RUN_DIR/harness_key" -p "$E2E_VM_SSH_PORT" \
        -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new \
        -o "UserKnownHostsFile=$E2E_RUN_DIR/known_hosts" -o LogLevel=ERROR \
        -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 \
        -o ControlMaster=auto -o "ControlPath=$E2E_RUN_DIR/ssh-%C" -o ControlPersist=300
}

# vm_ssh COMMAND...: runs a command as root in the VM over the harness's own key.
# One master connection is shared by the calls: a key exchange costs seconds under
# TCG.
vm_ssh() {
    local options
    mapfile -t options < <(vm_ssh_options)
    # The command is meant to run in the VM's shell.
    # shellcheck disable=SC2029
    ssh "${options[@]}" root@127.0.0.1 "$@" </dev/null
}

# Waits until sshd in the VM accepts the harness's key.
vm_wait_for_ssh() {
    local deadline=$((SECONDS + ${BROKEFORGE_VM_BOOT_TIMEOUT:-420}))
    while ! vm_ssh true 2>/dev/null; do
        if ! vm_running; then
            fail "QEMU exited during boot: $(tail -n 5 "$E2E_RUN_DIR/qemu.log" 2>/dev/null)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "sshd in the VM did not answer within ${BROKEFORGE_VM_BOOT_TIMEOUT:-420} s"
        fi
        sleep 3
    done
    echo "sshd answers: $(vm_ssh 'systemctl is-system-running 2>/dev/null; uname -r' | tr '\n' ' ')"
}

# Whether a TCP connection through the probe forward reaches the guest's responder
# within 5 s. QEMU accepts the host side of a forwarded connection at once, so the
# check is whether the responder's line arrives, not whether connect() succeeds.
vm_probe_reachable() {
    local answer
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    answer=$(timeout 6 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && timeout 5 head -n 1 <&3' _ "$E2E_VM_PROBE_PORT" 2>/dev/null) || true
    [ "$answer" = brokeforge-e2e-probe ]
}

# ---------------------------------------------------------------------------
# The control plane and its CLI

E2E_SERVE_PID=''
E2E_SERVE_PORT=''
E2E_TOKEN=''

# A fresh data directory and CLI configuration for this run.
control_plane_environment() {
    export BROKEFORGE_DATA_DIR="$E2E_RUN_DIR/brokeforge-data"
    export BROKEFORGE_CONFIG_DIR="$E2E_RUN_DIR/cli"
    unset BROKEFORGE_URL BROKEFORGE_TOKEN BROKEFORGE_DATABASE_URL BROKEFORGE_MASTER_KEY
}

bf() {
    "$E2E_BROKEFORGE" "$@"
}

# Starts `brokeforge serve` with a fresh data directory on a free loopback port.
# QEMU's user network delivers the guest's connections to 10.0.2.2 to the host's
# loopback, so a control plane listening on 127.0.0.1 is reachable from the VM at
# http://10.0.2.2:PORT, which is the public URL the bootstrap line carries.
serve_start() {
    E2E_SERVE_PORT=$(free_port)
    echo "starting brokeforge serve on 127.0.0.1:$E2E_SERVE_PORT (public URL http://10.0.2.2:$E2E_SERVE_PORT)"
    RUST_LOG=${RUST_LOG:-info} "$E2E_BROKEFORGE" serve \
        --listen "127.0.0.1:$E2E_SERVE_PORT" \
        --public-url "http://10.0.2.2:$E2E_SERVE_PORT" \
        --allow-private-addresses \
        </dev/null >"$E2E_RUN_DIR/serve.log" 2>&1 &
    E2E_SERVE_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$E2E_SERVE_PORT/readyz" >/dev/null 2>&1; do
        if ! kill -0 "$E2E_SERVE_PID" 2>/dev/null; then
            tail -n 20 "$E2E_RUN_DIR/serve.log" >&2
            fail "brokeforge serve exited at start-up"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "brokeforge serve was not ready within 60 s"
        fi
        sleep 0.3
    done
}

serve_stop() {
    if [ -n "$E2E_SERVE_PID" ] && kill -0 "$E2E_SERVE_PID" 2>/dev/null; then
        kill "$E2E_SERVE_PID" 2>/dev/null || true
        local waited=0
        while kill -0 "$E2E_SERVE_PID" 2>/dev/null && [ "$waited" -lt 80 ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        kill -9 "$E2E_SERVE_PID" 2>/dev/null || true
        wait "$E2E_SERVE_PID" 2>/dev/null || true
    fi
    E2E_SERVE_PID=''
}

# Creates the administrator and an API token with the admin commands, before serve
# starts (so serve prints no first-run setup link).
create_admin_and_token() {
    bf admin create-user --email e2e-admin@example.com --name 'E2E admin' --admin >/dev/null 2>&1 ||
        fail "brokeforge admin create-user failed"
    E2E_TOKEN=$(bf admin create-token --email e2e-admin@example.com --name e2e-vm 2>/dev/null |
        awk '/^Token/ { print $NF }')
    [ -n "$E2E_TOKEN" ] || fail "brokeforge admin create-token printed no token"
}

# Logs the CLI in with the token; later commands use the stored credentials.
cli_login() {
    printf '%s\n' "$E2E_TOKEN" | bf login --url "http://127.0.0.1:$E2E_SERVE_PORT" --token-stdin
}

# ---------------------------------------------------------------------------
# Background processes of the run (the Git server, the load client). The EXIT trap
# of scripts/e2e-vm stops them with background_stop_all.

E2E_BACKGROUND_PIDS=()

background_stop_all() {
    local pid
    for pid in "${E2E_BACKGROUND_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${E2E_BACKGROUND_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    E2E_BACKGROUND_PIDS=()
}

# ---------------------------------------------------------------------------
# The site's Git repository, served from the host over HTTPS.
#
# BrokeForge fetches from ssh:// (or git@host:path) and https:// URLs only, and over
# SSH it accepts only host keys it pins (those of github.com, gitlab.com and
# bitbucket.org, and those pinned for the site). Serving over SSH would need an sshd
# with a Git account on the host, so the harness serves the repository over HTTPS:
# Git's plain HTTP protocol (static files, kept current by `git update-server-info`)
# from a small Python TLS server on the host's loopback, which the VM reaches at
# 10.0.2.2. Its certificate, for IP address 10.0.2.2, comes from a throwaway CA made
# per run, which the harness adds to the VM's trust store over root SSH, as an
# administrator would add a company's internal CA.

E2E_GIT_DIR=''
E2E_GIT_PORT=''
E2E_APP_DIR=''

# Git on the host without the user's or the system's configuration.
host_git() {
    GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
        GIT_AUTHOR_NAME='BrokeForge E2E' GIT_AUTHOR_EMAIL=e2e@example.com \
        GIT_COMMITTER_NAME='BrokeForge E2E' GIT_COMMITTER_EMAIL=e2e@example.com \
        git "$@"
}

# Makes the throwaway CA and the server's certificate for 10.0.2.2.
git_server_certificates() {
    local dir=$E2E_GIT_DIR
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj '/CN=BrokeForge e2e throwaway CA' -keyout "$dir/ca.key" -out "$dir/ca.crt" \
        -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj '/CN=10.0.2.2' -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:10.0.2.2' 'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
}

# Starts the HTTPS server for $E2E_GIT_DIR/served on a free loopback port and waits
# until it answers with a certificate the CA vouches for.
git_server_start() {
    E2E_GIT_DIR="$E2E_RUN_DIR/git"
    mkdir -p "$E2E_GIT_DIR/served"
    git_server_certificates
    E2E_GIT_PORT=$(free_port)
    python3 - "$E2E_GIT_DIR/served" "$E2E_GIT_PORT" "$E2E_GIT_DIR/server.crt" "$E2E_GIT_DIR/server.key" \
        >"$E2E_RUN_DIR/git-server.log" 2>&1 <<'PYTHON' &
import functools, http.server, ssl, sys
root, port, cert, key = sys.argv[1:5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PYTHON
    E2E_BACKGROUND_PIDS+=("$!")
    local deadline=$((SECONDS + 20))
    until curl -fsS -o /dev/null --cacert "$E2E_GIT_DIR/ca.crt" \
        --connect-to "10.0.2.2:$E2E_GIT_PORT:127.0.0.1:$E2E_GIT_PORT" "https://10.0.2.2:$E2E_GIT_PORT/" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$E2E_RUN_DIR/git-server.log" >&2
            fail "the HTTPS Git server did not answer within 20 s"
        fi
        sleep 0.3
    done
    echo "Git over HTTPS on 127.0.0.1:$E2E_GIT_PORT (https://10.0.2.2:$E2E_GIT_PORT/ from the VM)"
}

# The repository's URL as the VM sees it.
git_repository_url() {
    printf 'https://10.0.2.2:%s/app.git\n' "$E2E_GIT_PORT"
}

# Adds the throwaway CA to the VM's trust store.
vm_trust_git_ca() {
    local certificate
    certificate=$(base64 -w0 <"$E2E_GIT_DIR/ca.crt")
    local output
    if ! output=$(vm_ssh "echo '$certificate' | base64 -d >/usr/local/share/ca-certificates/brokeforge-e2e-git.crt && update-ca-certificates" 2>&1); then
        printf '%s\n' "$output" | sed 's/^/  vm| /' >&2
        fail "update-ca-certificates failed in the VM"
    fi
    grep -q '1 added' <<<"$output" || fail "update-ca-certificates did not add the CA: $output"
}

# Creates the app: a working copy on the host and the bare repository it pushes to,
# which the HTTPS server serves. index.php prints "release <id>" with the id read
# from release.txt, so every commit shows its own id.
app_repository_init() {
    E2E_APP_DIR="$E2E_RUN_DIR/app"
    host_git init -q -b main "$E2E_APP_DIR"
    cat >"$E2E_APP_DIR/index.php" <<'PHP'
<?php
// A page that names the release it belongs to (release.txt changes with every commit).
header('Content-Type: text/plain');
header('Cache-Control: no-store');
echo 'release ', trim(file_get_contents(__DIR__ . '/release.txt'));
PHP
    printf '%s\n' 'none' >"$E2E_APP_DIR/release.txt"
    host_git -C "$E2E_APP_DIR" add index.php release.txt
    host_git -C "$E2E_APP_DIR" commit -q -m 'The release page'
    host_git clone -q --bare "$E2E_APP_DIR" "$E2E_GIT_DIR/served/app.git"
    host_git -C "$E2E_APP_DIR" remote add origin "$E2E_GIT_DIR/served/app.git"
    host_git -C "$E2E_GIT_DIR/served/app.git" update-server-info
}

# app_commit ID: commits release.txt holding ID and pushes it; E2E_APP_HEAD is the
# new commit.
E2E_APP_HEAD=''
app_commit() {
    printf '%s\n' "$1" >"$E2E_APP_DIR/release.txt"
    host_git -C "$E2E_APP_DIR" commit -q -m "Release $1" release.txt
    host_git -C "$E2E_APP_DIR" push -q origin main
    host_git -C "$E2E_GIT_DIR/served/app.git" update-server-info
    # shellcheck disable=SC2034 # read by scripts/e2e/scenario.sh
    E2E_APP_HEAD=$(host_git -C "$E2E_APP_DIR" rev-parse HEAD)
}
