//! What the adapter fuzz targets share: a sequence of up to 8 requests chosen by
//! the fuzzer (route, and `Cookie` headers from the jar, raw bytes, both, or two
//! headers), a cookie jar kept from the responses, and the invariants: no 5xx from
//! cookie bytes (the routes never fail on their own and the memory store is always
//! up) and no `Set-Cookie` over 4096 bytes. Each adapter supplies only how to send one
//! request.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use http::{HeaderMap, HeaderValue, header};

/// The routes every adapter app serves: method and path.
pub const ROUTES: [(&str, &str); 6] = [
    ("GET", "/untouched"),
    ("GET", "/read"),
    ("POST", "/write"),
    ("POST", "/regenerate"),
    ("POST", "/destroy"),
    ("POST", "/admin"),
];

/// The registry the adapter apps run on: the built-in `web` and `admin` sessions, in
/// memory or, when `sealed`, in sealed cookies; no environment is read.
pub fn sessions(sealed: bool) -> sessionkit::Sessions {
    let mut registry = sessionkit::Registry::new();
    registry.set_secret(sessionkit::Secret::new(*b"adapter fuzzing secret, 32 bytes").expect("32 bytes"));
    if sealed {
        for name in ["web", "admin"] {
            registry.session_mut(name).expect("built in").driver = sessionkit::DriverChoice::Cookie;
        }
    }
    registry.build_with_env(&|_| None).expect("registry")
}

/// One runtime for all inputs.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

#[derive(Debug, Arbitrary)]
enum CookieSource {
    Jar,
    Raw(Vec<u8>),
    JarThenRaw(Vec<u8>),
    Twice(Vec<u8>, Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Step {
    route: u8,
    cookie: CookieSource,
}

/// What a request answered, as far as the invariants care.
pub struct Reply {
    status: u16,
    set_cookies: Vec<String>,
}

impl Reply {
    /// From a response's status and headers.
    pub fn of(status: u16, headers: &HeaderMap) -> Self {
        Self::with_set_cookies(
            status,
            headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        )
    }

    /// From a status and the `Set-Cookie` values, for a framework whose header map is
    /// not `http`'s.
    pub fn with_set_cookies<'a>(status: u16, set_cookies: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let set_cookies = set_cookies
            .into_iter()
            .map(|v| String::from_utf8(v.to_vec()).expect("set-cookie is ASCII"))
            .collect();
        Reply { status, set_cookies }
    }
}

/// Runs the requests `data` describes. `send(sealed, method, path, cookie_headers)`
/// sends one through the adapter's app (memory sessions, or sealed-cookie sessions when
/// `sealed`).
pub fn run(data: &[u8], mut send: impl FnMut(bool, &'static str, &'static str, Vec<HeaderValue>) -> Reply) {
    let mut u = Unstructured::new(data);
    let Ok(sealed) = u.arbitrary::<bool>() else { return };
    let mut jar: Vec<(String, String)> = Vec::new();
    for _ in 0..8 {
        let Ok(step) = u.arbitrary::<Step>() else { return };
        let (method, path) = ROUTES[usize::from(step.route) % ROUTES.len()];
        let jar_header = jar
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let headers: Vec<Vec<u8>> = match step.cookie {
            CookieSource::Jar => vec![jar_header.into_bytes()],
            CookieSource::Raw(raw) => vec![raw],
            CookieSource::JarThenRaw(raw) => vec![jar_header.into_bytes(), raw],
            CookieSource::Twice(a, b) => vec![a, b],
        };
        // Bytes hyper would refuse never reach a service.
        let cookies = headers
            .iter()
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
            .collect();
        let reply = send(sealed, method, path, cookies);
        assert!(reply.status < 500, "{method} {path} answered {}", reply.status);
        for text in &reply.set_cookies {
            assert!(text.len() <= 4096);
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            jar.retain(|(n, _)| n != name);
            if !value.is_empty() {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}
