//! The environment editor and the file explorer: the environment file travels as
//! secret bytes that no plan text shows, and every file action is confined to the
//! site's directory by the check made on the server, run here for real against a site
//! in a temporary directory with symbolic links that lead out of it, `../` paths and
//! hostile file names.

mod common;

use std::path::Path;

use brokeforge_core::{Domain, Secret, Step};
use brokeforge_packages::site::env::{
    EnvContents, EnvFileFacts, EnvFileName, EnvFileWrite, EnvFileWriteInput, env_file_probe, parse_env_file,
};
use brokeforge_packages::site::files::{
    EntryKind, SiteFileContents, SiteFileDelete, SiteFileDeleteInput, SiteFileError, SiteFilePath, SiteFileWrite,
    SiteFileWriteInput, list_probe, parse_list, parse_read, read_probe,
};
use brokeforge_packages::{Operation, dry_run};
use common::check_plan;
use common::sandbox::{FakeServer, describe, shellcheck};

const SECRET: &str = "DB_PASSWORD='pa$$ word'";

fn domain() -> Domain {
    "example.com".parse().unwrap()
}

fn env_input(text: &str) -> EnvFileWriteInput {
    EnvFileWriteInput {
        domain: domain(),
        file: EnvFileName::DotEnv,
        contents: EnvContents::new(text.as_bytes().to_vec()).unwrap(),
    }
}

