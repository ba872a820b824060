//! E-mail addresses as guardians and staff really have them.
//!
//! Stricter than "anything with an @" (markup, spaces and broken domains are refused) but
//! looser than RFC 5322's dot-atom: Japanese mobile carriers issued local parts with
//! consecutive dots or a dot before the @ (`taro..papa@docomo.ne.jp`) for years, and those
//! addresses still receive mail, so they are accepted as registered. Internationalised
//! addresses (RFC 6531) are accepted too. The domain is lower-cased; the local part is kept
//! as given, because only the receiving host may interpret it.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("must contain exactly one @")]
    At,
    #[error("has nothing before the @")]
    NoLocalPart,
    #[error("has no domain after the @")]
    NoDomain,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error("contains '{0}', which is not allowed in an address")]
    Character(char),
    #[error("has a domain without a dot")]
    DomainWithoutDot,
    #[error("has an empty or malformed domain label")]
    DomainLabel,
    /// What renrakumo shows instead of an address to callers without `contacts:read`:
    /// stored, it would reach nobody.
    #[error("is a masked address (as shown without contacts:read), not one that can receive mail")]
    Masked,
}

/// Printable ASCII allowed unquoted in a local part (RFC 5322 atext) plus the dot.
fn local_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~.".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

fn domain_label_ok(label: &str) -> bool {
    !label.is_empty()
        && label.chars().count() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, EmailError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(EmailError::Empty);
        }
        if input.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let mut parts = input.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) => (local, domain),
            _ => return Err(EmailError::At),
        };
        if local.is_empty() {
            return Err(EmailError::NoLocalPart);
        }
        if domain.is_empty() {
            return Err(EmailError::NoDomain);
        }
        if let Some(c) = local.chars().find(|&c| !local_char_ok(c)) {
            return Err(EmailError::Character(c));
        }
        if local.chars().count() == 4 && local.ends_with("***") {
            return Err(EmailError::Masked);
        }
        if let Some(c) = domain.chars().find(|c| c.is_whitespace() || "<>\"(),;:\\[]".contains(*c)) {
            return Err(EmailError::Character(c));
        }
        let domain = domain.to_lowercase();
        if !domain.contains('.') {
            return Err(EmailError::DomainWithoutDot);
        }
        if !domain.split('.').all(domain_label_ok) {
            return Err(EmailError::DomainLabel);
        }
        Ok(EmailAddress(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses are compared in (sign-in, duplicates): case-folded whole.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// `t***@example.jp`: enough for a person to recognise their own address.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// `text` (a mail server's reply, which usually quotes the recipient) with every
/// address-like word masked as [`EmailAddress::masked`] masks an address: for readers
/// without `contacts:read`.
pub fn mask_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.split_once('@') {
            Some((local, domain)) => {
                out.extend(local.chars().take(1));
                out.push_str("***@");
                out.push_str(domain);
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || "<>()[]{},;:\"'`".contains(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_quoted_in_a_server_reply_are_masked() {
        assert_eq!(
            mask_addresses("550 5.1.1 <taro..papa@docomo.ne.jp>: recipient refused"),
            "550 5.1.1 <t***@docomo.ne.jp>: recipient refused"
        );
        assert_eq!(mask_addresses("user unknown (yumi.@ezweb.ne.jp)"), "user unknown (y***@ezweb.ne.jp)");
        assert_eq!(mask_addresses("451 try again later"), "451 try again later");
        assert_eq!(mask_addresses("a@b.jp,c@d.jp"), "a***@b.jp,c***@d.jp");
    }

    /// The shared fixture is the contract: every `accept` line parses, every `refuse` fails.
    #[test]
    fn carrier_fixture_is_honoured() {
        let fixture = include_str!("../../tests/fixtures/carrier-addresses.txt");
        let mut checked = 0;
        for line in fixture.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (verdict, rest) = line.split_once(' ').unwrap();
            // The address ends where two spaces start the reason.
            let address = rest.split("  ").next().unwrap().trim();
            let parsed = EmailAddress::parse(address);
            match verdict {
                "accept" => assert!(parsed.is_ok(), "{address} refused: {parsed:?}"),
                "refuse" => assert!(parsed.is_err(), "{address} accepted"),
                other => panic!("unknown verdict {other}"),
            }
            checked += 1;
        }
        assert!(checked >= 13, "fixture had only {checked} lines");
    }

    #[test]
    fn domain_is_lowercased_and_local_part_kept() {
        let email = EmailAddress::parse("Hanako.Yamada@Example.JP").unwrap();
        assert_eq!(email.as_str(), "Hanako.Yamada@example.jp");
        assert_eq!(email.key(), "hanako.yamada@example.jp");
    }

    #[test]
    fn masking_keeps_first_character_and_domain() {
        assert_eq!(EmailAddress::parse("taro@example.jp").unwrap().masked(), "t***@example.jp");
        assert_eq!(EmailAddress::parse("山田@例え.jp").unwrap().masked(), "山***@例え.jp");
    }

    /// A masked export imported back as new guardians must not store masks as addresses.
    #[test]
    fn a_masked_address_is_not_an_address() {
        for address in ["taro@example.jp", "山田@例え.jp"] {
            let masked = EmailAddress::parse(address).unwrap().masked();
            assert_eq!(EmailAddress::parse(&masked), Err(EmailError::Masked), "{masked}");
        }
        // Stars elsewhere are allowed, as RFC 5322 allows them.
        assert!(EmailAddress::parse("ta***@example.jp").is_ok());
        assert!(EmailAddress::parse("t*@example.jp").is_ok());
    }

    #[test]
    fn no_input_panics_and_accepted_addresses_reparse_to_themselves() {
        // A cheap property check over generated strings from a hostile alphabet.
        let alphabet: Vec<char> = "a.@-_ \"<>山.JPx+".chars().collect();
        let mut seed: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Ok(email) = EmailAddress::parse(&s) {
                assert_eq!(EmailAddress::parse(email.as_str()).unwrap(), email);
                assert_eq!(email.as_str().matches('@').count(), 1);
                assert!(!email.as_str().contains(' '));
            }
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text, parsed, is an address or an error that says what is wrong; never a panic.
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(input in "\\PC{0,300}") {
            match EmailAddress::parse(&input) {
                Ok(address) => {
                    // What was accepted is stable: parsing it again gives the same address.
                    let again = EmailAddress::parse(address.as_str()).expect("an accepted address parses again");
                    prop_assert_eq!(again.as_str(), address.as_str());
                    prop_assert_eq!(again.key(), address.key());
                    prop_assert!(address.as_str().contains('@'));
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }

        #[test]
        fn address_shaped_text_never_panics(local in "[a-z0-9.+_-]{0,70}", domain in "[a-z0-9.-]{0,70}") {
            let _ = EmailAddress::parse(&format!("{local}@{domain}"));
        }
    }
}
