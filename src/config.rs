//! Settings from the environment (with CLI flags of the same meaning), checked at start-up
//! so that a bad value stops the process with one clear line instead of failing later.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use url::Url;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// `sqlite://file.db?mode=rwc` (embedded) or `postgres://…` (shared by many instances).
    #[arg(long, env = "RENRAKUMO_DATABASE_URL", default_value = "sqlite://renrakumo.db?mode=rwc", global = true)]
    pub database_url: String,
    /// Listen address of the HTTP API.
    #[arg(long, env = "RENRAKUMO_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// Base of the links written into e-mails.
    #[arg(long, env = "RENRAKUMO_PUBLIC_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub public_url: String,
    /// `smtp://host:port`, `smtps://user:pass@host:465` or `smtp://…?tls=starttls`; unset = .eml files in the outbox folder.
    #[arg(long, env = "RENRAKUMO_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// PEM file of certificates to trust for SMTP over TLS besides the public roots (a relay
    /// with a private CA).
    #[arg(long, env = "RENRAKUMO_SMTP_CA_FILE", global = true)]
    pub smtp_ca_file: Option<PathBuf>,
    /// Folder for .eml files when no SMTP server is configured.
    #[arg(long, env = "RENRAKUMO_OUTBOX_DIR", default_value = "./outbox", global = true)]
    pub outbox_dir: PathBuf,
    /// From header of outgoing mail.
    #[arg(long, env = "RENRAKUMO_MAIL_FROM", default_value = "renrakumo <noreply@localhost>", global = true)]
    pub mail_from: String,
    /// APNs token-auth key (.p8); unset = APNs off.
    #[arg(long, env = "RENRAKUMO_APNS_KEY_FILE", global = true)]
    pub apns_key_file: Option<PathBuf>,
    #[arg(long, env = "RENRAKUMO_APNS_KEY_ID", global = true)]
    pub apns_key_id: Option<String>,
    #[arg(long, env = "RENRAKUMO_APNS_TEAM_ID", global = true)]
    pub apns_team_id: Option<String>,
    #[arg(long, env = "RENRAKUMO_APNS_TOPIC", global = true)]
    pub apns_topic: Option<String>,
    /// `http://…` means HTTP/2 without TLS (local test servers).
    #[arg(long, env = "RENRAKUMO_APNS_URL", default_value = "https://api.push.apple.com", global = true)]
    pub apns_url: String,
    /// FCM service-account JSON; its `token_uri` is honoured.
    #[arg(long, env = "RENRAKUMO_FCM_CREDENTIALS", global = true)]
    pub fcm_credentials: Option<PathBuf>,
    #[arg(long, env = "RENRAKUMO_FCM_URL", default_value = "https://fcm.googleapis.com", global = true)]
    pub fcm_url: String,
    /// Delivery tasks in this instance; 0 = API only.
    #[arg(long, env = "RENRAKUMO_WORKERS", default_value_t = 4, global = true)]
    pub workers: u32,
    /// Signing secret for access tokens; unset = generated once and stored in the database.
    #[arg(long, env = "RENRAKUMO_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// How long a delivery that keeps failing transiently is tried before it ends as failed:
    /// `24h`, `90m`, `3600s`, `2d`.
    #[arg(long, env = "RENRAKUMO_DELIVERY_MAX_AGE", default_value = "24h", global = true)]
    pub delivery_max_age: String,
    /// `text` for people, `json` for log collectors.
    #[arg(long, env = "RENRAKUMO_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

/// Which database engine a URL names; everything below `db` is written once for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The settings after every value has been parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub backend: Backend,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub smtp_url: Option<Url>,
    /// Certificates from RENRAKUMO_SMTP_CA_FILE, trusted for SMTP besides the public roots.
    pub smtp_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub outbox_dir: PathBuf,
    pub mail_from: String,
    pub apns: Option<ApnsConfig>,
    pub apns_url: Url,
    pub fcm_credentials: Option<PathBuf>,
    pub fcm_url: Url,
    pub workers: u32,
    pub jwt_secret: Option<String>,
    pub log_json: bool,
    pub delivery_max_age: std::time::Duration,
    /// Not a setting: the defaults suit every install; tests shorten them.
    pub body_timeouts: crate::request_body::BodyTimeouts,
}