#[test]
fn the_environment_file_is_written_as_secret_bytes() {
    let input = env_input(&format!("APP_KEY=base64:abc\n{SECRET}\n"));
    let facts = EnvFileFacts { current: None };
    let text = check_plan::<EnvFileWrite>(&input, &facts);
    insta::assert_snapshot!(text, @r"
    install env/env-file as brokeforge, 2 steps
    [1/2] Writing the environment file
      upload /home/brokeforge/example.com/shared/.env as brokeforge (secret contents, mode 0600)
    [2/2] Complete
    ");
    let plan = EnvFileWrite::plan(&input, &facts).unwrap();
    assert!(!format!("{plan:?}").contains("pa$$"));
    assert_eq!(plan.secrets(), [format!("APP_KEY=base64:abc\n{SECRET}\n").as_str()]);
    // The same contents again change nothing.
    let unchanged = EnvFileFacts {
        current: Some(Secret::new(format!("APP_KEY=base64:abc\n{SECRET}\n"))),
    };
    assert!(dry_run::<EnvFileWrite>(&input, &unchanged).unwrap().changes_nothing);
    // WordPress keeps wp-config.php in the same place.
    let mut wordpress = input.clone();
    wordpress.file = EnvFileName::WpConfig;
    assert!(
        check_plan::<EnvFileWrite>(&wordpress, &facts)
            .contains("upload /home/brokeforge/example.com/shared/wp-config.php")
    );
    // The input never serializes (a stored job would hold the secret).
    assert!(serde_json::to_string(&input).is_err());
}

#[test]
fn the_environment_file_round_trips_on_a_server() {
    let server = FakeServer::new("env");
    std::fs::create_dir_all(format!("{}/example.com/shared", server.home)).unwrap();
    let probe = env_file_probe(&domain(), EnvFileName::DotEnv);
    assert_eq!(
        parse_env_file(&server.probe(probe.cmd()))
            .unwrap()
            .map(|s| s.expose().clone()),
        None
    );
    let input = env_input(&format!("{SECRET}\n"));
    let run = server.operate::<EnvFileWrite>(&input);
    assert!(run.failure.is_none(), "{}", run.failure_text());
    let read = parse_env_file(&server.probe(probe.cmd())).unwrap().unwrap();
    assert_eq!(read.expose(), &format!("{SECRET}\n"));
    assert_eq!(format!("{read:?}"), "***");
    let facts = server.facts::<EnvFileWrite>(&input);
    assert!(EnvFileWrite::plan(&input, &facts).unwrap().is_noop());
}

/// A site with a live release, a shared `.env`, and links: one inside the site, two
/// that lead out of it.
fn site_with_links() -> (FakeServer, String) {
    let server = FakeServer::new("files");
    let site = format!("{}/example.com", server.home);
    let outside = server.dir.join("outside");
    for dir in ["releases/20261101000000/public", "shared"] {
        std::fs::create_dir_all(format!("{site}/{dir}")).unwrap();
    }
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(format!("{outside}/secret.txt"), "outside").unwrap();
    std::fs::write(format!("{}/.ssh/id_ed25519", server.home), "private key").unwrap();
    std::fs::write(format!("{site}/shared/.env"), "APP_KEY=1\n").unwrap();
    std::fs::write(
        format!("{site}/releases/20261101000000/public/index.html"),
        "<h1>hi</h1>\n",
    )
    .unwrap();
    let link = |target: &str, name: &str| std::os::unix::fs::symlink(target, format!("{site}/{name}")).unwrap();
    link("releases/20261101000000", "current");
    link(&format!("{site}/shared/.env"), "releases/20261101000000/.env");
    link(&outside, "releases/20261101000000/public/escape");
    link("../../..", "releases/20261101000000/up");
    (server, site)
}

fn path(text: &str) -> SiteFilePath {
    text.parse().unwrap()
}

#[test]
fn listing_and_reading_stay_inside_the_site() {
    let (server, _) = site_with_links();
    let list = |text: &str| parse_list(&server.probe(list_probe(&domain(), &path(text)).cmd()));
    let read = |text: &str| parse_read(&server.probe(read_probe(&domain(), &path(text), 1024).cmd()));

    let root: Vec<(String, EntryKind)> = list("").unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
    assert_eq!(
        root,
        [
            ("current".to_owned(), EntryKind::SymbolicLink),
            ("releases".to_owned(), EntryKind::Directory),
            ("shared".to_owned(), EntryKind::Directory)
        ]
    );
    let public = list("current/public").unwrap();
    let index = public.iter().find(|entry| entry.name == "index.html").unwrap();
    assert_eq!((index.kind, index.size), (EntryKind::File, 12));
    let escape = public.iter().find(|entry| entry.name == "escape").unwrap();
    assert_eq!(escape.kind, EntryKind::SymbolicLink);
    assert!(escape.link_target.as_deref().unwrap().ends_with("/outside"));

    // A link inside the site is followed.
    assert_eq!(read("current/.env").unwrap(), "APP_KEY=1\n");
    // Links out of the site are refused, listing or reading.
    assert_eq!(list("current/public/escape"), Err(SiteFileError::OutsideSite));
    assert_eq!(
        read("current/public/escape/secret.txt"),
        Err(SiteFileError::OutsideSite)
    );
    assert_eq!(read("current/up/.ssh/id_ed25519"), Err(SiteFileError::OutsideSite));
    assert_eq!(list("current/up"), Err(SiteFileError::OutsideSite));
    // Wrong kinds, sizes and missing paths say so.
    assert!(matches!(read("current/public"), Err(SiteFileError::WrongKind(_))));
    assert!(matches!(list("current/.env"), Err(SiteFileError::WrongKind(_))));
    let big = parse_read(&server.probe(read_probe(&domain(), &path("current/public/index.html"), 5).cmd()));
    assert!(
        matches!(big, Err(SiteFileError::TooLarge(ref message)) if message.contains("12 bytes")),
        "{big:?}"
    );
    assert!(matches!(read("current/missing.txt"), Err(SiteFileError::WrongKind(_))));
    // `../` never reaches the server.
    assert!("../.ssh/id_ed25519".parse::<SiteFilePath>().is_err());
    assert!("current/../../.ssh".parse::<SiteFilePath>().is_err());
}

fn write_input(text: &str, contents: &str) -> SiteFileWriteInput {
    SiteFileWriteInput {
        domain: domain(),
        path: path(text),
        contents: SiteFileContents::new(contents.as_bytes().to_vec()).unwrap(),
    }
}

#[test]
fn writing_follows_links_inside_the_site_and_refuses_the_others() {
    let (server, site) = site_with_links();
    // Editing current/.env changes the shared file, and the link stays a link.
    let input = write_input("current/.env", "APP_KEY=2\n");
    let facts = server.facts::<SiteFileWrite>(&input);
    let plan = SiteFileWrite::plan(&input, &facts).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains("upload /home/brokeforge/example.com/shared/.env as brokeforge (secret contents, mode 0644)"),
        "{text}"
    );
    let run = server.run(&plan);
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert_eq!(
        std::fs::read_to_string(format!("{site}/shared/.env")).unwrap(),
        "APP_KEY=2\n"
    );
    assert!(
        std::fs::symlink_metadata(format!("{site}/releases/20261101000000/.env"))
            .unwrap()
            .is_symlink()
    );

    // A new file with a hostile name is data.
    let hostile = "current/public/it's $(touch PWNED) `id`;.txt";
    let run = server.operate::<SiteFileWrite>(&write_input(hostile, "x"));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert_eq!(
        std::fs::read_to_string(format!(
            "{site}/releases/20261101000000/public/it's $(touch PWNED) `id`;.txt"
        ))
        .unwrap(),
        "x"
    );
    assert!(!Path::new(&server.dir.join("PWNED")).exists());

    // Out of the site: refused when planning.
    for outside in ["current/public/escape/secret.txt", "current/up/.ssh/authorized_keys"] {
        let input = write_input(outside, "pwned");
        let facts = server.facts::<SiteFileWrite>(&input);
        assert_eq!(
            SiteFileWrite::plan(&input, &facts).unwrap_err(),
            SiteFileError::OutsideSite,
            "{outside}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(server.dir.join("outside/secret.txt")).unwrap(),
        "outside"
    );
    // A directory is not a file.
    let input = write_input("current/public", "x");
    let facts = server.facts::<SiteFileWrite>(&input);
    assert!(matches!(
        SiteFileWrite::plan(&input, &facts),
        Err(SiteFileError::WrongKind(_))
    ));

    // A link swapped after the check: the check before the upload fails the step.
    let input = write_input("current/public/late.txt", "x");
    let facts = server.facts::<SiteFileWrite>(&input);
    let plan = SiteFileWrite::plan(&input, &facts).unwrap();
    std::fs::remove_dir_all(format!("{site}/releases/20261101000000/public")).unwrap();
    std::os::unix::fs::symlink(
        server.dir.join("outside"),
        format!("{site}/releases/20261101000000/public"),
    )
    .unwrap();
    let run = server.run(&plan);
    let (_, output) = run.failure.as_ref().expect("the check fails");
    assert_eq!(output.status.code(), Some(3), "{}", describe(output));
    assert!(!Path::new(&server.dir.join("outside/late.txt")).exists());
}

#[test]
fn deleting_removes_the_entry_itself_never_what_a_link_points_to() {
    let (server, site) = site_with_links();
    let delete = |text: &str| SiteFileDeleteInput {
        domain: domain(),
        path: path(text),
    };
    // The link out of the site goes; what it pointed to stays.
    let run = server.operate::<SiteFileDelete>(&delete("current/public/escape"));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert!(std::fs::symlink_metadata(format!("{site}/releases/20261101000000/public/escape")).is_err());
    assert_eq!(
        std::fs::read_to_string(server.dir.join("outside/secret.txt")).unwrap(),
        "outside"
    );
    // The shared .env link goes, the shared file stays.
    let run = server.operate::<SiteFileDelete>(&delete("current/.env"));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert!(Path::new(&format!("{site}/shared/.env")).exists());
    // A path through a link out of the site is refused.
    let input = delete("current/up/.ssh/id_ed25519");
    let facts = server.facts::<SiteFileDelete>(&input);
    assert_eq!(
        SiteFileDelete::plan(&input, &facts).unwrap_err(),
        SiteFileError::OutsideSite
    );
    assert!(Path::new(&format!("{}/.ssh/id_ed25519", server.home)).exists());
    // The layout itself is not deleted here; what is gone already changes nothing.
    for protected in ["current", "releases", "shared", ""] {
        let input = delete(protected);
        let facts = server.facts::<SiteFileDelete>(&input);
        assert!(
            matches!(SiteFileDelete::plan(&input, &facts), Err(SiteFileError::WrongKind(_))),
            "{protected:?}"
        );
    }
    let input = delete("shared/no/such/file");
    let facts = server.facts::<SiteFileDelete>(&input);
    assert!(SiteFileDelete::plan(&input, &facts).unwrap().is_noop());
    // A directory goes with its contents.
    let run = server.operate::<SiteFileDelete>(&delete("current/public"));
    assert!(run.failure.is_none(), "{}", run.failure_text());
    assert!(!Path::new(&format!("{site}/releases/20261101000000/public")).exists());
    let plan = SiteFileDelete::plan(&delete("shared"), &server.facts::<SiteFileDelete>(&delete("shared")));
    assert!(plan.is_err());
}

#[test]
fn file_plans_as_shown() {
    let (server, _) = site_with_links();
    let input = write_input("current/public/index.html", "<h1>new</h1>\n");
    let facts = server.facts::<SiteFileWrite>(&input);
    let text = check_plan::<SiteFileWrite>(&input, &facts);
    insta::assert_snapshot!(text.replace(&server.home, "/home/brokeforge"));
    let plan = SiteFileWrite::plan(&input, &facts).unwrap();
    assert!(plan.steps().iter().any(|step| matches!(step, Step::Upload { .. })));
    assert!(serde_json::to_string(&input).is_err(), "file contents never serialize");
    let script = brokeforge_packages::site::files::FILES_SCRIPT;
    shellcheck(common::sandbox::unquoted(script), "sh");
}
