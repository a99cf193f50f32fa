//! Installing and removing sites: probes and fact parsing, plan snapshots for every
//! site type (fresh, already installed, changed), refusals, the rendered server blocks
//! through a real `nginx -t` (inside BrokeForge's own `nginx.conf`) and the pools
//! through a real `php-fpm8.2 -t` (Debian packages `nginx-light` and `php8.2-fpm`; the
//! tests fail without them), and the check-and-restore command run for real against
//! nginx, proving that a bad server block never reaches the running configuration.

mod common;

use std::process::Command;

use brokeforge_core::{Domain, PhpVersion, RemotePath, Step};
use brokeforge_packages::facts::FileKind;
use brokeforge_packages::facts::{DpkgState, PackageState, PackageStates};
use brokeforge_packages::site::install::{
    CatchAll, ConfigCheck, PathState, SiteDirectories, SiteInstall, SiteInstallError, SiteInstallFacts,
    SiteInstallInput, SiteRemove, SiteRemoveFacts, SiteRemoveInput, install_checked_cmd, site_logs_cmd,
};
use brokeforge_packages::site::pool::render_pool;
use brokeforge_packages::site::vhost::render_vhost;
use brokeforge_packages::site::{SiteLayout, SiteType};
use brokeforge_packages::{Operation, ProbeOutput, Template, dry_run, render};
use common::nginx::NginxTree;
use common::sandbox::{TempDir, describe, run_text, shellcheck};
use common::{check_plan, outputs_for, probe_text};

fn domain(text: &str) -> Domain {
    text.parse().unwrap()
}

fn input(site_type: SiteType) -> SiteInstallInput {
    let php = site_type.uses_php().then_some(PhpVersion::Php83);
    SiteInstallInput::new(domain("example.com"), site_type, php)
        .unwrap()
        .with_www(true)
        .unwrap()
        .with_aliases(vec![domain("example.org")])
        .unwrap()
}

fn installed(names: &[&str]) -> PackageStates {
    PackageStates::from_states(names.iter().map(|name| {
        (
            *name,
            PackageState {
                state: DpkgState::Installed,
                version: Some("1".to_owned()),
            },
        )
    }))
}

fn directory(owner: &str, mode: u32) -> Option<PathState> {
    Some(PathState {
        kind: FileKind::Directory,
        owner: owner.to_owned(),
        mode,
    })
}

/// A provisioned server without the site: nginx and PHP 8.2 and 8.3 with FPM, the
/// brokeforge home as Ubuntu makes it (0750).
fn fresh() -> SiteInstallFacts {
    SiteInstallFacts {
        packages: installed(&["nginx", "php8.2-fpm", "php8.3-fpm"]),
        directories: SiteDirectories {
            home: directory("brokeforge", 0o750),
            root: None,
            releases: None,
            shared: None,
        },
        vhost: None,
        vhost_link: None,
        pool: None,
        pools: Vec::new(),
    }
}

