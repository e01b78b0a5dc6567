//! The yardstick: a minimal hyper HTTP/1.1 server answering every request with a small
//! JSON object, run as a process of its own (the benchmark re-executed with
//! [`FLAG`]) on a default Tokio runtime, as the master is, so both pay the same process,
//! scheduler and loopback costs. What the master adds over it is the API's own work:
//! routing, authentication, the store and serialisation.
use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::BenchResult;

/// The argument that makes the benchmark binary serve as the reference.
pub const FLAG: &str = "--reference-server";

const HELLO: &str = r#"{"message":"hello"}"#;

/// Serves on a port-0 loopback listener, prints the port, and stops when stdin closes.
pub fn serve() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        std::io::stdout().flush()?;
        let accept = async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header(header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from_static(HELLO.as_bytes())))
                                .unwrap_or_default(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        tokio::select! {
            () = accept => {}
            _ = stdin_closed => {}
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    // Blocking stdin reader threads would keep the runtime from shutting down.
    std::process::exit(0);
}

/// The reference server process and its port; it exits when the child is dropped and
/// its stdin closes.
pub fn start() -> BenchResult<(Child, u16)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .ok_or("reference server has no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let port = line.trim().parse()?;
    Ok((child, port))
}
