//! The authorisation matrix (#14): every operation of the OpenAPI document, called by every
//! kind of caller, gets the answer its rule says. An operation without a rule here (a new
//! endpoint) fails the test, and so does a rule for an operation the document lacks.
//!
//! Besides the status of each cell, the matrix checks that a refused call changes nothing
//! (the organisation as an admin sees it is the same before and after), that another
//! organisation's admin gets nothing of the first organisation back, and that callers
//! without `contacts:read` never see a guardian's address or device token in the clear.

use std::collections::BTreeMap;
use std::fmt::Write;

use renrakumo::domain::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(every_operation_answers_each_kind_of_caller_as_its_rule_says);

/// Who may call an operation, as the code enforces it.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone: credentials are not looked at (sign-in, health, the app's sign-up).
    Public,
    /// The token in the path is the credential (personal and confirmation links): headers
    /// are not looked at.
    Link,
    /// Any staff member or API key of the organisation.
    Staff,
    /// Staff signed in as a person; an API key is refused (403).
    StaffSession,
    /// Staff whose role grants, or API keys holding, every one of these scopes.
    Scopes(&'static [Scope]),
    /// An admin signed in as a person (staff and API-key management).
    Admin,
    /// A guardian signed in through the app; every other credential is 401.
    Guardian,
}

use Rule::*;
use Scope::*;

/// Keyed by `METHOD /path/template` as the OpenAPI document spells it.
const RULES: &[(&str, Rule)] = &[
    ("GET /healthz", Public),
    ("GET /readyz", Public),
    ("POST /api/v1/auth/login", Public),
    ("POST /api/v1/auth/token", Public),
    ("POST /api/v1/auth/refresh", Public),
    ("POST /api/v1/auth/logout", StaffSession),
    ("GET /api/v1/me", Staff),
    ("GET /api/v1/users", Admin),
    ("POST /api/v1/users", Admin),
    // Also the member themselves (their own name and password): not a cell of this matrix,
    // whose target is another staff member; see tests/api/users.rs.
    ("GET /api/v1/users/{id}", Admin),
    ("PATCH /api/v1/users/{id}", Admin),
    ("DELETE /api/v1/users/{id}", Admin),
    ("GET /api/v1/api-keys", Admin),
    ("POST /api/v1/api-keys", Admin),
    ("GET /api/v1/api-keys/{id}", Admin),
    ("DELETE /api/v1/api-keys/{id}", Admin),
    ("GET /api/v1/lists", Scopes(&[ListsRead])),
    ("POST /api/v1/lists", Scopes(&[ListsWrite])),
    ("GET /api/v1/lists/{id}", Scopes(&[ListsRead])),
    ("PATCH /api/v1/lists/{id}", Scopes(&[ListsWrite])),
    ("DELETE /api/v1/lists/{id}", Scopes(&[ListsWrite])),
    ("PUT /api/v1/lists/{id}/join-code", Scopes(&[ListsWrite])),
    ("DELETE /api/v1/lists/{id}/join-code", Scopes(&[ListsWrite])),
    ("GET /api/v1/lists/{id}/members", Scopes(&[ListsRead, MembersRead])),
    ("POST /api/v1/lists/{id}/members/bulk", Scopes(&[ListsWrite])),
    ("PUT /api/v1/lists/{id}/members/{member_id}", Scopes(&[ListsWrite])),
    ("DELETE /api/v1/lists/{id}/members/{member_id}", Scopes(&[ListsWrite])),
    ("GET /api/v1/members", Scopes(&[MembersRead])),
    ("POST /api/v1/members", Scopes(&[MembersWrite])),
    ("PUT /api/v1/members/by-external-id/{external_id}", Scopes(&[MembersWrite])),
    ("GET /api/v1/members/export", Scopes(&[MembersRead])),
    ("POST /api/v1/members/import", Scopes(&[MembersWrite])),
    ("POST /api/v1/members/promote", Scopes(&[MembersWrite])),
    ("GET /api/v1/members/{id}", Scopes(&[MembersRead])),
    ("PATCH /api/v1/members/{id}", Scopes(&[MembersWrite])),
    ("DELETE /api/v1/members/{id}", Scopes(&[MembersWrite])),
    ("POST /api/v1/members/{id}/suspend", Scopes(&[MembersWrite])),
    ("POST /api/v1/members/{id}/resume", Scopes(&[MembersWrite])),
    ("POST /api/v1/members/{id}/approve", Scopes(&[MembersWrite])),
    ("GET /api/v1/members/{id}/devices", Scopes(&[MembersRead])),
    ("POST /api/v1/members/{id}/devices", Scopes(&[MembersWrite])),
    ("DELETE /api/v1/members/{id}/devices/{device_id}", Scopes(&[MembersWrite])),
    // A code opens the app as the guardian: guarded like the guardian's contacts.
    ("POST /api/v1/members/{id}/invitations", Scopes(&[MembersWrite, ContactsRead])),
    ("GET /api/v1/messages", Scopes(&[MessagesRead])),
    ("POST /api/v1/messages", Scopes(&[MessagesSend])),
    ("POST /api/v1/messages/bulk-delete", Scopes(&[MessagesSend])),
    ("GET /api/v1/messages/{id}", Scopes(&[MessagesRead])),
    ("PATCH /api/v1/messages/{id}", Scopes(&[MessagesSend])),
    ("DELETE /api/v1/messages/{id}", Scopes(&[MessagesSend])),
    ("POST /api/v1/messages/{id}/copy", Scopes(&[MessagesSend])),
    ("GET /api/v1/messages/{id}/attachments", Scopes(&[MessagesRead])),
    ("POST /api/v1/messages/{id}/attachments", Scopes(&[MessagesSend])),
    ("GET /api/v1/messages/{id}/attachments/{attachment_id}", Scopes(&[MessagesRead])),
    ("DELETE /api/v1/messages/{id}/attachments/{attachment_id}", Scopes(&[MessagesSend])),
    ("GET /api/v1/messages/{id}/preview", Scopes(&[MessagesRead])),
    ("POST /api/v1/messages/{id}/send", Scopes(&[MessagesSend])),
    ("POST /api/v1/messages/{id}/cancel", Scopes(&[MessagesSend])),
    ("POST /api/v1/messages/{id}/resend", Scopes(&[MessagesSend])),
    ("GET /api/v1/messages/{id}/stats", Scopes(&[MessagesRead])),
    ("GET /api/v1/messages/{id}/recipients", Scopes(&[MessagesRead])),
    ("GET /api/v1/messages/{id}/results", Scopes(&[MessagesRead])),
    ("GET /api/v1/receipts/{token}", Link),
    ("POST /api/v1/receipts/{token}/ack", Link),
    ("PUT /api/v1/receipts/{token}/answers", Link),
    ("GET /r/{token}", Link),
    ("POST /r/{token}/ack", Link),
    ("POST /r/{token}/answers", Link),
    ("GET /r/{token}/attachments/{attachment_id}", Link),
    ("GET /confirm-email/{token}", Link),
    ("POST /confirm-email/{token}", Link),
    ("POST /api/v1/app/session", Public),
    ("POST /api/v1/app/register", Public),
    ("GET /api/v1/app/me", Guardian),
    ("PATCH /api/v1/app/me", Guardian),
    ("POST /api/v1/app/me/emails", Guardian),
    ("DELETE /api/v1/app/me/emails/{address}", Guardian),
    ("POST /api/v1/app/me/emails/{address}/confirmation", Guardian),
    ("POST /api/v1/app/me/devices", Guardian),
    ("DELETE /api/v1/app/me/devices/{device_id}", Guardian),
    ("GET /api/v1/app/messages", Guardian),
    ("GET /api/v1/app/messages/{id}", Guardian),
    ("POST /api/v1/app/messages/{id}/ack", Guardian),
    ("PUT /api/v1/app/messages/{id}/answers", Guardian),
    ("GET /api/v1/app/messages/{id}/attachments/{attachment_id}", Guardian),
    ("POST /api/v1/app/logout", Guardian),
];

