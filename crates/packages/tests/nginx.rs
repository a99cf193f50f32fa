//! Nginx: `nginx -v` as each release prints it, and plan snapshots for installing on
//! each release, on a provisioned server (no-op), after configuration drift, with
//! apache2 in the way, on a server whose default site is a site (the catch-all stays
//! off, nothing changes), and for removing; the probe of the server blocks that
//! declare `default_server` run against real files.

mod common;

use brokeforge_packages::nginx::{
    NginxFacts, NginxInstall, NginxInstallInput, NginxRemove, NginxVersion, parse_nginx_version,
};
use brokeforge_packages::{Operation, ProbeOutput, Template, dry_run, render};
use common::outputs::{cat_missing, dpkg_fresh_debian_12, stat_missing, unit_not_found, unit_running};
use common::{check_plan, fixture, os_release_output, outputs_for, probe_text};

const LINKS: &[&str] = &[
    "/etc/nginx/sites-enabled/default",
    "/etc/nginx/sites-enabled/brokeforge-default",
    "/etc/nginx/nginx.conf.before-brokeforge",
];

/// What a server answers to the nginx probes.
struct Server {
    release: &'static str,
    packages: ProbeOutput,
    version: ProbeOutput,
    service: ProbeOutput,
    main_config: ProbeOutput,
    default_site: ProbeOutput,
    default_page: ProbeOutput,
    links: ProbeOutput,
    default_servers: ProbeOutput,
}

impl Server {
    fn fresh(release: &'static str) -> Self {
        Server {
            release,
            packages: dpkg_fresh_debian_12(&["nginx*", "libnginx-mod-*", "apache2"]),
            version: ProbeOutput::new(127, "", "bash: line 1: nginx: command not found\n"),
            service: unit_not_found(),
            main_config: cat_missing("/etc/nginx/nginx.conf"),
            default_site: cat_missing("/etc/nginx/sites-available/brokeforge-default"),
            default_page: cat_missing("/var/www/brokeforge-default/index.html"),
            links: stat_missing(LINKS),
            default_servers: ProbeOutput::success(""),
        }
    }

    /// Debian 12 after BrokeForge installed nginx with `input`.
    fn provisioned(input: NginxInstallInput) -> Self {
        let text =
            |template, context: serde_json::Value| String::from_utf8(render(template, &context).unwrap()).unwrap();
        Server {
            release: "debian-12",
            packages: ProbeOutput::new(
                1,
                fixture("dpkg-query-nginx-debian-12.txt"),
                "dpkg-query: no packages found matching libnginx-mod-*\n",
            ),
            version: ProbeOutput::new(0, "", "nginx version: nginx/1.22.1\n"),
            service: unit_running(),
            main_config: ProbeOutput::success(text(
                Template::NginxConf,
                serde_json::json!({ "client_max_body_size_mb": input.client_max_body_mb() }),
            )),
            default_site: ProbeOutput::success(text(
                Template::NginxDefaultSite,
                serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": true }),
            )),
            default_page: ProbeOutput::success(text(Template::NginxDefaultPage, serde_json::json!({}))),
            links: ProbeOutput::new(
                1,
                "/etc/nginx/sites-enabled/brokeforge-default symbolic link\n",
                "stat: cannot statx '/etc/nginx/sites-enabled/default': No such file or directory\n\
                 stat: cannot statx '/etc/nginx/nginx.conf.before-brokeforge': No such file or directory\n",
            ),
            default_servers: ProbeOutput::success("/etc/nginx/sites-enabled/brokeforge-default\n"),
        }
    }

    fn facts(self) -> NginxFacts {
        let input = NginxInstallInput::default();
        let outputs = outputs_for::<NginxInstall>(
            &input,
            vec![
                os_release_output(self.release),
                self.packages,
                self.version,
                self.service,
                self.main_config,
                self.default_site,
                self.default_page,
                self.links,
                self.default_servers,
            ],
        );
        NginxInstall::parse_facts(&input, &outputs).unwrap()
    }
}

