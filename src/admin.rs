//! `renrakumo create-admin`: the organisation and its first admin, in one transaction.

use serde::Serialize;

use crate::auth::password;
use crate::db::Db;
use crate::db::repositories::{organizations, users};
use crate::domain::{EmailAddress, Password, PersonName, Scope};

#[derive(Debug, Serialize)]
pub struct CreatedAdmin {
    pub org_id: String,
    pub user_id: String,
}

pub async fn create_admin(db: &Db, org_name: &str, email: &str, password: &str) -> anyhow::Result<CreatedAdmin> {
    let org_name = PersonName::parse(org_name).map_err(|e| anyhow::anyhow!("--org {e}"))?;
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("--password {e}"))?;
    let password_hash = password::hash(password.expose().to_string()).await?;
    let mut tx = db.begin().await?;
    let org = organizations::create(&mut tx, org_name.as_str()).await?;
    let local_part = email.as_str().split('@').next().unwrap_or("admin").to_string();
    let user = users::create(
        &mut tx,
        users::NewUser {
            org_id: &org.id,
            email: email.as_str(),
            email_key: &email.key(),
            name: &local_part,
            role: "admin",
            // The first admin may see guardians' contacts; others only when granted.
            permissions: &Scope::to_json_list(&[Scope::ContactsRead]),
            password_hash: &password_hash,
        },
    )
    .await
    .map_err(|e| match e {
        crate::db::RepoError::Conflict { .. } => {
            anyhow::anyhow!("--email is already used by another account")
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(CreatedAdmin { org_id: org.id, user_id: user.id })
}