/// These end the caller's own session, so they run after everything else.
const RUN_LAST: &[&str] = &["POST /api/v1/app/logout", "POST /api/v1/auth/logout"];

/// The kinds of caller, each a column of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Principal {
    Anonymous,
    Guardian,
    /// An admin of another organisation, holding `contacts:read`.
    OtherAdmin,
    Key(Scope),
    Viewer,
    Sender,
    Admin,
}

impl Principal {
    fn all() -> Vec<Principal> {
        let mut all = vec![Principal::Anonymous, Principal::Guardian, Principal::OtherAdmin];
        all.extend(Scope::ALL.into_iter().map(Principal::Key));
        all.extend([Principal::Viewer, Principal::Sender, Principal::Admin]);
        all
    }

    /// A column heading of at most 5 characters.
    fn short(self) -> String {
        match self {
            Principal::Anonymous => "anon".into(),
            Principal::Guardian => "app".into(),
            Principal::OtherAdmin => "other".into(),
            Principal::Key(scope) => match scope {
                ListsRead => "kls:r",
                ListsWrite => "kls:w",
                MembersRead => "kmb:r",
                MembersWrite => "kmb:w",
                MessagesRead => "kms:r",
                MessagesSend => "kms:s",
                ContactsRead => "kct:r",
            }
            .into(),
            Principal::Viewer => "view".into(),
            Principal::Sender => "send".into(),
            Principal::Admin => "admin".into(),
        }
    }

    fn name(self) -> String {
        match self {
            Principal::Anonymous => "no credential".into(),
            Principal::Guardian => "guardian app session".into(),
            Principal::OtherAdmin => "another organisation's admin".into(),
            Principal::Key(scope) => format!("API key with {}", scope.as_str()),
            Principal::Viewer => "viewer".into(),
            Principal::Sender => "sender".into(),
            Principal::Admin => "admin".into(),
        }
    }

    /// Whether the caller holds `contacts:read` (sees addresses and device tokens).
    fn reads_contacts(self) -> bool {
        matches!(self, Principal::OtherAdmin | Principal::Key(Scope::ContactsRead))
    }