#[test]
fn probes() {
    insta::assert_snapshot!(probe_text::<NginxInstall>(&NginxInstallInput::default()), @r#"
    os_release: root$ cat -- /etc/os-release
    nginx_packages: root$ dpkg-query -W -f '${Package} ${Version} ${Status}\n' nginx'*' libnginx-mod-'*' apache2
    nginx_version: root$ nginx -v
    nginx_service: root$ systemctl show -p LoadState -p ActiveState -p UnitFileState -- nginx.service
    nginx_main_config: root$ cat -- /etc/nginx/nginx.conf
    nginx_default_site: root$ cat -- /etc/nginx/sites-available/brokeforge-default
    nginx_default_page: root$ cat -- /var/www/brokeforge-default/index.html
    nginx_site_links: root$ stat --printf '%n %F\n' -- /etc/nginx/sites-enabled/default /etc/nginx/sites-enabled/brokeforge-default /etc/nginx/nginx.conf.before-brokeforge
    nginx_default_servers: root$ sh -c 'for f in /etc/nginx/sites-enabled/*; do [ -f "$f" ] || continue; if grep -Eq "^[[:space:]]*listen[[:space:]][^;#]*[[:space:]]default_server" -- "$f"; then printf "%s\n" "$f"; fi; done'
    "#);
    assert_eq!(
        probe_text::<NginxRemove>(&()),
        probe_text::<NginxInstall>(&NginxInstallInput::default())
    );
}

#[test]
fn nginx_versions_as_each_release_prints_them() {
    let version = |stderr: &str| parse_nginx_version(&ProbeOutput::new(0, "", stderr)).unwrap();
    assert_eq!(
        version("nginx version: nginx/1.22.1\n"),
        Some(NginxVersion {
            major: 1,
            minor: 22,
            patch: 1
        })
    );
    assert_eq!(
        version("nginx version: nginx/1.24.0 (Ubuntu)\n").unwrap().major_minor(),
        "1.24"
    );
    assert_eq!(
        version("nginx version: nginx/1.18.0 (Ubuntu)\n").unwrap().major_minor(),
        "1.18"
    );
    let missing = ProbeOutput::new(127, "", "bash: line 1: nginx: command not found\n");
    assert_eq!(parse_nginx_version(&missing).unwrap(), None);
    assert!(parse_nginx_version(&ProbeOutput::new(0, "", "nginx version: openresty/1.x\n")).is_err());
    assert!(parse_nginx_version(&ProbeOutput::new(0, "", "something else\n")).is_err());
    assert!(parse_nginx_version(&ProbeOutput::new(1, "", "nginx: [emerg] ...\n")).is_err());
}

#[test]
fn install_on_fresh_debian_12() {
    insta::assert_snapshot!(check_plan::<NginxInstall>(
        &NginxInstallInput::default(),
        &Server::fresh("debian-12").facts()
    ));
}

#[test]
fn install_on_fresh_ubuntu_22_04_has_no_tls_catch_all() {
    let facts = Server::fresh("ubuntu-22.04").facts();
    let plan = check_plan::<NginxInstall>(&NginxInstallInput::default(), &facts);
    assert!(plan.contains("record webserver nginx version 1.18 "), "{plan}");
    let site = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": false }),
    )
    .unwrap();
    assert!(!String::from_utf8(site).unwrap().contains("443"));
    insta::assert_snapshot!(plan);
}

#[test]
fn install_on_fresh_ubuntu_24_04() {
    let plan = check_plan::<NginxInstall>(&NginxInstallInput::default(), &Server::fresh("ubuntu-24.04").facts());
    assert!(plan.contains("record webserver nginx version 1.24 "), "{plan}");
}

#[test]
fn install_when_present_changes_nothing() {
    let input = NginxInstallInput::default();
    let facts = Server::provisioned(input).facts();
    assert!(dry_run::<NginxInstall>(&input, &facts).unwrap().changes_nothing);
    insta::assert_snapshot!(check_plan::<NginxInstall>(&input, &facts));
}

