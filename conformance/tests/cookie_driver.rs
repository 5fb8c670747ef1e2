//! The sealed-cookie driver passes the session suite (server-only cases return early).

use sessionkit_conformance::{CookieBackend, session_suite};

session_suite!(CookieBackend);
