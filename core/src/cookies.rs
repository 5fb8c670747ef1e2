//! Reading `Cookie` request headers and writing `Set-Cookie` values.
//!
//! Parsing and rendering are the `cookie` crate's (well kept and fuzzed upstream); this
//! module adds our rules: which values are candidates for a session, the attribute rules
//! for prefixed names, explicit `SameSite`, and the 4096-byte limit.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use cookie::Cookie;

/// The largest Set-Cookie value (name, value and attributes) we emit, in bytes.
/// Browsers are only required to store cookies up to this size.
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// How many cookies with the session's name are tried per request. Browsers send
/// duplicates when cookies with one name exist for several paths or domains; an attacker
/// who can set cookies on a sibling domain can add more. Bounding the count bounds the
/// verification work a request can cause.
pub const MAX_CANDIDATES: usize = 4;

/// The most cookies one sealed cookie session may be split over: the hard upper bound
/// of a session's `cookie_chunks` ([`SessionDef::cookie_chunks`]). Eight chunks carry
/// about 23 KiB of sealed data and make a `Cookie` request header of up to 32 KiB,
/// four times what many proxies and servers accept by default (nginx and Apache: 8 KiB
/// per header line).
///
/// [`SessionDef::cookie_chunks`]: crate::SessionDef::cookie_chunks
pub const MAX_COOKIE_CHUNKS: u8 = 8;

// The machine records which chunk names a request carried in a `u8` bit set.
const _: () = assert!(MAX_COOKIE_CHUNKS >= 1 && MAX_COOKIE_CHUNKS <= 8);

/// The `SameSite` attribute. Always written explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: the cookie specification defines exactly these three values"
)]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations (the default).
    #[default]
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on every request; requires `Secure`.
    None,
}

impl SameSite {
    /// Parses `"lax"`, `"strict"` or `"none"` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            "none" => Some(SameSite::None),
            _ => None,
        }
    }

    /// The attribute value as written in Set-Cookie.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }

    fn to_cookie(self) -> cookie::SameSite {
        match self {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::None => cookie::SameSite::None,
        }
    }
}

/// The attributes of one session's cookie. Build with [`CookieSettings::new`], adjust the
/// public fields, then [`CookieSettings::validate`] (the registry does this at startup).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieSettings {
    /// The cookie name.
    pub name: String,
    /// The `Domain` attribute; `None` for a host-only cookie.
    pub domain: Option<String>,
    /// The `Path` attribute.
    pub path: String,
    /// Whether to set `Secure`.
    pub secure: bool,
    /// Whether to set `HttpOnly`.
    pub http_only: bool,
    /// The `SameSite` attribute.
    pub same_site: SameSite,
    /// Whether to set `Partitioned` (CHIPS).
    pub partitioned: bool,
    /// `true`: the cookie carries `Max-Age` up to the session's expiry. `false`: a
    /// browser-session cookie with no `Max-Age`, dropped when the browser closes (the
    /// server still enforces the session's expiry).
    pub persistent: bool,
}

/// An attribute combination that browsers would reject or that weakens the cookie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieRuleError {
    /// The name is empty or has characters not allowed in a cookie name.
    #[error("cookie name {name:?} is not a valid cookie name (RFC 6265 token)")]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// `__Host-` names need `Secure`, `Path=/` and no `Domain`.
    #[error(
        "cookie name {name:?} has the __Host- prefix, which requires secure = true, cookie_path = \"/\" and no cookie_domain"
    )]
    HostPrefix {
        /// The cookie name.
        name: String,
    },
    /// `__Secure-` names need `Secure`.
    #[error("cookie name {name:?} has the __Secure- prefix, which requires secure = true")]
    SecurePrefix {
        /// The cookie name.
        name: String,
    },
    /// `SameSite=None` is refused by browsers without `Secure`.
    #[error("same_site = \"none\" requires secure = true")]
    SameSiteNoneInsecure,
    /// `Partitioned` is refused by browsers without `Secure`.
    #[error("partitioned = true requires secure = true")]
    PartitionedInsecure,
    /// The path does not start with `/` or has characters that would break the header.
    #[error("cookie_path {path:?} must start with '/' and contain no ';', spaces or control characters")]
    InvalidPath {
        /// The refused path.
        path: String,
    },
    /// The domain has characters that would break the header.
    #[error("cookie_domain {domain:?} is not a valid domain")]
    InvalidDomain {
        /// The refused domain.
        domain: String,
    },
}

