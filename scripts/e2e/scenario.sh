#!/usr/bin/env bash
# The scenario of ./scripts/e2e-vm, as named phases run in order by scenario_run.
# Each phase drives BrokeForge only through its CLI (the public API) and checks the
# VM with real commands over the harness's root SSH. Sourced by scripts/e2e-vm
# after scripts/e2e/lib.sh.
#
# To extend it (sites and deployments, issue 6), write a phase_* function and add
# its name to E2E_SCENARIO_PHASES where it belongs: after `provisioning` the server
# is fully provisioned and E2E_VM_HTTP_PORT forwards to the guest's port 80.

E2E_SCENARIO_PHASES=(
    control-plane
    boot
    add-server
    bootstrap
    provisioning
    assert-stack
    firewall-rule
    reprovision
    remove-server
)

E2E_SERVER_ID=''

scenario_run() {
    local name
    for name in "${E2E_SCENARIO_PHASES[@]}"; do
        phase "$name" "phase_${name//-/_}"
    done
}

# A fresh data directory, the administrator and a token, `brokeforge serve`, and
# the CLI logged in.
phase_control_plane() {
    control_plane_environment
    create_admin_and_token
    serve_start
    cli_login
}

phase_boot() {
    vm_start
    vm_wait_for_ssh
    if [ -n "${BROKEFORGE_E2E_BREAK:-}" ]; then
        break_server "$BROKEFORGE_E2E_BREAK"
    fi
}

# Breaks the fresh server on purpose, to see that the scenario fails with
# BrokeForge's own error message (BROKEFORGE_E2E_BREAK=NAME):
#   apt-source  an unreachable apt source: the first package's `apt-get update` fails
#   port-80     something else listens on port 80: installing nginx fails
break_server() {
    echo "breaking the server on purpose: $1"
    case $1 in
        apt-source)
            vm_ssh "echo 'deb http://127.0.0.1:9/debian bookworm main' >/etc/apt/sources.list.d/broken.list"
            ;;
        port-80)
            vm_ssh 'systemd-run --unit=squatter -p Restart=always systemd-socket-activate -l 80 /bin/echo squatter >/dev/null'
            ;;
        *)
            fail "unknown BROKEFORGE_E2E_BREAK value: $1 (apt-source or port-80)"
            ;;
    esac
}

# Adds the VM as a server; the server record's address and port are what BrokeForge
# connects to, the host side of QEMU's forward (see vm_start).
phase_add_server() {
    local answer
    answer=$(bf servers create --name e2e-vm --address 127.0.0.1 --ssh-port "$E2E_VM_SSH_PORT" --php 8.2 --json)
    printf '%s\n' "$answer" >"$E2E_RUN_DIR/server-created.json"
    E2E_SERVER_ID=$(jq -er '.id' <<<"$answer")
    E2E_BOOTSTRAP_LINE=$(jq -er '.bootstrap_line.command' <<<"$answer")
    echo "server $E2E_SERVER_ID added; bootstrap line: ${E2E_BOOTSTRAP_LINE%/bootstrap/*}/bootstrap/…"
    # The line is run in the VM as a shell command: check it has the documented shape.
    local pattern="^curl -fsSL 'http://10\\.0\\.2\\.2:$E2E_SERVE_PORT/bootstrap/[A-Za-z0-9_-]+' \\| sudo bash\$"
    local unquoted="^curl -fsSL http://10\\.0\\.2\\.2:$E2E_SERVE_PORT/bootstrap/[A-Za-z0-9_-]+ \\| sudo bash\$"
    if ! [[ $E2E_BOOTSTRAP_LINE =~ $pattern || $E2E_BOOTSTRAP_LINE =~ $unquoted ]]; then
        fail "unexpected bootstrap line: $E2E_BOOTSTRAP_LINE"
    fi
}

# Runs the bootstrap line inside the VM as root, as a user would paste it.
phase_bootstrap() {
    local status=0
    vm_ssh "$E2E_BOOTSTRAP_LINE" 2>&1 | tee "$E2E_RUN_DIR/bootstrap.log" | sed 's/^/  vm| /' || status=$?
    if [ "$status" -ne 0 ]; then
        fail "the bootstrap line failed in the VM (see its output above)"
    fi
    grep -q 'BrokeForge bootstrap finished' "$E2E_RUN_DIR/bootstrap.log" ||
        fail "the bootstrap script did not print its summary"
}

# Prints the provisioning state and the failed job of a server whose onboarding
# stopped, so BrokeForge's own error is in the output.
report_provisioning_failure() {
    echo "--- brokeforge servers provisioning $E2E_SERVER_ID" >&2
    bf servers provisioning "$E2E_SERVER_ID" >&2 || true
    local status job
    status=$(bf servers provisioning "$E2E_SERVER_ID" --json 2>/dev/null) || return 0
    printf '%s\n' "$status" >"$E2E_RUN_DIR/provisioning-failed.json"
    job=$(jq -r '.provisioning_job_id // empty' <<<"$status")
    if [ -n "$job" ]; then
        echo "--- brokeforge jobs show $job" >&2
        bf jobs show "$job" >&2 || true
        bf jobs show "$job" --json >"$E2E_RUN_DIR/failed-job.json" 2>&1 || true
    fi
}

