//! WordPress's settings and its `wp-config.php`, rendered from
//! `templates/site/wp-config.php.j2`.
//!
//! The database's name, user and host and the table prefix are validated values; the
//! database password and the eight authentication keys and salts are secrets
//! ([`DatabasePassword`], [`WordPressSalts`]): they print as `***`, refuse to serialize
//! (so no job payload can hold them) and the rendered file is secret bytes.
//!
//! Every value reaches the file as a PHP single-quoted string through
//! [`php_single_quoted`] (the template's `php_string` filter), which escapes `\` and
//! `'`, the only two characters such a string treats specially; a test runs `php -l`
//! on files rendered from hostile values. The control plane generates the salts from
//! [`SALT_ALPHABET`], which holds neither character anyway.

use std::fmt;
use std::str::FromStr;

use brokeforge_core::{Secret, ShellArg};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::templates::{self, Template, TemplateError};

use super::layout::SiteLayout;

/// `text` as a PHP single-quoted string literal, quotes included: `\` becomes `\\` and
/// `'` becomes `\'`; nothing else in such a literal is special (no `$` expansion, no
/// other escapes), so the literal's value is `text` exactly.
pub fn php_single_quoted(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('\'');
    for character in text.chars() {
        if matches!(character, '\\' | '\'') {
            literal.push('\\');
        }
        literal.push(character);
    }
    literal.push('\'');
    literal
}

/// Implements display, parsing and serde through validation for a text type whose
/// `validate` returns `Result<Self, E>`.
macro_rules! wordpress_text {
    ($value_type:ident, $error_type:ty) => {
        impl $value_type {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $value_type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $value_type {
            type Err = $error_type;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::validate(input)
            }
        }

        impl Serialize for $value_type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $value_type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::validate(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn all_of(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

/// Where WordPress is downloaded from: an `https://` (or `http://`) URL of a `.tar.gz`
/// whose top directory holds WordPress, as `https://wordpress.org/latest.tar.gz`
/// does. Its SHA-1 checksum is read from the same URL with `.sha1` appended, as
/// wordpress.org publishes it. Printable ASCII without spaces, quotes, `?` or `#`, at
/// most 2000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadUrl(String);

/// Why a text is not a [`DownloadUrl`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "a download URL starts with https:// (or http://), names a host and a .tar.gz file, and holds no spaces, \
     quotes, ? or #, such as https://wordpress.org/latest.tar.gz"
)]
pub struct DownloadUrlError;

impl DownloadUrl {
    /// WordPress's own download of its latest release.
    pub const WORDPRESS_ORG: &'static str = "https://wordpress.org/latest.tar.gz";

    /// The URL of [`DownloadUrl::WORDPRESS_ORG`].
    pub fn wordpress_org() -> Self {
        DownloadUrl(Self::WORDPRESS_ORG.to_owned())
    }

    /// The URL of the download's SHA-1 checksum: this URL with `.sha1` appended.
    pub fn checksum_url(&self) -> String {
        format!("{}.sha1", self.0)
    }

    fn validate(input: &str) -> Result<Self, DownloadUrlError> {
        let rest = input
            .strip_prefix("https://")
            .or_else(|| input.strip_prefix("http://"))
            .ok_or(DownloadUrlError)?;
        let host = rest.split('/').next().unwrap_or_default();
        let printable = input
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '\'' | '"' | '\\' | '`' | '?' | '#'));
        if input.len() > 2000 || host.is_empty() || !printable || !rest.contains('/') {
            return Err(DownloadUrlError);
        }
        Ok(DownloadUrl(input.to_owned()))
    }
}

wordpress_text!(DownloadUrl, DownloadUrlError);

impl Default for DownloadUrl {
    fn default() -> Self {
        DownloadUrl::wordpress_org()
    }
}

impl From<&DownloadUrl> for ShellArg {
    fn from(url: &DownloadUrl) -> ShellArg {
        ShellArg::new(url.0.as_str()).expect("a validated URL holds no NUL byte")
    }
}

