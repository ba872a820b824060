//! Staff: roles, the scopes that API keys and permissions grant, and their inputs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including staff and API keys.
    Admin,
    /// Rosters and messages: read, write, send.
    Sender,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sender => "sender",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "sender" => Some(Role::Sender),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// What the role itself grants. `contacts:read` is never implied by a role: it is a
    /// separate permission, because seeing guardians' addresses is a privacy decision.
    pub fn grants(self, scope: Scope) -> bool {
        use Scope::*;
        match self {
            Role::Admin => scope != ContactsRead,
            Role::Sender => {
                matches!(scope, ListsRead | ListsWrite | MembersRead | MembersWrite | MessagesRead | MessagesSend)
            }
            Role::Viewer => matches!(scope, ListsRead | MembersRead | MessagesRead),
        }
    }
}

/// The vocabulary of API-key scopes and staff permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "lists:read")]
    ListsRead,
    #[serde(rename = "lists:write")]
    ListsWrite,
    #[serde(rename = "members:read")]
    MembersRead,
    #[serde(rename = "members:write")]
    MembersWrite,
    #[serde(rename = "messages:read")]
    MessagesRead,
    #[serde(rename = "messages:send")]
    MessagesSend,
    /// Unmasked guardian addresses and device tokens.
    #[serde(rename = "contacts:read")]
    ContactsRead,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::ListsRead,
        Scope::ListsWrite,
        Scope::MembersRead,
        Scope::MembersWrite,
        Scope::MessagesRead,
        Scope::MessagesSend,
        Scope::ContactsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ListsRead => "lists:read",
            Scope::ListsWrite => "lists:write",
            Scope::MembersRead => "members:read",
            Scope::MembersWrite => "members:write",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesSend => "messages:send",
            Scope::ContactsRead => "contacts:read",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    /// Scopes stored as a JSON array; unknown names (from a newer version) are skipped.
    pub fn parse_json_list(json: &str) -> Vec<Scope> {
        serde_json::from_str::<Vec<String>>(json).unwrap_or_default().iter().filter_map(|s| Scope::parse(s)).collect()
    }

    pub fn to_json_list(scopes: &[Scope]) -> String {
        serde_json::to_string(&scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
    }
}

/// The permissions a staff member can hold beyond their role.
pub const STAFF_PERMISSIONS: [Scope; 1] = [Scope::ContactsRead];

/// A password as chosen by a person: 10 to 200 characters (NIST SP 800-63B: length, not
/// composition rules).
pub struct Password(String);

impl Password {
    pub fn parse(s: &str) -> Result<Password, &'static str> {
        match super::char_len(s) {
            0..10 => Err("must be at least 10 characters"),
            201.. => Err("must be at most 200 characters"),
            _ => Ok(Password(s.to_string())),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A person's display name: 1 to 50 characters after trimming.
#[derive(Debug, Clone)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(s: &str) -> Result<PersonName, &'static str> {
        let s = s.trim();
        match super::char_len(s) {
            0 => Err("must not be empty"),
            51.. => Err("must be at most 50 characters"),
            _ => Ok(PersonName(s.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_manage_and_no_role_implies_contacts() {
        assert!(Role::Admin.grants(Scope::MessagesSend));
        assert!(!Role::Admin.grants(Scope::ContactsRead));
        assert!(Role::Sender.grants(Scope::MessagesSend));
        assert!(!Role::Viewer.grants(Scope::MembersWrite));
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(serde_json::to_string(&scope).unwrap(), format!("\"{}\"", scope.as_str()));
        }
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(Password::parse("パスワードは十文字以上").is_ok());
        assert!(Password::parse("短いパスワード").is_err());
    }
}
