//! Integration tests: the real server on a random port, on a fresh database per test.
//! Every test runs twice, `sqlite::…` and `postgres::…` (see `helpers::on_both_backends`).

mod helpers;

mod api_keys;
mod app;
mod attachments;
mod auth;
mod authz_matrix;
mod cli;
mod errors;
mod idempotency;
mod invitations;
mod lists;
mod mailer;
mod members;
mod messages;
mod operations;
mod push;
mod push_delivery;
mod push_servers;
mod receipts;
mod roster_io;
mod smtp_server;
mod throttles;
mod users;
