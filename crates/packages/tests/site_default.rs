//! The default site: probes, plan snapshots for making a site the default (first, and
//! in place of another), making none the default, asking again (no change) and the
//! refusals; the switch command run for real against `nginx -t` on a configuration
//! tree, which puts every file and the catch-all's link back when the check fails; and
//! the operation's own probes and plans run for real against a tree that a real nginx
//! serves (the server's paths mapped into the tree, port 80 onto a free port, the
//! reload onto `nginx -s reload`, as this machine runs no systemd): a request for an
//! unknown name gets the catch-all's page, then the default site's page, then another
//! site's, then the catch-all's again. (Debian package `nginx-light`; the tests fail
//! without it.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brokeforge_core::{Domain, PhpVersion, RemotePath};
use brokeforge_packages::facts::{DpkgState, PackageState, PackageStates};
use brokeforge_packages::site::SiteType;
use brokeforge_packages::site::default_site::{
    CatchAllChange, DefaultSiteError, DefaultSiteFacts, DefaultSiteInput, DefaultSiteUpdate, ServerBlock,
    switch_checked_cmd,
};
use brokeforge_packages::site::install::{CatchAll, ConfigCheck, SiteInstallInput};
use brokeforge_packages::site::vhost::render_vhost;
use brokeforge_packages::{Operation, Template, dry_run, render};
use common::nginx::NginxTree;
use common::sandbox::{describe, run_text, shellcheck};
use common::{check_plan, probe_text};

fn domain(text: &str) -> Domain {
    text.parse().unwrap()
}

fn site(name: &str, site_type: SiteType) -> SiteInstallInput {
    let php = site_type.uses_php().then_some(PhpVersion::Php83);
    SiteInstallInput::new(domain(name), site_type, php).unwrap()
}

fn nginx_installed() -> PackageStates {
    PackageStates::from_states([(
        "nginx",
        PackageState {
            state: DpkgState::Installed,
            version: Some("1.22.1-9".to_owned()),
        },
    )])
}

/// The server block of `site` as installed, with or without `default_server`.
fn installed(site: &SiteInstallInput, default_server: bool) -> ServerBlock {
    ServerBlock {
        contents: Some(String::from_utf8(render_vhost(site, default_server).unwrap()).unwrap()),
        link: Some(site.layout().vhost().to_string()),
    }
}

/// A provisioned server: the catch-all enabled, no site the default.
fn facts(site: Option<ServerBlock>, previous: Option<ServerBlock>) -> DefaultSiteFacts {
    DefaultSiteFacts {
        packages: nginx_installed(),
        site: site.unwrap_or_default(),
        previous: previous.unwrap_or_default(),
        catch_all: CatchAll {
            available: true,
            enabled: true,
        },
        default_servers: vec!["/etc/nginx/sites-enabled/brokeforge-default".to_owned()],
    }
}

#[test]
fn probes() {
    let input = DefaultSiteInput::new(
        Some(site("shop.example.com", SiteType::Php)),
        Some(site("blog.example.com", SiteType::Static)),
    )
    .unwrap();
    insta::assert_snapshot!(probe_text::<DefaultSiteUpdate>(&input));
    let unset = DefaultSiteInput::new(None, Some(site("blog.example.com", SiteType::Static))).unwrap();
    assert!(!probe_text::<DefaultSiteUpdate>(&unset).contains("default_site_vhost"));
}

