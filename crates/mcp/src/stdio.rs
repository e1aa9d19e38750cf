//! One session over stdio: serve until stdin closes or a termination signal arrives, then end
//! the session at once so the peer goes offline without waiting for anyone to notice.

use rmcp::ServiceExt;

use crate::server::McpHandler;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
}

/// Serves `server` on this process's stdin and stdout. stdout carries only JSON-RPC.
pub async fn run(server: McpHandler) -> Result<(), StdioError> {
    // Listen for signals before anything else: a client may stop us right after the
    // handshake, and an unhandled SIGTERM would end the process without ending the session.
    let terminated = terminated();
    tokio::pin!(terminated);
    let transport = rmcp::transport::io::stdio_pipes();
    let service = tokio::select! {
        started = server.clone().serve(transport) => match started {
            Ok(service) => service,
            Err(e) => {
                server.shutdown().await;
                return Err(StdioError::Start(e.to_string()));
            }
        },
        () = &mut terminated => {
            server.shutdown().await;
            return Ok(());
        }
    };
    let cancel = service.cancellation_token();
    tokio::select! {
        _ = service.waiting() => {}
        () = &mut terminated => cancel.cancel(),
    }
    server.shutdown().await;
    Ok(())
}

/// Resolves at SIGTERM, SIGHUP or SIGINT. The handlers are installed when this is called, not
/// when it is first polled.
fn terminated() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match streams {
                (Ok(mut term), Ok(mut hup), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