impl CookieSettings {
    /// Defaults for a cookie called `name`: host-only, `Path=/`, `Secure`, `HttpOnly`,
    /// `SameSite=Lax`, persistent, not partitioned.
    pub fn new(name: impl Into<String>) -> Self {
        CookieSettings {
            name: name.into(),
            domain: None,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            persistent: true,
        }
    }

    /// Checks the rules of docs/design.md ("Cookie attributes"): valid name, path and domain; `__Host-` and
    /// `__Secure-` prefixes (compared case-insensitively, as RFC 6265bis does);
    /// `SameSite=None` and `Partitioned` only with `Secure`.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), CookieRuleError> {
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(CookieRuleError::InvalidName {
                name: self.name.clone(),
            });
        }
        if !self.path.starts_with('/') || self.path.bytes().any(|b| b == b';' || b <= b' ' || b >= 0x7f) {
            return Err(CookieRuleError::InvalidPath {
                path: self.path.clone(),
            });
        }
        if let Some(domain) = &self.domain {
            let trimmed = domain.strip_prefix('.').unwrap_or(domain);
            if trimmed.is_empty()
                || !trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(CookieRuleError::InvalidDomain {
                    domain: domain.clone(),
                });
            }
        }
        let lower = self.name.to_ascii_lowercase();
        if lower.starts_with("__host-") && (!self.secure || self.path != "/" || self.domain.is_some()) {
            return Err(CookieRuleError::HostPrefix {
                name: self.name.clone(),
            });
        }
        if lower.starts_with("__secure-") && !self.secure {
            return Err(CookieRuleError::SecurePrefix {
                name: self.name.clone(),
            });
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(CookieRuleError::SameSiteNoneInsecure);
        }
        if self.partitioned && !self.secure {
            return Err(CookieRuleError::PartitionedInsecure);
        }
        Ok(())
    }

    fn builder<'a>(&'a self, value: &'a str) -> cookie::CookieBuilder<'a> {
        let mut builder = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site.to_cookie());
        if self.partitioned {
            builder = builder.partitioned(true);
        }
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.as_str());
        }
        builder
    }

    /// Renders a Set-Cookie value carrying `value`. `max_age` is written only for
    /// persistent cookies; it is rounded up to whole seconds so a cookie never expires
    /// before its session.
    ///
    /// # Errors
    /// [`SetCookieTooLarge`] when the rendered value exceeds [`MAX_SET_COOKIE_LEN`].
    pub fn render(&self, value: &str, max_age: Duration) -> Result<SetCookie, SetCookieTooLarge> {
        self.render_cookie(value, self.persistent.then_some(max_age))
    }

    /// Renders a Set-Cookie value carrying `value`, persistent with `Max-Age` when
    /// `max_age` is given (rounded up to whole seconds), a browser-session cookie
    /// without one otherwise, whatever [`persistent`](Self::persistent) says: the
    /// machine passes each session's own choice.
    ///
    /// # Errors
    /// [`SetCookieTooLarge`] when the rendered value exceeds [`MAX_SET_COOKIE_LEN`].
    pub fn render_cookie(
        &self,
        value: &str,
        max_age: Option<Duration>,
    ) -> Result<SetCookie, SetCookieTooLarge> {
        // Written by hand, attribute for attribute as the `cookie` crate's `Display`
        // writes them (a test holds the two to the same bytes): this runs on every
        // response that sets a cookie, and the crate's formatter costs several times
        // more. The length is computed first, exactly, so the header value takes the
        // `String` without a copy or a second allocation.
        let same_site = match self.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
            SameSite::None => "; SameSite=None",
        };
        // The crate writes a domain without its leading dot.
        let domain = self.domain.as_deref().map(|d| d.strip_prefix('.').unwrap_or(d));
        let max_age_secs = max_age.map(|max_age| {
            let secs = max_age.as_secs() + u64::from(max_age.subsec_nanos() > 0);
            secs.min(i64::MAX.unsigned_abs())
        });
        let flag = |on: bool, text: &str| if on { text.len() } else { 0 };
        let len = self.name.len()
            + 1
            + value.len()
            + flag(self.http_only, "; HttpOnly")
            + same_site.len()
            + flag(self.partitioned, "; Partitioned")
            + flag(self.secure || self.partitioned, "; Secure")
            + "; Path=".len()
            + self.path.len()
            + domain.map_or(0, |d| "; Domain=".len() + d.len())
            + max_age_secs.map_or(0, |secs| "; Max-Age=".len() + decimal_len(secs));
        if len > MAX_SET_COOKIE_LEN {
            return Err(SetCookieTooLarge {
                cookie: self.name.clone(),
                size: len,
            });
        }
        let mut out = String::with_capacity(len);
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        out.push_str(same_site);
        if self.partitioned {
            out.push_str("; Partitioned");
        }
        if self.secure || self.partitioned {
            out.push_str("; Secure");
        }
        out.push_str("; Path=");
        out.push_str(&self.path);
        if let Some(domain) = domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some(secs) = max_age_secs {
            out.push_str("; Max-Age=");
            push_decimal(&mut out, secs);
        }
        debug_assert_eq!(out.len(), len, "the length is computed exactly");
        Ok(SetCookie(out))
    }

    /// The same cookie rendered by the `cookie` crate: what
    /// [`render_cookie`](Self::render_cookie) must equal.
    #[cfg(test)]
    fn render_by_cookie_crate(&self, value: &str, max_age: Option<Duration>) -> String {
        let mut builder = self.builder(value);
        if let Some(max_age) = max_age {
            let secs = max_age.as_secs() + u64::from(max_age.subsec_nanos() > 0);
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            builder = builder.max_age(cookie::time::Duration::seconds(secs));
        }
        builder.build().to_string()
    }

    /// Renders the removal of this cookie: empty value, `Max-Age=0` and an `Expires` in
    /// the past, with exactly the `Path` and `Domain` it was set with (browsers only
    /// replace a cookie whose name, path and domain all match).
    pub fn render_removal(&self) -> SetCookie {
        let mut cookie = self.builder("").build();
        cookie.make_removal();
        SetCookie(cookie.to_string())
    }
}