#[test]
fn installing_again_keeps_a_site_as_the_default_and_changes_nothing() {
    let input = NginxInstallInput::default();
    let mut server = Server::provisioned(input);
    // The site example.com is the default: the catch-all is disabled.
    server.links = stat_missing(LINKS);
    server.default_servers = ProbeOutput::success("/etc/nginx/sites-enabled/example.com.conf\n");
    let facts = server.facts();
    assert_eq!(
        facts.site_default_servers,
        ["/etc/nginx/sites-enabled/example.com.conf"]
    );
    assert!(dry_run::<NginxInstall>(&input, &facts).unwrap().changes_nothing);
    let plan = check_plan::<NginxInstall>(&input, &facts);
    assert!(!plan.contains("ln -sfn"), "{plan}");
    assert!(plan.contains(r#""default_site":"site""#), "{plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn installing_again_disables_the_catch_all_next_to_a_default_site() {
    let input = NginxInstallInput::default();
    let mut server = Server::provisioned(input);
    server.default_servers = ProbeOutput::success(
        "/etc/nginx/sites-enabled/brokeforge-default\n/etc/nginx/sites-enabled/example.com.conf\n",
    );
    let plan = check_plan::<NginxInstall>(&input, &server.facts());
    assert!(
        plan.contains("root$ rm -f -- /etc/nginx/sites-enabled/brokeforge-default\n"),
        "{plan}"
    );
    assert!(plan.contains("nginx -t && systemctl reload-or-restart nginx"), "{plan}");
}

#[test]
fn the_default_server_probe_reads_enabled_server_blocks() {
    let dir = common::sandbox::TempDir::new("default-servers");
    let enabled = dir.path().join("sites-enabled");
    let available = dir.path().join("sites-available");
    std::fs::create_dir_all(&enabled).unwrap();
    std::fs::create_dir_all(&available).unwrap();
    for (name, text) in [
        ("brokeforge-default", "server {\n    listen 80 default_server;\n}\n"),
        ("site.conf", "server {\n\tlisten [::]:80   default_server;\n}\n"),
        (
            "other.conf",
            "server {\n    listen 80;\n    # listen 80 default_server;\n}\n",
        ),
        ("disabled.conf", "server {\n    listen 80 default_server;\n}\n"),
    ] {
        std::fs::write(available.join(name), text).unwrap();
        if name != "disabled.conf" {
            std::os::unix::fs::symlink(available.join(name), enabled.join(name)).unwrap();
        }
    }
    std::os::unix::fs::symlink(available.join("gone.conf"), enabled.join("dangling.conf")).unwrap();
    let cmd = brokeforge_packages::nginx::default_servers_cmd()
        .render_for_execution()
        .replace("/etc/nginx/sites-enabled", enabled.to_str().unwrap());
    let output = std::process::Command::new("bash").arg("-c").arg(&cmd).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut found: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.rsplit('/').next().unwrap().to_owned())
        .collect();
    found.sort();
    assert_eq!(found, ["brokeforge-default", "site.conf"]);
}

#[test]
fn install_over_the_distribution_configuration_keeps_a_copy_and_tests_before_reloading() {
    let input = NginxInstallInput::new(256).unwrap();
    let mut server = Server::provisioned(NginxInstallInput::default());
    server.main_config = ProbeOutput::success("user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n");
    server.links = ProbeOutput::success(
        "/etc/nginx/sites-enabled/default symbolic link\n/etc/nginx/sites-enabled/brokeforge-default symbolic link\n",
    );
    let plan = check_plan::<NginxInstall>(&input, &server.facts());
    assert!(plan.contains("nginx -t && systemctl reload-or-restart nginx"), "{plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn install_with_apache_in_the_way_is_refused() {
    let mut server = Server::fresh("debian-12");
    server.packages = ProbeOutput::new(
        1,
        "apache2 2.4.62-1~deb12u2 install ok installed\n",
        "dpkg-query: no packages found matching nginx*\ndpkg-query: no packages found matching libnginx-mod-*\n",
    );
    let refusal = NginxInstall::plan(&NginxInstallInput::default(), &server.facts()).unwrap_err();
    insta::assert_snapshot!(refusal, @"apache2 is installed on this server and would keep port 80 from nginx; BrokeForge does not remove another web server. Remove it (apt-get purge apache2) and try again");
}

#[test]
fn install_on_an_unsupported_release_is_refused() {
    let refusal = NginxInstall::plan(&NginxInstallInput::default(), &Server::fresh("rocky-9").facts()).unwrap_err();
    assert!(
        refusal
            .to_string()
            .starts_with("unsupported operating system: this server runs Rocky Linux 9.4")
    );
}

#[test]
fn remove_when_present() {
    let mut server = Server::provisioned(NginxInstallInput::default());
    server.links = ProbeOutput::success(
        "/etc/nginx/sites-enabled/brokeforge-default symbolic link\n/etc/nginx/nginx.conf.before-brokeforge regular file\n",
    );
    insta::assert_snapshot!(check_plan::<NginxRemove>(&(), &server.facts()));
}

#[test]
fn remove_when_absent_changes_nothing() {
    let facts = Server::fresh("debian-12").facts();
    assert!(dry_run::<NginxRemove>(&(), &facts).unwrap().changes_nothing);
    insta::assert_snapshot!(check_plan::<NginxRemove>(&(), &facts));
}

#[test]
fn configuration_files_as_rendered() {
    let main = render(
        Template::NginxConf,
        &serde_json::json!({ "client_max_body_size_mb": 100 }),
    )
    .unwrap();
    insta::assert_snapshot!("nginx_conf", String::from_utf8(main).unwrap());
    let site = render(
        Template::NginxDefaultSite,
        &serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": true }),
    )
    .unwrap();
    insta::assert_snapshot!("default_site", String::from_utf8(site).unwrap());
}
