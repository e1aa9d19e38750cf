//! One session over stdio: serve until stdin closes or a termination signal arrives, then end
//! the session at once so the peer goes offline without waiting for anyone to notice.

use rmcp::ServiceExt;

use crate::server::Switchboard;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
}

/// Serves `server` on this process's stdin and stdout. stdout carries only JSON-RPC.
pub async fn run(server: Switchboard) -> Result<(), StdioError> {
    let transport = rmcp::transport::io::stdio_pipes();
    let service = match server.clone().serve(transport).await {
        Ok(service) => service,
        Err(e) => {
            server.shutdown().await;
            return Err(StdioError::Start(e.to_string()));
        }
    };
    let cancel = service.cancellation_token();
    tokio::select! {
        _ = service.waiting() => {}
        () = terminated() => cancel.cancel(),
    }
    server.shutdown().await;
    Ok(())
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
