//! `lakegate console`: the review console, a small server-rendered web app over the Temporal
//! client. Pages: upload (files stream into landing/ and their workflows start), the review
//! inbox (from Temporal visibility), a file's page (validation report, approve or reject, the
//! first failing rows on demand, audit-logged in the lake), runs per dataset, and the audit log.
//! Every action is a plain form post, so nothing needs JavaScript.

mod auth;
mod file;
mod html;
mod inbox;
mod runs;
mod upload;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lakegate_activities::ports::ObjectStore;
use lakegate_models::DEFAULT_REVIEW_TIMEOUT_SECS;
use temporalio_client::Client;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use auth::{EMAIL_HEADER, USER_HEADER};

use crate::LakeConfig;

/// The console's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Address to serve on (port 0 picks a free one).
    #[arg(
        long = "console-addr",
        env = "LAKEGATE_CONSOLE_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub addr: SocketAddr,
    /// Production sign-in: trust oauth2-proxy's X-Forwarded-Email / X-Forwarded-User headers on
    /// connections from this address, and only from it.
    #[arg(long, env = "LAKEGATE_CONSOLE_TRUSTED_PROXY")]
    pub trusted_proxy: Option<IpAddr>,
    /// Local sign-in: the token a browser signs in with (default: a new random one, printed).
    #[arg(long, env = "LAKEGATE_CONSOLE_TOKEN", conflicts_with = "trusted_proxy")]
    pub console_token: Option<String>,
    /// Who a token sign-in is: the reviewer the workflow histories record.
    #[arg(long, env = "LAKEGATE_CONSOLE_USER", default_value = "local-reviewer")]
    pub console_user: String,
    /// The Temporal Web UI, for links to runs.
    #[arg(long, env = "LAKEGATE_UI_URL", default_value = "http://127.0.0.1:8233")]
    pub ui_url: String,
    /// Temporal namespace, for links to runs.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub ui_namespace: String,
    /// Largest file an upload accepts, whatever the contract says.
    #[arg(long, env = "LAKEGATE_MAX_UPLOAD_BYTES", default_value_t = 1 << 30)]
    pub max_upload_bytes: u64,
    /// How long an uploaded file that is quarantined waits for review (seconds).
    #[arg(long = "upload-review-timeout-secs", default_value_t = DEFAULT_REVIEW_TIMEOUT_SECS)]
    pub review_timeout_secs: u64,
}

/// What every handler shares.
pub struct App {
    pub config: LakeConfig,
    pub client: Client,
    pub store: Arc<dyn ObjectStore>,
    auth: auth::Auth,
    pub ui_url: String,
    pub ui_namespace: String,
    pub max_upload_bytes: u64,
    pub review_timeout_secs: u64,
}

impl App {
    /// The run's page in the Temporal Web UI.
    pub fn ui_link(&self, workflow_id: &str, run_id: &str) -> String {
        format!(
            "{}/namespaces/{}/workflows/{}/{}/history",
            self.ui_url.trim_end_matches('/'),
            html::url(&self.ui_namespace),
            html::url(workflow_id),
            html::url(run_id)
        )
    }
}

/// A console serving in the background.
pub struct RunningConsole {
    pub addr: SocketAddr,
    /// With token sign-in: the link that signs a browser in.
    pub sign_in_url: Option<String>,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningConsole {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await.context("console task")?.context("console")
    }
}

/// Binds and serves the console until [`RunningConsole::stop`].
pub async fn start(
    config: &LakeConfig,
    args: &ConsoleArgs,
    client: Client,
) -> anyhow::Result<RunningConsole> {
    let (mode, token) = match args.trusted_proxy {
        Some(trusted) => (auth::Mode::Proxy { trusted }, None),
        None => {
            let token = match &args.console_token {
                Some(t) if !t.is_empty() => t.clone(),
                _ => hex::encode(&auth::random_bytes()?[..16]),
            };
            (
                auth::Mode::Token {
                    token: token.clone(),
                    user: args.console_user.clone(),
                },
                Some(token),
            )
        }
    };
    let store = crate::worker::ports(config).await?.store;
    let app = Arc::new(App {
        config: config.clone(),
        client,
        store,
        auth: auth::Auth::new(mode)?,
        ui_url: args.ui_url.clone(),
        ui_namespace: args.ui_namespace.clone(),
        max_upload_bytes: args.max_upload_bytes,
        review_timeout_secs: args.review_timeout_secs,
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("serving the console on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stopped.cancelled().await })
        .await
    });
    Ok(RunningConsole {
        addr,
        sign_in_url: token.map(|t| format!("http://{addr}/login?token={}", html::url(&t))),
        stop,
        task,
    })
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/login", get(login_page).post(login_post))
        .route("/logout", post(logout))
        .route(
            "/upload",
            get(upload::form)
                // Bounded per file while streaming (contract and console limits), not here.
                .post(upload::receive)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads", get(upload::follow))
        .route("/inbox", get(inbox::inbox))
        .route("/decide", post(inbox::decide))
        .route("/files/{id}", get(file::page))
        .route("/files/{id}/review", post(file::review))
        .route("/files/{id}/rows", post(file::failing_rows))
        .route("/audit", get(file::audit_log))
        .route("/runs", get(runs::runs))
        .with_state(app)
}

/// An error page (the text is ours: ids, counts, file names, never a cell value).
pub(crate) fn error_page(status: StatusCode, reviewer: &auth::Reviewer, message: &str) -> Response {
    let chrome = html::Chrome {
        title: "Something went wrong",
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh: false,
    };
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p>",
        html::esc(message)
    );
    (status, Html(html::page(&chrome, &body))).into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

async fn login_page(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    if let Some(token) = query.token {
        return sign_in(&app, &token);
    }
    let chrome = html::Chrome {
        title: "Sign in",
        user: None,
        csrf: "",
        refresh: false,
    };
    let body = match app.auth.mode() {
        auth::Mode::Proxy { .. } => "<p>Sign in through your organisation's identity proxy.</p>".to_owned(),
        // The token is the form's secret: a forged sign-in would need it.
        auth::Mode::Token { .. } => "<form method=\"post\" action=\"/login\"><label for=\"token\">Console token \
             (printed by <code>lakegate dev</code> or <code>lakegate console</code>)</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
             <button type=\"submit\">Sign in</button></form>"
            .to_owned(),
    };
    Html(html::page(&chrome, &body)).into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_post(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    sign_in(&app, &form.token)
}

fn sign_in(app: &App, token: &str) -> Response {
    match app.auth.sign_in(token) {
        Some(cookie) => (
            StatusCode::SEE_OTHER,
            [
                (axum::http::header::SET_COOKIE, cookie),
                (axum::http::header::LOCATION, "/inbox".to_owned()),
            ],
        )
            .into_response(),
        None => (StatusCode::UNAUTHORIZED, "wrong token").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    reviewer: auth::Reviewer,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(denied) = reviewer.check(&app, &form.csrf) {
        return denied.into_response();
    }
    let cookie = app.auth.sign_out(&headers);
    (
        StatusCode::SEE_OTHER,
        [
            (axum::http::header::SET_COOKIE, cookie),
            (axum::http::header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}

/// Only ids of the form the workflows use reach a visibility query or a page.
pub(crate) fn valid_workflow_id(id: &str) -> bool {
    id.strip_prefix("ingest-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