/// The name of WordPress's database: letters, digits, `_`, `$` and `-`, at most 64
/// characters (MySQL's limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseName(String);

/// Why a text is not a [`DatabaseName`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a database name is 1 to 64 letters, digits, _, $ or -")]
pub struct DatabaseNameError;

impl DatabaseName {
    fn validate(input: &str) -> Result<Self, DatabaseNameError> {
        if input.len() > 64 || !all_of(input, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-')) {
            return Err(DatabaseNameError);
        }
        Ok(DatabaseName(input.to_owned()))
    }
}

wordpress_text!(DatabaseName, DatabaseNameError);

/// The database user WordPress logs in as: letters, digits, `_`, `.`, `$` and `-`, at
/// most 80 characters (MariaDB's limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseUser(String);

/// Why a text is not a [`DatabaseUser`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a database user is 1 to 80 letters, digits, _, ., $ or -")]
pub struct DatabaseUserError;

impl DatabaseUser {
    fn validate(input: &str) -> Result<Self, DatabaseUserError> {
        if input.len() > 80
            || !all_of(input, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '-')
            })
        {
            return Err(DatabaseUserError);
        }
        Ok(DatabaseUser(input.to_owned()))
    }
}

wordpress_text!(DatabaseUser, DatabaseUserError);

/// Where the database listens, as WordPress's `DB_HOST` takes it: a host name or
/// address with an optional port or socket path, such as `localhost`,
/// `db.internal:3306`, `[::1]:3306` or `localhost:/run/mysqld/mysqld.sock`. Letters,
/// digits and `._-:/[]`, at most 255 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseHost(String);

/// Why a text is not a [`DatabaseHost`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "a database host is a host name or address with an optional :port or :/socket/path, such as localhost or \
     db.internal:3306"
)]
pub struct DatabaseHostError;

impl DatabaseHost {
    /// `localhost`: the database server on the same machine, through its socket.
    pub fn localhost() -> Self {
        DatabaseHost("localhost".to_owned())
    }

    fn validate(input: &str) -> Result<Self, DatabaseHostError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '[' | ']');
        if input.len() > 255 || !all_of(input, allowed) || input.starts_with([':', '/']) {
            return Err(DatabaseHostError);
        }
        Ok(DatabaseHost(input.to_owned()))
    }
}

wordpress_text!(DatabaseHost, DatabaseHostError);

impl Default for DatabaseHost {
    fn default() -> Self {
        DatabaseHost::localhost()
    }
}

/// The prefix of WordPress's table names: letters, digits and `_`, at most 32
/// characters; `wp_` by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePrefix(String);

/// Why a text is not a [`TablePrefix`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a table prefix is 1 to 32 letters, digits or _, such as wp_")]
pub struct TablePrefixError;

impl TablePrefix {
    fn validate(input: &str) -> Result<Self, TablePrefixError> {
        if input.len() > 32 || !all_of(input, |c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TablePrefixError);
        }
        Ok(TablePrefix(input.to_owned()))
    }
}

wordpress_text!(TablePrefix, TablePrefixError);

impl Default for TablePrefix {
    fn default() -> Self {
        TablePrefix("wp_".to_owned())
    }
}

/// The database WordPress uses, without its password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordPressDatabase {
    pub name: DatabaseName,
    pub user: DatabaseUser,
    #[serde(default)]
    pub host: DatabaseHost,
    #[serde(default)]
    pub table_prefix: TablePrefix,
}

/// The database user's password: 1 to 256 characters without control characters.
/// Secret: Debug prints `***` and serializing fails.
#[derive(Clone)]
pub struct DatabasePassword(Secret<String>);

/// Why a text is not a [`DatabasePassword`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("a database password is 1 to 256 characters without line breaks or other control characters")]
pub struct DatabasePasswordError;