#[test]
fn make_the_first_default_site() {
    let shop = site("shop.example.com", SiteType::Php);
    let input = DefaultSiteInput::new(Some(shop.clone()), None).unwrap();
    let facts = facts(Some(installed(&shop, false)), None);
    let plan = check_plan::<DefaultSiteUpdate>(&input, &facts);
    assert!(
        plan.contains("bash disable /etc/nginx/sites-available/brokeforge-default"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn make_another_site_the_default() {
    let shop = site("shop.example.com", SiteType::Php);
    let blog = site("blog.example.com", SiteType::Static);
    let input = DefaultSiteInput::new(Some(shop.clone()), Some(blog.clone())).unwrap();
    let mut facts = facts(Some(installed(&shop, false)), Some(installed(&blog, true)));
    facts.catch_all.enabled = false;
    facts.default_servers = vec!["/etc/nginx/sites-enabled/blog.example.com.conf".to_owned()];
    let plan = check_plan::<DefaultSiteUpdate>(&input, &facts);
    // Both server blocks change in one checked command; the catch-all stays off.
    assert!(
        plan.contains("bash keep /etc/nginx/sites-available/brokeforge-default"),
        "{plan}"
    );
    assert!(
        plan.contains(" 2 /etc/nginx/sites-available/shop.example.com.conf.brokeforge-new"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn make_no_site_the_default() {
    let blog = site("blog.example.com", SiteType::Static);
    let input = DefaultSiteInput::new(None, Some(blog.clone())).unwrap();
    let mut facts = facts(None, Some(installed(&blog, true)));
    facts.catch_all.enabled = false;
    facts.default_servers = vec!["/etc/nginx/sites-enabled/blog.example.com.conf".to_owned()];
    let plan = check_plan::<DefaultSiteUpdate>(&input, &facts);
    assert!(
        plan.contains("bash enable /etc/nginx/sites-available/brokeforge-default"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);

    // A server without the catch-all's configuration keeps none.
    facts.catch_all.available = false;
    let plan = check_plan::<DefaultSiteUpdate>(&input, &facts);
    assert!(plan.contains("bash keep "), "{plan}");
}

#[test]
fn asking_again_changes_nothing() {
    let shop = site("shop.example.com", SiteType::Laravel);
    let input = DefaultSiteInput::new(Some(shop.clone()), None).unwrap();
    let mut facts = facts(Some(installed(&shop, true)), None);
    facts.catch_all.enabled = false;
    facts.default_servers = vec!["/etc/nginx/sites-enabled/shop.example.com.conf".to_owned()];
    assert!(DefaultSiteUpdate::plan(&input, &facts).unwrap().is_noop());
    assert!(dry_run::<DefaultSiteUpdate>(&input, &facts).unwrap().changes_nothing);

    let unset = DefaultSiteInput::new(None, Some(shop.clone())).unwrap();
    let facts = self::facts(None, Some(installed(&shop, false)));
    assert!(DefaultSiteUpdate::plan(&unset, &facts).unwrap().is_noop());
}

#[test]
fn refusals_say_what_to_do() {
    let shop = site("shop.example.com", SiteType::Php);
    let input = DefaultSiteInput::new(Some(shop.clone()), None).unwrap();
    let refusal = |facts: &DefaultSiteFacts| DefaultSiteUpdate::plan(&input, facts).unwrap_err();

    let mut no_nginx = facts(Some(installed(&shop, false)), None);
    no_nginx.packages = PackageStates::default();
    assert!(matches!(refusal(&no_nginx), DefaultSiteError::NginxNotInstalled));
    assert_eq!(
        refusal(&facts(Some(ServerBlock::default()), None)).to_string(),
        "the server block of shop.example.com (/etc/nginx/sites-available/shop.example.com.conf) is missing; \
         install the site again first"
    );
    let foreign = ServerBlock {
        contents: Some("server { listen 80; }\n".to_owned()),
        link: Some("/etc/nginx/sites-available/shop.example.com.conf".to_owned()),
    };
    assert!(matches!(
        refusal(&facts(Some(foreign), None)),
        DefaultSiteError::ForeignConfiguration { .. }
    ));
    let mut disabled = installed(&shop, false);
    disabled.link = None;
    assert!(
        refusal(&facts(Some(disabled), None))
            .to_string()
            .contains("is not enabled in nginx (/etc/nginx/sites-enabled/shop.example.com.conf)")
    );
    let mut other = facts(Some(installed(&shop, false)), None);
    other
        .default_servers
        .push("/etc/nginx/sites-enabled/hand-made.conf".to_owned());
    assert_eq!(
        refusal(&other).to_string(),
        "/etc/nginx/sites-enabled/hand-made.conf also declare default_server, and nginx allows one default \
         server; remove default_server there first"
    );
}

#[test]
fn rendered_default_site_passes_nginx_t_only_without_the_catch_all() {
    let tree = NginxTree::new("default-vhost");
    let catch_all = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": false }),
    )
    .unwrap();
    tree.enable("brokeforge-default", &String::from_utf8(catch_all).unwrap());
    for (index, site_type) in SiteType::ALL.iter().enumerate() {
        let input = site(&format!("site{index}.example.com"), *site_type);
        tree.enable(
            &format!("{}.conf", input.domain()),
            &tree.adapt(&render_vhost(&input, false).unwrap()),
        );
    }
    assert!(tree.test().status.success(), "{}", describe(&tree.test()));
    // A default site next to the enabled catch-all: two default servers.
    let shop = site("shop.example.com", SiteType::WordPress);
    tree.enable(
        "shop.example.com.conf",
        &tree.adapt(&render_vhost(&shop, true).unwrap()),
    );
    let output = tree.test();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("duplicate default server"),
        "{}",
        describe(&output)
    );
    // Without the catch-all it passes.
    std::fs::remove_file(tree.enabled("brokeforge-default")).unwrap();
    let output = tree.test();
    assert!(output.status.success(), "{}", describe(&output));
}

/// The switch command on `tree`: `files` are (uploaded, place) names in
/// `sites-available`, checked by `nginx -t` on the tree.
fn switch_in_tree(tree: &NginxTree, files: &[&str], change: CatchAllChange) -> String {
    let pairs: Vec<(RemotePath, RemotePath)> = files
        .iter()
        .map(|name| {
            (
                format!("{}.brokeforge-new", tree.available(name)).parse().unwrap(),
                tree.available(name).parse().unwrap(),
            )
        })
        .collect();
    let cmd = switch_checked_cmd(
        &pairs,
        change,
        &tree.available("brokeforge-default").parse().unwrap(),
        &tree.enabled("brokeforge-default").parse().unwrap(),
        ConfigCheck::Nginx,
    )
    .render_for_execution();
    let words = cmd.strip_suffix(" nginx -t").expect("the check is last");
    format!("{words} {}", tree.test_words())
}

fn upload(tree: &NginxTree, name: &str, text: &str) {
    std::fs::write(format!("{}.brokeforge-new", tree.available(name)), text).unwrap();
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn catch_all_enabled(tree: &NginxTree) -> bool {
    std::fs::symlink_metadata(tree.enabled("brokeforge-default")).is_ok()
}

/// A tree with the catch-all and two sites, shop and blog, neither the default.
fn two_sites(tree: &NginxTree) -> (SiteInstallInput, SiteInstallInput) {
    let catch_all = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": false }),
    )
    .unwrap();
    tree.enable("brokeforge-default", &String::from_utf8(catch_all).unwrap());
    let shop = site("shop.example.com", SiteType::Static);
    let blog = site("blog.example.com", SiteType::Static);
    for input in [&shop, &blog] {
        tree.enable(
            &format!("{}.conf", input.domain()),
            &tree.adapt(&render_vhost(input, false).unwrap()),
        );
    }
    assert!(tree.test().status.success(), "{}", describe(&tree.test()));
    (shop, blog)
}

#[test]
fn a_failed_switch_puts_every_file_and_the_link_back() {
    let tree = NginxTree::new("switch");
    let (shop, blog) = two_sites(&tree);
    let shop_plain = read(&tree.available("shop.example.com.conf"));
    let blog_plain = read(&tree.available("blog.example.com.conf"));
    let shop_default = tree.adapt(&render_vhost(&shop, true).unwrap());
    let blog_default = tree.adapt(&render_vhost(&blog, true).unwrap());

    // shop becomes the default: its block changes, the catch-all goes.
    upload(&tree, "shop.example.com.conf", &shop_default);
    let output = run_text(&switch_in_tree(
        &tree,
        &["shop.example.com.conf"],
        CatchAllChange::Disable,
    ));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(read(&tree.available("shop.example.com.conf")), shop_default);
    assert!(!catch_all_enabled(&tree));
    assert!(tree.test().status.success());

    // blog becomes the default too, but shop is not written back: two default
    // servers. Both blocks and the link are as they were before.
    upload(&tree, "blog.example.com.conf", &blog_default);
    let output = run_text(&switch_in_tree(&tree, &["blog.example.com.conf"], CatchAllChange::Keep));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("duplicate default server"), "{stderr}");
    assert!(stderr.contains("the previous configuration is in place"), "{stderr}");
    assert_eq!(read(&tree.available("blog.example.com.conf")), blog_plain);
    assert_eq!(read(&tree.available("shop.example.com.conf")), shop_default);
    assert!(!catch_all_enabled(&tree));
    assert!(tree.test().status.success());

    // A switch that also enables the catch-all next to the default site fails the
    // same way and leaves the link out again.
    upload(
        &tree,
        "blog.example.com.conf",
        &blog_plain.replace("charset utf-8;", "charset utf-8;\n"),
    );
    let output = run_text(&switch_in_tree(
        &tree,
        &["blog.example.com.conf"],
        CatchAllChange::Enable,
    ));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(!catch_all_enabled(&tree));
    assert_eq!(read(&tree.available("blog.example.com.conf")), blog_plain);

    // blog in shop's place, checked as one change: it passes.
    upload(&tree, "blog.example.com.conf", &blog_default);
    upload(&tree, "shop.example.com.conf", &shop_plain);
    let output = run_text(&switch_in_tree(
        &tree,
        &["blog.example.com.conf", "shop.example.com.conf"],
        CatchAllChange::Keep,
    ));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(read(&tree.available("blog.example.com.conf")), blog_default);
    assert_eq!(read(&tree.available("shop.example.com.conf")), shop_plain);

    // No default site: the catch-all comes back, and no copy is left behind.
    upload(&tree, "blog.example.com.conf", &blog_plain);
    let output = run_text(&switch_in_tree(
        &tree,
        &["blog.example.com.conf"],
        CatchAllChange::Enable,
    ));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(catch_all_enabled(&tree));
    let mut names: Vec<String> = std::fs::read_dir(tree.dir.path().join("sites-available"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["blog.example.com.conf", "brokeforge-default", "shop.example.com.conf"]
    );

    // A configuration already broken: nothing is changed at all.
    tree.enable("hand-made.conf", "server { listen 80; server_name hand.example }\n");
    upload(&tree, "shop.example.com.conf", &shop_default);
    let output = run_text(&switch_in_tree(
        &tree,
        &["shop.example.com.conf"],
        CatchAllChange::Disable,
    ));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already fails its check"));
    assert!(catch_all_enabled(&tree));
    assert_eq!(read(&tree.available("shop.example.com.conf")), shop_plain);
    assert!(!std::path::Path::new(&format!("{}.brokeforge-new", tree.available("shop.example.com.conf"))).exists());
}

#[test]
fn the_switch_script_passes_shellcheck() {
    let cmd = switch_checked_cmd(
        &[("/a.new".parse().unwrap(), "/a".parse().unwrap())],
        CatchAllChange::Disable,
        &"/t".parse().unwrap(),
        &"/l".parse().unwrap(),
        ConfigCheck::Nginx,
    )
    .to_string();
    assert!(cmd.ends_with(" bash disable /t /l 1 /a.new /a nginx -t"), "{cmd}");
    shellcheck(cmd.split('\'').nth(1).unwrap(), "bash");
}

/// nginx serving a tree on a loopback port, stopped when dropped.
struct RunningNginx {
    child: Child,
    port: u16,
}

impl RunningNginx {
    fn start(tree: &NginxTree, port: u16) -> RunningNginx {
        let child = Command::new("nginx")
            .args([
                "-c",
                &tree.dir.join("nginx.conf"),
                "-p",
                &format!("{}/", tree.dir.text()),
            ])
            .args(["-e", &tree.dir.join("logs/error.log"), "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (Debian package nginx-light)");
        let nginx = RunningNginx { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// Waits until nginx (reloaded by a plan) answers `host` with `expected`.
    fn wait_for(&self, host: &str, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self.get(host);
            if body.contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{host} never answered {expected:?}; last: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The response to `GET /` with `Host: host`.
    fn get(&self, host: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(stream, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }
}

impl Drop for RunningNginx {
    /// Stops nginx as `nginx -s stop` does (SIGTERM to the master, which stops its
    /// workers), so no worker outlives the test.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The paths and ports of a server, mapped onto a tree (and back): nginx's
/// directories, logs, the catch-all's page and brokeforge's home move below the tree,
/// and port 80 becomes a free loopback port (`[::]:80` another loopback address, so
/// the mapping can be undone).
struct Localized<'a> {
    tree: &'a NginxTree,
    pairs: Vec<(String, String)>,
}

impl<'a> Localized<'a> {
    fn new(tree: &'a NginxTree, port: u16) -> Self {
        let pairs = vec![
            ("listen [::]:80".to_owned(), format!("listen 127.0.0.2:{port}")),
            ("listen 80".to_owned(), format!("listen 127.0.0.1:{port}")),
            (
                "/etc/nginx/sites-available".to_owned(),
                tree.dir.join("sites-available"),
            ),
            ("/etc/nginx/sites-enabled".to_owned(), tree.dir.join("sites-enabled")),
            ("/var/log/nginx".to_owned(), tree.dir.join("logs")),
            ("/var/www/brokeforge-default".to_owned(), tree.dir.join("catch-all")),
            ("/home/brokeforge".to_owned(), tree.dir.join("home")),
        ];
        Localized { tree, pairs }
    }

    fn here(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_owned(), |text, (server, local)| text.replace(server, local))
    }

    fn back(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_owned(), |text, (server, local)| text.replace(local, server))
    }

    /// A planned command as it runs here: `nginx -t` checks the tree, and reloading
    /// nginx signals the tree's nginx (this machine runs no systemd).
    fn command(&self, cmd: &brokeforge_core::Cmd) -> String {
        let test = self.tree.test_words();
        let reload = test.replace("nginx -t -q", "nginx -s reload");
        let text = self.here(&cmd.render_for_execution()).replace(
            "nginx -t && systemctl reload-or-restart nginx",
            &format!("{test} && {reload}"),
        );
        match text.strip_suffix(" nginx -t") {
            Some(words) => format!("{words} {test}"),
            None => text,
        }
    }

    /// The facts of `input` read from the tree by the operation's own probes (nginx's
    /// package is installed: this machine has Debian's nginx-light).
    fn facts(&self, input: &DefaultSiteInput) -> DefaultSiteFacts {
        let outputs: brokeforge_packages::ProbeOutputs = DefaultSiteUpdate::fact_probes(input)
            .iter()
            .map(|probe| {
                if probe.key() == "default_site_packages" {
                    return (
                        probe.key(),
                        brokeforge_packages::ProbeOutput::success("nginx 1.22.1-9 install ok installed\n"),
                    );
                }
                let output = run_text(&self.command(probe.cmd()));
                let text = |bytes: &[u8]| self.back(&String::from_utf8_lossy(bytes));
                let output = brokeforge_packages::ProbeOutput::new(
                    output.status.code().unwrap() as u32,
                    text(&output.stdout),
                    text(&output.stderr),
                );
                (probe.key(), output)
            })
            .collect();
        DefaultSiteUpdate::parse_facts(input, &outputs).unwrap()
    }

    /// Plans `input` against the tree and runs the plan, step by step.
    fn operate(&self, input: &DefaultSiteInput) -> brokeforge_core::Plan {
        let plan = DefaultSiteUpdate::plan(input, &self.facts(input)).unwrap();
        for step in plan.steps() {
            match step {
                brokeforge_core::Step::Run { cmd, .. } => {
                    let output = run_text(&self.command(cmd));
                    assert!(output.status.success(), "{cmd}\n{}", describe(&output));
                }
                brokeforge_core::Step::Upload { path, contents, .. } => {
                    let text = String::from_utf8(contents.expose_bytes().to_vec()).unwrap();
                    std::fs::write(self.here(path.as_str()), self.here(&text)).unwrap();
                }
                _ => {}
            }
        }
        plan
    }
}

#[test]
fn a_real_nginx_serves_the_default_site_for_unknown_names_and_the_catch_all_again_after() {
    let tree = NginxTree::new("serve");
    let port = free_port();
    let local = Localized::new(&tree, port);
    // The server as provisioning and two site installations leave it: the catch-all
    // with its page, and shop and blog, each with a live release.
    std::fs::create_dir_all(tree.dir.join("catch-all")).unwrap();
    let page = render(Template::NginxDefaultPage, &serde_json::json!({})).unwrap();
    std::fs::write(tree.dir.join("catch-all/index.html"), page).unwrap();
    let catch_all = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": false }),
    )
    .unwrap();
    tree.enable(
        "brokeforge-default",
        &local.here(&String::from_utf8(catch_all).unwrap()),
    );
    let shop = site("shop.example.com", SiteType::Static);
    let blog = site("blog.example.com", SiteType::Static);
    for input in [&shop, &blog] {
        let root = local.here(input.layout().root().as_str());
        std::fs::create_dir_all(format!("{root}/releases/20261128100000")).unwrap();
        std::fs::write(
            format!("{root}/releases/20261128100000/index.html"),
            format!("<h1>{}</h1>\n", input.domain()),
        )
        .unwrap();
        std::os::unix::fs::symlink("releases/20261128100000", format!("{root}/current")).unwrap();
        let vhost = String::from_utf8(render_vhost(input, false).unwrap()).unwrap();
        tree.enable(&format!("{}.conf", input.domain()), &local.here(&vhost));
    }
    let nginx = RunningNginx::start(&tree, port);
    assert!(nginx.get("203.0.113.10").contains("No site here yet"));
    assert!(nginx.get("shop.example.com").contains("<h1>shop.example.com</h1>"));

    // shop becomes the default site: unknown names get its page.
    let make_shop = DefaultSiteInput::new(Some(shop.clone()), None).unwrap();
    local.operate(&make_shop);
    nginx.wait_for("203.0.113.10", "<h1>shop.example.com</h1>");
    assert!(nginx.get("unknown.example").contains("<h1>shop.example.com</h1>"));
    assert!(nginx.get("blog.example.com").contains("<h1>blog.example.com</h1>"));
    assert!(!catch_all_enabled(&tree));
    // Asking again changes nothing.
    assert!(local.operate(&make_shop).is_noop());

    // blog takes shop's place.
    let make_blog = DefaultSiteInput::new(Some(blog.clone()), Some(shop.clone())).unwrap();
    local.operate(&make_blog);
    nginx.wait_for("unknown.example", "<h1>blog.example.com</h1>");
    assert!(nginx.get("shop.example.com").contains("<h1>shop.example.com</h1>"));

    // No site is the default: the catch-all's page again.
    local.operate(&DefaultSiteInput::new(None, Some(blog.clone())).unwrap());
    nginx.wait_for("unknown.example", "No site here yet");
    assert!(nginx.get("blog.example.com").contains("<h1>blog.example.com</h1>"));
    assert!(catch_all_enabled(&tree));
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