/// A rendered Set-Cookie header value. Its `Debug` hides the cookie value.
#[derive(Clone, PartialEq, Eq)]
pub struct SetCookie(String);

impl SetCookie {
    /// The header value, to write as a `Set-Cookie` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The header value, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show the name and the attributes, never the value.
        let (name, rest) = self.0.split_once('=').unwrap_or((&self.0, ""));
        let attributes = rest.split_once(';').map_or("", |(_, attrs)| attrs);
        write!(f, "SetCookie({name}=<redacted>;{attributes})")
    }
}

/// A Set-Cookie value that would exceed [`MAX_SET_COOKIE_LEN`]; it is never emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the Set-Cookie header for cookie {cookie:?} would be {size} bytes; browsers keep at most {MAX_SET_COOKIE_LEN}"
)]
#[non_exhaustive]
pub struct SetCookieTooLarge {
    /// The cookie name.
    pub cookie: String,
    /// The size the header would have had.
    pub size: usize,
}

impl CookieSettings {
    /// The name of chunk `index` of a chunked cookie session: the cookie name itself
    /// for chunk 0, `<name>.<index>` for the others.
    pub fn chunk_name(&self, index: usize) -> Cow<'_, str> {
        if index == 0 {
            Cow::Borrowed(&self.name)
        } else {
            Cow::Owned(format!("{}.{index}", self.name))
        }
    }

    /// These settings for chunk `index` of a chunked cookie session: every attribute
    /// the same, only the name is [`chunk_name`](Self::chunk_name). Every chunk cookie
    /// is rendered and removed through this, so all share `Path`, `Domain` and the
    /// other attributes.
    pub fn for_chunk(&self, index: usize) -> Cow<'_, CookieSettings> {
        match self.chunk_name(index) {
            Cow::Borrowed(_) => Cow::Borrowed(self),
            Cow::Owned(name) => Cow::Owned(CookieSettings { name, ..self.clone() }),
        }
    }
}

