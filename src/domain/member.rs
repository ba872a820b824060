//! Guardians ("members") as staff, imports and integrations describe them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DomainError, EmailAddress, FieldError, char_len};

pub const MAX_EMAILS: usize = 4;
pub const MAX_DEVICES: usize = 4;
pub const MAX_ATTRIBUTES: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Receives messages.
    Active,
    /// Kept on the roster but receives nothing (e.g. on leave).
    Suspended,
    /// Registered through a join code; receives nothing until staff approve.
    Pending,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Suspended => "suspended",
            MemberStatus::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<MemberStatus> {
        [MemberStatus::Active, MemberStatus::Suspended, MemberStatus::Pending].into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailStatus {
    Active,
    /// Added by the guardian; receives nothing until the confirmation link is opened.
    Unconfirmed,
    /// The last delivery was refused by the receiving server.
    Bounced,
    /// Three bounces in a row, or switched off by staff: receives nothing.
    Disabled,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Active => "active",
            EmailStatus::Unconfirmed => "unconfirmed",
            EmailStatus::Bounced => "bounced",
            EmailStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<EmailStatus> {
        [EmailStatus::Active, EmailStatus::Unconfirmed, EmailStatus::Bounced, EmailStatus::Disabled]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Apple Push Notification service (iOS).
    Apns,
    /// Firebase Cloud Messaging (Android).
    Fcm,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "apns",
            Platform::Fcm => "fcm",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        [Platform::Apns, Platform::Fcm].into_iter().find(|p| p.as_str() == s)
    }
}

/// `…a1b2`: the last four characters, enough to tell a guardian's devices apart.
pub fn mask_token(token: &str) -> String {
    let tail: String = token.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}

/// Checks a text field's length in characters; empty after trimming becomes None.
pub fn optional_text(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if char_len(value) > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
        return None;
    }
    if value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "must not contain control characters"));
        return None;
    }
    Some(value.to_string())
}

/// A guardian's profile, checked: what a create, an upsert or an import row writes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberProfile {
    pub name: String,
    pub name_kana: Option<String>,
    pub student_name: Option<String>,
    pub relation: Option<String>,
    pub locale: Option<String>,
    pub external_id: Option<String>,
    pub emails: Vec<EmailAddress>,
    pub attributes: BTreeMap<String, String>,
}

/// The unchecked shape, from JSON or a CSV row. `prefix` is put before field names in
/// errors (`""` for JSON bodies).
#[derive(Debug, Default, Clone)]
pub struct RawProfile<'a> {
    pub name: Option<&'a str>,
    pub name_kana: Option<&'a str>,
    pub student_name: Option<&'a str>,
    pub relation: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub external_id: Option<&'a str>,
    /// (field name for errors, value); empty values are skipped.
    pub emails: Vec<(String, &'a str)>,
    pub attributes: Vec<(&'a str, &'a str)>,
}

pub fn parse_emails(errors: &mut Vec<FieldError>, emails: &[(String, &str)]) -> Vec<EmailAddress> {
    let mut parsed: Vec<EmailAddress> = Vec::new();
    let given: Vec<_> = emails.iter().filter(|(_, v)| !v.trim().is_empty()).collect();
    if given.len() > MAX_EMAILS {
        let (field, _) = given[MAX_EMAILS];
        errors.push(FieldError::new(field.clone(), format!("a guardian has at most {MAX_EMAILS} e-mail addresses")));
        return parsed;
    }
    for (field, value) in given {
        match EmailAddress::parse(value) {
            Err(e) => errors.push(FieldError::new(field.clone(), e.to_string())),
            Ok(email) if parsed.iter().any(|p| p.key() == email.key()) => {
                errors.push(FieldError::new(field.clone(), "repeats an address of this guardian"));
            }
            Ok(email) => parsed.push(email),
        }
    }
    parsed
}

