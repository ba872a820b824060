use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::auth::caller::bearer;
use crate::auth::tokens;
use crate::db::repositories::guardians;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A guardian signed in through the official app: one member of one organisation. It sees
/// and changes only that member's own data.
#[derive(Debug, Clone)]
pub struct Guardian {
    pub org_id: String,
    pub member_id: String,
    pub session_id: String,
}

impl FromRequest for Guardian {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Guardian>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState missing")))?;
            let token = token.ok_or(ApiError::Unauthorized("sign in with the app (Authorization: Bearer)"))?;
            let claims = state
                .jwt
                .verify(&token)
                .filter(|c| c.typ == tokens::GUARDIAN)
                .ok_or(ApiError::Unauthorized("invalid or expired app token"))?;
            let mut conn = state.db.pool.acquire().await?;
            if !guardians::session_is_live(&mut conn, &claims.sid, &claims.sub, &claims.org).await? {
                return Err(ApiError::Unauthorized("this app session has ended; use a new invitation"));
            }
            Ok(Guardian { org_id: claims.org, member_id: claims.sub, session_id: claims.sid })
        })
    }
}