/// How many digits `n` has in decimal.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |digits| digits as usize + 1)
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast keeps every bit.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// RFC 6265 `token` characters (cookie names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// Finds the values of cookies called `name` in the request's `Cookie` headers.
///
/// Accepts any bytes: several headers, duplicate names, odd whitespace, quoted values,
/// invalid UTF-8 (replaced, so such a value can never verify) and garbage pieces, which
/// are skipped. Returns at most [`MAX_CANDIDATES`] values, in the order they appear.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn cookie_values<'h, I>(headers: I, name: &str) -> Vec<String>
where
    I: IntoIterator<Item = &'h [u8]>,
{
    let mut found = Vec::new();
    visit_cookie_values(headers, name, |value| {
        found.push(value.to_owned());
        false
    });
    found
}

/// Calls `visit` with each value of a cookie called `name`, in order, until it returns
/// `true` or [`MAX_CANDIDATES`] values were seen; returns how many were seen. Allocates
/// nothing for headers that are valid UTF-8.
pub fn visit_cookie_values<'h, I>(headers: I, name: &str, mut visit: impl FnMut(&str) -> bool) -> usize
where
    I: IntoIterator<Item = &'h [u8]>,
{
    let mut seen = 0;
    visit_pairs(headers, name, 0, |_, value| {
        seen += 1;
        visit(value) || seen == MAX_CANDIDATES
    });
    seen
}

/// What a request carried under one chunk name (`name.1`, `name.2`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed by nature: a name is absent, present once, or present more than once"
)]
pub enum ChunkSlot {
    /// No cookie with this name.
    #[default]
    Absent,
    /// Exactly one cookie with this name, and its value.
    One(String),
    /// Several cookies with this name: which one belongs to the set is ambiguous.
    Duplicate,
}

/// The cookies of a chunked cookie session in one request (see
/// [`SessionDef::cookie_chunks`](crate::SessionDef::cookie_chunks)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChunkedValues {
    /// The values of the cookie called `name` itself, in order, at most
    /// [`MAX_CANDIDATES`].
    pub(crate) base: Vec<String>,
    /// `name.1` to `name.7` (index `k - 1` for `name.k`), whatever the session's own
    /// cap, so stale chunks are found after the cap was lowered.
    pub(crate) chunks: [ChunkSlot; MAX_COOKIE_CHUNKS as usize - 1],
}

impl ChunkedValues {
    /// Which chunk names were present: bit `k` for `name.k`.
    pub(crate) fn present(&self) -> u8 {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, slot)| **slot != ChunkSlot::Absent)
            .fold(0, |bits, (i, _)| bits | 1 << (i + 1))
    }
}

/// Finds the values of the cookie called `name` and of its chunk cookies `name.1` to
/// `name.7` in one pass over the request's `Cookie` headers, with the parsing rules of
/// [`visit_cookie_values`]. A chunk name present more than once is kept as
/// [`ChunkSlot::Duplicate`], without its values.
pub(crate) fn chunked_values<'h, I>(headers: I, name: &str) -> ChunkedValues
where
    I: IntoIterator<Item = &'h [u8]>,
{
    let mut found = ChunkedValues::default();
    visit_pairs(
        headers,
        name,
        usize::from(MAX_COOKIE_CHUNKS) - 1,
        |index, value| {
            match index.checked_sub(1).and_then(|i| found.chunks.get_mut(i)) {
                None => {
                    if found.base.len() < MAX_CANDIDATES {
                        found.base.push(value.to_owned());
                    }
                }
                Some(slot) => {
                    *slot = match slot {
                        ChunkSlot::Absent => ChunkSlot::One(value.to_owned()),
                        ChunkSlot::One(_) | ChunkSlot::Duplicate => ChunkSlot::Duplicate,
                    };
                }
            }
            false
        },
    );
    found
}

