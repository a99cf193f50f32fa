//! Accounts: creating users with Argon2id password hashes, and checking passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use brokeforge_core::Secret;
use brokeforge_db::users::{self, NewUser, UserRecord};
use brokeforge_db::{Db, DbError};

/// The shortest password accepted.
pub const MIN_PASSWORD_LENGTH: usize = 12;

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email: {0}")]
    InvalidEmail(String),
    #[error("password: must be at least {MIN_PASSWORD_LENGTH} characters")]
    PasswordTooShort,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A syntactically valid email address, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates an address: one `@`, a non-empty local part, a dotted domain, no
    /// spaces or control characters, at most 254 characters.
    pub fn parse(text: &str) -> Result<Email, AccountError> {
        let text = text.trim();
        let invalid = |reason: &str| AccountError::InvalidEmail(reason.to_owned());
        if text.is_empty() {
            return Err(invalid("is required"));
        }
        if text.len() > 254 {
            return Err(invalid("is longer than 254 characters"));
        }
        if text
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = text.split_once('@') else {
            return Err(invalid("must contain @"));
        };
        if local.is_empty() || domain.contains('@') {
            return Err(invalid("must look like name@example.com"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(invalid("must have a domain like example.com after @"));
        }
        Ok(Email(text.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &Secret<String>) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| AccountError::Hashing(error.to_string()))
}

/// Checks a password against a stored PHC hash in constant time.
pub fn verify_password(password: &Secret<String>, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.expose().as_bytes(), hash)
        .is_ok()
}

/// Generates a random 24-character password from an unambiguous alphabet.
pub fn generate_password() -> Secret<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = zeroize::Zeroizing::new([0u8; 24]);
    getrandom::fill(bytes.as_mut()).expect("the system random generator works");
    // 256 is not a multiple of 56, so reject the top bytes to keep the choice uniform.
    let mut password = String::with_capacity(24);
    let mut extra = [0u8; 1];
    for &byte in bytes.iter() {
        let mut value = byte;
        while usize::from(value) >= 256 - 256 % ALPHABET.len() {
            getrandom::fill(&mut extra).expect("the system random generator works");
            value = extra[0];
        }
        password.push(char::from(ALPHABET[usize::from(value) % ALPHABET.len()]));
    }
    Secret::new(password)
}

/// What a new user is made of.
pub struct CreateUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a Secret<String>,
    pub is_admin: bool,
}

/// Validates and creates a user. Nothing is written when any field is invalid.
pub async fn create_user(db: &Db, request: CreateUser<'_>) -> Result<UserRecord, AccountError> {
    let email = Email::parse(request.email)?;
    if request.password.expose().chars().count() < MIN_PASSWORD_LENGTH {
        return Err(AccountError::PasswordTooShort);
    }
    let password_hash = hash_password(request.password)?;
    let name = request.name.trim();
    Ok(users::insert(
        db,
        &NewUser {
            email: email.as_str(),
            name,
            password_hash: &password_hash,
            is_admin: request.is_admin,
        },
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_lowercased() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@.example.com",
            "ada@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let password = Secret::from("correct horse battery staple");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Secret::from("wrong horse battery staple"), &hash));
        assert!(!verify_password(&password, "not a hash"));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let first = generate_password();
        let second = generate_password();
        assert_eq!(first.expose().len(), 24);
        assert_ne!(first.expose(), second.expose());
        assert!(
            first
                .expose()
                .chars()
                .all(|character| character.is_ascii_alphanumeric())
        );
    }
}
