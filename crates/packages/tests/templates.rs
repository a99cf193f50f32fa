//! Template rendering: every template parses, renders its documented context, and a
//! missing variable is an error rather than an empty string.

use brokeforge_packages::{Template, TemplateError, render};
use serde::Serialize;

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

#[test]
fn rendered_files_end_with_a_newline() {
    #[derive(Serialize)]
    struct Context {
        ntp_servers: Vec<&'static str>,
    }
    for template in Template::ALL {
        let rendered = render(
            *template,
            &Context {
                ntp_servers: vec!["time.example.com"],
            },
        )
        .unwrap();
        assert_eq!(rendered.last(), Some(&b'\n'), "{}", template.name());
    }
}