    /// What a staff role grants, as the README's roles table says: `contacts:read` never
    /// comes with a role.
    fn role_grants(self, scope: Scope) -> bool {
        match self {
            Principal::Admin => scope != ContactsRead,
            // The first admin of its organisation: granted contacts:read at creation.
            Principal::OtherAdmin => true,
            Principal::Sender => {
                matches!(scope, ListsRead | ListsWrite | MembersRead | MembersWrite | MessagesRead | MessagesSend)
            }
            Principal::Viewer => matches!(scope, ListsRead | MembersRead | MessagesRead),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Past authorisation: anything but 401 and 403.
    Allowed,
    Status(u16),
}

impl Expect {
    fn accepts(self, got: u16) -> bool {
        match self {
            Expect::Allowed => got != 401 && got != 403,
            Expect::Status(status) => got == status,
        }
    }

    fn label(self) -> String {
        match self {
            Expect::Allowed => "not 401/403".into(),
            Expect::Status(status) => status.to_string(),
        }
    }
}

/// `names_object`: the path names an object of the first organisation, so another
/// organisation's admin must get 404 (tenancy) where the rule lets an admin in.
fn expectation(rule: Rule, principal: Principal, names_object: bool) -> Expect {
    use Principal as P;
    let staff_allowed = |principal: P| match (rule, principal) {
        (Staff, _) => true,
        (StaffSession, P::Key(_)) | (Admin, P::Key(_)) => false,
        (StaffSession, _) => true,
        (Admin, p) => matches!(p, P::Admin | P::OtherAdmin),
        (Scopes(scopes), P::Key(held)) => scopes.iter().all(|s| *s == held),
        (Scopes(scopes), p) => scopes.iter().all(|s| p.role_grants(*s)),
        (Public | Link | Guardian, _) => unreachable!(),
    };
    match (rule, principal) {
        (Public | Link, _) => Expect::Allowed,
        (Guardian, P::Guardian) => Expect::Allowed,
        (Guardian, _) => Expect::Status(401),
        (_, P::Anonymous | P::Guardian) => Expect::Status(401),
        (_, p) if !staff_allowed(p) => Expect::Status(403),
        (_, P::OtherAdmin) if names_object => Expect::Status(404),
        _ => Expect::Allowed,
    }
}

/// Path parameters that are not ids of the first organisation's objects.
fn names_object(template: &str) -> bool {
    template.split('/').any(|segment| segment.starts_with('{') && segment != "{external_id}")
}

const ADDRESS: &str = "hanako.yamada@example.jp";
const DEVICE_TOKEN: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
const GUARDIAN_DEVICE_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const BOUNDARY: &str = "renrakumo-authz-5pW9xQ";
const PDF: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";

#[derive(Debug, Clone)]
enum Credential {
    None,
    Bearer(String),
    ApiKey(String),
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Csv(String),
    Multipart(Vec<u8>),
    /// A refresh token nobody has presented yet (a second presentation ends the session).
    FreshRefreshToken,
    /// An invitation code nobody has used yet (a code works once).
    FreshInvitationCode,
}

/// One organisation with one object of each kind, and the callers of the matrix.
struct Fixtures {
    /// The first admin (`create-admin`, holds `contacts:read`): sets up and observes.
    observer: crate::helpers::Admin,
    callers: Vec<(Principal, Credential)>,
    guardian_token: String,
    list: String,
    /// A guardian on the roster with an address and a device.
    member: String,
    /// The guardian signed in through the app.
    guardian_member: String,
    device: String,
    draft: String,
    draft_attachment: String,
    sent: String,
    sent_attachment: String,
    /// The personal link of `member` for `sent`.
    link: String,
    /// The anti-forgery field of `link`'s page.
    form_key: String,
    staff_user: String,
    login_email: String,
    api_key: String,
}

fn id(reply: &Reply, status: u16) -> String {
    reply.ok(status)["id"].as_str().unwrap_or_else(|| panic!("an id in {}", reply.body)).to_string()
}

fn multipart(filename: &str) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(PDF);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn survey_message(member_ids: &[&str]) -> Value {
    json!({
        "subject": "授業参観の出欠", "body": "10月1日に授業参観を行います。", "from_name": "1年A組 担任",
        "answer_required": true,
        "survey": {"questions": [{"text": "出欠", "kind": "single", "options": ["出席", "欠席"], "required": true}]},
        "targets": {"member_ids": member_ids}, "channels": ["email", "push"],
    })
}

fn answers() -> Value {
    json!({"answers": [{"question": 0, "choices": [0]}]})
}

async fn send(app: &TestApp, method: &Method, path: &str, credential: &Credential, body: &Body) -> Reply {
    let mut request = app.client.request(method.clone(), app.url(path));
    request = match credential {
        Credential::None => request,
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::ApiKey(key) => request.header("X-API-Key", key),
    };
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Form(fields) => request.form(fields),
        Body::Csv(text) => request.header("content-type", "text/csv").body(text.clone()),
        Body::Multipart(bytes) => {
            request.header("content-type", format!("multipart/form-data; boundary={BOUNDARY}")).body(bytes.clone())
        }
        Body::FreshRefreshToken | Body::FreshInvitationCode => unreachable!("resolved before sending"),
    };
    Reply::from(request.send().await.unwrap()).await
}

impl Fixtures {
    async fn build(app: &TestApp) -> Fixtures {
        let observer = app.create_admin("さくら小学校").await;
        let token = observer.access_token.clone();
        let (_, admin) = app.create_staff(&observer, "admin").await;
        let (_, sender) = app.create_staff(&observer, "sender").await;
        let (_, viewer) = app.create_staff(&observer, "viewer").await;
        let other = app.create_admin("もみじ中学校").await;

        let list = id(&app.post("/api/v1/lists", &token, json!({"name": "1年A組"})).await, 201);
        let member = id(
            &app.post(
                "/api/v1/members",
                &token,
                json!({"name": "山田 花子", "emails": [ADDRESS], "attributes": {"grade": "1"}, "list_ids": [list]}),
            )
            .await,
            201,
        );
        let device_path = format!("/api/v1/members/{member}/devices");
        let device = id(&app.post(&device_path, &token, json!({"platform": "apns", "token": DEVICE_TOKEN})).await, 201);
        // App-only: its four address slots are for the app's own operations below.
        let guardian_member =
            id(&app.post("/api/v1/members", &token, json!({"name": "鈴木 一郎", "list_ids": [list]})).await, 201);
        let guardian_devices = format!("/api/v1/members/{guardian_member}/devices");
        app.post(&guardian_devices, &token, json!({"platform": "fcm", "token": GUARDIAN_DEVICE_TOKEN})).await.ok(201);
        let guardian_token = open_app_session(app, &token, &guardian_member).await;

        let draft = id(&app.post("/api/v1/messages", &token, survey_message(&[&member])).await, 201);
        let draft_attachment = upload(app, &token, &draft).await;
        let sent = id(&app.post("/api/v1/messages", &token, survey_message(&[&member, &guardian_member])).await, 201);
        let sent_attachment = upload(app, &token, &sent).await;
        app.post(&format!("/api/v1/messages/{sent}/send"), &token, json!({})).await.ok(202);
        let link = app.state.jwt.receipt_token(&sent, &member).unwrap();
        let form_key = app.state.jwt.form_key(&link);

        let login_email = "kato@school.example.jp".to_string();
        let staff_user = id(
            &app.post(
                "/api/v1/users",
                &token,
                json!({"email": login_email, "password": PASSWORD, "name": "加藤 先生", "role": "viewer"}),
            )
            .await,
            201,
        );
        let (api_key, _) = app.create_api_key(&observer, json!({"name": "名簿連携", "scopes": ["lists:read"]})).await;

        let mut callers = vec![
            (Principal::Anonymous, Credential::None),
            (Principal::Guardian, Credential::Bearer(guardian_token.clone())),
            (Principal::OtherAdmin, Credential::Bearer(other.access_token.clone())),
        ];
        for scope in Scope::ALL {
            let (_, key) =
                app.create_api_key(&observer, json!({"name": scope.as_str(), "scopes": [scope.as_str()]})).await;
            callers.push((Principal::Key(scope), Credential::ApiKey(key)));
        }
        callers.push((Principal::Viewer, Credential::Bearer(viewer)));
        callers.push((Principal::Sender, Credential::Bearer(sender)));
        callers.push((Principal::Admin, Credential::Bearer(admin)));
        assert_eq!(callers.iter().map(|(p, _)| *p).collect::<Vec<_>>(), Principal::all());

        Fixtures {
            observer,
            callers,
            guardian_token,
            list,
            member,
            guardian_member,
            device,
            draft,
            draft_attachment,
            sent,
            sent_attachment,
            link,
            form_key,
            staff_user,
            login_email,
            api_key,
        }
    }