/// Whether `given` is what a caller without `contacts:read` is shown of `stored`, the address
/// at its place: the masked address, or nothing where there is none. Such a caller may give
/// addresses back only that way, which keeps them; whether the answer is yes depends only on
/// what the caller sees, so it tells nothing about the addresses themselves.
pub fn shown_as_masked(given: &str, stored: Option<&EmailAddress>) -> bool {
    match stored {
        Some(address) => given.trim() == address.masked(),
        None => given.trim().is_empty(),
    }
}

pub fn parse_attributes(errors: &mut Vec<FieldError>, attributes: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut parsed = BTreeMap::new();
    for (key, value) in attributes {
        let key = key.trim();
        let field = format!("attributes.{key}");
        if key.is_empty() || char_len(key) > 50 || key.chars().any(char::is_control) {
            errors.push(FieldError::new(field, "attribute names are 1 to 50 characters"));
            continue;
        }
        if let Some(value) = optional_text(errors, &field, Some(value), 200) {
            parsed.insert(key.to_string(), value);
        }
    }
    if parsed.len() > MAX_ATTRIBUTES {
        errors.push(FieldError::new("attributes", format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    parsed
}

impl RawProfile<'_> {
    pub fn parse(&self) -> Result<MemberProfile, DomainError> {
        let mut errors = Vec::new();
        let name = optional_text(&mut errors, "name", self.name, 100);
        if name.is_none() && !errors.iter().any(|e| e.field == "name") {
            errors.push(FieldError::new("name", "is required"));
        }
        let profile = MemberProfile {
            name: name.unwrap_or_default(),
            name_kana: optional_text(&mut errors, "name_kana", self.name_kana, 100),
            student_name: optional_text(&mut errors, "student_name", self.student_name, 100),
            relation: optional_text(&mut errors, "relation", self.relation, 20),
            locale: optional_text(&mut errors, "locale", self.locale, 20),
            external_id: optional_text(&mut errors, "external_id", self.external_id, 100),
            emails: parse_emails(&mut errors, &self.emails),
            attributes: parse_attributes(&mut errors, &self.attributes),
        };
        DomainError::check(profile, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(values: &[&'static str]) -> Vec<(String, &'static str)> {
        values.iter().enumerate().map(|(i, v)| (format!("emails[{i}]"), *v)).collect()
    }

    fn field_errors(raw: &RawProfile) -> Vec<FieldError> {
        match raw.parse() {
            Err(DomainError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_fifth_address_is_refused_by_its_field() {
        let raw = RawProfile {
            name: Some("山田 花子"),
            emails: emails(&["a@x.jp", "b@x.jp", "c@x.jp", "d@x.jp", "e@x.jp"]),
            ..Default::default()
        };
        let errors = field_errors(&raw);
        assert_eq!(errors, vec![FieldError::new("emails[4]", "a guardian has at most 4 e-mail addresses")]);
    }

    #[test]
    fn a_repeated_address_is_refused_whatever_its_case() {
        let raw =
            RawProfile { name: Some("鈴木"), emails: emails(&["sakura@x.jp", "SAKURA@X.JP"]), ..Default::default() };
        assert_eq!(field_errors(&raw)[0].field, "emails[1]");
    }

    #[test]
    fn a_missing_name_and_a_bad_address_are_both_reported() {
        let raw = RawProfile { name: Some("  "), emails: emails(&["kenta sato@example.jp"]), ..Default::default() };
        let fields: Vec<_> = field_errors(&raw).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "emails[0]"]);
    }

    #[test]
    fn lengths_count_characters() {
        let name = "あ".repeat(100);
        assert!(RawProfile { name: Some(&name), ..Default::default() }.parse().is_ok());
        let name = "あ".repeat(101);
        assert!(RawProfile { name: Some(&name), ..Default::default() }.parse().is_err());
    }

    #[test]
    fn tokens_are_masked_to_their_last_four_characters() {
        assert_eq!(mask_token("abcdef0123a1b2"), "…a1b2");
        assert_eq!(mask_token("ab"), "…ab");
    }
}
