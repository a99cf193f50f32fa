//! The provisioning chain on SQLite and PostgreSQL: one job per package, each
//! enqueued when the one before succeeded; a failure stops the chain and records the
//! step; resuming starts again at that step; a second pass that changes nothing says
//! so for every package. The jobs' outcomes are fed to the follow-up directly, so no
//! server is needed here (the onboarding test in the web crate runs it over SSH).

mod common;

use brokeforge_app::auth::{Principal, Scope};
use brokeforge_app::follow_up::{self, Finished, FollowUp};
use brokeforge_app::operations::{OperationError, OperationOutcome, PackageOperationPayload};
use brokeforge_app::{AppError, onboarding, provisioning};
use brokeforge_db::servers::{self as server_table, ServerFields};
use brokeforge_queue::{JobFilter, Queue};
use common::Database;
use serde_json::json;

/// A principal of `user_id` whose token may read and write but not deploy.
fn principal(user_id: i64) -> Principal {
    common::principal(user_id, &[Scope::Read, Scope::Write])
}

/// The payload of the newest job.
async fn newest_payload(queue: &Queue) -> (i64, PackageOperationPayload) {
    let jobs = queue
        .list(&JobFilter {
            limit: 1,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    let job = jobs.first().expect("a job");
    (job.id.0, serde_json::from_value(job.payload.clone()).unwrap())
}

#[tokio::test]
async fn packages_run_one_job_after_another_and_resume_where_they_failed() {
    for Database { db, data: _data, .. } in common::databases().await {
        brokeforge_db::migrate::run(&db).await.unwrap();
        let environment = common::environment(db.clone());
        let queue = environment.queue.clone();
        let user_id = common::user(&db, "owner@example.com").await;
        let owner = principal(user_id);
        let server = server_table::insert(
            &db,
            user_id,
            &ServerFields {
                name: "web",
                provider: "custom",
                public_ip: "203.0.113.5",
                ssh_port: 2222,
                provision_config: json!({ "php_version": "8.2", "database": "none" }),
            },
        )
        .await
        .unwrap();

        // Not connected yet: provisioning cannot be started by hand.
        let refused = provisioning::reprovision(&db, &queue, &owner, server.id).await;
        assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
        server_table::set_connection_status(&db, server.id, onboarding::connection::CONNECTED)
            .await
            .unwrap();

        let steps = provisioning::sequence(provisioning::ProvisioningInput::of(&server));
        provisioning::start(&db, &queue, server.id, 0).await.unwrap();
        let changed = OperationOutcome {
            changed: true,
            steps_run: 3,
        };
        // The first three packages succeed, one job at a time, in order.
        for (index, step) in steps.iter().enumerate().take(3) {
            let (job_id, payload) = newest_payload(&queue).await;
            assert_eq!(payload.follow_up, Some(FollowUp::Provisioning { index }));
            assert_eq!(
                serde_json::to_value(&payload.operation).unwrap()["operation"],
                serde_json::to_value(&step.operation).unwrap()["operation"]
            );
            follow_up::run(
                &environment,
                server.id,
                job_id,
                payload.follow_up.as_ref().unwrap(),
                Finished::Succeeded(&changed),
            )
            .await
            .unwrap();
        }
        // The fourth fails for good: the chain stops and names it.
        let (failed_job, payload) = newest_payload(&queue).await;
        assert_eq!(payload.follow_up, Some(FollowUp::Provisioning { index: 3 }));
        let error = OperationError::Refused("apt-get exited with 100".to_owned());
        follow_up::run(
            &environment,
            server.id,
            failed_job,
            &FollowUp::Provisioning { index: 3 },
            Finished::Failed(&error),
        )
        .await
        .unwrap();
        let jobs_before = queue
            .list(&JobFilter {
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .unwrap()
            .len();
        let status = onboarding::status(&db, &owner, server.id).await.unwrap();
        assert_eq!(status.provision_status, "failed");
        assert_eq!(status.provisioning_step.as_deref(), Some(steps[3].label));
        assert_eq!(status.provisioning_job_id, Some(failed_job));
        assert!(status.failure.as_deref().unwrap().contains("apt-get exited with 100"));
        let done: Vec<Option<bool>> = status.packages.iter().map(|package| package.changed).collect();
        assert_eq!(done[..4], [Some(true), Some(true), Some(true), None]);

        // Another user cannot resume it; the owner resumes at the failed package.
        let stranger = principal(user_id + 1000);
        assert!(matches!(
            provisioning::resume(&db, &queue, &stranger, server.id).await,
            Err(AppError::NotFound(_))
        ));
        provisioning::resume(&db, &queue, &owner, server.id).await.unwrap();
        assert_eq!(
            queue
                .list(&JobFilter {
                    limit: 100,
                    ..JobFilter::default()
                })
                .await
                .unwrap()
                .len(),
            jobs_before + 1
        );
        let (_, payload) = newest_payload(&queue).await;
        assert_eq!(payload.follow_up, Some(FollowUp::Provisioning { index: 3 }));
        // Resuming again while it runs is refused.
        assert!(matches!(
            provisioning::resume(&db, &queue, &owner, server.id).await,
            Err(AppError::Conflict(_))
        ));

        // The rest succeeds; the server is provisioned.
        for _ in 3..steps.len() {
            let (job_id, payload) = newest_payload(&queue).await;
            follow_up::run(
                &environment,
                server.id,
                job_id,
                payload.follow_up.as_ref().unwrap(),
                Finished::Succeeded(&changed),
            )
            .await
            .unwrap();
        }
        let status = onboarding::status(&db, &owner, server.id).await.unwrap();
        assert_eq!(status.provision_status, "provisioned");
        assert!(status.stages.iter().all(|stage| format!("{:?}", stage.state) == "Done"));

        // A second pass where nothing changes says so for every package.
        provisioning::reprovision(&db, &queue, &owner, server.id).await.unwrap();
        let unchanged = OperationOutcome {
            changed: false,
            steps_run: 0,
        };
        for _ in 0..steps.len() {
            let (job_id, payload) = newest_payload(&queue).await;
            follow_up::run(
                &environment,
                server.id,
                job_id,
                payload.follow_up.as_ref().unwrap(),
                Finished::Succeeded(&unchanged),
            )
            .await
            .unwrap();
        }
        let status = onboarding::status(&db, &owner, server.id).await.unwrap();
        assert_eq!(status.provision_status, "provisioned");
        assert!(
            status.packages.iter().all(|package| package.changed == Some(false)),
            "{:?}",
            status.packages
        );
    }
}
