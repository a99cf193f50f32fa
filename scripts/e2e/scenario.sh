#!/usr/bin/env bash
# The scenario of ./scripts/e2e-vm, as named phases run in order by scenario_run.
# Each phase drives BrokeForge only through its CLI (the public API) and checks the
# VM with real commands over the harness's root SSH. Sourced by scripts/e2e-vm
# after scripts/e2e/lib.sh.
#
# To extend it, write a phase_* function and add its name to E2E_SCENARIO_PHASES
# where it belongs: after `provisioning` the server is fully provisioned and
# E2E_VM_HTTP_PORT forwards to the guest's port 80.

E2E_SCENARIO_PHASES=(
    control-plane
    boot
    add-server
    bootstrap
    provisioning
    assert-stack
    firewall-rule
    git-repository
    site-create
    site-deploy
    site-redeploy
    site-rollback
    site-command
    site-default
    site-remove
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
    break_check_name
    vm_start
    vm_wait_for_ssh
    break_server before-bootstrap
}

# Breaks the server on purpose, to see that the scenario fails with BrokeForge's own
# error message (BROKEFORGE_E2E_BREAK=NAME):
#   apt-source  before the bootstrap, an unreachable apt source: the first
#               package's `apt-get update` fails
#   port-80     before the bootstrap, something else listens on port 80: installing
#               nginx fails
#   php-fpm     before the first deployment, `systemctl stop php8.2-fpm`: the
#               deployment's PHP-FPM reload fails
E2E_BREAKS='apt-source port-80 php-fpm'

break_check_name() {
    local name=${BROKEFORGE_E2E_BREAK:-}
    if [ -n "$name" ] && [[ " $E2E_BREAKS " != *" $name "* ]]; then
        fail "unknown BROKEFORGE_E2E_BREAK value: $name (one of: $E2E_BREAKS)"
    fi
}

