//! Accepting connections: plain HTTP/1.1 or TLS (rustls), with a header-read timeout against
//! slow clients, a reaper for remote sessions nobody holds any more, and a graceful shutdown
//! that stops accepting, ends event streams, closes remote sessions and drains what is in
//! flight. Like mini-redis, [`run`] takes a bound listener and a shutdown future, so tests run
//! the relay in-process on `127.0.0.1:0`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use switchboard_core::Exchange;

use crate::app::App;

/// How a server runs, apart from its routes.
pub struct ServeOptions {
    /// Longest wait for a request's headers (and for a TLS handshake).
    pub header_timeout: Duration,
    /// Longest a shutdown waits for requests in flight.
    pub drain: Duration,
    /// A remote session nobody holds and nobody used for this long is ended.
    pub session_idle: Duration,
    pub tls: Option<Tls>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
            session_idle: Duration::from_secs(20),
            tls: None,
        }
    }
}

/// A TLS identity loaded from PEM files.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(<certificate and key>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {detail}")]
    Cert { path: String, detail: String },
    #[error("cannot read the private key {path}: {detail}")]
    Key { path: String, detail: String },
    #[error("the certificate and key do not make a TLS identity: {0}")]
    Config(String),
}

impl Tls {
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let shown = |p: &Path| p.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| TlsError::Cert {
                path: shown(cert),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Cert {
                path: shown(cert),
                detail: "no certificate in it".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: shown(key),
            detail: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    app: App,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let service = TowerToHyperService::new(app.clone().router());
    let graceful = GracefulShutdown::new();
    let reaper = tokio::spawn(reap(app.clone(), options.session_idle));
    let revocations = tokio::spawn(crate::revocation::watch(app.clone()));
    // Ends by itself on `app.shutdown`, cancelled below.
    let sampler = tokio::spawn(crate::history::sample(app.clone()));
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        let service = service.clone();
        let watcher = graceful.watcher();
        let tls = options.tls.clone();
        let handshake = options.header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(tcp), service))
                        .await
                }
                Some(tls) => {
                    match tokio::time::timeout(handshake, tls.acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!("TLS handshake timed out"),
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    reaper.abort();
    revocations.abort();
    app.shutdown.cancel();
    if let Err(e) = sampler.await {
        tracing::debug!("the charts' sampler ended badly: {e}");
    }
    app.mcp_sessions.end_all().await;
    close_all(&app).await;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.drain) => tracing::warn!("requests still in flight after the drain; closing"),
    }
}

/// How often the relay expires and deletes old records in every open room (what `gc` does).
const GC_EVERY: Duration = Duration::from_secs(600);

/// Ends remote sessions (MCP and `/v1`) nobody holds any more, so vanished clients go offline
/// and their leased mail goes to the peer's other sessions.
async fn reap(app: App, idle: Duration) {
    let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut last_gc = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        app.mcp_sessions.reap(idle).await;
        for (room, id) in app.sessions.take_idle(idle) {
            close(&app, &room, id).await;
        }
        if last_gc.elapsed() >= GC_EVERY {
            last_gc = tokio::time::Instant::now();
            for mailbox in app.rooms.all() {
                if let Err(e) = mailbox.gc().await {
                    tracing::warn!("upkeep of a room failed: {e}");
                }
            }
        }
    }
}

async fn close_all(app: &App) {
    for (room, id) in app.sessions.drain() {
        close(app, &room, id).await;
    }
}

pub(crate) async fn close(app: &App, room: &str, id: switchboard_core::SessionId) {
    match app.rooms.get(room).await {
        Ok(mailbox) => {
            if let Err(e) = mailbox.close_session(id).await {
                tracing::debug!("cannot close session {id}: {e}");
            }
        }
        Err(e) => tracing::debug!("cannot open room {room}: {e}"),
    }
}
