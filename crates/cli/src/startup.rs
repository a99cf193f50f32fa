//! Opening the control plane's state: database, migrations and master key, in an
//! order that leaves nothing half-written when a step fails.

use std::sync::Arc;

use brokeforge_db::{Db, DbConfig, MasterKey, Sealer};

use crate::GlobalOptions;

/// An opened, migrated database and the sealer for its secrets.
pub struct ControlPlaneState {
    pub db: Db,
    pub sealer: Arc<Sealer>,
}

/// Connects to the database the options name.
pub async fn connect(options: &GlobalOptions) -> anyhow::Result<Db> {
    let config = DbConfig::from_options(&options.data_dir, options.database_url.as_deref());
    Ok(Db::connect(&config).await?)
}

/// Connects, applies migrations and loads (or, on a new database, creates) the master key.
pub async fn open(options: &GlobalOptions) -> anyhow::Result<ControlPlaneState> {
    // The key is read before the database is opened: a corrupt key file must stop
    // us before anything is created. The data directory is checked first so that an
    // unusable one is reported as such.
    if options.database_url.is_none() {
        brokeforge_db::pool::ensure_writable_dir(&options.data_dir)?;
    }
    let key = MasterKey::load(&options.data_dir)?;
    if key.is_none() && options.database_url.is_some() {
        brokeforge_db::pool::ensure_writable_dir(&options.data_dir)?;
    }
    let db = connect(options).await?;
    brokeforge_db::migrate::run(&db).await?;
    let sealer = brokeforge_db::seal::verify_master_key(&db, key, &options.data_dir).await?;
    Ok(ControlPlaneState {
        db,
        sealer: Arc::new(sealer),
    })
}

/// `brokeforge migrate`: applies migrations and reports what it did.
pub async fn migrate_only(options: &GlobalOptions) -> anyhow::Result<()> {
    let db = connect(options).await?;
    let before = brokeforge_db::migrate::status(&db).await?;
    brokeforge_db::migrate::run(&db).await?;
    if before.pending.is_empty() {
        println!("The {} database is up to date.", db.backend().name());
    } else {
        println!(
            "Applied {} migration(s) to the {} database.",
            before.pending.len(),
            db.backend().name()
        );
    }
    db.close().await;
    Ok(())
}
