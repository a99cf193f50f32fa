//! Server records: validation of what a user enters (name, provider, address, SSH
//! port, PHP version, database) into typed values, and the create, update and delete
//! use cases with their audit events. Loopback, private and link-local addresses are
//! refused unless the operator allowed them: BrokeForge must not be pointed at its
//! own host or its internal network by a tenant.

use std::net::IpAddr;

use brokeforge_core::{Domain, PhpVersion, Port};
use brokeforge_db::Db;
use brokeforge_db::servers::{self as server_table, ServerFields, ServerRecord};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldErrors};

/// Where a server is hosted; a label only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Custom,
    Hetzner,
    DigitalOcean,
    Aws,
    Linode,
    Vultr,
    Other,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::Custom,
        Provider::Hetzner,
        Provider::DigitalOcean,
        Provider::Aws,
        Provider::Linode,
        Provider::Vultr,
        Provider::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Custom => "custom",
            Provider::Hetzner => "hetzner",
            Provider::DigitalOcean => "digitalocean",
            Provider::Aws => "aws",
            Provider::Linode => "linode",
            Provider::Vultr => "vultr",
            Provider::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Custom => "Custom VPS",
            Provider::Hetzner => "Hetzner",
            Provider::DigitalOcean => "DigitalOcean",
            Provider::Aws => "AWS",
            Provider::Linode => "Linode",
            Provider::Vultr => "Vultr",
            Provider::Other => "Other",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|provider| provider.as_str() == text)
    }
}

/// The database server a server gets at provisioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseChoice {
    None,
    Mysql,
    Mariadb,
    Postgresql,
}

impl DatabaseChoice {
    pub const ALL: [DatabaseChoice; 4] = [
        DatabaseChoice::None,
        DatabaseChoice::Mysql,
        DatabaseChoice::Mariadb,
        DatabaseChoice::Postgresql,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseChoice::None => "none",
            DatabaseChoice::Mysql => "mysql",
            DatabaseChoice::Mariadb => "mariadb",
            DatabaseChoice::Postgresql => "postgresql",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DatabaseChoice::None => "No database",
            DatabaseChoice::Mysql => "MySQL",
            DatabaseChoice::Mariadb => "MariaDB",
            DatabaseChoice::Postgresql => "PostgreSQL",
        }
    }

    pub fn parse(text: &str) -> Option<DatabaseChoice> {
        DatabaseChoice::ALL.into_iter().find(|choice| choice.as_str() == text)
    }
}

/// A server's address: an IP address or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    Ip(IpAddr),
    Host(Domain),
}

impl ServerAddress {
    pub fn to_text(&self) -> String {
        match self {
            ServerAddress::Ip(ip) => ip.to_string(),
            ServerAddress::Host(domain) => domain.as_str().to_owned(),
        }
    }
}

/// What the operator allows for server addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressPolicy {
    /// Accept loopback, private and link-local addresses (for labs and tests).
    pub allow_private: bool,
}

/// True for addresses a tenant must not point BrokeForge at: loopback, private
/// (RFC 1918, unique-local), link-local, shared (CGNAT), unspecified, broadcast and
/// multicast, including IPv4 addresses mapped into IPv6.
pub fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_internal_address(IpAddr::V4(mapped));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Parses an address, refusing internal ones unless `policy` allows them.
pub fn parse_address(text: &str, policy: AddressPolicy) -> Result<ServerAddress, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the server's public IP address or host name.".to_owned());
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        if is_internal_address(ip) && !policy.allow_private {
            return Err(format!(
                "{ip} is a loopback, private or link-local address; enter the server's public address \
                 (the operator can allow internal addresses with --allow-private-addresses)."
            ));
        }
        return Ok(ServerAddress::Ip(ip));
    }
    let domain = Domain::try_from(text).map_err(|error| format!("Not an IP address or host name: {error}."))?;
    let name = domain.as_str();
    if (name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local") || name.ends_with(".internal"))
        && !policy.allow_private
    {
        return Err(format!(
            "{name} names this host or an internal network; enter the server's public address."
        ));
    }
    Ok(ServerAddress::Host(domain))
}

/// A server's fields as typed into a form or sent as JSON, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ServerInput {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub public_address: Option<String>,
    pub ssh_port: Option<serde_json::Value>,
    pub php_version: Option<String>,
    pub database: Option<String>,
}

/// A validated server.
#[derive(Debug, Clone)]
pub struct ValidServer {
    pub name: String,
    pub provider: Provider,
    pub address: ServerAddress,
    pub ssh_port: Port,
    pub php_version: PhpVersion,
    pub database: DatabaseChoice,
}

fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.trim().to_owned(),
        other => other.to_string(),
    }
}