# Waits for provisioning with the CLI, which exits non-zero and prints the failed
# step when onboarding stops.
wait_for_provisioning() {
    if ! bf servers provisioning "$E2E_SERVER_ID" --wait; then
        report_provisioning_failure
        fail "provisioning of server $E2E_SERVER_ID stopped (BrokeForge's message above)"
    fi
}

phase_provisioning() {
    wait_for_provisioning
    print_job_timings
}

# Prints how long each of the server's jobs took, oldest first, with its first
# milestone (which names the package).
print_job_timings() {
    local jobs id started finished seconds milestone
    jobs=$(bf jobs list --server "$E2E_SERVER_ID" --json) || return 0
    echo "jobs of server $E2E_SERVER_ID:"
    while IFS=$'\t' read -r id started finished; do
        [ -n "$finished" ] || continue
        seconds=$(($(date -d "$finished" +%s) - $(date -d "$started" +%s)))
        milestone=$(bf jobs show "$id" --json 2>/dev/null | jq -r '.events[0].milestone // .kind') || milestone='?'
        printf '  #%-4s %5d s  %s\n' "$id" "$seconds" "$milestone"
    done < <(jq -r '.data | sort_by(.id)[] | [.id, .started_at // "", .finished_at // ""] | @tsv' <<<"$jobs")
}

# Checks a command's output in the VM against an extended regular expression.
expect_in_vm() {
    local description=$1 pattern=$2 command=$3 output
    if ! output=$(vm_ssh "$command" 2>&1); then
        printf '%s\n' "$output" | sed 's/^/  vm| /' >&2
        fail "$description: \`$command\` failed in the VM"
    fi
    if ! grep -Eq -- "$pattern" <<<"$output"; then
        printf '%s\n' "$output" | sed 's/^/  vm| /' >&2
        fail "$description: \`$command\` did not print /$pattern/"
    fi
    printf '  ok  %-44s %s\n' "$description" "$(grep -Em1 -- "$pattern" <<<"$output")"
}

ufw_status() {
    vm_ssh 'LC_ALL=C ufw status'
}

# The rule lines of `ufw status` for TCP port $1 allowed from anywhere (v4 and v6).
ufw_allows() {
    grep -E "^$1(/tcp)? +ALLOW +Anywhere" <<<"$2"
}

phase_assert_stack() {
    local unit
    for unit in nginx php8.2-fpm cron supervisor systemd-timesyncd ssh; do
        expect_in_vm "systemd unit $unit" '^active$' "systemctl is-active $unit"
    done
    # `ufw --force enable` loads the rules at once and sets ENABLED=yes; ufw.service,
    # a oneshot that loads them at boot, stays inactive until the next boot. So the
    # checks are: the service starts at boot, and ufw says it is active.
    expect_in_vm 'ufw loads its rules at boot' '^enabled$' 'systemctl is-enabled ufw'
    expect_in_vm 'nginx -t' 'test is successful' 'nginx -t 2>&1'
    expect_in_vm 'php -v is PHP 8.2' '^PHP 8\.2\.' 'php -v'
    expect_in_vm 'php-fpm 8.2 socket' '^php8\.2-fpm\.sock$' 'ls /run/php/'
    expect_in_vm 'node -v' '^v[0-9]+\.' 'node -v'
    expect_in_vm 'npm -v' '^[0-9]+\.' 'npm -v'
    expect_in_vm 'composer --version' '^Composer (version )?[0-9]' 'composer --version 2>/dev/null'
    expect_in_vm 'timesyncd is on' 'NTP service: active' 'LC_ALL=C timedatectl status'
    expect_in_vm 'ufw is active' '^Status: active' 'LC_ALL=C ufw status verbose'
    expect_in_vm 'ufw denies incoming by default' 'Default: deny \(incoming\)' 'LC_ALL=C ufw status verbose'
    local status port
    status=$(ufw_status)
    printf '%s\n' "$status" >"$E2E_RUN_DIR/ufw-status-provisioned.txt"
    for port in "$E2E_VM_SSH_PORT" 80 443; do
        if ! ufw_allows "$port" "$status" >/dev/null; then
            printf '%s\n' "$status" | sed 's/^/  vm| /' >&2
            fail "ufw status does not allow port $port/tcp"
        fi
        printf '  ok  %-44s %s\n' "ufw allows $port/tcp" "$(ufw_allows "$port" "$status" | head -n 1)"
    done
    # nginx answers through the HTTP forward, so the firewall lets port 80 in.
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "http://127.0.0.1:$E2E_VM_HTTP_PORT/") || true
    [[ $code =~ ^[2-4][0-9][0-9]$ ]] || fail "nginx did not answer over the forwarded HTTP port (HTTP $code)"
    printf '  ok  %-44s %s\n' 'nginx answers on port 80 from outside' "HTTP $code"
    # Nothing else gets in: the probe answers inside the VM, but from outside its port
    # is closed until a rule opens it.
    expect_in_vm "probe answers on port $E2E_PROBE_PORT inside" '^brokeforge-e2e-probe$' \
        "timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$E2E_PROBE_PORT && head -n 1 <&3'"
    if vm_probe_reachable; then
        fail "port $E2E_PROBE_PORT is reachable although no firewall rule allows it"
    fi
    printf '  ok  %-44s\n' "port $E2E_PROBE_PORT is blocked from outside"
}

