//! Access tokens (HS256 JWTs, short-lived) and opaque secrets (refresh tokens, API keys),
//! which are stored only as SHA-256 digests.

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, Mac};
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
    /// Signs personal links; derived from the same secret, so every instance agrees.
    link_key: [u8; 32],
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            link_key: mac(secret, &[b"renrakumo personal links v1"]),
        }
    }

    /// The token of a guardian's personal link for one message: both ids and a 128-bit
    /// HMAC over them, so it cannot be guessed or altered, and needs no table to look up.
    /// The ids are the UUIDs the database holds; one that is not a UUID is a corrupt row, an
    /// error here rather than a link that can never open.
    pub fn receipt_token(&self, message_id: &str, member_id: &str) -> anyhow::Result<String> {
        let message = uuid::Uuid::parse_str(message_id)
            .with_context(|| format!("no personal link for message id {message_id:?}: not a UUID"))?;
        let member = uuid::Uuid::parse_str(member_id)
            .with_context(|| format!("no personal link for member id {member_id:?}: not a UUID"))?;
        let tag = mac(&self.link_key, &[message.as_bytes(), member.as_bytes()]);
        let mut bytes = Vec::with_capacity(48);
        bytes.extend_from_slice(message.as_bytes());
        bytes.extend_from_slice(member.as_bytes());
        bytes.extend_from_slice(&tag[..16]);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The hidden value of the forms on a personal-link page: keyed, so it cannot be made
    /// without the server's secret even by someone who knows the link.
    pub fn form_key(&self, token: &str) -> String {
        hex::encode(&mac(&self.link_key, &[b"form:", token.as_bytes()])[..16])
    }

    /// (message id, member id) of a genuine token; None for anything forged or altered.
    pub fn verify_receipt_token(&self, token: &str) -> Option<(String, String)> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() == 48)?;
        let tag = mac(&self.link_key, &[&bytes[..16], &bytes[16..32]]);
        // Constant-time comparison: no timing hint about how much of a forgery was right.
        let diff = tag[..16].iter().zip(&bytes[32..]).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let message = uuid::Uuid::from_slice(&bytes[..16]).ok()?;
        let member = uuid::Uuid::from_slice(&bytes[16..32]).ok()?;
        Some((message.to_string(), member.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_token_round_trips_and_any_change_breaks_it() {
        let keys = JwtKeys::new(b"a secret of at least thirty-two characters");
        let message = uuid::Uuid::now_v7().to_string();
        let member = uuid::Uuid::now_v7().to_string();
        let token = keys.receipt_token(&message, &member).unwrap();
        assert_eq!(keys.verify_receipt_token(&token), Some((message.clone(), member.clone())));
        for i in 0..token.len() {
            let mut altered: Vec<u8> = token.bytes().collect();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            if altered != token {
                assert_eq!(keys.verify_receipt_token(&altered), None, "position {i}");
            }
        }
        let other = JwtKeys::new(b"another secret of thirty-two characters!!");
        assert_eq!(other.verify_receipt_token(&token), None);
        assert_eq!(keys.verify_receipt_token("not-a-token"), None);
    }

    #[test]
    fn no_personal_link_is_made_for_an_id_that_is_not_a_uuid() {
        let keys = JwtKeys::new(b"a secret of at least thirty-two characters");
        let good = uuid::Uuid::now_v7().to_string();
        let error = keys.receipt_token("", &good).unwrap_err();
        assert!(error.to_string().contains("message id \"\""), "{error}");
        let error = keys.receipt_token(&good, "member-7").unwrap_err();
        assert!(error.to_string().contains("member id \"member-7\""), "{error}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// A personal link opens for the pair it was made for, and a change of any one
            /// byte (any value) makes it refused.
            #[test]
            fn a_personal_link_round_trips_and_any_single_byte_change_is_refused(
                message in any::<u128>(),
                member in any::<u128>(),
                position in any::<prop::sample::Index>(),
                replacement in any::<u8>(),
            ) {
                let keys = JwtKeys::new(b"a secret of at least thirty-two characters");
                let (message, member) = (uuid::Uuid::from_u128(message).to_string(), uuid::Uuid::from_u128(member).to_string());
                let token = keys.receipt_token(&message, &member).unwrap();
                prop_assert_eq!(keys.verify_receipt_token(&token), Some((message, member)));
                let mut altered = token.clone().into_bytes();
                let i = position.index(altered.len());
                prop_assume!(altered[i] != replacement);
                altered[i] = replacement;
                let altered = String::from_utf8_lossy(&altered).into_owned();
                prop_assert_eq!(keys.verify_receipt_token(&altered), None);
            }

            /// Any text as a token is refused without a panic.
            #[test]
            fn any_text_as_a_personal_link_is_refused_without_panicking(token in "\\PC{0,100}") {
                let keys = JwtKeys::new(b"a secret of at least thirty-two characters");
                prop_assert_eq!(keys.verify_receipt_token(&token), None);
            }
        }
    }
}
