//! The OpenAPI document. Paths and schemas are collected from the handlers registered in
//! `api::configure`; this adds the title, tags, security schemes and the security every
//! operation needs unless it says otherwise: a staff sign-in (bearer or OAuth2) or an API
//! key. Operations that differ say so in their `#[utoipa::path]`: `security()` (an empty
//! list, which in OpenAPI 3.1 overrides the global one) for the public ones, and a shorter
//! list for the admin-only (`("bearer" = []), ("oauth2" = [])`) and the guardian app's
//! (`("bearer" = [])`). `security(())` would be `[{}]`, "credentials optional", not public.

use actix_web::App;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "renrakumo",
        description = "連絡網: staff compose a message once; renrakumo delivers it to every targeted guardian \
                       by e-mail and app push and collects who read, acknowledged and answered it.\n\n\
                       Sign in with **Authorize** (e-mail address and password; leave client_id empty) or send an \
                       `X-API-Key`. Errors are `application/problem+json` (RFC 9457); validation errors list \
                       `errors: [{field, message}]`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    // `api::problem_responses` refer to it by name, and utoipa collects schemas only from
    // `body = ...`, so it is listed here in case no handler writes one out in full.
    components(schemas(crate::error::Problem)),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    tags(
        (name = "auth", description = "Staff sign-in and sessions"),
        (name = "users", description = "Staff accounts"),
        (name = "api-keys", description = "Keys for school-information systems"),
        (name = "lists", description = "Classes, grades, clubs and routes"),
        (name = "members", description = "Guardians (保護者) with up to four e-mail addresses and four devices"),
        (name = "messages", description = "Compose, send, schedule and follow messages"),
        (name = "receipts", description = "The guardian's personal link: read, acknowledge, answer"),
        (name = "app", description = "The guardians' official app: invitations, self-registration, own profile, addresses and devices"),
        (name = "operations", description = "Health checks"),
    ),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new("/api/v1/auth/token", Scopes::new()))],
                "E-mail address as username, and password",
            )),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Scoped key of a school-information system",
            ))),
        );
    }
}

/// The complete document, as served at `/api-docs/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    let (_, mut api) =
        App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::api::configure).split_for_parts();
    document_idempotency_key(&mut api);
    document_shared_failures(&mut api);
    api
}

/// The error answers that come from what an operation takes rather than from its handler,
/// added to every operation that takes it unless the operation describes that status itself:
/// a credential (401), a staff credential (403: a role or an API key without the scope; a
/// staff member's role may change while their token lives), a body (unreadable 400, too
/// large 413, wrong type 415, invalid 422), a query string (422: unknown or invalid
/// parameters) or a path or header parameter (400).
fn document_shared_failures(api: &mut utoipa::openapi::OpenApi) {
    use crate::api::problem_responses::{
        BadRequest, Forbidden, PayloadTooLarge, Unauthorized, UnsupportedMediaType, Validation,
    };
    use utoipa::IntoResponses;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::ParameterIn;
    let global = api.security.clone().unwrap_or_default();
    for item in api.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let takes = |place: ParameterIn| {
                operation.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
            };
            let (query, path, header) =
                (takes(ParameterIn::Query), takes(ParameterIn::Path), takes(ParameterIn::Header));
            let body = operation.request_body.is_some();
            let security = operation.security.as_ref().unwrap_or(&global);
            let secured = !security.is_empty();
            // Staff sign in with OAuth2 or use an API key; the guardian app's operations take
            // a guardian's bearer token only (`SecurityRequirement` keeps its names private).
            let staff = security.iter().any(|requirement| {
                serde_json::to_value(requirement).is_ok_and(|v| v.get("oauth2").is_some() || v.get("api_key").is_some())
            });
            let mut shared = Vec::new();
            if secured {
                shared.push(Unauthorized::responses());
            }
            if staff {
                shared.push(Forbidden::responses());
            }
            if body || path || header {
                shared.push(BadRequest::responses());
            }
            if body {
                shared.extend([PayloadTooLarge::responses(), UnsupportedMediaType::responses()]);
            }
            if body || query {
                shared.push(Validation::responses());
            }
            for (status, response) in shared.into_iter().flatten() {
                operation.responses.responses.entry(status).or_insert(response);
            }
        }
    }
}

/// The optional `Idempotency-Key` header on every POST that `crate::idempotency` covers and
/// that takes a credential (the key is kept per credential, so public POSTs have none).
fn document_idempotency_key(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    let global = api.security.as_deref().unwrap_or_default();
    for (path, item) in api.paths.paths.iter_mut() {
        let Some(post) = item.post.as_mut() else { continue };
        let security = post.security.as_deref().unwrap_or(global);
        if !crate::idempotency::covers_path(path) || security.is_empty() {
            continue;
        }
        let parameter = ParameterBuilder::new()
            .name(crate::idempotency::HEADER)
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "Any unique string (a UUID) of 1 to 255 visible ASCII characters. A retry with the same key and \
                 credential within a day gets the first answer again (header `Idempotent-Replayed: true`) and does \
                 nothing twice; the same key with another request is a 422, and while the first is still being \
                 handled a 409.",
            ))
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        post.parameters.get_or_insert_with(Vec::new).push(utoipa::openapi::RefOr::T(parameter));
        // A key reused for another request, or while its first request is still running.
        use crate::api::problem_responses::{Conflict, Validation};
        use utoipa::IntoResponses;
        for (status, response) in Conflict::responses().into_iter().chain(Validation::responses()) {
            post.responses.responses.entry(status).or_insert(response);
        }
    }
}

pub fn spec_json() -> String {
    let mut json = spec().to_pretty_json().expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