    fn token(&self) -> &str {
        &self.observer.access_token
    }

    /// What an answer to a staff operation gave away: anything of the first organisation
    /// to another one (beyond what the caller sent), or a guardian's address or device
    /// token to a caller without `contacts:read`.
    fn leaks(&self, principal: Principal, answer: &str, sent: &str) -> Vec<String> {
        let mut leaks = Vec::new();
        if principal == Principal::OtherAdmin {
            let mut first_org = self.first_org_values().into_iter();
            if let Some(value) = first_org.find(|v| answer.contains(v) && !sent.contains(v)) {
                leaks.push(format!("another organisation got back {value:?}"));
            }
        }
        if !principal.reads_contacts() {
            let mut contacts = [ADDRESS, DEVICE_TOKEN, GUARDIAN_DEVICE_TOKEN].into_iter();
            if let Some(value) = contacts.find(|v| answer.contains(v)) {
                leaks.push(format!("unmasked contact {value:?} without contacts:read"));
            }
        }
        leaks
    }

    /// Values of the first organisation that another organisation must never get back.
    fn first_org_values(&self) -> Vec<&str> {
        vec![
            &self.list,
            &self.member,
            &self.guardian_member,
            &self.device,
            &self.draft,
            &self.sent,
            &self.draft_attachment,
            &self.sent_attachment,
            &self.staff_user,
            &self.api_key,
            ADDRESS,
            DEVICE_TOKEN,
            "山田 花子",
        ]
    }

    async fn fresh_list(&self, app: &TestApp) -> String {
        id(
            &app.post(
                "/api/v1/lists",
                self.token(),
                json!({"name": format!("臨時 {}", uuid::Uuid::new_v4().simple())}),
            )
            .await,
            201,
        )
    }

    async fn fresh_member(&self, app: &TestApp) -> String {
        id(&app.post("/api/v1/members", self.token(), json!({"name": "田中 実"})).await, 201)
    }

    async fn fresh_draft(&self, app: &TestApp) -> String {
        id(&app.post("/api/v1/messages", self.token(), survey_message(&[&self.member])).await, 201)
    }

