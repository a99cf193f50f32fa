//! Template rendering: every template parses, renders its documented context, and a
//! missing variable is an error rather than an empty string.

use brokeforge_packages::{Template, TemplateError, render};

#[test]
fn the_timesyncd_configuration_renders_the_servers_in_order() {
    let rendered = render(
        Template::TimesyncdConfig,
        &serde_json::json!({ "ntp_servers": ["time.cloudflare.com", "0.debian.pool.ntp.org"] }),
    )
    .unwrap();
    insta::assert_snapshot!(String::from_utf8(rendered).unwrap(), @r"
    # Written by BrokeForge: the next time-sync installation replaces this file.
    # systemd-timesyncd reads it after /etc/systemd/timesyncd.conf.
    [Time]
    NTP=time.cloudflare.com 0.debian.pool.ntp.org
    ");
}

#[test]
fn a_missing_variable_is_an_error_not_an_empty_string() {
    let error = render(Template::TimesyncdConfig, &serde_json::json!({})).unwrap_err();
    assert!(matches!(error, TemplateError::Render { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("template timesyncd/brokeforge.conf.j2 did not render: undefined value"),
        "{message}"
    );
}

#[test]
fn values_are_not_html_escaped() {
    let rendered = render(
        Template::TimesyncdConfig,
        &serde_json::json!({ "ntp_servers": ["a&b<c>\"d'"] }),
    )
    .unwrap();
    let text = String::from_utf8(rendered).unwrap();
    assert!(text.contains("NTP=a&b<c>\"d'\n"), "{text}");
}

/// A context with every variable `template` documents.
fn example_context(template: Template) -> serde_json::Value {
    match template {
        Template::TimesyncdConfig => serde_json::json!({ "ntp_servers": ["time.example.com"] }),
        Template::AptRepositorySources => serde_json::json!({
            "description": "PHP packages", "uri": "https://packages.sury.org/php/", "suite": "bookworm",
            "component": "main", "keyring": "/etc/apt/keyrings/brokeforge-php.gpg",
        }),
        Template::PhpFpmIni => serde_json::json!({
            "version": "8.3", "memory_limit_mb": 256, "upload_max_filesize_mb": 100, "post_max_size_mb": 100,
            "max_execution_time": 300,
        }),
        Template::NginxConf => serde_json::json!({ "client_max_body_size_mb": 100 }),
        Template::NginxDefaultSite => {
            serde_json::json!({ "page_root": "/var/www/brokeforge-default", "reject_tls_handshakes": true })
        }
        Template::NginxDefaultPage => serde_json::json!({}),
        Template::BootstrapScript => {
            let steps: serde_json::Map<String, serde_json::Value> =
                ["started", "prerequisites", "user", "keys", "sshd", "report"]
                    .iter()
                    .map(|step| ((*step).to_owned(), serde_json::json!({ "key": step, "label": step })))
                    .collect();
            serde_json::json!({
                "progress_url": "https://example.com/p", "completion_url": "https://example.com/c", "ssh_port": 22,
                "root_public_key": "ssh-ed25519 AAAA root", "root_key_material": "ssh-ed25519 AAAA",
                "brokeforge_public_key": "ssh-ed25519 BBBB app", "brokeforge_key_material": "ssh-ed25519 BBBB",
                "app_user": "brokeforge", "app_home": "/home/brokeforge", "sudoers_file": "/etc/sudoers.d/brokeforge",
                "sudoers_lines": ["# rules"], "sshd_drop_in": "/etc/ssh/sshd_config.d/00-brokeforge.conf",
                "sshd_lines": ["PasswordAuthentication no"], "deploy_key": "/home/brokeforge/.ssh/id_ed25519",
                "supported_os": ["debian:12"], "supported_os_text": "Debian 12", "steps": steps,
            })
        }
        Template::SiteVhost => serde_json::json!({
            "domain": "example.com", "site_type": "laravel", "site_root": "/home/brokeforge/example.com",
            "server_names": ["example.com", "www.example.com"], "web_root": "/home/brokeforge/example.com/current/public",
            "index": "index.php index.html", "access_log": "/var/log/nginx/example.com-access.log",
            "error_log": "/var/log/nginx/example.com-error.log", "socket": "/run/php/php8.3-fpm-example.com.sock",
            "default_server": false,
        }),
        Template::SitePhpFpmPool => serde_json::json!({
            "domain": "example.com", "version": "8.3", "pool": "example.com", "user": "brokeforge",
            "socket": "/run/php/php8.3-fpm-example.com.sock", "max_children": 10,
        }),
        Template::WordPressConfig => serde_json::json!({
            "db_name": "shop", "db_user": "shop", "db_password": "secret", "db_host": "localhost",
            "table_prefix": "wp_", "salts": [{ "name": "AUTH_KEY", "value": "x" }],
            "abspath": "/home/brokeforge/example.com/current/",
        }),
    }
}

#[test]
fn rendered_files_end_with_a_newline() {
    for template in Template::ALL {
        let rendered = render(*template, &example_context(*template)).unwrap();
        assert_eq!(rendered.last(), Some(&b'\n'), "{}", template.name());
    }
}

#[test]
fn every_template_refuses_a_context_without_its_variables() {
    for template in Template::ALL {
        if *template == Template::NginxDefaultPage {
            continue;
        }
        let error = render(*template, &serde_json::json!({})).unwrap_err();
        assert!(
            matches!(error, TemplateError::Render { .. }),
            "{}: {error:?}",
            template.name()
        );
    }
}

#[test]
fn the_repository_sources_file_names_its_keyring() {
    let rendered = render(
        Template::AptRepositorySources,
        &example_context(Template::AptRepositorySources),
    )
    .unwrap();
    insta::assert_snapshot!(String::from_utf8(rendered).unwrap(), @r"
    # Written by BrokeForge: PHP packages.
    # BrokeForge rewrites this file when it installs a package that needs this repository.
    Types: deb
    URIs: https://packages.sury.org/php/
    Suites: bookworm
    Components: main
    Signed-By: /etc/apt/keyrings/brokeforge-php.gpg
    ");
}

#[test]
fn every_value_of_wp_config_is_a_php_string_and_nothing_else_is_taken() {
    let source = Template::WordPressConfig.source();
    let mut expressions = 0;
    for (index, _) in source.match_indices("{{") {
        let end = source[index..].find("}}").unwrap() + index;
        let expression = source[index + 2..end].trim();
        assert!(expression.ends_with("| php_string"), "unfiltered: {expression}");
        expressions += 1;
    }
    assert!(expressions >= 7);
    let mut context = example_context(Template::WordPressConfig);
    context["db_password"] = serde_json::json!(r"it's \ $x");
    let text = String::from_utf8(render(Template::WordPressConfig, &context).unwrap()).unwrap();
    assert!(text.contains(r"define( 'DB_PASSWORD', 'it\'s \\ $x' );"), "{text}");
    for value in [serde_json::json!(3), serde_json::json!(["a"]), serde_json::json!(null)] {
        let mut context = example_context(Template::WordPressConfig);
        context["db_name"] = value.clone();
        let error = render(Template::WordPressConfig, &context).unwrap_err();
        assert!(matches!(error, TemplateError::Render { .. }), "{value}: {error:?}");
    }
}

#[test]
fn shell_quote_quotes_text_and_numbers_and_refuses_the_rest() {
    let mut context = example_context(Template::BootstrapScript);
    context["root_public_key"] = serde_json::json!("it's $(reboot) `id`");
    let script = String::from_utf8(render(Template::BootstrapScript, &context).unwrap()).unwrap();
    assert!(
        script.contains(r"readonly ROOT_PUBLIC_KEY=it\'s' $(reboot) `id`'"),
        "{script}"
    );
    assert!(script.contains("readonly SSH_PORT=22\n"));
    for (key, value) in [
        ("root_public_key", serde_json::json!(["a", "list"])),
        ("root_public_key", serde_json::json!(null)),
        ("root_public_key", serde_json::json!({ "a": 1 })),
        ("root_public_key", serde_json::json!("nul\u{0}byte")),
    ] {
        let mut context = example_context(Template::BootstrapScript);
        context[key] = value.clone();
        let error = render(Template::BootstrapScript, &context).unwrap_err();
        assert!(matches!(error, TemplateError::Render { .. }), "{value}: {error:?}");
    }
}
