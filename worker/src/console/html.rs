//! HTML building with escaping: every value that reaches a page goes through [`esc`] (or
//! [`attr`]), so a file name or a cell value cannot become markup.

use std::fmt::Write as _;

/// Text escaped for an element's content or a quoted attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string component.
pub fn url(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What every page shows around its body: the navigation, who is signed in, and sign-out.
pub struct Chrome<'a> {
    pub title: &'a str,
    pub user: Option<&'a str>,
    pub csrf: &'a str,
    /// Reload every few seconds (a page following runs that are still moving), without script.
    pub refresh: bool,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}\
header{background:#20344b;color:#fff;padding:.6rem 1rem;display:flex;gap:1.2rem;align-items:center}\
header a{color:#fff}header .who{margin-left:auto}main{padding:1rem 1.5rem;max-width:72rem}\
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #c8c8c8;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef1f5}.fail{color:#a40000;font-weight:600}.pass{color:#176b00}\
.note{background:#fff7d6;border:1px solid #e5c84b;padding:.5rem .8rem}\
.error{background:#fde8e8;border:1px solid #d55;padding:.5rem .8rem}\
fieldset{border:1px solid #c8c8c8;margin:.8rem 0;padding:.6rem 1rem}label{display:block;margin:.3rem 0}\
button{padding:.35rem .9rem;margin:.3rem .4rem .3rem 0}:focus-visible{outline:3px solid #f0a500;outline-offset:2px}\
code{background:#f2f2f2;padding:0 .2rem}";

/// A whole page.
pub fn page(chrome: &Chrome<'_>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">{}\
         <title>{} · lakegate</title><style>{STYLE}</style></head><body><header>\
         <strong>lakegate</strong>",
        if chrome.refresh {
            "<meta http-equiv=\"refresh\" content=\"2\">"
        } else {
            ""
        },
        esc(chrome.title)
    );
    if let Some(user) = chrome.user {
        let _ = write!(
            out,
            "<nav aria-label=\"Main\"><a href=\"/upload\">Upload</a> · <a href=\"/inbox\">Review inbox</a> · \
             <a href=\"/runs\">Runs</a> · <a href=\"/audit\">Audit log</a></nav>\
             <span class=\"who\">Signed in as <strong id=\"signed-in-user\">{}</strong></span>\
             <form method=\"post\" action=\"/logout\">{}<button type=\"submit\">Sign out</button></form>",
            esc(user),
            csrf_field(chrome.csrf)
        );
    }
    let _ = write!(
        out,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(chrome.title)
    );
    out
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A table: header cells (escaped) and rows of already-built cell HTML.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn when(unix_secs: u64) -> String {
    let secs = i64::try_from(unix_secs).unwrap_or(0);
    let day = lakegate_models::civil_date_from_unix(secs);
    let in_day = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02} UTC", in_day / 3600, in_day % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(url("a b&c"), "a+b%26c");
        assert_eq!(when(86_400 + 3_661), "1970-01-02 01:01 UTC");
    }
}