    /// The request an operation is called with; the same for every caller, so that what
    /// differs between cells is the credential alone. Operations that use up their target
    /// (deleting, sending, cancelling) get a fresh one of their own.
    async fn request(&self, app: &TestApp, operation: &str) -> (String, Body) {
        let token = self.token();
        let (list, member, draft, sent, link) = (&self.list, &self.member, &self.draft, &self.sent, &self.link);
        match operation {
            "GET /healthz" | "GET /readyz" => (operation[4..].into(), Body::None),
            "POST /api/v1/auth/login" => {
                ("/api/v1/auth/login".into(), Body::Json(json!({"email": self.login_email, "password": PASSWORD})))
            }
            "POST /api/v1/auth/token" => (
                "/api/v1/auth/token".into(),
                Body::Form(vec![
                    ("grant_type".into(), "password".into()),
                    ("username".into(), self.login_email.clone()),
                    ("password".into(), PASSWORD.into()),
                ]),
            ),
            "POST /api/v1/auth/refresh" => ("/api/v1/auth/refresh".into(), Body::FreshRefreshToken),
            "POST /api/v1/auth/logout" => ("/api/v1/auth/logout".into(), Body::None),
            "GET /api/v1/me" => ("/api/v1/me".into(), Body::None),
            "GET /api/v1/users" => ("/api/v1/users".into(), Body::None),
            "POST /api/v1/users" => (
                "/api/v1/users".into(),
                Body::Json(
                    json!({"email": "sato@school.example.jp", "password": PASSWORD, "name": "佐藤 先生", "role": "sender"}),
                ),
            ),
            "GET /api/v1/users/{id}" => (format!("/api/v1/users/{}", self.staff_user), Body::None),
            "PATCH /api/v1/users/{id}" => {
                (format!("/api/v1/users/{}", self.staff_user), Body::Json(json!({"name": "加藤 教頭"})))
            }
            "DELETE /api/v1/users/{id}" => {
                let body = json!({"email": "ito@school.example.jp", "password": PASSWORD, "name": "伊藤 先生", "role": "viewer"});
                let user = id(&app.post("/api/v1/users", token, body).await, 201);
                (format!("/api/v1/users/{user}"), Body::None)
            }
            "GET /api/v1/api-keys" => ("/api/v1/api-keys".into(), Body::None),
            "POST /api/v1/api-keys" => {
                ("/api/v1/api-keys".into(), Body::Json(json!({"name": "校務支援", "scopes": ["members:read"]})))
            }
            "GET /api/v1/api-keys/{id}" => (format!("/api/v1/api-keys/{}", self.api_key), Body::None),
            "DELETE /api/v1/api-keys/{id}" => {
                let (key, _) =
                    app.create_api_key(&self.observer, json!({"name": "廃止予定", "scopes": ["lists:read"]})).await;
                (format!("/api/v1/api-keys/{key}"), Body::None)
            }
            "GET /api/v1/lists" => ("/api/v1/lists".into(), Body::None),
            "POST /api/v1/lists" => ("/api/v1/lists".into(), Body::Json(json!({"name": "2年B組"}))),
            "GET /api/v1/lists/{id}" => (format!("/api/v1/lists/{list}"), Body::None),
            "PATCH /api/v1/lists/{id}" => {
                (format!("/api/v1/lists/{list}"), Body::Json(json!({"description": "2026年度"})))
            }
            "DELETE /api/v1/lists/{id}" => (format!("/api/v1/lists/{}", self.fresh_list(app).await), Body::None),
            "PUT /api/v1/lists/{id}/join-code" => (format!("/api/v1/lists/{list}/join-code"), Body::None),
            "DELETE /api/v1/lists/{id}/join-code" => {
                let fresh = self.fresh_list(app).await;
                app.call(Method::PUT, &format!("/api/v1/lists/{fresh}/join-code"), Auth::Bearer(token), None)
                    .await
                    .ok(200);
                (format!("/api/v1/lists/{fresh}/join-code"), Body::None)
            }
            "GET /api/v1/lists/{id}/members" => (format!("/api/v1/lists/{list}/members"), Body::None),
            "POST /api/v1/lists/{id}/members/bulk" => {
                let fresh = self.fresh_list(app).await;
                (
                    format!("/api/v1/lists/{fresh}/members/bulk"),
                    Body::Json(json!({"action": "add", "member_ids": [member]})),
                )
            }
            "PUT /api/v1/lists/{id}/members/{member_id}" => {
                (format!("/api/v1/lists/{}/members/{member}", self.fresh_list(app).await), Body::None)
            }
            "DELETE /api/v1/lists/{id}/members/{member_id}" => {
                let fresh = self.fresh_list(app).await;
                let membership = format!("/api/v1/lists/{fresh}/members/{member}");
                let added = app.call(Method::PUT, &membership, Auth::Bearer(token), None).await;
                assert!(added.status.is_success(), "{}", added.body);
                (membership, Body::None)
            }
            "GET /api/v1/members" => ("/api/v1/members".into(), Body::None),
            "POST /api/v1/members" => (
                "/api/v1/members".into(),
                Body::Json(json!({"name": "高橋 三郎", "emails": ["saburo@example.jp"], "attributes": {"grade": "2"}})),
            ),
            "PUT /api/v1/members/by-external-id/{external_id}" => {
                ("/api/v1/members/by-external-id/S-0001".into(), Body::Json(json!({"name": "伊藤 四郎"})))
            }
            "GET /api/v1/members/export" => ("/api/v1/members/export".into(), Body::None),
            "POST /api/v1/members/import" => {
                ("/api/v1/members/import".into(), Body::Csv("name,email1,grade\n渡辺 五郎,goro@example.jp,3\n".into()))
            }
            "POST /api/v1/members/promote" => (
                "/api/v1/members/promote".into(),
                Body::Json(json!({"attribute": "grade", "changes": {"1": "2", "2": "3"}})),
            ),
            "GET /api/v1/members/{id}" => (format!("/api/v1/members/{member}"), Body::None),
            "PATCH /api/v1/members/{id}" => {
                (format!("/api/v1/members/{member}"), Body::Json(json!({"relation": "母"})))
            }
            "DELETE /api/v1/members/{id}" => (format!("/api/v1/members/{}", self.fresh_member(app).await), Body::None),
            "POST /api/v1/members/{id}/suspend" => {
                (format!("/api/v1/members/{}/suspend", self.fresh_member(app).await), Body::None)
            }
            "POST /api/v1/members/{id}/resume" => {
                let fresh = self.fresh_member(app).await;
                app.post(&format!("/api/v1/members/{fresh}/suspend"), token, json!({})).await.ok(200);
                (format!("/api/v1/members/{fresh}/resume"), Body::None)
            }
            "POST /api/v1/members/{id}/approve" => {
                (format!("/api/v1/members/{}/approve", self.register_pending(app).await), Body::None)
            }
            "GET /api/v1/members/{id}/devices" => (format!("/api/v1/members/{member}/devices"), Body::None),
            "POST /api/v1/members/{id}/devices" => (
                format!("/api/v1/members/{}/devices", self.fresh_member(app).await),
                Body::Json(json!({"platform": "fcm", "token": "fcm-registration-token-0001"})),
            ),
            "DELETE /api/v1/members/{id}/devices/{device_id}" => {
                let fresh = self.fresh_member(app).await;
                let devices = format!("/api/v1/members/{fresh}/devices");
                let device = id(
                    &app.post(&devices, token, json!({"platform": "fcm", "token": "fcm-to-remove-0001"})).await,
                    201,
                );
                (format!("{devices}/{device}"), Body::None)
            }
            "POST /api/v1/members/{id}/invitations" => (format!("/api/v1/members/{member}/invitations"), Body::None),
            "GET /api/v1/messages" => ("/api/v1/messages".into(), Body::None),
            "POST /api/v1/messages" => ("/api/v1/messages".into(), Body::Json(survey_message(&[member]))),
            "POST /api/v1/messages/bulk-delete" => {
                ("/api/v1/messages/bulk-delete".into(), Body::Json(json!({"ids": [self.fresh_draft(app).await]})))
            }
            "GET /api/v1/messages/{id}" => (format!("/api/v1/messages/{draft}"), Body::None),
            "PATCH /api/v1/messages/{id}" => {
                (format!("/api/v1/messages/{draft}"), Body::Json(json!({"subject": "授業参観の出欠（再掲）"})))
            }
            "DELETE /api/v1/messages/{id}" => (format!("/api/v1/messages/{}", self.fresh_draft(app).await), Body::None),
            "POST /api/v1/messages/{id}/copy" => (format!("/api/v1/messages/{sent}/copy"), Body::None),
            "GET /api/v1/messages/{id}/attachments" => (format!("/api/v1/messages/{draft}/attachments"), Body::None),
            "POST /api/v1/messages/{id}/attachments" => (
                format!("/api/v1/messages/{}/attachments", self.fresh_draft(app).await),
                Body::Multipart(multipart("持ち物.pdf")),
            ),
            "GET /api/v1/messages/{id}/attachments/{attachment_id}" => {
                (format!("/api/v1/messages/{draft}/attachments/{}", self.draft_attachment), Body::None)
            }
            "DELETE /api/v1/messages/{id}/attachments/{attachment_id}" => {
                let fresh = self.fresh_draft(app).await;
                let attachment = upload(app, token, &fresh).await;
                (format!("/api/v1/messages/{fresh}/attachments/{attachment}"), Body::None)
            }
            "GET /api/v1/messages/{id}/preview" => (format!("/api/v1/messages/{draft}/preview"), Body::None),
            "POST /api/v1/messages/{id}/send" => {
                (format!("/api/v1/messages/{}/send", self.fresh_draft(app).await), Body::Json(json!({})))
            }
            "POST /api/v1/messages/{id}/cancel" => {
                let fresh = self.fresh_draft(app).await;
                let send_at = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
                app.post(&format!("/api/v1/messages/{fresh}/send"), token, json!({"send_at": send_at})).await.ok(202);
                (format!("/api/v1/messages/{fresh}/cancel"), Body::None)
            }
            "POST /api/v1/messages/{id}/resend" => {
                (format!("/api/v1/messages/{sent}/resend"), Body::Json(json!({"to": "unacknowledged"})))
            }
            "GET /api/v1/messages/{id}/stats" => (format!("/api/v1/messages/{sent}/stats"), Body::None),
            "GET /api/v1/messages/{id}/recipients" => (format!("/api/v1/messages/{sent}/recipients"), Body::None),
            "GET /api/v1/messages/{id}/results" => (format!("/api/v1/messages/{sent}/results"), Body::None),
            "GET /api/v1/receipts/{token}" => (format!("/api/v1/receipts/{link}"), Body::None),
            "POST /api/v1/receipts/{token}/ack" => (format!("/api/v1/receipts/{link}/ack"), Body::None),
            "PUT /api/v1/receipts/{token}/answers" => {
                (format!("/api/v1/receipts/{link}/answers"), Body::Json(answers()))
            }
            "GET /r/{token}" => (format!("/r/{link}"), Body::None),
            "POST /r/{token}/ack" => (format!("/r/{link}/ack"), self.page_form(&[])),
            "POST /r/{token}/answers" => (format!("/r/{link}/answers"), self.page_form(&[("q0", "1")])),
            "GET /r/{token}/attachments/{attachment_id}" => {
                (format!("/r/{link}/attachments/{}", self.sent_attachment), Body::None)
            }
            "GET /confirm-email/{token}" => {
                let confirmation = self.add_app_address(app, "ichiro.confirm@example.jp").await;
                (confirmation, Body::None)
            }
            "POST /confirm-email/{token}" => {
                let confirmation = self.add_app_address(app, "ichiro.confirmed@example.jp").await;
                (confirmation, Body::None)
            }
            "POST /api/v1/app/session" => ("/api/v1/app/session".into(), Body::FreshInvitationCode),
            "POST /api/v1/app/register" => {
                let code = self.join_code(app).await;
                ("/api/v1/app/register".into(), Body::Json(json!({"join_code": code, "name": "佐藤 次郎"})))
            }
            "GET /api/v1/app/me" => ("/api/v1/app/me".into(), Body::None),
            "PATCH /api/v1/app/me" => ("/api/v1/app/me".into(), Body::Json(json!({"relation": "父"}))),
            "POST /api/v1/app/me/emails" => {
                ("/api/v1/app/me/emails".into(), Body::Json(json!({"address": "ichiro.papa@example.jp"})))
            }
            "DELETE /api/v1/app/me/emails/{address}" => {
                self.add_app_address(app, "ichiro.old@example.jp").await;
                ("/api/v1/app/me/emails/ichiro.old@example.jp".into(), Body::None)
            }
            "POST /api/v1/app/me/emails/{address}/confirmation" => {
                self.add_app_address(app, "ichiro.mobile@example.jp").await;
                ("/api/v1/app/me/emails/ichiro.mobile@example.jp/confirmation".into(), Body::None)
            }
            "POST /api/v1/app/me/devices" => (
                "/api/v1/app/me/devices".into(),
                Body::Json(json!({"platform": "fcm", "token": "fcm-app-registration-0001"})),
            ),
            "DELETE /api/v1/app/me/devices/{device_id}" => {
                let body = json!({"platform": "apns", "token": "apns-old-phone-0001"});
                let device = id(&app.post("/api/v1/app/me/devices", &self.guardian_token, body).await, 201);
                (format!("/api/v1/app/me/devices/{device}"), Body::None)
            }
            "GET /api/v1/app/messages" => ("/api/v1/app/messages".into(), Body::None),
            "GET /api/v1/app/messages/{id}" => (format!("/api/v1/app/messages/{sent}"), Body::None),
            "POST /api/v1/app/messages/{id}/ack" => (format!("/api/v1/app/messages/{sent}/ack"), Body::None),
            "PUT /api/v1/app/messages/{id}/answers" => {
                (format!("/api/v1/app/messages/{sent}/answers"), Body::Json(answers()))
            }
            "GET /api/v1/app/messages/{id}/attachments/{attachment_id}" => {
                (format!("/api/v1/app/messages/{sent}/attachments/{}", self.sent_attachment), Body::None)
            }
            "POST /api/v1/app/logout" => ("/api/v1/app/logout".into(), Body::None),
            other => panic!("{other} has a rule but no request: add one to Fixtures::request"),
        }
    }