# break_server MOMENT: applies the break chosen for MOMENT (before-bootstrap or
# before-deploy), if any.
break_server() {
    local name=${BROKEFORGE_E2E_BREAK:-} moment=$1
    case "$moment:$name" in
        before-bootstrap:apt-source)
            echo "breaking the server on purpose: $name"
            vm_ssh "echo 'deb http://127.0.0.1:9/debian bookworm main' >/etc/apt/sources.list.d/broken.list"
            ;;
        before-bootstrap:port-80)
            echo "breaking the server on purpose: $name"
            vm_ssh 'systemd-run --unit=squatter -p Restart=always systemd-socket-activate -l 80 /bin/echo squatter >/dev/null'
            ;;
        before-deploy:php-fpm)
            echo "breaking the server on purpose: $name (systemctl stop php8.2-fpm)"
            vm_ssh 'systemctl stop php8.2-fpm'
            expect_in_vm 'php8.2-fpm is stopped' '^inactive$' 'systemctl is-active php8.2-fpm || true'
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
# milestone (which names the package); jobs of 30 s or more also get their steps.
print_job_timings() {
    local jobs id started finished seconds milestone
    jobs=$(bf jobs list --server "$E2E_SERVER_ID" --json) || return 0
    echo "jobs of server $E2E_SERVER_ID:"
    while IFS=$'\t' read -r id started finished; do
        [ -n "$finished" ] || continue
        seconds=$(($(date -d "$finished" +%s) - $(date -d "$started" +%s)))
        milestone=$(bf jobs show "$id" --json 2>/dev/null | jq -r '.events[0].milestone // .kind') || milestone='?'
        printf '  #%-4s %5d s  %s\n' "$id" "$seconds" "$milestone"
        if [ "$seconds" -ge 30 ]; then
            print_job_steps "$id"
        fi
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

# ---------------------------------------------------------------------------
# Sites and deployments: a PHP site from a Git repository served by the host (see
# git_server_start in scripts/e2e/lib.sh), its page fetched through the HTTP forward
# with the site's Host header.

E2E_SITE_DOMAIN=app.e2e.test
E2E_SITE_ID=''
# The release ids committed to the app and the commits that carry them.
E2E_RELEASE_1="r1-$(date +%s)-$RANDOM"
E2E_RELEASE_2="r2-$(date +%s)-$RANDOM"
E2E_COMMIT_1=''
E2E_COMMIT_2=''
E2E_LOAD_PID=''

# Prints "<body> <HTTP code>" of the site's page through the HTTP forward.
site_page() {
    page_for_host "$E2E_SITE_DOMAIN"
}

# page_for_host HOST: prints "<body> <HTTP code>" of what nginx answers for HOST.
page_for_host() {
    curl -sS --max-time 20 -H "Host: $1" -w ' %{http_code}' "http://127.0.0.1:$E2E_VM_HTTP_PORT/" 2>&1 || true
}

# expect_page RELEASE: the site's page must answer 200 with that release id.
expect_page() {
    local answer
    answer=$(site_page)
    if [ "$answer" != "release $1 200" ]; then
        fail "http://$E2E_SITE_DOMAIN/ answered \"$answer\"; expected \"release $1 200\""
    fi
    printf '  ok  %-44s %s\n' "http://$E2E_SITE_DOMAIN/ shows release $1" "HTTP 200"
}

site_json() {
    bf sites show "$E2E_SITE_ID" --json
}

# Prints the timings of job $1's steps: from each milestone's first event to the
# next milestone's (the last one to the job's end).
print_job_steps() {
    local job
    job=$(bf jobs show "$1" --json) || return 0
    # shellcheck disable=SC2016 # jq's own variables
    jq -r '
        def ms: capture("^(?<s>[^.Z+]+)(\\.(?<f>[0-9]+))?")
            | ((.s + "Z") | fromdateiso8601) * 1000 + ((.f // "0") + "000" | .[0:3] | tonumber);
        (.finished_at // .started_at // .created_at | ms) as $finish
        | [.events[] | {milestone, status, at: (.created_at | ms)}]
        | reduce .[] as $event ([]; if length > 0 and .[-1].milestone == $event.milestone
            then .[-1].status = $event.status else . + [$event] end)
        | to_entries as $steps
        | $steps[] | .value as $step
        | (if .key + 1 < ($steps | length) then $steps[.key + 1].value.at else $finish end) as $upto
        | "    \(($upto - $step.at) / 1000 | . * 10 | round / 10 | tostring | (" " * (7 - length)) + .) s  \($step.milestone)\(if $step.status == "failed" then " (failed)" else "" end)"
    ' <<<"$job"
}

# Prints a failed job's events (BrokeForge's step, command, exit code and stderr)
# and saves its JSON with the logs.
report_job_failure() {
    local job=$1
    [ -n "$job" ] || return 0
    echo "--- brokeforge jobs show $job" >&2
    bf jobs show "$job" >&2 || true
    bf jobs show "$job" --json >"$E2E_RUN_DIR/failed-job.json" 2>&1 || true
}

# The newest deployment (or rollback) of the site, as JSON.
latest_deployment() {
    bf sites deployments "$E2E_SITE_ID" --json | jq -e '.data[0]'
}

# deploy_site COMMIT: deploys the branch head with the CLI, which must build COMMIT.
# A failed deployment ends the run with BrokeForge's message.
deploy_site() {
    local expected=$1 status=0 deployment job
    bf sites deploy "$E2E_SITE_ID" --follow || status=$?
    deployment=$(latest_deployment) || fail "brokeforge sites deployments lists no deployment"
    job=$(jq -r '.job_id // empty' <<<"$deployment")
    if [ "$status" -ne 0 ]; then
        report_job_failure "$job"
        # What is live after the failure, on the server and in BrokeForge's record.
        echo "--- after the failure: current -> $(vm_ssh "readlink /home/brokeforge/$E2E_SITE_DOMAIN/current || echo nothing" 2>&1);" \
            "BrokeForge's live release: $(site_json | jq -r '.current_release // "none"')" >&2
        fail "the deployment of commit $expected failed (BrokeForge's message above)"
    fi
    report_deployment "$deployment" "$expected"
}

# report_deployment JSON COMMIT: checks a finished deployment record and prints its
# timings.
report_deployment() {
    local deployment=$1 expected=$2 status commit
    status=$(jq -r '.status' <<<"$deployment")
    commit=$(jq -r '.commit // empty' <<<"$deployment")
    [ "$status" = succeeded ] || fail "the deployment's record says $status: $(jq -r '.error // ""' <<<"$deployment")"
    [ "$commit" = "$expected" ] || fail "BrokeForge built commit ${commit:-none}; the branch head is $expected"
    printf '  ok  %-44s %s\n' "$(jq -r '"\(.trigger) #\(.id): release \(.release)"' <<<"$deployment")" \
        "commit ${commit:0:12}, $(jq -r '.duration_seconds' <<<"$deployment") s"
    printf '%s\n' "$deployment" >>"$E2E_RUN_DIR/deployments.json"
    print_job_steps "$(jq -r '.job_id' <<<"$deployment")"
}

# Creates the app's repository and its HTTPS server on the host and makes the VM
# trust the server's CA (the harness's setup, not BrokeForge's).
phase_git_repository() {
    git_server_start
    app_repository_init
    vm_trust_git_ca
    expect_in_vm 'the VM trusts the Git server' 'refs/heads/main' \
        "curl -fsS $(git_repository_url)/info/refs"
}

# Creates the PHP site from the repository with the CLI.
phase_site_create() {
    bf sites create "$E2E_SERVER_ID" --domain "$E2E_SITE_DOMAIN" --type php --php 8.2 \
        --repository "$(git_repository_url)" --branch main --follow
    E2E_SITE_ID=$(bf sites list "$E2E_SERVER_ID" --json |
        jq -er --arg domain "$E2E_SITE_DOMAIN" '.data[] | select(.domain == $domain) | .id') ||
        fail "brokeforge sites list does not show $E2E_SITE_DOMAIN"
    site_json >"$E2E_RUN_DIR/site-created.json"
    echo "site $E2E_SITE_ID: $(jq -r '"\(.domain), \(.site_type), PHP \(.php_version), \(.status)"' "$E2E_RUN_DIR/site-created.json")"
    expect_in_vm 'nginx server block' "^/etc/nginx/sites-available/$E2E_SITE_DOMAIN\\.conf\$" \
        "ls -d /etc/nginx/sites-available/$E2E_SITE_DOMAIN.conf"
    expect_in_vm 'nginx server block is enabled' "sites-available/$E2E_SITE_DOMAIN\\.conf\$" \
        "readlink -f /etc/nginx/sites-enabled/$E2E_SITE_DOMAIN.conf"
    expect_in_vm 'PHP-FPM pool' "^/etc/php/8\\.2/fpm/pool\\.d/$E2E_SITE_DOMAIN\\.conf\$" \
        "ls -d /etc/php/8.2/fpm/pool.d/$E2E_SITE_DOMAIN.conf"
    expect_in_vm 'site directory' "^/home/brokeforge/$E2E_SITE_DOMAIN\$" "ls -d /home/brokeforge/$E2E_SITE_DOMAIN"
    expect_in_vm 'nginx -t' 'test is successful' 'nginx -t 2>&1'
    expect_in_vm 'php-fpm8.2 -t' 'test is successful' 'php-fpm8.2 -t 2>&1'
}

# Commits release 1 and deploys it; the page shows it.
phase_site_deploy() {
    app_commit "$E2E_RELEASE_1"
    E2E_COMMIT_1=$E2E_APP_HEAD
    break_server before-deploy
    deploy_site "$E2E_COMMIT_1"
    expect_page "$E2E_RELEASE_1"
    expect_in_vm 'current names a release' "^/home/brokeforge/$E2E_SITE_DOMAIN/releases/[0-9]+\$" \
        "readlink -f /home/brokeforge/$E2E_SITE_DOMAIN/current"
}

# The load client: requests the page one after another until $1 exists, each with
# short time limits, and appends "<ms since epoch> <seconds taken> <HTTP code>
# <body>" per request to $2 (code 000 when no answer came).
load_client() {
    local stop=$1 log=$2 answer
    while [ ! -e "$stop" ]; do
        answer=$(curl -s --connect-timeout 2 --max-time 5 -H "Host: $E2E_SITE_DOMAIN" \
            -w '\n%{time_total} %{http_code}' "http://127.0.0.1:$E2E_VM_HTTP_PORT/" 2>/dev/null) || true
        printf '%s %s %s\n' "$(now_ms)" "$(tail -n 1 <<<"$answer")" "$(head -n 1 <<<"$answer")" >>"$log"
        sleep 0.05
    done
}

# load_count LOG PATTERN: how many requests in LOG match PATTERN (on the code and
# body).
load_count() {
    awk -v pattern="$2" '{ $1 = ""; $2 = ""; sub(/^ +/, "") } $0 ~ pattern { n++ } END { print n + 0 }' "$1"
}

# load_wait LOG PATTERN COUNT SECONDS: waits until COUNT requests matched PATTERN.
load_wait() {
    local deadline=$((SECONDS + $4))
    until [ "$(load_count "$1" "$2")" -ge "$3" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 5 "$1" | sed 's/^/  load| /' >&2
            fail "the load client did not see $3 answers matching /$2/ within $4 s"
        fi
        sleep 0.5
    done
}

# Commits release 2 and deploys it while a client requests the page continuously:
# no request may fail, and once the page shows release 2 it never shows release 1
# again.
phase_site_redeploy() {
    local log="$E2E_RUN_DIR/load.log" stop="$E2E_RUN_DIR/load.stop"
    app_commit "$E2E_RELEASE_2"
    E2E_COMMIT_2=$E2E_APP_HEAD
    rm -f "$log" "$stop"
    touch "$log"
    load_client "$stop" "$log" &
    E2E_LOAD_PID=$!
    E2E_BACKGROUND_PIDS+=("$E2E_LOAD_PID")
    load_wait "$log" "^200 release $E2E_RELEASE_1\$" 3 60
    local started
    started=$(now_ms)
    deploy_site "$E2E_COMMIT_2"
    local finished
    finished=$(now_ms)
    load_wait "$log" "^200 release $E2E_RELEASE_2\$" 3 60
    touch "$stop"
    wait "$E2E_LOAD_PID" || true
    E2E_LOAD_PID=''
    local total during failed old new flipped slowest
    total=$(wc -l <"$log")
    during=$(awk -v from="$started" -v to="$finished" '$1 >= from && $1 <= to { n++ } END { print n + 0 }' "$log")
    failed=$(awk -v one="release $E2E_RELEASE_1" -v two="release $E2E_RELEASE_2" '
        { code = $3; body = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ ?/, "", body) }
        !(code == "200" && (body == one || body == two)) { n++ } END { print n + 0 }' "$log")
    old=$(load_count "$log" "^200 release $E2E_RELEASE_1\$")
    new=$(load_count "$log" "^200 release $E2E_RELEASE_2\$")
    # A release 1 answer after the first release 2 answer means the switch was not
    # atomic (the client sends one request at a time).
    flipped=$(awk -v one="release $E2E_RELEASE_1" -v two="release $E2E_RELEASE_2" '
        { body = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ ?/, "", body) }
        body == two { seen = 1 } seen && body == one { n++ } END { print n + 0 }' "$log")
    slowest=$(awk '$2 > max { max = $2 } END { printf "%.2f", max }' "$log")
    echo "load client: $total requests ($during while the deployment ran), $old answered release 1, $new release 2, $failed failed, slowest ${slowest} s"
    if [ "$failed" -ne 0 ]; then
        awk -v one="release $E2E_RELEASE_1" -v two="release $E2E_RELEASE_2" '
            { code = $3; body = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ ?/, "", body) }
            !(code == "200" && (body == one || body == two))' "$log" | head -n 10 | sed 's/^/  load| /' >&2
        fail "$failed of $total requests failed during the redeployment"
    fi
    [ "$during" -ge 1 ] || fail "no request ran while the deployment ran"
    [ "$flipped" -eq 0 ] || fail "$flipped requests showed release 1 again after release 2 was served"
    printf '  ok  %-44s %s\n' 'no failed request during the redeployment' "$total requests"
    expect_page "$E2E_RELEASE_2"
}

# Rolls back to the release of commit 1 with the CLI; the page shows release 1.
phase_site_rollback() {
    local releases release
    releases=$(bf sites releases "$E2E_SITE_ID" --json)
    printf '%s\n' "$releases" >"$E2E_RUN_DIR/releases.json"
    bf sites releases "$E2E_SITE_ID"
    release=$(jq -er --arg commit "$E2E_COMMIT_1" '[.data[] | select(.commit == $commit)][0].release' <<<"$releases") ||
        fail "brokeforge sites releases lists no release of commit $E2E_COMMIT_1"
    local status=0 deployment
    bf sites rollback "$E2E_SITE_ID" "$release" --follow || status=$?
    deployment=$(latest_deployment) || fail "brokeforge sites deployments lists no rollback"
    if [ "$status" -ne 0 ]; then
        report_job_failure "$(jq -r '.job_id // empty' <<<"$deployment")"
        fail "the rollback to release $release failed (BrokeForge's message above)"
    fi
    [ "$(jq -r '.trigger' <<<"$deployment")" = rollback ] || fail "the newest deployment is not the rollback"
    report_deployment "$deployment" "$E2E_COMMIT_1"
    local current
    current=$(site_json | jq -r '.current_release // empty')
    [ "$current" = "$release" ] || fail "the site's live release is ${current:-none}; expected $release"
    printf '  ok  %-44s %s\n' 'the live release is the rolled back one' "$release"
    expect_page "$E2E_RELEASE_1"
}

# Runs a command in the site's current release with the CLI and reads its output
# back through the API.
phase_site_command() {
    local followed run output exit_code
    # --follow --json prints only the finished run, as JSON.
    followed=$(bf sites run "$E2E_SITE_ID" --follow --json -- 'cat release.txt && php -r "echo PHP_VERSION, PHP_EOL;"')
    jq -e '.exit_code == 0' <<<"$followed" >/dev/null ||
        fail "brokeforge sites run --follow --json printed \"$followed\"; expected the finished run as JSON"
    run=$(bf sites commands "$E2E_SITE_ID" --json | jq -e '.data[0]') ||
        fail "brokeforge sites commands lists no command"
    printf '%s\n' "$run" >"$E2E_RUN_DIR/site-command.json"
    output=$(jq -r '.output' <<<"$run")
    exit_code=$(jq -r '.exit_code' <<<"$run")
    [ "$exit_code" = 0 ] || fail "the site command exited with $exit_code"
    [ "$(head -n 1 <<<"$output")" = "$E2E_RELEASE_1" ] ||
        fail "the site command's output, read through the API, is \"$output\"; expected release $E2E_RELEASE_1 first"
    grep -Eq '^8\.2\.[0-9]+$' <<<"$(sed -n 2p <<<"$output")" ||
        fail "the site command's second line is not a PHP 8.2 version: \"$output\""
    printf '  ok  %-44s %s\n' 'the command output read through the API' "$(tr '\n' ' ' <<<"$output")"
}

# wait_for_page HOST CHECK: asks for HOST's page until the function CHECK accepts the
# answer, for up to 20 s, and prints the last answer. `systemctl reload nginx` returns
# once nginx has the signal, before its new workers answer, and under TCG that can
# take seconds.
wait_for_page() {
    local host=$1 check=$2 answer deadline=$((SECONDS + 20))
    while :; do
        answer=$(page_for_host "$host")
        if "$check" "$answer"; then
            printf '%s' "$answer"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '%s' "$answer"
            return 1
        fi
        sleep 0.5
    done
}

answers_release_1() {
    [ "$1" = "release $E2E_RELEASE_1 200" ]
}

answers_without_the_app() {
    [[ $1 != *"release "* ]]
}

# Makes the site the server's default site: a name no site serves then gets the app
# instead of the catch-all; unsetting it brings the catch-all back.
phase_site_default() {
    local unknown=unknown-name.e2e.test answer
    answer=$(page_for_host "$unknown")
    answers_without_the_app "$answer" || fail "$unknown got the app before the site was made the default: $answer"
    printf '  ok  %-44s %s\n' "$unknown gets the catch-all" "${answer##* }"
    bf sites default "$E2E_SITE_ID" --follow
    expect_in_vm 'nginx -t' 'test is successful' 'nginx -t 2>&1'
    expect_in_vm 'the catch-all is off' '^off$' \
        'test -e /etc/nginx/sites-enabled/brokeforge-default && echo on || echo off'
    if ! answer=$(wait_for_page "$unknown" answers_release_1); then
        vm_ssh "ls -l /etc/nginx/sites-enabled; grep -n 'listen' /etc/nginx/sites-available/$E2E_SITE_DOMAIN*" 2>&1 |
            sed 's/^/  vm| /' >&2 || true
        fail "$unknown answered \"$answer\" with the site as the default; expected \"release $E2E_RELEASE_1 200\""
    fi
    printf '  ok  %-44s %s\n' "$unknown gets the default site" "release $E2E_RELEASE_1"
    expect_page "$E2E_RELEASE_1"
    bf sites default "$E2E_SITE_ID" --unset --follow
    answer=$(wait_for_page "$unknown" answers_without_the_app) ||
        fail "$unknown still gets the app after the default was unset: $answer"
    printf '  ok  %-44s %s\n' "$unknown gets the catch-all again" "${answer##* }"
    expect_in_vm 'the catch-all is on' '^on$' \
        'test -e /etc/nginx/sites-enabled/brokeforge-default && echo on || echo off'
    expect_page "$E2E_RELEASE_1"
}

# Deletes the site with the CLI: its server block, pool and directory are gone, and
# the page no longer answers for its domain.
phase_site_remove() {
    bf sites delete "$E2E_SITE_ID" --follow
    local leftovers
    leftovers=$(vm_ssh "ls -d /etc/nginx/sites-*/$E2E_SITE_DOMAIN* /etc/php/*/fpm/pool.d/$E2E_SITE_DOMAIN* /home/brokeforge/$E2E_SITE_DOMAIN 2>/dev/null; true")
    if [ -n "$leftovers" ]; then
        printf '%s\n' "$leftovers" | sed 's/^/  vm| /' >&2
        fail "the site's files are still on the server after its removal"
    fi
    printf '  ok  %-44s\n' 'server block, pool and site directory are gone'
    expect_in_vm 'nginx -t' 'test is successful' 'nginx -t 2>&1'
    expect_in_vm 'php8.2-fpm still runs' '^active$' 'systemctl is-active php8.2-fpm'
    local answer
    answer=$(site_page)
    if [[ $answer == *"release "* ]]; then
        fail "http://$E2E_SITE_DOMAIN/ still serves the app after the removal: $answer"
    fi
    printf '  ok  %-44s %s\n' "http://$E2E_SITE_DOMAIN/ no longer serves the app" "${answer##* }"
    if bf sites show "$E2E_SITE_ID" >/dev/null 2>&1; then
        fail "site $E2E_SITE_ID still exists in BrokeForge after the removal"
    fi
    printf '  ok  %-44s\n' 'the site is gone from BrokeForge'
    E2E_SITE_ID=''
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