#[derive(Debug, Clone)]
pub struct ApnsConfig {
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
}

/// One line that tells the operator which variable is wrong and why.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

fn parse_url(variable: &'static str, value: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| bad(variable, format!("not a URL ({e}): {}", redact(value))))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(variable, format!("unknown scheme '{}' (expected {})", url.scheme(), schemes.join(" or "))));
    }
    Ok(url)
}

/// URLs may carry passwords; the error line must not.
fn redact(value: &str) -> String {
    match value.find('@') {
        Some(at) => match value.find("://") {
            Some(scheme_end) if scheme_end < at => {
                format!("{}://***{}", &value[..scheme_end], &value[at..])
            }
            _ => "***".into(),
        },
        None => value.to_string(),
    }
}

/// `90s`, `30m`, `24h`, `2d` (a whole number and a unit), more than zero.
fn parse_duration(variable: &'static str, value: &str) -> Result<std::time::Duration, ConfigError> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad(variable, format!("not a duration such as 90m, 24h or 2d: {value}"))),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n.saturating_mul(seconds_per_unit))),
        _ => Err(bad(variable, format!("not a duration such as 90m, 24h or 2d: {value}"))),
    }
}

pub fn backend_of(database_url: &str) -> Result<Backend, ConfigError> {
    let scheme = database_url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ if !database_url.contains(':') => {
            Err(bad("RENRAKUMO_DATABASE_URL", format!("not a URL: {}", redact(database_url))))
        }
        other => {
            Err(bad("RENRAKUMO_DATABASE_URL", format!("unknown scheme '{other}' (expected sqlite: or postgres:)")))
        }
    }
}

fn read_file(variable: &'static str, path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| bad(variable, format!("cannot read {}: {e}", path.display())))
}

impl Settings {
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let backend = backend_of(&self.database_url)?;
        if backend == Backend::Postgres {
            parse_url("RENRAKUMO_DATABASE_URL", &self.database_url, &["postgres", "postgresql"])?;
        }
        let bind =
            self.bind.parse().map_err(|_| bad("RENRAKUMO_BIND", format!("not an address:port: {}", self.bind)))?;
        let public_url = parse_url("RENRAKUMO_PUBLIC_URL", &self.public_url, &["http", "https"])?;
        let smtp_url = match &self.smtp_url {
            Some(v) if !v.is_empty() => Some(parse_url("RENRAKUMO_SMTP_URL", v, &["smtp", "smtps"])?),
            _ => None,
        };
        let smtp_roots = match &self.smtp_ca_file {
            None => Vec::new(),
            Some(path) => {
                const VAR: &str = "RENRAKUMO_SMTP_CA_FILE";
                let pem = read_file(VAR, path)?;
                crate::delivery::tls::pem_certificates(pem.as_bytes())
                    .map_err(|e| bad(VAR, format!("{} {e:#}", path.display())))?
            }
        };
        let apns = match &self.apns_key_file {
            None => None,
            Some(path) => {
                let key_pem = read_file("RENRAKUMO_APNS_KEY_FILE", path)?;
                if !key_pem.contains("BEGIN PRIVATE KEY") {
                    return Err(bad(
                        "RENRAKUMO_APNS_KEY_FILE",
                        format!("{} is not a .p8 (PKCS#8 PEM) key", path.display()),
                    ));
                }
                let need = |variable: &'static str, v: &Option<String>| {
                    v.clone()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad(variable, "required when RENRAKUMO_APNS_KEY_FILE is set"))
                };
                Some(ApnsConfig {
                    key_pem,
                    key_id: need("RENRAKUMO_APNS_KEY_ID", &self.apns_key_id)?,
                    team_id: need("RENRAKUMO_APNS_TEAM_ID", &self.apns_team_id)?,
                    topic: need("RENRAKUMO_APNS_TOPIC", &self.apns_topic)?,
                })
            }
        };
        let apns_url = parse_url("RENRAKUMO_APNS_URL", &self.apns_url, &["https", "http"])?;
        if let Some(path) = &self.fcm_credentials {
            let text = read_file("RENRAKUMO_FCM_CREDENTIALS", path)?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| bad("RENRAKUMO_FCM_CREDENTIALS", format!("{} is not JSON: {e}", path.display())))?;
            for field in ["private_key", "client_email", "token_uri", "project_id"] {
                if json.get(field).and_then(|v| v.as_str()).is_none() {
                    return Err(bad("RENRAKUMO_FCM_CREDENTIALS", format!("{} has no \"{field}\"", path.display())));
                }
            }
        }
        let fcm_url = parse_url("RENRAKUMO_FCM_URL", &self.fcm_url, &["https", "http"])?;
        let log_json = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(bad("RENRAKUMO_LOG_FORMAT", format!("'{other}' is neither text nor json")));
            }
        };
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return Err(bad("RENRAKUMO_JWT_SECRET", "must be at least 32 characters"));
        }
        Ok(Config {
            database_url: self.database_url.clone(),
            backend,
            bind,
            public_url,
            smtp_url,
            smtp_roots,
            outbox_dir: self.outbox_dir.clone(),
            mail_from: self.mail_from.clone(),
            apns,
            apns_url,
            fcm_credentials: self.fcm_credentials.clone(),
            fcm_url,
            workers: self.workers,
            jwt_secret: self.jwt_secret.clone(),
            log_json,
            delivery_max_age: parse_duration("RENRAKUMO_DELIVERY_MAX_AGE", &self.delivery_max_age)?,
            body_timeouts: Default::default(),
        })
    }
}