impl DatabasePassword {
    /// Checks and wraps `password`.
    pub fn new(password: Secret<String>) -> Result<Self, DatabasePasswordError> {
        let text = password.expose();
        if text.is_empty() || text.chars().count() > 256 || text.chars().any(char::is_control) {
            return Err(DatabasePasswordError);
        }
        Ok(DatabasePassword(password))
    }

    /// The secret password.
    pub fn secret(&self) -> &Secret<String> {
        &self.0
    }
}

impl fmt::Debug for DatabasePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabasePassword({:?})", self.0)
    }
}

impl PartialEq for DatabasePassword {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}

impl Eq for DatabasePassword {}

/// The characters of generated keys and salts: printable ASCII without `'` and `\`, so
/// a value is the same inside a PHP single-quoted string even before escaping.
pub const SALT_ALPHABET: &[u8] =
    b"!\"#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// The length of each generated key and salt, as WordPress's own generator makes them.
pub const SALT_LENGTH: usize = 64;

/// The names of WordPress's authentication keys and salts, in `wp-config.php`'s order.
pub const SALT_NAMES: [&str; 8] = [
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
];

/// WordPress's eight authentication keys and salts, in the order of [`SALT_NAMES`]:
/// each [`SALT_LENGTH`] characters of [`SALT_ALPHABET`]. Secret like the password.
#[derive(Clone)]
pub struct WordPressSalts(Secret<Vec<String>>);

/// Why values are not [`WordPressSalts`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("WordPress needs 8 keys and salts of 64 characters each, from the salt alphabet")]
pub struct WordPressSaltsError;

impl WordPressSalts {
    /// Checks eight generated values.
    pub fn new(values: Secret<Vec<String>>) -> Result<Self, WordPressSaltsError> {
        let valid = values.expose().len() == SALT_NAMES.len()
            && values
                .expose()
                .iter()
                .all(|value| value.len() == SALT_LENGTH && value.bytes().all(|byte| SALT_ALPHABET.contains(&byte)));
        if !valid {
            return Err(WordPressSaltsError);
        }
        Ok(WordPressSalts(values))
    }

    /// The secret values, in the order of [`SALT_NAMES`].
    pub fn secret(&self) -> &Secret<Vec<String>> {
        &self.0
    }
}

impl fmt::Debug for WordPressSalts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WordPressSalts({:?})", self.0)
    }
}

impl PartialEq for WordPressSalts {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}

impl Eq for WordPressSalts {}

/// One `define()` of a key or salt, for the template.
#[derive(Serialize)]
struct Salt<'a> {
    name: &'static str,
    value: &'a str,
}

/// The template context of [`Template::WordPressConfig`].
#[derive(Serialize)]
struct ConfigContext<'a> {
    db_name: &'a str,
    db_user: &'a str,
    db_password: &'a str,
    db_host: &'a str,
    table_prefix: &'a str,
    salts: Vec<Salt<'a>>,
    abspath: String,
}

