//! Access tokens (HS256 JWTs, short-lived) and opaque secrets (refresh tokens, API keys),
//! which are stored only as SHA-256 digests.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Fifteen minutes: long enough for a Swagger UI session step, short enough that a leaked
/// token ages out quickly; logout and role changes take effect at once anyway, because
/// every request also checks the session row.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
pub const GUARDIAN_TTL_SECS: i64 = 180 * 24 * 3600;
/// The `typ` claim: staff tokens and guardian-app tokens are never accepted for each other.
pub const STAFF: &str = "staff";
pub const GUARDIAN: &str = "guardian";

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    pub org: String,
    pub role: String,
    /// The sign-in session (refresh-token family) this token belongs to.
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// `staff` here; guardian-app tokens use another value and are refused by staff routes.
    pub typ: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    pub fn issue(&self, user_id: &str, org_id: &str, role: &str, session_id: &str) -> anyhow::Result<String> {
        self.sign(user_id, org_id, role, session_id, STAFF, ACCESS_TTL_SECS)
    }

    /// A guardian-app token for a member: long-lived, because a phone app cannot ask for a
    /// password; it stays revocable because every request checks its session row.
    pub fn issue_guardian(&self, member_id: &str, org_id: &str, session_id: &str) -> anyhow::Result<String> {
        self.sign(member_id, org_id, "guardian", session_id, GUARDIAN, GUARDIAN_TTL_SECS)
    }

    fn sign(&self, sub: &str, org: &str, role: &str, sid: &str, typ: &str, ttl: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: sub.into(),
            org: org.into(),
            role: role.into(),
            sid: sid.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + ttl,
            typ: typ.into(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Only HS256 is accepted, which also refuses `alg: none` and key-confusion tricks.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

/// 32 random bytes, URL-safe, behind a prefix that tells what the secret is for
/// (`rk_rt_` refresh token, `rk_live_` API key) so leaked ones are easy to recognise.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Secrets are high-entropy, so a plain SHA-256 (not a slow password hash) is enough.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