impl ServerInput {
    /// Validates every field, collecting every error. On update, missing fields keep
    /// the values of `current`.
    pub fn validate(&self, policy: AddressPolicy, current: Option<&ValidServer>) -> Result<ValidServer, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = match (&self.name, current) {
            (Some(name), _) => {
                let name = name.trim();
                if name.is_empty() {
                    errors.add("name", "Give the server a name.");
                } else if name.chars().count() > 64 {
                    errors.add("name", "Use at most 64 characters.");
                } else if name.chars().any(char::is_control) {
                    errors.add("name", "Use printable characters only.");
                }
                name.to_owned()
            }
            (None, Some(current)) => current.name.clone(),
            (None, None) => {
                errors.add("name", "Give the server a name.");
                String::new()
            }
        };
        let provider = match (&self.provider, current) {
            (Some(text), _) => Provider::parse(text.trim()).unwrap_or_else(|| {
                errors.add(
                    "provider",
                    "Choose one of custom, hetzner, digitalocean, aws, linode, vultr, other.",
                );
                Provider::Custom
            }),
            (None, Some(current)) => current.provider,
            (None, None) => Provider::Custom,
        };
        let address = match (&self.public_address, current) {
            (Some(text), _) => parse_address(text, policy)
                .map_err(|message| errors.add("public_address", message))
                .ok(),
            (None, Some(current)) => Some(current.address.clone()),
            (None, None) => {
                errors.add("public_address", "Enter the server's public IP address or host name.");
                None
            }
        };
        let ssh_port = match (&self.ssh_port, current) {
            (Some(value), _) if !text_of(value).is_empty() && value != &serde_json::Value::Null => text_of(value)
                .parse::<Port>()
                .map_err(|error| errors.add("ssh_port", format!("{}.", capitalize(&error.to_string()))))
                .ok(),
            (_, Some(current)) => Some(current.ssh_port),
            (_, None) => Some(Port::new(22).expect("22 is a port")),
        };
        let php_version = match (&self.php_version, current) {
            (Some(text), _) => text
                .trim()
                .parse::<PhpVersion>()
                .map_err(|error| errors.add("php_version", format!("{}.", capitalize(&error.to_string()))))
                .ok(),
            (None, Some(current)) => Some(current.php_version),
            (None, None) => Some(PhpVersion::Php83),
        };
        let database = match (&self.database, current) {
            (Some(text), _) => DatabaseChoice::parse(text.trim()).unwrap_or_else(|| {
                errors.add("database", "Choose one of none, mysql, mariadb, postgresql.");
                DatabaseChoice::None
            }),
            (None, Some(current)) => current.database,
            (None, None) => DatabaseChoice::None,
        };
        match (address, ssh_port, php_version) {
            (Some(address), Some(ssh_port), Some(php_version)) if errors.is_empty() => Ok(ValidServer {
                name,
                provider,
                address,
                ssh_port,
                php_version,
                database,
            }),
            _ => Err(errors),
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// A stored server read back into typed values.
pub fn valid_from_record(record: &ServerRecord) -> ValidServer {
    let config = &record.provision_config.0;
    let text = |key: &str| config.get(key).and_then(|value| value.as_str()).unwrap_or("");
    ValidServer {
        name: record.name.clone(),
        provider: Provider::parse(&record.provider).unwrap_or(Provider::Other),
        address: parse_address(&record.public_ip, AddressPolicy { allow_private: true })
            .unwrap_or(ServerAddress::Ip(IpAddr::from([0, 0, 0, 0]))),
        ssh_port: Port::try_from(u16::try_from(record.ssh_port).unwrap_or(22))
            .unwrap_or_else(|_| Port::new(22).expect("22 is a port")),
        php_version: text("php_version").parse().unwrap_or(PhpVersion::Php83),
        database: DatabaseChoice::parse(text("database")).unwrap_or(DatabaseChoice::None),
    }
}

fn fields_of(server: &ValidServer, address: &str) -> serde_json::Value {
    let _ = address;
    json!({ "php_version": server.php_version.as_str(), "database": server.database.as_str() })
}

fn conflict_as_field(error: AppError) -> AppError {
    match error {
        AppError::Conflict(message) => AppError::Validation(FieldErrors::single(
            "public_address",
            format!("{}.", capitalize(&message)),
        )),
        other => other,
    }
}

/// Creates a server record for the caller.
pub async fn create(
    db: &Db,
    principal: &Principal,
    policy: AddressPolicy,
    input: &ServerInput,
) -> Result<ServerRecord, AppError> {
    principal.require(Scope::Write)?;
    let server = input.validate(policy, None).map_err(AppError::Validation)?;
    let address = server.address.to_text();
    let record = server_table::insert(
        db,
        principal.user_id,
        &ServerFields {
            name: &server.name,
            provider: server.provider.as_str(),
            public_ip: &address,
            ssh_port: i32::from(server.ssh_port.get()),
            provision_config: fields_of(&server, &address),
        },
    )
    .await
    .map_err(|error| conflict_as_field(error.into()))?;
    crate::audit::record(
        db,
        &principal.actor(),
        "server.created",
        Some(record.id),
        Some(&format!("server:{}", record.id)),
        &format!("Created server \"{}\" ({address}:{})", record.name, record.ssh_port),
    )
    .await;
    Ok(record)
}

/// One of the caller's servers; unknown ids and other users' servers are both "not found".
pub async fn get(db: &Db, principal: &Principal, server_id: i64) -> Result<ServerRecord, AppError> {
    principal.require(Scope::Read)?;
    server_table::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))
}

