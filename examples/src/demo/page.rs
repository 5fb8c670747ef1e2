//! The demo's one HTML page.

use html_escape::{encode_double_quoted_attribute, encode_text, encode_text_to_string};

use super::Device;

/// The "your devices" list: one row per session of the user, with a sign-out button
/// for every other one, and "sign out everywhere".
fn devices_html(devices: &[Device]) -> String {
    if devices.is_empty() {
        return String::new();
    }
    let mut html = String::from(r#"<h2>Your devices</h2><ul class="devices">"#);
    for device in devices {
        html.push_str("<li><span>");
        encode_text_to_string(device.label.as_deref().unwrap_or("unknown device"), &mut html);
        html.push_str("</span>");
        if device.current {
            html.push_str(r#" <span class="badge on">this device</span>"#);
        } else {
            html.push_str(r#" <form method="post" action="/devices/"#);
            html.push_str(&encode_double_quoted_attribute(&device.handle));
            html.push_str(r#"/end"><button class="secondary">Sign out</button></form>"#);
        }
        html.push_str("</li>");
    }
    html.push_str(
        r#"</ul><form method="post" action="/logout-everywhere"><button class="secondary">Sign out everywhere</button></form>"#,
    );
    html
}

/// The page for a visitor: who is signed in, the visit count, admin mode and the
/// flash messages taken on this request. User text is escaped.
pub fn render(
    user: Option<&str>,
    visits: u64,
    admin: bool,
    flashes: &[String],
    devices: &[Device],
) -> String {
    let mut flash_html = String::new();
    for message in flashes {
        flash_html.push_str(r#"<p class="flash">"#);
        encode_text_to_string(message, &mut flash_html);
        flash_html.push_str("</p>");
    }
    let account = match user {
        Some(user) => format!(
            r#"<p>Signed in as <strong>{}</strong>.</p>
      <form method="post" action="/logout"><button>Sign out</button></form>
      {}"#,
            encode_text(user),
            devices_html(devices)
        ),
        None => r#"<form method="post" action="/login" class="row">
        <input name="user" placeholder="Your name" maxlength="64" required autofocus>
        <label><input type="checkbox" name="remember"> Remember me</label>
        <button>Sign in</button>
      </form>"#
            .to_owned(),
    };
    let admin = if admin {
        r#"<p><span class="badge on">admin mode</span></p>
      <form method="post" action="/admin/leave"><button class="secondary">Leave admin mode</button></form>"#
    } else {
        r#"<p><span class="badge">not in admin mode</span></p>
      <form method="post" action="/admin/enter"><button class="secondary">Enter admin mode</button></form>"#
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>sessionkit demo</title>
  <style>{STYLE}</style>
</head>
<body>
  <main>
    <h1>sessionkit demo</h1>
    <p class="muted">Two named sessions: <code>web</code> and <code>admin</code>.</p>
    {flash_html}
    <p class="count">{visits}</p>
    <p class="muted">visits in this session</p>
    <section>{account}</section>
    <section>{admin}</section>
    <footer>Signing in regenerates the session id. Try the JSON API at <code>/api/session</code>.</footer>
  </main>
</body>
</html>
"#
    )
}

const STYLE: &str = r"
    :root { color-scheme: light dark; --accent: #4f46e5; }
    body { font: 16px/1.5 system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid;
           place-items: center; background: linear-gradient(135deg, #eef2ff, #fdf2f8); }
    @media (prefers-color-scheme: dark) { body { background: linear-gradient(135deg, #1e1b4b, #312e81); } }
    main { background: Canvas; border-radius: 16px; padding: 2rem 2.5rem; width: min(28rem, 90vw);
           box-shadow: 0 10px 40px rgba(0,0,0,.15); }
    h1 { margin: 0 0 .25rem; font-size: 1.5rem; }
    .muted { opacity: .7; margin-top: 0; }
    .count { font-size: 3rem; font-weight: 700; color: var(--accent); margin: .5rem 0 0; }
    .flash { background: #ecfdf5; color: #065f46; border-left: 4px solid #10b981; padding: .5rem .75rem;
             border-radius: 6px; }
    section { border-top: 1px solid rgba(127,127,127,.25); padding-top: 1rem; margin-top: 1rem; }
    .row { display: flex; gap: .5rem; }
    input { flex: 1; padding: .5rem .75rem; border-radius: 8px; border: 1px solid rgba(127,127,127,.5);
            font: inherit; }
    button { background: var(--accent); color: white; border: 0; border-radius: 8px; padding: .5rem 1rem;
             font: inherit; cursor: pointer; }
    button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); }
    .badge { display: inline-block; padding: .1rem .6rem; border-radius: 999px; background: rgba(127,127,127,.2);
             font-size: .85rem; }
    .badge.on { background: #fef3c7; color: #92400e; }
    .devices { padding-left: 1.2rem; } .devices li { margin: .3rem 0; } .devices form { display: inline; }
    footer { font-size: .8rem; opacity: .6; margin-top: 1.5rem; }
  ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        let devices = [
            Device {
                handle: "h1".into(),
                label: Some("<b>Firefox</b>".into()),
                created: 0,
                last_seen: 0,
                current: true,
            },
            Device {
                handle: "h2".into(),
                label: None,
                created: 0,
                last_seen: 0,
                current: false,
            },
        ];
        let html = render(Some("<script>"), 3, true, &["a & b".to_owned()], &devices);
        assert!(
            html.contains("&lt;b&gt;Firefox&lt;/b&gt;") && html.contains("this device"),
            "{html}"
        );
        assert!(html.contains(r#"action="/devices/h2/end""#) && !html.contains("/devices/h1/end"));
        assert!(html.contains(r#"action="/logout-everywhere""#));
        assert!(
            html.contains("Signed in as <strong>&lt;script&gt;</strong>"),
            "{html}"
        );
        assert!(!html.contains("<script>") && html.contains(r#"<p class="flash">a &amp; b</p>"#));
        assert!(html.contains(r#"<p class="count">3</p>"#) && html.contains("/admin/leave"));
    }

    #[test]
    fn signed_out_page_offers_sign_in() {
        let html = render(None, 1, false, &[], &[]);
        assert!(html.contains(r#"action="/login""#) && html.contains("/admin/enter"));
        assert!(html.contains(r#"type="checkbox" name="remember""#));
        assert!(!html.contains("Signed in as") && !html.contains(r#"class="flash""#));
    }
}