    /// The form the personal page posts, with its anti-forgery field.
    fn page_form(&self, fields: &[(&str, &str)]) -> Body {
        let mut form = vec![("csrf".to_string(), self.form_key.clone())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Body::Form(form)
    }

    /// The guardian adds an address in the app; returns the path of its confirmation link.
    async fn add_app_address(&self, app: &TestApp, address: &str) -> String {
        let before = app.outbox_messages().len();
        let added = app.post("/api/v1/app/me/emails", &self.guardian_token, json!({"address": address})).await;
        added.ok(201);
        let mails = app.outbox_messages();
        assert_eq!(mails.len(), before + 1, "one confirmation mail to {address}");
        let mail = mails.last().unwrap();
        let text =
            mail_parser::MessageParser::default().parse(mail.as_bytes()).unwrap().body_text(0).unwrap().to_string();
        let link =
            text.lines().find(|l| l.contains("/confirm-email/")).expect("a confirmation link").trim().to_string();
        link[link.find("/confirm-email/").unwrap()..].to_string()
    }

    /// A join code of a fresh list.
    async fn join_code(&self, app: &TestApp) -> String {
        let fresh = self.fresh_list(app).await;
        let code =
            app.call(Method::PUT, &format!("/api/v1/lists/{fresh}/join-code"), Auth::Bearer(self.token()), None).await;
        code.ok(200)["join_code"].as_str().unwrap().to_string()
    }

    /// A guardian who registered in the app with a join code and waits for approval.
    async fn register_pending(&self, app: &TestApp) -> String {
        let code = self.join_code(app).await;
        let body = json!({"join_code": code, "name": "小林 六郎"});
        let registered = app.call(Method::POST, "/api/v1/app/register", Auth::None, Some(body)).await;
        registered.ok(201)["profile"]["id"].as_str().unwrap().to_string()
    }

    async fn resolve(&self, app: &TestApp, body: &Body) -> Body {
        match body {
            Body::FreshRefreshToken => {
                let tokens = app.login(&self.login_email, PASSWORD).await;
                Body::Json(json!({"refresh_token": tokens.ok(200)["refresh_token"]}))
            }
            Body::FreshInvitationCode => {
                // The first admin holds contacts:read, so this works whether or not inviting
                // needs that permission.
                let invitation = format!("/api/v1/members/{}/invitations", self.member);
                let code = app.post(&invitation, self.token(), json!({})).await.ok(201)["code"].clone();
                Body::Json(json!({"code": code}))
            }
            other => other.clone(),
        }
    }

    /// The organisation as its first admin sees it, for "a refused call changed nothing".
    async fn snapshot(&self, app: &TestApp, extra: &[String]) -> BTreeMap<String, Value> {
        let mut paths = vec![
            "/api/v1/lists?limit=200".to_string(),
            "/api/v1/members?limit=200".into(),
            "/api/v1/messages?limit=200".into(),
            "/api/v1/users?limit=200".into(),
            "/api/v1/api-keys?limit=200".into(),
            format!("/api/v1/lists/{}/members?limit=200", self.list),
            format!("/api/v1/messages/{}/attachments", self.draft),
            format!("/api/v1/messages/{}/recipients?limit=200", self.sent),
            format!("/api/v1/messages/{}/stats", self.sent),
        ];
        paths.extend(extra.iter().cloned());
        let mut snapshot = BTreeMap::new();
        for path in paths {
            let mut reply = app.get(&path, self.token()).await;
            forget_volatile(&mut reply.body);
            snapshot.insert(path, json!({"status": reply.status.as_u16(), "body": reply.body}));
        }
        let mut profile = app.get("/api/v1/app/me", &self.guardian_token).await;
        forget_volatile(&mut profile.body);
        snapshot.insert(
            "/api/v1/app/me (guardian)".into(),
            json!({"status": profile.status.as_u16(), "body": profile.body}),
        );
        snapshot
    }
}

/// Fields that change by being used, not by the call under test (a key's last use).
fn forget_volatile(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("last_used_at");
            map.values_mut().for_each(forget_volatile);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_volatile),
        _ => {}
    }
}

