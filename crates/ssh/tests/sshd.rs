//! Tier 3: the executor against a real OpenSSH server started by the test kit on
//! loopback. Nothing is mocked: exit codes, streams, timeouts, `MaxSessions`, host
//! keys, authentication, crashes and uploads are OpenSSH's own behaviour.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokeforge_core::{Cmd, FileContents, Plan, Record, RemotePath, Secret, ShellArg};
use brokeforge_ssh::{ErrorKind, HostKey, SshError, Stream, Target, generate_keypair};
use brokeforge_testkit::SshServer;
use support::{Event, Recorder, Stage, builder, pool, remote_processes, script, target};

fn path(server: &SshServer, name: &str) -> RemotePath {
    RemotePath::try_from(server.work_dir().join(name).to_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_stderr_reach_the_observer_and_the_error() {
    let server = SshServer::start();
    let pool = pool();
    let recorder = Recorder::default();
    let mut plan = builder();
    plan.run(script("echo fine"))
        .run(script(
            "echo out; echo 'E: Unable to locate package nginx-ful' >&2; exit 3",
        ))
        .run(script("echo never"));
    let error = pool
        .run_plan(&target(&server), &plan.build(), &recorder)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::CommandFailed);
    assert_eq!(error.step_index(), Some(1));
    assert_eq!(error.exit_code(), Some(3));
    assert_eq!(error.stderr_tail(), Some("E: Unable to locate package nginx-ful\n"));
    assert_eq!(
        error.to_string(),
        "the command failed with exit code 3: echo out; echo 'E: Unable to locate package nginx-ful' >&2; exit 3: \
         E: Unable to locate package nginx-ful"
    );
    assert_eq!(recorder.output(0, Stream::Stdout), b"fine\n");
    assert_eq!(recorder.output(1, Stream::Stdout), b"out\n");
    let outline = recorder.outline();
    assert_eq!(outline.len(), 4, "{outline:#?}");
    assert_eq!(outline[1], "0 finished 0");
    assert_eq!(outline[3], "1 finished 3");
    assert!(!recorder.all_text().contains("never"), "a step after the failure ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_stay_separate_and_stream_as_they_are_written() {
    let server = SshServer::start();
    let pool = pool();
    let recorder = Recorder::default();
    let mut plan = builder();
    plan.run(script("echo one; sleep 0.4; echo two >&2; sleep 0.4; printf three"));
    let started = Instant::now();
    let report = pool.run_plan(&target(&server), &plan.build(), &recorder).await.unwrap();

    assert_eq!(recorder.output(0, Stream::Stdout), b"one\nthree");
    assert_eq!(recorder.output(0, Stream::Stderr), b"two\n");
    assert_eq!(report.steps[0].stdout_tail, "one\nthree");
    assert_eq!(report.steps[0].stderr_tail, "two\n");
    assert!(report.steps[0].duration >= Duration::from_millis(800));
    // Each piece arrived while the command was still running, in the order written.
    let arrivals: Vec<(Duration, Stream, Vec<u8>)> = recorder
        .timed_events()
        .into_iter()
        .filter_map(|(at, event)| match event {
            Event::Output(_, stream, chunk) => Some((at - started, stream, chunk)),
            _ => None,
        })
        .collect();
    let first = arrivals.iter().find(|(_, _, chunk)| chunk.starts_with(b"one")).unwrap();
    let second = arrivals.iter().find(|(_, _, chunk)| chunk.starts_with(b"two")).unwrap();
    let third = arrivals.iter().find(|(_, _, chunk)| chunk.ends_with(b"three")).unwrap();
    assert_eq!(
        (first.1, second.1, third.1),
        (Stream::Stdout, Stream::Stderr, Stream::Stdout)
    );
    assert!(second.0 >= first.0 + Duration::from_millis(300), "{arrivals:?}");
    assert!(third.0 >= second.0 + Duration::from_millis(300), "{arrivals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_come_in_plan_order() {
    let server = SshServer::start();
    let pool = pool();
    let recorder = Recorder::default();
    let mut plan = builder();
    plan.milestone(Stage::Prepare)
        .run(script("echo a"))
        .run(script("echo b >&2"))
        .milestone(Stage::Install)
        .upload(path(&server, "config"), b"x=1\n".to_vec(), 0o640, None)
        .persist(Record::new("web-server", "nginx", "1.22"))
        .run(script("true"))
        .milestone(Stage::Finish);
    pool.run_plan(&target(&server), &plan.build(), &recorder).await.unwrap();
    let config = path(&server, "config");
    assert_eq!(
        recorder.outline(),
        [
            "0 milestone prepare".to_owned(),
            "1 started root$ echo a".into(),
            "1 finished 0".into(),
            "2 started root$ echo b >&2".into(),
            "2 finished 0".into(),
            "3 milestone install".into(),
            format!("4 started upload {config} as root (4 B, mode 0640)"),
            "4 finished 0".into(),
            "5 persist nginx".into(),
            "6 started root$ true".into(),
            "6 finished 0".into(),
            "7 milestone finish".into(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_channels_share_one_connection_despite_max_sessions_10() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..30u32 {
        let pool = pool.clone();
        let target = target.clone();
        tasks.spawn(async move {
            let cmd = Cmd::new("sleep 0.3; echo").arg(number);
            let output = pool.run_command(&target, &cmd, Duration::from_secs(30)).await;
            (number, output)
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (number, output) = result.unwrap();
        let output = output.unwrap_or_else(|error| panic!("command {number}: {error}"));
        assert_eq!(output.stdout_text(), format!("{number}\n"));
    }
    assert_eq!(pool.connection_count(), 1);
    // Ten at a time: three rounds of 0.3 s, not thirty.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let log = server.log();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_remote_process_and_its_children() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let mut plan = builder();
    plan.run_with_timeout(
        script("sleep 31.5 & sleep 32.5; echo not reached"),
        Duration::from_secs(1),
    );
    let plan = plan.build();

    let running = tokio::spawn({
        let pool = pool.clone();
        let target = target.clone();
        async move {
            let recorder = Recorder::default();
            let result = pool.run_plan(&target, &plan, &recorder).await;
            (result, recorder)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = remote_processes(&pool, &target).await;
    assert!(during.iter().any(|line| line.ends_with("sleep 31.5")), "{during:#?}");
    assert!(during.iter().any(|line| line.ends_with("sleep 32.5")), "{during:#?}");

    let (result, recorder) = running.await.unwrap();
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CommandTimeout);
    assert_eq!(
        error.to_string(),
        "the command timed out after 1s: sleep 31.5 & sleep 32.5; echo not reached"
    );
    let Some(Event::Finished(report)) = recorder.events().last().cloned() else {
        panic!("no report: {:?}", recorder.events());
    };
    assert!(report.timed_out);
    assert_eq!(report.exit_code, 124);
    assert!(report.duration >= Duration::from_secs(1) && report.duration < Duration::from_secs(3));

    let after = remote_processes(&pool, &target).await;
    assert!(
        !after.iter().any(|line| line.contains("sleep 3")),
        "left behind: {after:#?}"
    );
}

/// The limit is kept on the server: when the connection breaks, the step still ends
/// at its timeout although nobody is left to ask for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_holds_after_the_connection_is_gone() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let mut plan = builder();
    plan.run_with_timeout(script("echo started $$; sleep 33.5"), Duration::from_millis(1500));
    let plan = Arc::new(plan.build());
    let recorder = Arc::new(Recorder::default());
    let running = tokio::spawn({
        let (pool, target, plan, recorder) = (pool.clone(), target.clone(), Arc::clone(&plan), Arc::clone(&recorder));
        async move { pool.run_plan(&target, &plan, &*recorder).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.output(0, Stream::Stdout).is_empty() {
        assert!(Instant::now() < deadline, "the step did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cut_at = Instant::now();
    server.drop_connections();
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionLost, "{error}");

    // A new connection sees the step still running, then gone once its limit passed.
    let during = remote_processes(&pool, &target).await;
    assert!(during.iter().any(|line| line.ends_with("sleep 33.5")), "{during:#?}");
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(cut_at.elapsed())).await;
    let after = remote_processes(&pool, &target).await;
    assert!(
        !after.iter().any(|line| line.contains("sleep 33.5")),
        "left behind: {after:#?}"
    );
    // The runner of the broken run is gone too. In the step's subshell `$$` is its id.
    let runner_pid: u32 = String::from_utf8(recorder.output(0, Stream::Stdout))
        .unwrap()
        .trim()
        .strip_prefix("started ")
        .unwrap()
        .parse()
        .unwrap();
    let runner = pool
        .run_command(
            &target,
            &Cmd::new("ps -o stat= -p").arg(runner_pid),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let state = runner.stdout_text();
    assert!(
        state.trim().is_empty() || state.starts_with('Z'),
        "runner left behind: {state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_is_refused_with_both_fingerprints() {
    let server = SshServer::start();
    let pool = pool();
    let impostor = HostKey::parse(&generate_keypair("impostor").public_openssh).unwrap();
    let mut target = target(&server);
    target.host_keys = vec![impostor.clone()];
    let mut plan = builder();
    plan.run(script("true"));
    let error = pool
        .run_plan(&target, &plan.build(), &Recorder::default())
        .await
        .unwrap_err();
    let real = HostKey::parse(server.host_public_key()).unwrap();
    assert_eq!(
        error,
        SshError::HostKeyMismatch {
            address: target.address(),
            expected: vec![impostor.fingerprint()],
            presented: real.fingerprint(),
        }
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("host key mismatch for {}", target.address()))
    );
    assert!(
        !server.log().contains("Accepted publickey"),
        "authenticated despite the mismatch"
    );

    // The comment of a pinned key does not matter, only its key data.
    let mut pinned = support::target(&server);
    let key_without_comment = server.host_public_key().rsplit_once(' ').unwrap().0.to_owned();
    pinned.host_keys = vec![
        impostor,
        format!("{key_without_comment} other-comment").parse().unwrap(),
    ];
    pool.run_command(&pinned, &script("true"), Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_a_host_key_returns_the_servers_key() {
    let server = SshServer::start();
    let learned = pool()
        .learn_host_key(
            server.host(),
            server.port(),
            server.user(),
            &support::client_key(&server),
        )
        .await
        .unwrap();
    assert_eq!(learned, HostKey::parse(server.host_public_key()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_server_does_not_know_is_refused() {
    let server = SshServer::start();
    let stranger = generate_keypair("stranger");
    let mut target = target(&server);
    target.client_key = brokeforge_ssh::ClientKey::from_keypair(&stranger).unwrap();
    let error = pool()
        .run_command(&target, &script("true"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthRefused);
    assert_eq!(
        error.to_string(),
        format!(
            "{} refused the SSH key {} for user {}",
            target.address(),
            stranger.fingerprint(),
            server.user()
        )
    );

    // The same key works once the server knows it.
    server.authorize_key(&stranger.public_openssh);
    pool()
        .run_command(&target, &script("true"), Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_name_host_and_port() {
    let server = SshServer::start();
    let mut target = target(&server);
    target.port = brokeforge_testkit::free_port();
    let error = pool()
        .run_command(&target, &script("true"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable);
    assert_eq!(
        error.to_string(),
        format!("cannot reach 127.0.0.1:{}: connection refused", target.port)
    );

    target.host = "no-such-host.invalid".into();
    let error = pool()
        .run_command(&target, &script("true"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unreachable);
    assert!(
        error.to_string().starts_with(&format!(
            "cannot reach no-such-host.invalid:{}: cannot resolve no-such-host.invalid",
            target.port
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_without_remote_steps_do_not_connect() {
    let server = SshServer::start();
    let mut target = target(&server);
    target.port = brokeforge_testkit::free_port();
    let recorder = Recorder::default();
    let mut plan = builder();
    plan.milestone(Stage::Prepare)
        .persist(Record::new("web-server", "nginx", "1.22"));
    pool().run_plan(&target, &plan.build(), &recorder).await.unwrap();
    assert_eq!(recorder.outline(), ["0 milestone prepare", "1 persist nginx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_of_sshd_mid_plan_fails_the_step_and_a_later_run_reconnects() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let mut plan = builder();
    plan.milestone(Stage::Prepare)
        .run(script("echo started; sleep 5"))
        .persist(Record::new("web-server", "nginx", "1.22"))
        .milestone(Stage::Finish);
    let plan = Arc::new(plan.build());
    let recorder = Arc::new(Recorder::default());
    let running = tokio::spawn({
        let (pool, target, plan, recorder) = (pool.clone(), target.clone(), Arc::clone(&plan), Arc::clone(&recorder));
        async move { pool.run_plan(&target, &plan, &*recorder).await }
    });
    // Wait until the step runs, then crash the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.output(1, Stream::Stdout).is_empty() {
        assert!(Instant::now() < deadline, "the step did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let error = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionLost);
    assert_eq!(error.step_index(), Some(1));
    assert!(error.is_transient());
    assert_eq!(
        error.to_string(),
        format!(
            "connection to {} lost during echo started; sleep 5: the connection closed",
            target.address()
        )
    );
    // Nothing after the failed step was recorded.
    assert_eq!(
        recorder.outline(),
        ["0 milestone prepare", "1 started root$ echo started; sleep 5"]
    );

    // While the server is down, a run fails fast with a clear reason.
    let down = pool
        .run_command(&target, &script("true"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Unreachable, "{down}");

    server.restart();
    let retry = Recorder::default();
    pool.run_plan(&target, &plan, &retry).await.unwrap();
    assert_eq!(retry.outline().last().unwrap(), "3 milestone finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_plans_on_ten_servers() {
    let servers: Vec<SshServer> = (0..10).map(|_| SshServer::start()).collect();
    let targets: Vec<Target> = servers.iter().map(target).collect();
    let pool = pool();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..50u32 {
        let pool = pool.clone();
        let target = targets[number as usize % targets.len()].clone();
        tasks.spawn(async move {
            let mut plan = builder();
            plan.milestone(Stage::Prepare)
                .run(Cmd::new("echo").arg(number))
                .run(Cmd::new("sleep 0.2; echo").arg(number).lit(">&2"))
                .milestone(Stage::Install);
            for _ in 0..5 {
                plan.run(script("true"));
            }
            plan.persist(Record::new("web-server", "nginx", number.to_string()))
                .milestone(Stage::Finish);
            let recorder = Recorder::default();
            let result = pool.run_plan(&target, &plan.build(), &recorder).await;
            (number, result, recorder)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (number, result, recorder) = joined.unwrap();
        let report = result.unwrap_or_else(|error| panic!("plan {number}: {error}"));
        assert_eq!(report.steps.len(), 7);
        assert_eq!(recorder.output(1, Stream::Stdout), format!("{number}\n").into_bytes());
        assert_eq!(recorder.output(2, Stream::Stderr), format!("{number}\n").into_bytes());
        assert_eq!(recorder.outline().last().unwrap(), "10 milestone finish");
    }
    assert_eq!(pool.connection_count(), 10);
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_byte_exact_atomic_and_keep_mode_and_owner() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).chain([0, 0, b'\n']).collect();
    let text = "line one\nno newline at the end: $(id) `id` 'quote' \"dq\" \\ ü"
        .as_bytes()
        .to_vec();
    let owner = server.user().parse().unwrap();
    let mut plan = builder();
    plan.upload(path(&server, "binary.bin"), binary.clone(), 0o600, None)
        .upload(path(&server, "text.conf"), text.clone(), 0o644, Some(owner))
        .upload(path(&server, "empty"), Vec::new(), 0o755, None)
        .upload(path(&server, "text.conf"), b"replaced\n".to_vec(), 0o640, None);
    pool.run_plan(&target, &plan.build(), &Recorder::default())
        .await
        .unwrap();

    let read = |name: &'static str| {
        let pool = pool.clone();
        let target = target.clone();
        let file = path(&server, name);
        async move {
            let cmd = Cmd::new("cat").lit("--").arg(&file);
            pool.run_command(&target, &cmd, Duration::from_secs(10))
                .await
                .unwrap()
                .stdout
        }
    };
    assert_eq!(read("binary.bin").await, binary);
    assert_eq!(read("text.conf").await, b"replaced\n");
    assert_eq!(read("empty").await, b"");
    let modes = pool
        .run_command(
            &target,
            &Cmd::new("cd")
                .arg(path(&server, ""))
                .lit("&& stat -c '%n %a %U' binary.bin text.conf empty && ls -A"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        modes.stdout_text(),
        format!(
            "binary.bin 600 {user}\ntext.conf 640 {user}\nempty 755 {user}\nbinary.bin\nempty\ntext.conf\n",
            user = server.user()
        ),
        "no temporary files may remain"
    );

    // A missing directory fails the upload with the server's reason.
    let mut plan = builder();
    plan.upload(path(&server, "missing/dir/file"), b"x".to_vec(), 0o644, None)
        .run(script("echo never"));
    let error = pool
        .run_plan(&target, &plan.build(), &Recorder::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UploadFailed);
    assert_eq!(error.step_index(), Some(0));
    assert!(error.to_string().contains("No such file or directory"), "{error}");
}

/// Secrets travel only on the channel's stdin: while a step that uses them runs, no
/// process on the server shows them in its arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_the_remote_process_list() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let password = Secret::from("pw-7f3a9c1e-in-argv?");
    let env_contents = Secret::new(b"DB_PASSWORD=env-file-secret-5d2b\n".to_vec());
    let mut plan = builder();
    plan.upload(path(&server, ".env"), FileContents::from(env_contents), 0o600, None)
        .run(
            Cmd::new("sleep 1 && test -n").secret_arg(&password).unwrap().and(
                Cmd::new("sleep 1 && printf '%s' \"$PASSWORD\" | wc -c")
                    .secret_env("PASSWORD", &password)
                    .unwrap(),
            ),
        );
    let plan = Arc::new(plan.build());
    let running = tokio::spawn({
        let (pool, target, plan) = (pool.clone(), target.clone(), Arc::clone(&plan));
        async move { pool.run_plan(&target, &plan, &Recorder::default()).await }
    });
    let mut snapshots = Vec::new();
    while !running.is_finished() {
        let output = pool
            .run_command(&target, &Cmd::new("ps -eo args"), Duration::from_secs(10))
            .await
            .unwrap();
        snapshots.push(output.stdout_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.await.unwrap().unwrap();
    assert!(snapshots.len() >= 5, "too few snapshots: {}", snapshots.len());
    assert!(
        snapshots.iter().any(|snapshot| snapshot.contains("sleep 1")),
        "the step was never seen running"
    );
    for snapshot in &snapshots {
        assert!(!snapshot.contains("pw-7f3a9c1e"), "secret in ps:\n{snapshot}");
        assert!(!snapshot.contains("env-file-secret"), "secret in ps:\n{snapshot}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_in_every_callback_and_error() {
    let server = SshServer::start();
    let pool = pool();
    let token = Secret::from("tok-SECRET-8d1f");
    let mut plan = builder();
    plan.run(
        Cmd::new("printenv")
            .secret_env("TOKEN", &token)
            .unwrap()
            .lit("TOKEN")
            // The secret also arrives split across two chunks.
            .and(Cmd::new("printf tok-SEC; sleep 0.3; printf 'RET-8d1f\\n'")),
    )
    .run(
        Cmd::new("sh")
            .secret_env("TOKEN", &token)
            .unwrap()
            .lit("-c")
            .lit("'echo \"using $TOKEN\"; echo \"denied for $TOKEN\" >&2; exit 7'"),
    );
    let recorder = Recorder::default();
    let error = pool
        .run_plan(&target(&server), &plan.build(), &recorder)
        .await
        .unwrap_err();

    let everything = format!("{}\n{error}\n{error:?}", recorder.all_text());
    assert!(!everything.contains("SECRET"), "a secret leaked:\n{everything}");
    assert_eq!(
        String::from_utf8_lossy(&recorder.output(0, Stream::Stdout)),
        "***\n***\n"
    );
    assert_eq!(recorder.output(1, Stream::Stdout), b"using ***\n");
    assert_eq!(recorder.output(1, Stream::Stderr), b"denied for ***\n");
    assert_eq!(error.stderr_tail(), Some("denied for ***\n"));
    let command = "TOKEN=*** sh -c 'echo \"using $TOKEN\"; echo \"denied for $TOKEN\" >&2; exit 7'";
    assert_eq!(error.command(), Some(command));
    assert_eq!(
        error.to_string(),
        format!("the command failed with exit code 7: {command}: denied for ***")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_arrive_byte_exact() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let hostile = [
        "it's \"quoted\" $(touch /tmp/pwned) `id` ${HOME} $HOME; rm -rf / && echo owned | cat > x",
        "new\nline\n\nand trailing newline\n",
        "-n",
        "",
        " leading and trailing spaces ",
        "back\\slash \\' \\\" tab\tend",
        "glob * ? [a-z] ~ # ! %s %n",
        "ünïcødé ✓ 🚀",
        "\u{1b}[31mred\u{1b}[0m \r carriage",
    ];
    for value in hostile {
        let cmd = Cmd::new("printf").lit("%s").try_arg(value).unwrap();
        let output = pool.run_command(&target, &cmd, Duration::from_secs(10)).await.unwrap();
        assert_eq!(output.stdout, value.as_bytes(), "value {value:?}");
        // And as the argument of a command inside a plan.
        let mut plan = builder();
        plan.run(Cmd::new("printf").lit("%s").arg(ShellArg::new(value).unwrap()));
        let recorder = Recorder::default();
        pool.run_plan(&target, &plan.build(), &recorder).await.unwrap();
        assert_eq!(recorder.output(0, Stream::Stdout), value.as_bytes(), "value {value:?}");
    }
    let check = pool
        .run_command(&target, &Cmd::new("test ! -e /tmp/pwned"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(check.success(), "a hostile value was executed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_return_their_exit_code_and_tails_stay_bounded() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let absent = pool
        .run_command(
            &target,
            &Cmd::new("dpkg-query -W no-such-package-xyz"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(absent.exit_code, 1);
    assert!(absent.stderr_text().contains("no-such-package-xyz"));

    let mut plan = builder();
    plan.run(script("head -c 1000000 /dev/zero | tr '\\0' x; echo; echo end"));
    let recorder = Recorder::default();
    let report = pool.run_plan(&target, &plan.build(), &recorder).await.unwrap();
    assert_eq!(recorder.output(0, Stream::Stdout).len(), 1_000_005);
    let tail = &report.steps[0].stdout_tail;
    assert_eq!(tail.len(), 64 * 1024);
    assert!(tail.ends_with("xxx\nend\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_failures_stop_the_plan() {
    let server = SshServer::start();
    let recorder = Recorder::failing_persist();
    let mut plan = builder();
    plan.run(script("true"))
        .persist(Record::new("web-server", "nginx", "1.22"))
        .milestone(Stage::Finish);
    let error = pool()
        .run_plan(&target(&server), &plan.build(), &recorder)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ObserverFailed);
    assert_eq!(error.to_string(), "could not record progress: the database is locked");
    assert!(!recorder.outline().iter().any(|line| line.contains("milestone finish")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_true_steps_run_through_one_channel() {
    let server = SshServer::start();
    let pool = pool();
    let target = target(&server);
    let mut plan = builder();
    for _ in 0..50 {
        plan.run(script("true"));
    }
    let plan: Plan = plan.build();
    let recorder = Recorder::default();
    let report = pool.run_plan(&target, &plan, &recorder).await.unwrap();
    assert_eq!(report.steps.len(), 50);
    assert!(report.steps.iter().all(|step| step.exit_code == 0));
    let log = server.log();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
    let steps: Vec<usize> = recorder
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::Finished(report) => Some(report.step_index),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (0..50).collect::<Vec<_>>());
}