/// The `wp-config.php` of the site at `layout`, as secret bytes. When WordPress did not
/// define `ABSPATH` before reading the file (its own `wp-load.php` does), it points at
/// the live release, `<site>/current/`.
pub fn render_wp_config(
    layout: &SiteLayout,
    database: &WordPressDatabase,
    password: &DatabasePassword,
    salts: &WordPressSalts,
) -> Result<Secret<Vec<u8>>, TemplateError> {
    let context = ConfigContext {
        db_name: database.name.as_str(),
        db_user: database.user.as_str(),
        db_password: password.secret().expose(),
        db_host: database.host.as_str(),
        table_prefix: database.table_prefix.as_str(),
        salts: SALT_NAMES
            .iter()
            .zip(salts.secret().expose())
            .map(|(name, value)| Salt { name, value })
            .collect(),
        abspath: format!("{}/", layout.current()),
    };
    Ok(Secret::new(templates::render(Template::WordPressConfig, &context)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_literals_escape_backslashes_and_quotes_only() {
        assert_eq!(php_single_quoted("plain"), "'plain'");
        assert_eq!(php_single_quoted(""), "''");
        assert_eq!(php_single_quoted("it's"), r"'it\'s'");
        assert_eq!(php_single_quoted(r"C:\path\"), r"'C:\\path\\'");
        assert_eq!(php_single_quoted(r"\'"), r"'\\\''");
        assert_eq!(php_single_quoted("$x ?> \" {$y}"), "'$x ?> \" {$y}'");
        assert_eq!(php_single_quoted("é"), "'é'");
    }

    #[test]
    fn values_are_checked() {
        for good in [
            "https://wordpress.org/latest.tar.gz",
            "http://127.0.0.1:8080/wordpress.tar.gz",
        ] {
            assert_eq!(good.parse::<DownloadUrl>().unwrap().as_str(), good);
        }
        for bad in [
            "ftp://wordpress.org/latest.tar.gz",
            "https://",
            "https://wordpress.org",
            "https:///latest.tar.gz",
            "https://wordpress.org/latest.tar.gz?x=1",
            "https://wordpress.org/a b.tar.gz",
            "https://wordpress.org/'.tar.gz",
            "-o/etc/passwd",
        ] {
            assert!(bad.parse::<DownloadUrl>().is_err(), "{bad}");
        }
        assert_eq!(
            DownloadUrl::wordpress_org().checksum_url(),
            "https://wordpress.org/latest.tar.gz.sha1"
        );
        assert!("wp_site-1$".parse::<DatabaseName>().is_ok());
        assert!("a'b".parse::<DatabaseName>().is_err() && "".parse::<DatabaseName>().is_err());
        assert!("x".repeat(65).parse::<DatabaseName>().is_err());
        assert!("shop.user".parse::<DatabaseUser>().is_ok() && "a b".parse::<DatabaseUser>().is_err());
        for good in [
            "localhost",
            "db.internal:3306",
            "[::1]:3306",
            "localhost:/run/mysqld/mysqld.sock",
        ] {
            assert!(good.parse::<DatabaseHost>().is_ok(), "{good}");
        }
        for bad in ["", ":3306", "host;rm", "a'b", "/run/socket"] {
            assert!(bad.parse::<DatabaseHost>().is_err(), "{bad}");
        }
        assert_eq!(TablePrefix::default().as_str(), "wp_");
        assert!("Shop_2".parse::<TablePrefix>().is_ok());
        for bad in ["", "wp-", "wp_;", "wp prefix", "é_"] {
            assert!(bad.parse::<TablePrefix>().is_err(), "{bad}");
        }
        assert!(DatabasePassword::new(Secret::new("it's \\ \"$x\"".to_owned())).is_ok());
        for bad in ["", "line\nbreak", "nul\0"] {
            assert!(DatabasePassword::new(Secret::new(bad.to_owned())).is_err(), "{bad:?}");
        }
        assert!(DatabasePassword::new(Secret::new("x".repeat(257))).is_err());
        let password = DatabasePassword::new(Secret::new("hunter2".to_owned())).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn the_salt_alphabet_is_safe_in_php_strings() {
        assert_eq!(SALT_ALPHABET.len(), 92);
        assert!(!SALT_ALPHABET.contains(&b'\'') && !SALT_ALPHABET.contains(&b'\\'));
        assert!(SALT_ALPHABET.iter().all(|byte| byte.is_ascii_graphic()));
        let mut sorted = SALT_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), SALT_ALPHABET.len(), "no character twice");
        let good = vec!["A".repeat(64); 8];
        assert!(WordPressSalts::new(Secret::new(good.clone())).is_ok());
        let mut quoted = good.clone();
        quoted[3] = format!("'{}", "A".repeat(63));
        assert!(WordPressSalts::new(Secret::new(quoted)).is_err());
        assert!(WordPressSalts::new(Secret::new(good[..7].to_vec())).is_err());
    }
}