async fn upload(app: &TestApp, token: &str, message: &str) -> String {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/messages/{message}/attachments")))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart("お知らせ.pdf"))
        .send()
        .await
        .unwrap();
    id(&Reply::from(response).await, 201)
}

/// A fresh app session of the member, through an invitation of the first admin.
async fn open_app_session(app: &TestApp, token: &str, member: &str) -> String {
    let invitation = app.post(&format!("/api/v1/members/{member}/invitations"), token, json!({})).await;
    let code = invitation.ok(201)["code"].clone();
    let session = app.call(Method::POST, "/api/v1/app/session", Auth::None, Some(json!({"code": code}))).await;
    session.ok(201)["access_token"].as_str().unwrap().to_string()
}

/// Every (method, path template) of the OpenAPI document the server serves.
fn documented_operations() -> Vec<String> {
    let spec: Value = serde_json::from_str(&renrakumo::openapi::spec_json()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if item.get(method).is_some() {
                operations.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

struct Cell {
    principal: Principal,
    expected: Expect,
    got: u16,
    /// What else went wrong: a leak, or a change made by a refused call.
    problems: Vec<String>,
}

impl Cell {
    fn holds(&self) -> bool {
        self.expected.accepts(self.got) && self.problems.is_empty()
    }
}

async fn every_operation_answers_each_kind_of_caller_as_its_rule_says(backend: Backend) {
    // Every operation has a rule, and every rule an operation.
    let documented = documented_operations();
    let rules: BTreeMap<&str, Rule> = RULES.iter().copied().collect();
    assert_eq!(rules.len(), RULES.len(), "an operation has two rules");
    let unruled: Vec<&String> = documented.iter().filter(|op| !rules.contains_key(op.as_str())).collect();
    assert!(unruled.is_empty(), "operations in the OpenAPI document without a rule in RULES: {unruled:#?}");
    let stale: Vec<&&str> = rules.keys().filter(|op| !documented.iter().any(|d| d == *op)).collect();
    assert!(stale.is_empty(), "rules for operations the OpenAPI document does not have: {stale:#?}");

    let app = spawn_app(backend).await;
    let fx = Fixtures::build(&app).await;

    // Ids of the caller's own organisation, named under a parent they do not belong to:
    // the path's checks see the parent, so each lookup must also check the pairing.
    let guardian = Credential::Bearer(fx.guardian_token.clone());
    let staff = Credential::Bearer(fx.token().to_string());
    let mismatched = [
        (Method::GET, format!("/api/v1/app/messages/{}", fx.draft), &guardian),
        (Method::GET, format!("/api/v1/app/messages/{}/attachments/{}", fx.sent, fx.draft_attachment), &guardian),
        (Method::GET, format!("/r/{}/attachments/{}", fx.link, fx.draft_attachment), &Credential::None),
        (Method::DELETE, format!("/api/v1/app/me/devices/{}", fx.device), &guardian),
        (Method::GET, format!("/api/v1/messages/{}/attachments/{}", fx.sent, fx.draft_attachment), &staff),
        (Method::DELETE, format!("/api/v1/members/{}/devices/{}", fx.guardian_member, fx.device), &staff),
    ];
    for (method, path, credential) in mismatched {
        let reply = send(&app, &method, &path, credential, &Body::None).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    let devices = app.get(&format!("/api/v1/members/{}/devices", fx.member), fx.token()).await;
    assert_eq!(devices.ok(200)[0]["id"], fx.device.as_str(), "the device is still there");

    let mut order: Vec<&str> = RULES.iter().map(|(op, _)| *op).filter(|op| !RUN_LAST.contains(op)).collect();
    order.extend(RUN_LAST);

    let mut matrix: Vec<(&str, Vec<Cell>)> = Vec::new();
    for operation in order {
        let rule = rules[operation];
        let (method, template) = operation.split_once(' ').unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (path, body) = fx.request(&app, operation).await;
        let sent_text = format!("{path} {body:?}");

        // Refused callers first, between two snapshots: none of them may change the first
        // organisation. So is another organisation's admin, whatever it may do in its own,
        // except where the credential is in the path (a link) or there is none (public).
        let staff_rule = !matches!(rule, Public | Link | Guardian);
        let expectations: Vec<(Principal, &Credential, Expect)> =
            fx.callers.iter().map(|(p, c)| (*p, c, expectation(rule, *p, names_object(template)))).collect();
        let (refused, allowed): (Vec<_>, Vec<_>) = expectations
            .into_iter()
            .partition(|(p, _, expected)| *expected != Expect::Allowed || (staff_rule && *p == Principal::OtherAdmin));
        // The object the call names, where the document can show it, is watched too.
        let witness: Vec<String> =
            if staff_rule && documented.contains(&format!("GET {template}")) { vec![path.clone()] } else { vec![] };
        let before = if method != Method::GET { Some(fx.snapshot(&app, &witness).await) } else { None };
        let mut cells = Vec::new();
        for (principal, credential, expected) in refused.iter().chain(allowed.iter()) {
            let body = fx.resolve(&app, &body).await;
            let reply = send(&app, &method, &path, credential, &body).await;
            let mut problems =
                if staff_rule { fx.leaks(*principal, &reply.body.to_string(), &sent_text) } else { vec![] };
            if let Some(before) = &before
                && cells.len() + 1 == refused.len()
            {
                let after = fx.snapshot(&app, &witness).await;
                let changed: Vec<&String> = after.keys().filter(|k| after.get(*k) != before.get(*k)).collect();
                if !changed.is_empty() {
                    problems.push(format!("a refused call changed what these show: {changed:?}"));
                }
            }
            cells.push(Cell { principal: *principal, expected: *expected, got: reply.status.as_u16(), problems });
        }
        cells.sort_by_key(|c| Principal::all().iter().position(|p| *p == c.principal));
        matrix.push((operation, cells));
    }

    let failures: Vec<String> = matrix
        .iter()
        .flat_map(|(operation, cells)| {
            cells.iter().filter(|c| !c.holds()).map(move |c| {
                let problems: String = c.problems.iter().map(|p| format!("; {p}")).collect();
                format!(
                    "{operation} × {}: expected {}, got {}{problems}",
                    c.principal.name(),
                    c.expected.label(),
                    c.got
                )
            })
        })
        .collect();
    if !failures.is_empty() {
        panic!("{}\n{} cells broke:\n{}", render(&matrix), failures.len(), failures.join("\n"));
    }
}

/// The matrix as a table: each cell is the status got, `!` where it is not the expected one.
fn render(matrix: &[(&str, Vec<Cell>)]) -> String {
    let width = matrix.iter().map(|(op, _)| op.chars().count()).max().unwrap_or(0);
    let mut out = format!("{:width$} ", "");
    for principal in Principal::all() {
        let _ = write!(out, "{:>6}", principal.short());
    }
    out.push('\n');
    for (operation, cells) in matrix {
        let _ = write!(out, "{operation:width$} ");
        for cell in cells {
            let mark = if cell.holds() { ' ' } else { '!' };
            let _ = write!(out, "{:>5}{mark}", cell.got);
        }
        out.push('\n');
    }
    out
}