/// A page of the caller's servers.
pub async fn list(
    db: &Db,
    principal: &Principal,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ServerRecord>, AppError> {
    principal.require(Scope::Read)?;
    Ok(server_table::list_for_user(db, principal.user_id, after, limit).await?)
}

/// Changes one of the caller's servers; fields left out keep their values.
pub async fn update(
    db: &Db,
    principal: &Principal,
    policy: AddressPolicy,
    server_id: i64,
    input: &ServerInput,
) -> Result<ServerRecord, AppError> {
    principal.require(Scope::Write)?;
    let current = server_table::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    let server = input
        .validate(policy, Some(&valid_from_record(&current)))
        .map_err(AppError::Validation)?;
    let address = server.address.to_text();
    let record = server_table::update_owned(
        db,
        principal.user_id,
        server_id,
        &ServerFields {
            name: &server.name,
            provider: server.provider.as_str(),
            public_ip: &address,
            ssh_port: i32::from(server.ssh_port.get()),
            provision_config: fields_of(&server, &address),
        },
    )
    .await
    .map_err(|error| conflict_as_field(error.into()))?
    .ok_or(AppError::NotFound("server"))?;
    crate::audit::record(
        db,
        &principal.actor(),
        "server.updated",
        Some(record.id),
        Some(&format!("server:{}", record.id)),
        &format!("Updated server \"{}\" ({address}:{})", record.name, record.ssh_port),
    )
    .await;
    Ok(record)
}

/// Deletes one of the caller's servers.
pub async fn delete(db: &Db, principal: &Principal, server_id: i64) -> Result<(), AppError> {
    principal.require(Scope::Write)?;
    let current = server_table::find_owned(db, principal.user_id, server_id)
        .await?
        .ok_or(AppError::NotFound("server"))?;
    // Overwrite the sealed keys and bootstrap lines before the rows go.
    server_table::erase_secrets(db, server_id).await?;
    if !server_table::delete_owned(db, principal.user_id, server_id).await? {
        return Err(AppError::NotFound("server"));
    }
    crate::audit::record(
        db,
        &principal.actor(),
        "server.deleted",
        Some(server_id),
        Some(&format!("server:{server_id}")),
        &format!(
            "Deleted server \"{}\" ({}:{})",
            current.name, current.public_ip, current.ssh_port
        ),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(address: &str) -> ServerInput {
        ServerInput {
            name: Some("web-1".to_owned()),
            public_address: Some(address.to_owned()),
            ..ServerInput::default()
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let strict = AddressPolicy::default();
        for address in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "[::1]",
            "localhost.localhost",
            "db.internal",
            "printer.local",
        ] {
            let errors = input(address).validate(strict, None).unwrap_err();
            assert!(errors.first("public_address").is_some(), "{address} should be refused");
            assert!(
                input(address)
                    .validate(AddressPolicy { allow_private: true }, None)
                    .is_ok(),
                "{address} allowed by policy"
            );
        }
        for address in ["203.0.113.10", "2001:db8::1", "web.example.com", "8.8.8.8"] {
            assert!(
                input(address).validate(strict, None).is_ok(),
                "{address} should be accepted"
            );
        }
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let bad = ServerInput {
            name: Some("   ".to_owned()),
            provider: Some("mars".to_owned()),
            public_address: Some("not an address!".to_owned()),
            ssh_port: Some(json!(70000)),
            php_version: Some("5.6".to_owned()),
            database: Some("oracle".to_owned()),
        };
        let errors = bad.validate(AddressPolicy::default(), None).unwrap_err();
        let fields: Vec<&str> = errors.fields().collect();
        assert_eq!(
            fields,
            [
                "database",
                "name",
                "php_version",
                "provider",
                "public_address",
                "ssh_port"
            ]
        );
    }

    #[test]
    fn defaults_fill_optional_fields_and_ports_parse_from_text() {
        let mut server = input("203.0.113.7");
        server.ssh_port = Some(json!("2222"));
        let valid = server.validate(AddressPolicy::default(), None).unwrap();
        assert_eq!(valid.ssh_port.get(), 2222);
        assert_eq!(valid.php_version, PhpVersion::Php83);
        assert_eq!(valid.database, DatabaseChoice::None);
        assert_eq!(valid.provider, Provider::Custom);
    }
}
