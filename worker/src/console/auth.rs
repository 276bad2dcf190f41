//! Who is signed in. Behind an OIDC proxy (oauth2-proxy), the user is the one its forwarded
//! headers name, believed only on connections from the configured proxy address; with a local
//! token (`lakegate dev`), the token signs a browser in once and a session cookie carries it.
//! Every form carries a CSRF token bound to the user (an HMAC under a key made at start).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::App;

/// oauth2-proxy's headers (`--pass-user-headers`, the default behind nginx auth_request uses the
/// same names with `--set-xauthrequest`).
pub const USER_HEADER: &str = "x-forwarded-user";
pub const EMAIL_HEADER: &str = "x-forwarded-email";
const SESSION_COOKIE: &str = "lakegate_session";

#[derive(Debug, Clone)]
pub enum Mode {
    /// Sign in with this token; the session's user is `user`.
    Token { token: String, user: String },
    /// Trust the forwarded user headers from this address only.
    Proxy { trusted: IpAddr },
}

pub struct Auth {
    mode: Mode,
    key: [u8; 32],
    sessions: Mutex<HashMap<String, String>>,
}

impl Auth {
    pub fn new(mode: Mode) -> std::io::Result<Self> {
        Ok(Self {
            mode,
            key: random_bytes()?,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The signed-in user of a request, if any.
    pub fn identify(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
        match &self.mode {
            Mode::Proxy { trusted } => {
                // Anyone can send these headers; only the proxy's are believed.
                if peer.map(|p| p.ip()) != Some(*trusted) {
                    return None;
                }
                let value = |name| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                value(EMAIL_HEADER).or_else(|| value(USER_HEADER))
            }
            Mode::Token { .. } => {
                let id = cookie(headers, SESSION_COOKIE)?;
                self.sessions.lock().ok()?.get(&id).cloned()
            }
        }
    }

    /// A new session for a correct token: the `Set-Cookie` value.
    pub fn sign_in(&self, token: &str) -> Option<String> {
        let Mode::Token {
            token: expected,
            user,
        } = &self.mode
        else {
            return None;
        };
        if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
            return None;
        }
        let id = hex::encode(random_bytes().ok()?);
        self.sessions.lock().ok()?.insert(id.clone(), user.clone());
        Some(format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"
        ))
    }

    pub fn sign_out(&self, headers: &HeaderMap) -> String {
        if let (Some(id), Ok(mut sessions)) =
            (cookie(headers, SESSION_COOKIE), self.sessions.lock())
        {
            sessions.remove(&id);
        }
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The CSRF token of `user`'s forms.
    pub fn csrf_token(&self, user: &str) -> String {
        hex::encode(hmac_sha256(&self.key, format!("csrf\0{user}").as_bytes()))
    }

    pub fn csrf_ok(&self, user: &str, token: &str) -> bool {
        constant_time_eq(self.csrf_token(user).as_bytes(), token.as_bytes())
    }
}

/// A signed-in reviewer; handlers that take one are reachable only when signed in.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub name: String,
    pub csrf: String,
}

impl FromRequestParts<Arc<App>> for Reviewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        match app.auth.identify(&parts.headers, peer) {
            Some(name) => Ok(Reviewer {
                csrf: app.auth.csrf_token(&name),
                name,
            }),
            None => Err(match app.auth.mode() {
                Mode::Token { .. } => Redirect::to("/login").into_response(),
                Mode::Proxy { .. } => (
                    axum::http::StatusCode::UNAUTHORIZED,
                    "sign in through the identity proxy",
                )
                    .into_response(),
            }),
        }
    }
}

impl Reviewer {
    /// Refuses a form whose CSRF token is not this user's.
    pub fn check(&self, app: &App, token: &str) -> Result<(), CsrfRefused> {
        if app.auth.csrf_ok(&self.name, token) {
            Ok(())
        } else {
            Err(CsrfRefused)
        }
    }
}

/// A form without this user's CSRF token: 403.
#[derive(Debug)]
pub struct CsrfRefused;

impl IntoResponse for CsrfRefused {
    fn into_response(self) -> Response {
        (
            axum::http::StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again",
        )
            .into_response()
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn random_bytes() -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner = Sha256::new();
    let mut outer = Sha256::new();
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_shape() {
        // RFC 4231 test case 2 uses a short key; ours is always 32 bytes, so check the
        // construction against a key padded the same way: HMAC(key="Jefe" + zeros).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn proxy_headers_count_only_from_the_proxy() {
        let auth = Auth::new(Mode::Proxy {
            trusted: "127.0.0.1".parse().unwrap(),
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(USER_HEADER, "mallory".parse().unwrap());
        headers.insert(EMAIL_HEADER, "alice@example.org".parse().unwrap());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        assert_eq!(
            auth.identify(&headers, Some(proxy)).as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(auth.identify(&headers, Some(other)), None);
        assert_eq!(auth.identify(&headers, None), None);
    }

    #[test]
    fn a_token_signs_in_and_csrf_is_per_user() {
        let auth = Auth::new(Mode::Token {
            token: "t0k".into(),
            user: "alice".into(),
        })
        .unwrap();
        assert!(auth.sign_in("wrong").is_none());
        let cookie = auth.sign_in("t0k").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            cookie.split(';').next().unwrap().parse().unwrap(),
        );
        assert_eq!(auth.identify(&headers, None).as_deref(), Some("alice"));
        let token = auth.csrf_token("alice");
        assert!(auth.csrf_ok("alice", &token));
        assert!(!auth.csrf_ok("bob", &token));
        assert!(!auth.csrf_ok("alice", ""));
        auth.sign_out(&headers);
        assert_eq!(auth.identify(&headers, None), None);
    }
}
