//! Proves that `Cmd` quoting holds against real shells: every hostile value reaches the
//! program as exactly one argument (or one environment value), byte for byte, under
//! `/bin/sh` (dash on Debian) and `bash`, in the C and UTF-8 locales. Only this test
//! runs processes; the crate itself never does.

use std::process::Command;

use brokeforge_core::{Cmd, CmdError, Secret, ShellArg};
use proptest::prelude::*;

/// The shells a remote command may meet: root's login shell and `/bin/sh`.
const SHELLS: [&str; 2] = ["/bin/sh", "/bin/bash"];

/// Locales change how some shells read bytes above 0x7f.
const LOCALES: [&str; 2] = ["C", "C.UTF-8"];

/// Shell syntax and other troublemakers that generated values are made of.
const HOSTILE_PIECES: &[&str] = &[
    "'",
    "\"",
    "\\",
    "`",
    "$",
    "$(",
    ")",
    "${",
    "}",
    "$(id)",
    "`id`",
    ";",
    "&",
    "&&",
    "|",
    "||",
    "\n",
    "\r",
    "\t",
    " ",
    "*",
    "?",
    "[a]",
    "[",
    "]",
    "~",
    "~root",
    "#",
    "!",
    "!!",
    "<",
    ">",
    ">>",
    "2>&1",
    "(",
    "{",
    "=",
    "%",
    "^",
    "-",
    "--",
    "-n",
    "-e",
    "--help",
    "é",
    "ü",
    "日本",
    "🦀",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{a0}",
    "\u{202e}",
    "\u{feff}",
    "\u{7}",
    "\u{8}",
    "x",
    "a b",
    "IFS",
    "\\n",
    "%s",
    "\\0",
    "'\\''",
    "\"'\"",
];

/// Runs `script` with `shell -c` in a clean environment and returns its stdout.
fn run(shell: &str, locale: &str, script: &str) -> Vec<u8> {
    let output = Command::new(shell)
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", locale)
        .output()
        .unwrap_or_else(|error| panic!("cannot start {shell}: {error}"));
    assert!(
        output.status.success(),
        "{shell} ({locale}) failed on {script:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `cmd` under every shell and locale and checks that it prints `expected`.
fn check_output(cmd: &Cmd, expected: &[u8]) {
    let script = cmd.render_for_execution();
    for shell in SHELLS {
        for locale in LOCALES {
            let printed = run(shell, locale, &script);
            assert!(
                printed == expected,
                "{shell} ({locale}) mangled the values.\nscript:   {script:?}\nprinted:  {:?}\nexpected: {:?}",
                String::from_utf8_lossy(&printed),
                String::from_utf8_lossy(expected),
            );
        }
    }
}

/// The bytes `printf '%s\0' VALUE...` prints when every value arrives intact.
fn nul_separated(values: &[String]) -> Vec<u8> {
    values.iter().flat_map(|value| value.bytes().chain([0])).collect()
}

/// Passes `values` as plain arguments, as secret arguments, inside an `&&` list that
/// feeds a pipeline, and the first value as a plain and a secret environment value, all
/// in one script, and checks that each arrives intact.
fn check_values(values: &[String]) {
    assert!(!values.is_empty(), "printf repeats its format when given no values");
    let mut plain = Cmd::new("printf").lit(r"'%s\0'");
    let mut secret = Cmd::new("printf").lit(r"'%s\0'");
    for value in values {
        plain = plain.try_arg(value).expect("values without NUL are accepted");
        secret = secret
            .secret_arg(&Secret::from(value.as_str()))
            .expect("values without NUL are accepted");
    }
    let first = values[0].as_str();
    let from_env = Cmd::new("printenv")
        .env("BROKEFORGE_VALUE", ShellArg::new(first).expect("no NUL"))
        .lit("BROKEFORGE_VALUE");
    let from_secret_env = Cmd::new("printenv")
        .secret_env("BROKEFORGE_VALUE", &Secret::from(first))
        .expect("no NUL")
        .lit("BROKEFORGE_VALUE");
    let script = plain
        .clone()
        .and(secret)
        .and(Cmd::new("true").and(plain).pipe(Cmd::new("cat")))
        .and(from_env)
        .and(from_secret_env);

    let arguments = nul_separated(values);
    let environment_value = format!("{first}\n").into_bytes();
    let expected = [
        arguments.as_slice(),
        &arguments,
        &arguments,
        &environment_value,
        &environment_value,
    ]
    .concat();
    check_output(&script, &expected);
}

#[test]
fn fixed_hostile_values_arrive_intact() {
    let mut values: Vec<String> = HOSTILE_PIECES.iter().map(|piece| (*piece).to_owned()).collect();
    values.extend(
        [
            "",
            "it's",
            "'; rm -rf / #",
            "$(touch /tmp/brokeforge-pwned)",
            "`touch /tmp/brokeforge-pwned`",
            "a && b || c | d; e & f",
            "line one\nline two\n",
            "trailing newline\n",
            "\n",
            "   leading and trailing spaces   ",
            "tab\there",
            "*.conf",
            "~/.ssh/authorized_keys",
            "# not a comment",
            "!history",
            "back\\slash\\",
            "-rf",
            "--output=/etc/passwd",
            "FOO=bar",
            "$'\\x41'",
            "\"$HOME\"",
            "${IFS}",
            "ünïcödé 日本語 🦀",
            "\u{1}\u{2}\u{3}\u{1f}",
            "é\u{301}",
            "\u{fffd}",
        ]
        .map(str::to_owned),
    );
    // Long values, sized so that the script (which holds each value five times) stays
    // below Linux's 128 KiB limit on one argv string.
    values.push(HOSTILE_PIECES.concat().repeat(60));
    values.push("x".repeat(16_000));
    for value in &values {
        check_values(std::slice::from_ref(value));
    }
    check_values(&values[..40]);
}

#[test]
fn nul_bytes_are_refused_with_a_typed_error() {
    for (value, position) in [("\0", 0), ("a\0b", 1), ("abc\0", 3), ("\0\0", 0)] {
        let expected = CmdError::NulByte { position };
        assert_eq!(ShellArg::new(value), Err(expected.clone()));
        assert_eq!(Cmd::new("printf").try_arg(value).unwrap_err(), expected);
        assert_eq!(
            Cmd::new("printf").secret_arg(&Secret::from(value)).unwrap_err(),
            expected
        );
    }
}

/// One value: free Unicode, a soup of hostile pieces, or arbitrary bytes read as UTF-8.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..48)
            .prop_map(|characters| characters.into_iter().filter(|c| *c != '\0').collect()),
        prop::collection::vec(prop::sample::select(HOSTILE_PIECES), 0..16).prop_map(|pieces| pieces.concat()),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', "")),
    ]
}

proptest! {
    #[test]
    fn generated_hostile_values_arrive_intact(values in prop::collection::vec(hostile_value(), 1..5)) {
        check_values(&values);
    }

    #[test]
    fn generated_values_with_nul_are_refused(
        before in "[^\0]{0,16}",
        after in ".{0,16}",
    ) {
        let value = format!("{before}\0{after}");
        let expected = CmdError::NulByte { position: before.len() };
        prop_assert_eq!(ShellArg::new(value.as_str()), Err(expected.clone()));
        prop_assert_eq!(Cmd::new("printf").try_arg(&value).unwrap_err(), expected);
    }
}
