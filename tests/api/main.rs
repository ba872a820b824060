//! Integration tests: the real server on a random port, on a fresh database per test.
//! Every test runs twice, `sqlite::…` and `postgres::…` (see `helpers::on_both_backends`).

mod helpers;

mod api_keys;
mod auth;
mod cli;
mod errors;
mod lists;
mod members;
mod operations;
mod roster_io;
mod users;