/// Calls `visit(index, value)` for each cookie called `name` (index 0) or, when
/// `max_index > 0`, `name.<index>` for `index` in `1..=max_index` (decimal, no leading
/// zero), in order, until it returns `true`.
fn visit_pairs<'h, I>(headers: I, name: &str, max_index: usize, mut visit: impl FnMut(usize, &str) -> bool)
where
    I: IntoIterator<Item = &'h [u8]>,
{
    for header in headers {
        // Pairs are separated by ';' (RFC 6265 section 4.2.1). A pair is read the way
        // the `cookie` crate's `Cookie::parse` reads it, without building a `Cookie`:
        // the name is what comes before the first '=', trimmed (`str::trim`, Unicode
        // White_Space); the value what follows it, trimmed, without one pair of
        // surrounding double quotes (`value_trimmed`). The fuzz target `cookie_header`
        // checks that both readings agree on any bytes (`values_by_cookie_crate`).
        for piece in header.split(|b| *b == b';') {
            let trimmed = trim_whitespace_start(piece);
            let Some(rest) = trimmed.strip_prefix(name.as_bytes()) else {
                continue;
            };
            let Some((index, rest)) = chunk_suffix(rest, max_index) else {
                continue;
            };
            // A cookie name is a token (no '=', no whitespace), so this '=' is the
            // pair's first one and the name before it is exactly `name` + suffix.
            let Some(value) = trim_whitespace_start(rest).strip_prefix(b"=") else {
                continue;
            };
            // Invalid UTF-8 is replaced, so such a value can never verify.
            let text: Cow<'_, str> = match std::str::from_utf8(value) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(value),
            };
            if visit(index, without_quotes(text.trim())) {
                return;
            }
        }
    }
}

/// `value` without one pair of surrounding double quotes (RFC 6265 allows a quoted
/// cookie value), as the `cookie` crate's `value_trimmed` gives it.
fn without_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// Every value of the cookie called `name`, read by the `cookie` crate's parser: the
/// oracle the fuzz target `cookie_header` holds [`cookie_values`] to.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn values_by_cookie_crate<'h, I>(headers: I, name: &str) -> Vec<String>
where
    I: IntoIterator<Item = &'h [u8]>,
{
    let mut found = Vec::new();
    for header in headers {
        for piece in String::from_utf8_lossy(header).split(';') {
            let Ok(cookie) = Cookie::parse(piece) else {
                continue;
            };
            if cookie.name() == name && found.len() < MAX_CANDIDATES {
                found.push(cookie.value_trimmed().to_owned());
            }
        }
    }
    found
}

/// Splits what follows a cookie name into the chunk index it names and the rest:
/// `(0, rest)` when `rest` does not start with `.`, `(k, after)` for `.k` with `k` in
/// `1..=max_index` written in decimal without a leading zero, `None` otherwise.
fn chunk_suffix(rest: &[u8], max_index: usize) -> Option<(usize, &[u8])> {
    let Some(after_dot) = rest.strip_prefix(b".") else {
        return Some((0, rest));
    };
    let digits = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
    // Three digits are enough for any index (the cap is 8) and keep the sum bounded.
    if max_index == 0 || digits == 0 || digits > 3 || after_dot[0] == b'0' {
        return None;
    }
    let index = after_dot[..digits]
        .iter()
        .fold(0, |n, d| n * 10 + usize::from(d - b'0'));
    (index <= max_index).then_some((index, &after_dot[digits..]))
}