impl Config {
    /// The public address of one of our paths (`r/{token}`, `invite/{code}` …), for links
    /// in e-mails, pages and answers: under RENRAKUMO_PUBLIC_URL, whatever its path.
    pub fn public_link(&self, path: &str) -> String {
        // https://school.example.jp/renrakumo keeps its /renrakumo: joining onto a path
        // without the final slash would replace its last segment.
        let mut base = self.public_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path.trim_start_matches('/')).map(|url| url.to_string()).unwrap_or_default()
    }

    /// The defaults with another database, as tests and embedding programs start.
    pub fn for_database(database_url: &str) -> Result<Config, ConfigError> {
        Settings { database_url: database_url.to_string(), ..Settings::default() }.validate()
    }
}

/// The same values as the clap defaults above, without reading the environment.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://renrakumo.db?mode=rwc".into(),
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            smtp_ca_file: None,
            outbox_dir: "./outbox".into(),
            mail_from: "renrakumo <noreply@localhost>".into(),
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_url: "https://api.push.apple.com".into(),
            fcm_credentials: None,
            fcm_url: "https://fcm.googleapis.com".into(),
            workers: 4,
            jwt_secret: None,
            delivery_max_age: "24h".into(),
            log_format: "text".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_public_urls_path() {
        let link = |public_url: &str| {
            let config = Settings { public_url: public_url.into(), ..Settings::default() }.validate().unwrap();
            config.public_link("r/abc")
        };
        assert_eq!(link("https://school.example.jp"), "https://school.example.jp/r/abc");
        assert_eq!(link("https://school.example.jp/renrakumo"), "https://school.example.jp/renrakumo/r/abc");
        assert_eq!(link("https://school.example.jp/renrakumo/"), "https://school.example.jp/renrakumo/r/abc");
    }

    #[test]
    fn unknown_database_scheme_names_the_variable() {
        let err = Settings { database_url: "mysql://x".into(), ..Settings::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "RENRAKUMO_DATABASE_URL: unknown scheme 'mysql' (expected sqlite: or postgres:)");
    }

    #[test]
    fn smtp_password_is_not_echoed() {
        let err =
            Settings { smtp_url: Some("ftp://user:secret@host".into()), ..Settings::default() }.validate().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().starts_with("RENRAKUMO_SMTP_URL: unknown scheme 'ftp'"));
    }

    #[test]
    fn unreadable_apns_key_stops_start_up() {
        let err = Settings { apns_key_file: Some("/nonexistent/key.p8".into()), ..Settings::default() }
            .validate()
            .unwrap_err();
        assert!(err.to_string().starts_with("RENRAKUMO_APNS_KEY_FILE: cannot read /nonexistent/key.p8"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        let config = Settings::default().validate().unwrap();
        assert_eq!(config.backend, Backend::Sqlite);
        assert_eq!(config.bind.port(), 8080);
    }
}
