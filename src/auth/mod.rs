//! Who is calling: staff with an access token (JWT) or a school-information system with an
//! API key. Handlers take a [`Caller`] and ask it for the scope they need.

pub mod caller;
pub mod guardian;
pub mod password;
pub mod tokens;

pub use caller::{Actor, Caller};
pub use guardian::Guardian;
pub use tokens::JwtKeys;