# Adds an allow rule for the probe port with the CLI, checks it in `ufw status` and
# with a real connection, removes it, and checks both again.
phase_firewall_rule() {
    local port=$E2E_PROBE_PORT status rule_id
    bf servers firewall add "$E2E_SERVER_ID" --port "$port" --protocol tcp --comment 'e2e probe' --follow
    status=$(ufw_status)
    ufw_allows "$port" "$status" >/dev/null || {
        printf '%s\n' "$status" | sed 's/^/  vm| /' >&2
        fail "ufw status does not show the rule for $port/tcp"
    }
    printf '  ok  %-44s %s\n' "ufw allows $port/tcp" "$(ufw_allows "$port" "$status" | head -n 1)"
    vm_probe_reachable || fail "port $port is still blocked from outside after the rule was added"
    printf '  ok  %-44s\n' "port $port is reachable from outside"

    local rules
    rules=$(bf servers firewall list "$E2E_SERVER_ID" --json)
    printf '%s\n' "$rules" >"$E2E_RUN_DIR/firewall-rules.json"
    rule_id=$(jq -er --arg port "$port" '[.data[] | select((.port | tostring) == $port)][0].id' <<<"$rules") ||
        fail "brokeforge servers firewall list does not show the rule for port $port"
    bf servers firewall remove "$E2E_SERVER_ID" "$rule_id" --follow
    status=$(ufw_status)
    if ufw_allows "$port" "$status" >/dev/null; then
        printf '%s\n' "$status" | sed 's/^/  vm| /' >&2
        fail "ufw status still shows the rule for $port/tcp after its removal"
    fi
    printf '  ok  %-44s\n' "ufw no longer allows $port/tcp"
    if vm_probe_reachable; then
        fail "port $port is still reachable after the rule was removed"
    fi
    printf '  ok  %-44s\n' "port $port is blocked again from outside"
    ufw_allows "$E2E_VM_SSH_PORT" "$status" >/dev/null || fail "the SSH port lost its rule"
}

# Provisions the server again: every package must report no change.
phase_reprovision() {
    bf servers provision "$E2E_SERVER_ID"
    wait_for_provisioning
    local status changed
    status=$(bf servers provisioning "$E2E_SERVER_ID" --json)
    printf '%s\n' "$status" >"$E2E_RUN_DIR/reprovision.json"
    jq -r '.packages[] | "  \(.label): changed=\(.changed)"' <<<"$status"
    changed=$(jq -r '[.packages[] | select(.changed != false) | .label] | join(", ")' <<<"$status")
    if [ -n "$changed" ]; then
        fail "provisioning a provisioned server again changed (or did not run): $changed"
    fi
}

# Deletes the server and BrokeForge's access to it; the brokeforge user, its sudo
# rules and BrokeForge's keys are gone, the harness's key still works. The end state
# is checked even when the CLI reports an error, so a failure says both.
phase_remove_server() {
    local follow_status=0
    bf servers delete "$E2E_SERVER_ID" --remove-access --follow || follow_status=$?
    local leftovers
    leftovers=$(vm_ssh 'id brokeforge 2>/dev/null; ls -d /home/brokeforge /etc/sudoers.d/brokeforge 2>/dev/null; true')
    if [ -n "$leftovers" ]; then
        printf '%s\n' "$leftovers" | sed 's/^/  vm| /' >&2
        fail "BrokeForge's access is still on the server after the removal"
    fi
    printf '  ok  %-44s\n' 'the brokeforge user, home and sudo rules are gone'
    local keys
    keys=$(vm_ssh 'grep -c . /root/.ssh/authorized_keys')
    [ "$keys" = 1 ] || fail "root's authorized_keys holds $keys keys after the removal; expected only the harness's"
    printf '  ok  %-44s\n' "root's authorized_keys holds only the harness key"
    if bf servers show "$E2E_SERVER_ID" >/dev/null 2>&1; then
        fail "server $E2E_SERVER_ID still exists in BrokeForge after the removal"
    fi
    printf '  ok  %-44s\n' 'the server is gone from BrokeForge'
    if [ "$follow_status" -ne 0 ]; then
        fail "\`brokeforge servers delete $E2E_SERVER_ID --remove-access --follow\` exited with $follow_status (its message above) although the access was removed and the server deleted"
    fi
    E2E_SERVER_ID=''
}