/// The same server once `input` was installed.
fn already_installed(input: &SiteInstallInput) -> SiteInstallFacts {
    let layout = input.layout();
    SiteInstallFacts {
        packages: installed(&["nginx", "php8.2-fpm", "php8.3-fpm"]),
        directories: SiteDirectories {
            home: directory("brokeforge", 0o751),
            root: directory("brokeforge", 0o755),
            releases: directory("brokeforge", 0o755),
            shared: directory("brokeforge", 0o755),
        },
        vhost: Some(String::from_utf8(render_vhost(input, false).unwrap()).unwrap()),
        vhost_link: Some(layout.vhost().to_string()),
        pool: input
            .php_version()
            .map(|version| String::from_utf8(render_pool(&layout, version).unwrap()).unwrap()),
        pools: input.php_version().into_iter().collect(),
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<SiteInstall>(&input(SiteType::Laravel)), @r"
    site_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' nginx php'*-fpm'
    site_paths: root$ stat --printf '%n\t%F\t%U\t%a\n' -- /home/brokeforge /home/brokeforge/example.com /home/brokeforge/example.com/releases /home/brokeforge/example.com/shared
    site_vhost: root$ cat -- /etc/nginx/sites-available/example.com.conf
    site_vhost_link: root$ readlink -- /etc/nginx/sites-enabled/example.com.conf
    site_pool: root$ cat -- /etc/php/8.3/fpm/pool.d/example.com.conf
    site_pools: root$ stat --printf '%n %F\n' -- /etc/php/7.4/fpm/pool.d/example.com.conf /etc/php/8.0/fpm/pool.d/example.com.conf /etc/php/8.1/fpm/pool.d/example.com.conf /etc/php/8.2/fpm/pool.d/example.com.conf /etc/php/8.3/fpm/pool.d/example.com.conf /etc/php/8.4/fpm/pool.d/example.com.conf /etc/php/8.5/fpm/pool.d/example.com.conf
    ");
    assert!(!probe_text::<SiteInstall>(&input(SiteType::Static)).contains("site_pool:"));
}

#[test]
fn facts_of_a_server_with_the_site_on_php_8_2() {
    let input = input(SiteType::Php);
    let outputs = outputs_for::<SiteInstall>(
        &input,
        vec![
            ProbeOutput::new(
                1,
                "nginx 1.22.1-9 install ok installed\nphp8.2-fpm 8.2.29-1 install ok installed\n",
                "",
            ),
            ProbeOutput::success(
                "/home/brokeforge\tdirectory\tbrokeforge\t755\n/home/brokeforge/example.com\tdirectory\tbrokeforge\t755\n\
                 /home/brokeforge/example.com/releases\tdirectory\tbrokeforge\t755\n\
                 /home/brokeforge/example.com/shared\tdirectory\troot\t700\n",
            ),
            ProbeOutput::success("# Written by BrokeForge for the site example.com (php): ...\n"),
            ProbeOutput::success("/etc/nginx/sites-available/example.com.conf\n"),
            common::outputs::cat_missing("/etc/php/8.3/fpm/pool.d/example.com.conf"),
            ProbeOutput::new(
                1,
                "/etc/php/8.2/fpm/pool.d/example.com.conf regular file\n",
                "stat: cannot statx '/etc/php/8.3/fpm/pool.d/example.com.conf': No such file or directory\n",
            ),
        ],
    );
    let facts = SiteInstall::parse_facts(&input, &outputs).unwrap();
    assert!(facts.packages.is_installed("php8.2-fpm") && !facts.packages.is_installed("php8.3-fpm"));
    assert_eq!(facts.directories.shared.as_ref().unwrap().owner, "root");
    assert_eq!(facts.directories.home.as_ref().unwrap().mode, 0o755);
    assert_eq!(
        facts.vhost_link.as_deref(),
        Some("/etc/nginx/sites-available/example.com.conf")
    );
    assert_eq!(facts.pool, None);
    assert_eq!(facts.pools, [PhpVersion::Php82]);
}

#[test]
fn install_a_static_site() {
    insta::assert_snapshot!(check_plan::<SiteInstall>(&input(SiteType::Static), &fresh()));
}

#[test]
fn install_a_php_site() {
    insta::assert_snapshot!(check_plan::<SiteInstall>(&input(SiteType::Php), &fresh()));
}

#[test]
fn install_a_laravel_site() {
    insta::assert_snapshot!(check_plan::<SiteInstall>(&input(SiteType::Laravel), &fresh()));
}

#[test]
fn install_a_wordpress_site() {
    insta::assert_snapshot!(check_plan::<SiteInstall>(&input(SiteType::WordPress), &fresh()));
}

#[test]
fn installing_again_changes_nothing() {
    for site_type in SiteType::ALL {
        let input = input(*site_type);
        let facts = already_installed(&input);
        let plan = SiteInstall::plan(&input, &facts).unwrap();
        assert!(plan.is_noop(), "{site_type}:\n{plan}");
        assert!(dry_run::<SiteInstall>(&input, &facts).unwrap().changes_nothing);
        let text = check_plan::<SiteInstall>(&input, &facts);
        insta::assert_snapshot!(format!("installing_again_changes_nothing_{site_type}"), text);
    }
}

#[test]
fn installing_again_keeps_the_default_site_the_default() {
    let input = input(SiteType::WordPress);
    let mut facts = already_installed(&input);
    facts.vhost = Some(String::from_utf8(render_vhost(&input, true).unwrap()).unwrap());
    let plan = SiteInstall::plan(&input, &facts).unwrap();
    assert!(plan.is_noop(), "{plan}");
    // A change of the site (another alias) rewrites the server block with default_server.
    let changed = input.clone().with_aliases(vec![domain("example.net")]).unwrap();
    let plan = SiteInstall::plan(&changed, &facts).unwrap();
    let uploaded = plan
        .steps()
        .iter()
        .find_map(|step| match step {
            Step::Upload { path, contents, .. } if path.as_str().ends_with("example.com.conf.brokeforge-new") => {
                Some(String::from_utf8(contents.expose_bytes().to_vec()).unwrap())
            }
            _ => None,
        })
        .unwrap();
    assert!(uploaded.contains("    listen 80 default_server;\n    listen [::]:80 default_server;\n"));
    assert!(uploaded.contains("example.net"));
    // A site that is not the default stays so.
    let plan = SiteInstall::plan(&changed, &already_installed(&input)).unwrap();
    assert!(
        !plan
            .steps()
            .iter()
            .any(|step| matches!(step, Step::Upload { contents, .. }
        if String::from_utf8_lossy(contents.expose_bytes()).contains("default_server")))
    );
}

#[test]
fn a_php_version_change_moves_the_pool_and_removes_the_old_one_last() {
    let old = SiteInstallInput::new(domain("example.com"), SiteType::Laravel, Some(PhpVersion::Php82)).unwrap();
    let new = SiteInstallInput::new(domain("example.com"), SiteType::Laravel, Some(PhpVersion::Php83)).unwrap();
    let mut facts = already_installed(&old);
    facts.pool = None;
    let plan = check_plan::<SiteInstall>(&new, &facts);
    insta::assert_snapshot!(plan);
    let reload_nginx = plan.find("systemctl reload-or-restart nginx").unwrap();
    let remove_old = plan.find("rm -f -- /etc/php/8.2/fpm/pool.d/example.com.conf").unwrap();
    assert!(
        reload_nginx < remove_old,
        "the old pool goes after nginx uses the new one"
    );

    // Becoming static removes the pool the same way.
    let static_site = SiteInstallInput::new(domain("example.com"), SiteType::Static, None).unwrap();
    let plan = check_plan::<SiteInstall>(&static_site, &already_installed(&old));
    assert!(
        plan.contains("rm -f -- /etc/php/8.2/fpm/pool.d/example.com.conf"),
        "{plan}"
    );
    assert!(!plan.contains("pool.d/example.com.conf.brokeforge-new"), "{plan}");
}

#[test]
fn only_what_differs_is_done() {
    let input = input(SiteType::Laravel);
    // The server block is in place but not enabled.
    let mut facts = already_installed(&input);
    facts.vhost_link = None;
    let plan = check_plan::<SiteInstall>(&input, &facts);
    assert!(!plan.contains("mkdir") && !plan.contains("fpm -t"), "{plan}");
    assert!(plan.contains("nginx -t && systemctl reload-or-restart nginx"), "{plan}");
    // The home directory is not traversable yet.
    let mut facts = already_installed(&input);
    facts.directories.home = directory("brokeforge", 0o700);
    let plan = check_plan::<SiteInstall>(&input, &facts);
    assert!(plan.contains("root$ chmod o+x -- /home/brokeforge\n"), "{plan}");
    assert!(!SiteInstall::plan(&input, &facts).unwrap().is_noop());
}

#[test]
fn refusals_say_what_to_do() {
    let laravel = input(SiteType::Laravel);
    let refusal = |facts: &SiteInstallFacts| SiteInstall::plan(&laravel, facts).unwrap_err().to_string();

    let mut facts = fresh();
    facts.packages = installed(&["php8.3-fpm"]);
    assert_eq!(
        refusal(&facts),
        "nginx is not installed on this server; provision the server (or install nginx) first"
    );
    facts.packages = installed(&["nginx", "php8.2-fpm"]);
    assert_eq!(
        refusal(&facts),
        "PHP 8.3 with FPM (php8.3-fpm) is not installed on this server; install PHP 8.3 first"
    );
    let mut facts = fresh();
    facts.vhost = Some("server { server_name example.com; }\n".to_owned());
    assert!(matches!(
        SiteInstall::plan(&laravel, &facts),
        Err(SiteInstallError::ForeignConfiguration { .. })
    ));
    assert_eq!(
        refusal(&facts),
        "/etc/nginx/sites-available/example.com.conf exists and was not written by BrokeForge: the domain is \
         already configured on this server; remove or rename that file, then try again"
    );
    let mut facts = fresh();
    facts.pool = Some("[example.com]\nuser = www-data\n".to_owned());
    assert!(refusal(&facts).starts_with("/etc/php/8.3/fpm/pool.d/example.com.conf exists and was not written"));
    let mut facts = fresh();
    facts.directories.root = directory("root", 0o755);
    assert_eq!(
        refusal(&facts),
        "/home/brokeforge/example.com exists but belongs to root, not brokeforge; move it away, then try again"
    );
    facts.directories.root = Some(PathState {
        kind: FileKind::SymbolicLink,
        owner: "brokeforge".to_owned(),
        mode: 0o777,
    });
    assert_eq!(
        refusal(&facts),
        "/home/brokeforge/example.com exists and is not a directory; move it away, then try again"
    );
    let mut facts = fresh();
    facts.directories.home = None;
    assert!(refusal(&facts).contains("run the server's bootstrap again"));
}

#[test]
fn every_command_runs_as_root_and_directories_are_made_as_brokeforge() {
    let plan = SiteInstall::plan(&input(SiteType::WordPress), &fresh()).unwrap();
    let mkdir = plan
        .steps()
        .iter()
        .find_map(|step| match step {
            Step::Run { cmd, .. } if cmd.to_string().contains("mkdir") => Some(cmd.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(
        mkdir.starts_with("runuser -u brokeforge -- mkdir -p -m 0755 -- "),
        "{mkdir}"
    );
}

#[test]
fn the_record_describes_the_site() {
    let plan = SiteInstall::plan(&input(SiteType::Laravel), &fresh()).unwrap();
    let record = plan
        .steps()
        .iter()
        .find_map(|step| match step {
            Step::Persist(record) => Some(record.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((record.package_type, record.package_name), ("site", "site"));
    assert_eq!(record.version, "laravel");
    assert_eq!(
        record.configuration["server_names"],
        serde_json::json!(["example.com", "www.example.com", "example.org"])
    );
    assert_eq!(record.configuration["socket"], "/run/php/php8.3-fpm-example.com.sock");
    assert_eq!(
        record.configuration["web_root"],
        "/home/brokeforge/example.com/current/public"
    );
}

#[test]
fn rendered_server_blocks() {
    for site_type in SiteType::ALL {
        let vhost = String::from_utf8(render_vhost(&input(*site_type), false).unwrap()).unwrap();
        insta::assert_snapshot!(format!("vhost_{site_type}"), vhost);
    }
    let default = String::from_utf8(render_vhost(&input(SiteType::Php), true).unwrap()).unwrap();
    insta::assert_snapshot!("vhost_default_site", default);
}

#[test]
fn rendered_pool() {
    let layout = SiteLayout::new(&domain("example.com"));
    insta::assert_snapshot!(String::from_utf8(render_pool(&layout, PhpVersion::Php83).unwrap()).unwrap());
}

#[test]
fn rendered_server_blocks_pass_nginx_t_together_with_the_default_site() {
    let tree = NginxTree::new("vhosts");
    let default_site = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": true }),
    )
    .unwrap();
    tree.enable("brokeforge-default", &String::from_utf8(default_site).unwrap());
    // Every type, plus the longest domain a site can have with aliases as long as DNS
    // allows (nginx must hash every server name: BrokeForge's nginx.conf leaves room).
    let longest = format!("{}.{}.com", "a".repeat(40), "b".repeat(37));
    let mut inputs: Vec<SiteInstallInput> = SiteType::ALL
        .iter()
        .enumerate()
        .map(|(index, site_type)| {
            let php = site_type.uses_php().then_some(PhpVersion::Php83);
            SiteInstallInput::new(domain(&format!("site{index}.example.com")), *site_type, php)
                .unwrap()
                .with_www(true)
                .unwrap()
                .with_aliases(vec![domain(&format!("alias{index}.example.net"))])
                .unwrap()
        })
        .collect();
    inputs.push(
        SiteInstallInput::new(domain(&longest), SiteType::Laravel, Some(PhpVersion::Php82))
            .unwrap()
            .with_www(true)
            .unwrap()
            .with_aliases(vec![
                domain(&format!(
                    "{}.{}.{}.{}.com",
                    "a".repeat(63),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(57)
                )),
                domain(&format!(
                    "{}.{}.{}.{}.net",
                    "e".repeat(63),
                    "f".repeat(63),
                    "g".repeat(63),
                    "h".repeat(57)
                )),
            ])
            .unwrap(),
    );
    for input in &inputs {
        tree.enable(
            &format!("{}.conf", input.domain()),
            &tree.adapt(&render_vhost(input, false).unwrap()),
        );
    }
    let output = tree.test();
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn rendered_pools_pass_php_fpm_t() {
    let dir = TempDir::new("fpm");
    let longest = format!("{}.{}.com", "a".repeat(40), "b".repeat(37));
    let mut config = format!(
        "[global]\npid = {}\nerror_log = {}\n\n",
        dir.join("fpm.pid"),
        dir.join("fpm.log")
    );
    for name in ["example.com", "www.example.org", longest.as_str()] {
        let pool = String::from_utf8(render_pool(&SiteLayout::new(&domain(name)), PhpVersion::Php82).unwrap()).unwrap();
        assert!(pool.contains("\nuser = brokeforge\ngroup = brokeforge\n"), "{pool}");
        config.push_str(&pool);
        config.push('\n');
    }
    // php-fpm -t looks the pool's user up; where the test machine has no brokeforge
    // user, the pool runs as nobody instead: every other line is checked as rendered.
    let has_brokeforge = Command::new("id").arg("brokeforge").output().unwrap().status.success();
    if !has_brokeforge {
        config = config
            .replace("\nuser = brokeforge\n", "\nuser = nobody\n")
            .replace("\ngroup = brokeforge\n", "\ngroup = nogroup\n");
    }
    let file = dir.join("php-fpm.conf");
    std::fs::write(&file, &config).unwrap();
    let output = Command::new("php-fpm8.2")
        .args(["-t", "-y", &file])
        .output()
        .expect("php-fpm8.2 is installed (Debian package php8.2-fpm)");
    assert!(output.status.success(), "{}\n{config}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("test is successful"),
        "{}",
        describe(&output)
    );

    // A broken pool fails the same check, so the install script would restore.
    std::fs::write(&file, format!("{config}\nbogus_directive = 1\n")).unwrap();
    let output = Command::new("php-fpm8.2").args(["-t", "-y", &file]).output().unwrap();
    assert!(!output.status.success(), "{}", describe(&output));
}

/// The install command for `name` in `tree`, checked by `nginx -t` on the tree.
fn install_in_tree(tree: &NginxTree, name: &str) -> String {
    let new: RemotePath = format!("{}.brokeforge-new", tree.available(name)).parse().unwrap();
    let final_path: RemotePath = tree.available(name).parse().unwrap();
    let link: RemotePath = tree.enabled(name).parse().unwrap();
    let cmd = install_checked_cmd(&new, &final_path, Some(&link), ConfigCheck::Nginx).render_for_execution();
    let words = cmd.strip_suffix(" nginx -t").expect("the check is last");
    format!("{words} {}", tree.test_words())
}

fn upload(tree: &NginxTree, name: &str, text: &str) {
    std::fs::write(format!("{}.brokeforge-new", tree.available(name)), text).unwrap();
}

#[test]
fn a_bad_server_block_never_takes_the_other_sites_down() {
    let tree = NginxTree::new("rollback");
    let good_a = tree.adapt(&render_vhost(&input(SiteType::Laravel), false).unwrap());
    let other = SiteInstallInput::new(domain("other.example"), SiteType::Static, None).unwrap();
    let good_b = tree.adapt(&render_vhost(&other, false).unwrap());
    let broken = good_b.replace("try_files $uri $uri/ =404;", "try_files $uri $uri/ =404");

    // A good site goes in.
    upload(&tree, "example.com.conf", &good_a);
    let output = run_text(&install_in_tree(&tree, "example.com.conf"));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read_to_string(tree.available("example.com.conf")).unwrap(),
        good_a
    );
    assert_eq!(
        std::fs::read_link(tree.enabled("example.com.conf"))
            .unwrap()
            .to_str()
            .unwrap(),
        tree.available("example.com.conf")
    );

    // A new site with a broken server block: refused, and nothing of it is left.
    upload(&tree, "other.example.conf", &broken);
    let output = run_text(&install_in_tree(&tree, "other.example.conf"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("emerg"), "nginx says what is wrong: {stderr}");
    assert!(stderr.contains("the previous configuration is in place"), "{stderr}");
    assert!(!std::path::Path::new(&tree.enabled("other.example.conf")).exists());
    assert!(
        std::fs::symlink_metadata(tree.enabled("other.example.conf")).is_err(),
        "no link is left"
    );
    assert!(!std::path::Path::new(&tree.available("other.example.conf")).exists());
    assert!(!std::path::Path::new(&format!("{}.brokeforge-new", tree.available("other.example.conf"))).exists());
    assert!(tree.test().status.success(), "the configuration still passes");

    // An update that breaks the existing site: the previous file is back.
    upload(
        &tree,
        "example.com.conf",
        &good_a.replace("charset utf-8;", "charset utf-8"),
    );
    let output = run_text(&install_in_tree(&tree, "example.com.conf"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        std::fs::read_to_string(tree.available("example.com.conf")).unwrap(),
        good_a
    );
    assert!(std::fs::symlink_metadata(tree.enabled("example.com.conf")).is_ok());
    assert!(!std::path::Path::new(&format!("{}.brokeforge-previous", tree.available("example.com.conf"))).exists());
    assert!(tree.test().status.success());

    // A good update replaces the file and leaves no copy behind.
    let updated = good_a.replace("charset utf-8;", "charset utf-8;\n    client_max_body_size 10m;");
    upload(&tree, "example.com.conf", &updated);
    let output = run_text(&install_in_tree(&tree, "example.com.conf"));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        std::fs::read_to_string(tree.available("example.com.conf")).unwrap(),
        updated
    );
    let mut names: Vec<String> = std::fs::read_dir(tree.dir.path().join("sites-available"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["example.com.conf"]);

    // A configuration already broken by someone else: nothing is changed at all.
    tree.enable("hand-made.conf", "server { listen 80; server_name hand.example }\n");
    upload(&tree, "other.example.conf", &good_b);
    let output = run_text(&install_in_tree(&tree, "other.example.conf"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("already fails its check, before this change"),
        "{}",
        describe(&output)
    );
    assert!(std::fs::symlink_metadata(tree.enabled("other.example.conf")).is_err());
    assert!(!std::path::Path::new(&format!("{}.brokeforge-new", tree.available("other.example.conf"))).exists());
    assert_eq!(
        std::fs::read_to_string(tree.available("example.com.conf")).unwrap(),
        updated
    );
}

#[test]
fn the_install_script_passes_shellcheck() {
    let cmd = install_checked_cmd(
        &"/a.new".parse().unwrap(),
        &"/a".parse().unwrap(),
        None,
        ConfigCheck::PhpFpm(PhpVersion::Php83),
    )
    .to_string();
    assert!(cmd.ends_with(" sh /a.new /a '' php-fpm8.3 -t"), "{cmd}");
    let script = cmd.split('\'').nth(1).unwrap();
    shellcheck(script, "sh");
}

fn removed_everything() -> SiteRemoveFacts {
    SiteRemoveFacts {
        packages: installed(&["nginx", "php8.3-fpm"]),
        vhost_link_exists: false,
        vhost_files: Vec::new(),
        pools: Vec::new(),
        root_exists: false,
        git_access_files: Vec::new(),
        logs: Vec::new(),
        is_default: false,
        catch_all: CatchAll {
            available: true,
            enabled: true,
        },
        other_default_servers: Vec::new(),
    }
}

#[test]
fn remove_probes_and_facts() {
    let static_site = input(SiteType::Static);
    let input = SiteRemoveInput {
        domain: domain("example.com"),
    };
    insta::assert_snapshot!(probe_text::<SiteRemove>(&input));
    let outputs = outputs_for::<SiteRemove>(
        &input,
        vec![
            ProbeOutput::success("nginx 1.22.1-9 install ok installed\nphp8.3-fpm 8.3.1 install ok installed\n"),
            ProbeOutput::new(
                1,
                "/etc/nginx/sites-enabled/example.com.conf symbolic link\n\
                 /etc/nginx/sites-available/example.com.conf regular file\n\
                 /home/brokeforge/example.com directory\n\
                 /home/brokeforge/.ssh/sites/example.com regular file\n",
                "stat: cannot statx '/etc/nginx/sites-available/example.com.conf.brokeforge-new': No such file or directory\n",
            ),
            ProbeOutput::new(1, "/etc/php/8.3/fpm/pool.d/example.com.conf regular file\n", ""),
            ProbeOutput::success("/var/log/nginx/example.com-access.log\n/var/log/nginx/example.com-error.log.2.gz\n"),
            ProbeOutput::success(String::from_utf8(render_vhost(&static_site, true).unwrap()).unwrap()),
            ProbeOutput::new(
                1,
                "/etc/nginx/sites-available/brokeforge-default regular file\n",
                "stat: cannot statx '/etc/nginx/sites-enabled/brokeforge-default': No such file or directory\n",
            ),
            ProbeOutput::success("/etc/nginx/sites-enabled/example.com.conf\n"),
        ],
    );
    let facts = SiteRemove::parse_facts(&input, &outputs).unwrap();
    assert!(facts.vhost_link_exists && facts.root_exists);
    assert_eq!(facts.vhost_files.len(), 1);
    assert_eq!(facts.pools, [PhpVersion::Php83]);
    assert_eq!(facts.logs.len(), 2);
    assert_eq!(
        facts.git_access_files,
        ["/home/brokeforge/.ssh/sites/example.com".parse::<RemotePath>().unwrap()]
    );
    // The site is the default: removing it enables the catch-all again.
    assert!(facts.is_default && facts.catch_all.available && !facts.catch_all.enabled);
    assert!(facts.other_default_servers.is_empty());
    let plan = check_plan::<SiteRemove>(&input, &facts);
    let unlink = plan.find("rm -f -- /etc/nginx/sites-enabled/example.com.conf").unwrap();
    let catch_all = plan
        .find("ln -sfn -- /etc/nginx/sites-available/brokeforge-default /etc/nginx/sites-enabled/brokeforge-default")
        .unwrap();
    let reload = plan.find("nginx -t && systemctl reload-or-restart nginx").unwrap();
    assert!(unlink < catch_all && catch_all < reload, "{plan}");
    insta::assert_snapshot!(plan);

    // Another site's server block that declares default_server keeps the catch-all off.
    let mut facts = facts;
    facts.other_default_servers = vec!["/etc/nginx/sites-enabled/other.example.conf".to_owned()];
    let plan = check_plan::<SiteRemove>(&input, &facts);
    assert!(!plan.contains("brokeforge-default"), "{plan}");
    // A site that is not the default leaves the catch-all as it is.
    facts.other_default_servers.clear();
    facts.is_default = false;
    assert!(!check_plan::<SiteRemove>(&input, &facts).contains("brokeforge-default"));
}

#[test]
fn removing_a_removed_site_changes_nothing() {
    let input = SiteRemoveInput {
        domain: domain("example.com"),
    };
    let plan = SiteRemove::plan(&input, &removed_everything()).unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(
        check_plan::<SiteRemove>(&input, &removed_everything()),
        "remove site/site as root, 5 steps\n\
         [1/5] Taking the site out of nginx\n\
         [2/5] Removing the site's PHP-FPM pool\n\
         [3/5] Removing the site's releases and shared files\n\
         [4/5] Removing the site's nginx logs\n\
         [5/5] Complete\n\
         nothing to change: the server is already in the state this operation leaves it in\n"
    );
}

#[test]
fn the_log_pattern_finds_this_site_s_logs_and_no_other_s() {
    let dir = TempDir::new("logs");
    let logs = dir.join("nginx");
    std::fs::create_dir_all(&logs).unwrap();
    let ours = [
        "example.com-access.log",
        "example.com-error.log",
        "example.com-access.log.1",
        "example.com-error.log.14.gz",
    ];
    let theirs = [
        "example.com-shop.de-access.log",
        "example.com-access.log.foo-access.log",
        "wwwexample.com-access.log",
        "example.comx-access.log",
        "examplexcom-access.log",
        "access.log",
        "example.com-access.log.1.gz.bak",
    ];
    for name in ours.iter().chain(&theirs) {
        std::fs::write(format!("{logs}/{name}"), "x").unwrap();
    }
    let cmd = site_logs_cmd(&SiteLayout::new(&domain("example.com")))
        .render_for_execution()
        .replace("/var/log/nginx", &logs);
    let output = run_text(&cmd);
    assert!(output.status.success(), "{}", describe(&output));
    let mut found: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.rsplit('/').next().unwrap().to_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = ours.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected);
    let output = run_text(&format!("{cmd} -delete"));
    assert!(output.status.success(), "{}", describe(&output));
    let mut left: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = theirs.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(left, expected);
}