/// `bytes` without the leading whitespace that `str::trim_start` removes: Unicode
/// `White_Space` (so also VT, NEL, NO-BREAK SPACE and the other non-ASCII spaces, not just
/// the ASCII whitespace of `trim_ascii_start`). Stops at the first byte that does not
/// begin a valid UTF-8 whitespace character; invalid UTF-8 is never whitespace (lossy
/// decoding makes it U+FFFD). Constant work per character, no allocation.
fn trim_whitespace_start(mut bytes: &[u8]) -> &[u8] {
    while let Some(&first) = bytes.first() {
        let width = match first {
            // The common case, without decoding: ASCII `White_Space` is SP, HT, LF, VT,
            // FF and CR (`u8::is_ascii_whitespace` leaves out VT).
            0x00..=0x7f if char::from(first).is_whitespace() => {
                bytes = &bytes[1..];
                continue;
            }
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            // Not whitespace, or not the first byte of a UTF-8 character.
            _ => return bytes,
        };
        let whitespace = bytes
            .get(..width)
            .and_then(|encoded| std::str::from_utf8(encoded).ok())
            .and_then(|decoded| decoded.chars().next())
            .is_some_and(char::is_whitespace);
        if !whitespace {
            return bytes;
        }
        bytes = &bytes[width..];
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_is_rendered_as_the_cookie_crate_renders_it() {
        let max_ages = [
            None,
            Some(Duration::ZERO),
            Some(Duration::from_millis(1)),
            Some(Duration::from_secs(1_209_600)),
            Some(Duration::from_secs(u64::MAX)),
        ];
        let mut checked = 0;
        for same_site in [SameSite::Lax, SameSite::Strict, SameSite::None] {
            for (secure, http_only, partitioned) in [
                (true, true, false),
                (true, false, true),
                (false, true, false),
                (false, false, false),
                (true, true, true),
            ] {
                for (path, domain) in [
                    ("/", None),
                    ("/app", Some(".example.com")),
                    ("/a/b", Some("example.com")),
                ] {
                    let settings = CookieSettings {
                        name: "sid".to_owned(),
                        domain: domain.map(str::to_owned),
                        path: path.to_owned(),
                        secure,
                        http_only,
                        same_site,
                        partitioned,
                        persistent: true,
                    };
                    for max_age in max_ages {
                        let ours = settings.render_cookie("v4lue", max_age).expect("small");
                        assert_eq!(
                            ours.as_str(),
                            settings.render_by_cookie_crate("v4lue", max_age),
                            "{settings:?} {max_age:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 5 * 3 * 5);
    }

    fn values(headers: &[&str], name: &str) -> Vec<String> {
        cookie_values(headers.iter().map(|h| h.as_bytes()), name)
    }

    #[test]
    fn parses_awkward_headers() {
        let table: &[(&[&str], &str, &[&str])] = &[
            (&["sid=abc"], "sid", &["abc"]),
            (&["a=1; sid=abc; b=2"], "sid", &["abc"]),
            (&["a=1;sid=abc"], "sid", &["abc"]),
            (&["  sid = abc  ;"], "sid", &["abc"]),
            (&["sid=\"abc\""], "sid", &["abc"]),
            (
                &["sid=\"; sid=\"\"; sid= \"x\" ; sid=\"y"],
                "sid",
                &["\"", "", "x", "\"y"],
            ),
            (&["\u{a0}sid\u{2003}=\u{85}v\u{3000}"], "sid", &["v"]),
            (&["sid=a=b; sid x=1"], "sid", &["a=b"]),
            (&["sid=one; sid=two"], "sid", &["one", "two"]),
            (&["x=1", "sid=second-header"], "sid", &["second-header"]),
            (&["=junk; ;;; sid=ok; %%%"], "sid", &["ok"]),
            (&["SID=upper"], "sid", &[]),
            (&["sidx=1; xsid=2"], "sid", &[]),
            (&[""], "sid", &[]),
            (
                &["sid=1; sid=2; sid=3; sid=4; sid=5"],
                "sid",
                &["1", "2", "3", "4"],
            ),
        ];
        for (headers, name, expected) in table {
            assert_eq!(&values(headers, name), expected, "headers {headers:?}");
            let by_crate = values_by_cookie_crate(headers.iter().map(|h| h.as_bytes()), name);
            assert_eq!(&by_crate, expected, "the cookie crate reads {headers:?} so too");
        }
    }

    #[test]
    fn chunk_names_are_found_in_one_pass() {
        let headers = [
            "sid=zero; sid.1=one; sid.01=leading-zero; sid.8=past-the-cap; sid.1x=junk",
            " sid.2 = two ;sid.3=three; sid.3=again; sid.10=ten; sidx.1=other; sid.=dot",
            "sid.7=seven; sid=second; sid=3; sid=4; sid=5",
        ];
        let found = chunked_values(headers.iter().map(|h| h.as_bytes()), "sid");
        assert_eq!(found.base, ["zero", "second", "3", "4"]);
        let one = |v: &str| ChunkSlot::One(v.to_owned());
        assert_eq!(
            found.chunks,
            [
                one("one"),
                one("two"),
                ChunkSlot::Duplicate,
                ChunkSlot::Absent,
                ChunkSlot::Absent,
                ChunkSlot::Absent,
                one("seven"),
            ]
        );
        assert_eq!(found.present(), 0b1000_1110);
        // The plain visitor never sees chunk names.
        assert_eq!(
            values(&headers, "sid"),
            ["zero", "second", "3", "4"],
            "at most four candidates, no chunks"
        );
        assert_eq!(chunked_values([&b""[..]], "sid"), ChunkedValues::default());
    }

    #[test]
    fn chunk_suffixes_parse_strictly() {
        assert_eq!(chunk_suffix(b"=v", 7), Some((0, &b"=v"[..])));
        assert_eq!(chunk_suffix(b".3=v", 7), Some((3, &b"=v"[..])));
        assert_eq!(chunk_suffix(b".3=v", 0), None, "no chunks asked for");
        for refused in [
            &b".0="[..],
            b".03=",
            b".8=",
            b".=",
            b".1000=",
            b".99999999999999999999=",
        ] {
            assert_eq!(chunk_suffix(refused, 7), None, "{refused:?}");
        }
    }

    #[test]
    fn chunk_settings_keep_every_attribute() {
        let mut settings = CookieSettings::new("sid");
        settings.domain = Some("example.com".into());
        settings.path = "/app".into();
        settings.partitioned = true;
        assert_eq!(settings.chunk_name(0), "sid");
        assert_eq!(settings.chunk_name(3), "sid.3");
        assert!(matches!(settings.for_chunk(0), Cow::Borrowed(_)));
        let chunk = settings.for_chunk(2);
        assert_eq!(
            *chunk,
            CookieSettings {
                name: "sid.2".into(),
                ..settings.clone()
            }
        );
        chunk.validate().expect("a valid name stays valid");
        let line = chunk
            .render("v", Duration::from_secs(5))
            .expect("fits")
            .into_string();
        let main = settings
            .render("v", Duration::from_secs(5))
            .expect("fits")
            .into_string();
        assert_eq!(line.strip_prefix("sid.2"), main.strip_prefix("sid"));
    }

    #[test]
    fn unicode_whitespace_around_the_name_is_trimmed_as_the_cookie_crate_does() {
        assert_eq!(values(&["sid\u{a0}="], "sid"), [""]);
        assert_eq!(values(&["\u{a0}sid=v; \u{b}sid\u{3000}=w"], "sid"), ["v", "w"]);
        // Not whitespace: ZERO WIDTH NO-BREAK SPACE, and a space inside the name.
        assert!(values(&["sid\u{feff}=v; sid\u{a0}x=w"], "sid").is_empty());
    }

    #[test]
    fn whitespace_trimming_stops_at_invalid_or_truncated_utf8() {
        assert_eq!(trim_whitespace_start(b" \t\x0b\xc2\xa0sid"), b"sid");
        assert_eq!(trim_whitespace_start("\u{3000}\u{85}=".as_bytes()), b"=");
        // A lone lead byte, a truncated NO-BREAK SPACE, a continuation byte, 0xff.
        for raw in [&b"\xc2"[..], b" \xc2", b"\xc2 ", b"\xa0=", b"\xff="] {
            let rest = trim_whitespace_start(raw);
            assert!(rest.first().is_some_and(|b| !b.is_ascii()), "{raw:?}");
        }
        assert_eq!(trim_whitespace_start(b""), b"");
        assert_eq!(trim_whitespace_start(b"  "), b"");
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let raw: &[u8] = b"sid=\xff\xfe; sid=ok";
        assert_eq!(cookie_values([raw], "sid"), vec!["\u{fffd}\u{fffd}", "ok"]);
    }

    #[test]
    fn renders_explicit_attributes() {
        let settings = CookieSettings::new("__Host-web");
        settings.validate().expect("defaults are valid");
        let set = settings.render("v", Duration::from_millis(1_500)).expect("fits");
        assert_eq!(
            set.as_str(),
            "__Host-web=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2"
        );
        let mut browser_session = settings.clone();
        browser_session.persistent = false;
        assert!(
            !browser_session
                .render("v", Duration::from_secs(60))
                .expect("fits")
                .as_str()
                .contains("Max-Age")
        );
    }

    #[test]
    fn removal_keeps_path_and_domain() {
        let mut settings = CookieSettings::new("sid");
        settings.domain = Some("example.com".into());
        settings.path = "/app".into();
        let removal = settings.render_removal();
        let text = removal.as_str();
        assert!(text.starts_with("sid=;"), "{text}");
        assert!(
            text.contains("Path=/app") && text.contains("Domain=example.com"),
            "{text}"
        );
        assert!(text.contains("Max-Age=0") && text.contains("Expires="), "{text}");
    }

    #[test]
    fn attribute_rules() {
        let ok = CookieSettings::new("sid");
        let cases: Vec<(CookieSettings, Option<CookieRuleError>)> = vec![
            (ok.clone(), None),
            (
                CookieSettings {
                    name: "bad name".into(),
                    ..ok.clone()
                },
                Some(CookieRuleError::InvalidName {
                    name: "bad name".into(),
                }),
            ),
            (
                CookieSettings {
                    name: String::new(),
                    ..ok.clone()
                },
                Some(CookieRuleError::InvalidName { name: String::new() }),
            ),
            (
                CookieSettings {
                    name: "__Host-x".into(),
                    secure: false,
                    ..ok.clone()
                },
                Some(CookieRuleError::HostPrefix {
                    name: "__Host-x".into(),
                }),
            ),
            (
                CookieSettings {
                    name: "__host-x".into(),
                    path: "/a".into(),
                    ..ok.clone()
                },
                Some(CookieRuleError::HostPrefix {
                    name: "__host-x".into(),
                }),
            ),
            (
                CookieSettings {
                    name: "__Host-x".into(),
                    domain: Some("a.com".into()),
                    ..ok.clone()
                },
                Some(CookieRuleError::HostPrefix {
                    name: "__Host-x".into(),
                }),
            ),
            (
                CookieSettings {
                    name: "__Secure-x".into(),
                    secure: false,
                    ..ok.clone()
                },
                Some(CookieRuleError::SecurePrefix {
                    name: "__Secure-x".into(),
                }),
            ),
            (
                CookieSettings {
                    name: "__Secure-x".into(),
                    domain: Some("a.com".into()),
                    path: "/a".into(),
                    ..ok.clone()
                },
                None,
            ),
            (
                CookieSettings {
                    same_site: SameSite::None,
                    secure: false,
                    ..ok.clone()
                },
                Some(CookieRuleError::SameSiteNoneInsecure),
            ),
            (
                CookieSettings {
                    same_site: SameSite::None,
                    ..ok.clone()
                },
                None,
            ),
            (
                CookieSettings {
                    partitioned: true,
                    secure: false,
                    ..ok.clone()
                },
                Some(CookieRuleError::PartitionedInsecure),
            ),
            (
                CookieSettings {
                    path: "app".into(),
                    ..ok.clone()
                },
                Some(CookieRuleError::InvalidPath { path: "app".into() }),
            ),
            (
                CookieSettings {
                    path: "/a;b".into(),
                    ..ok.clone()
                },
                Some(CookieRuleError::InvalidPath { path: "/a;b".into() }),
            ),
            (
                CookieSettings {
                    domain: Some("a;b".into()),
                    ..ok.clone()
                },
                Some(CookieRuleError::InvalidDomain { domain: "a;b".into() }),
            ),
            (
                CookieSettings {
                    domain: Some(".example.com".into()),
                    ..ok.clone()
                },
                None,
            ),
        ];
        for (settings, expected) in cases {
            assert_eq!(settings.validate().err(), expected, "{settings:?}");
        }
    }

    #[test]
    fn partitioned_and_strict_render() {
        let settings = CookieSettings {
            partitioned: true,
            same_site: SameSite::Strict,
            ..CookieSettings::new("__Secure-s")
        };
        let text = settings
            .render("v", Duration::from_secs(5))
            .expect("fits")
            .into_string();
        assert!(
            text.contains("Partitioned") && text.contains("SameSite=Strict"),
            "{text}"
        );
    }

    #[test]
    fn oversize_is_a_typed_error() {
        let settings = CookieSettings::new("sid");
        let err = settings
            .render(&"a".repeat(4096), Duration::from_secs(1))
            .expect_err("too big");
        assert_eq!(err.cookie, "sid");
        assert!(err.size > MAX_SET_COOKIE_LEN);
        let fits = settings.render(&"a".repeat(4000), Duration::from_secs(1));
        assert!(fits.is_ok());
    }

    #[test]
    fn debug_hides_value() {
        let set = CookieSettings::new("sid")
            .render("secretvalue", Duration::from_secs(1))
            .expect("fits");
        let shown = format!("{set:?}");
        assert!(
            !shown.contains("secretvalue") && shown.contains("sid=<redacted>"),
            "{shown}"
        );
    }
}
