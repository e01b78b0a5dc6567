//! The load generator: `conns` keep-alive HTTP/1.1 connections (hyper's client
//! connection, one task each) sending their share of a request plan back to back for a
//! fixed time, with every request's latency recorded.
//!
//! Each connection walks the plan from its own offset, so a mix is interleaved across
//! connections instead of arriving in phases. A connection that fails is reopened; the
//! failure counts as an error, as does any answer that is not 2xx.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::BenchResult;

/// Longest any one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request of a plan.
#[derive(Debug, Clone)]
pub struct Call {
    /// GET or POST.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// JSON body of a POST.
    pub body: Option<Bytes>,
}

impl Call {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            body: None,
        }
    }

    /// `POST path` with a JSON `body`.
    pub fn post(path: &str, body: &serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(Bytes::from(body.to_string())),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Other answers and failed requests.
    pub errors: u64,
    /// Requests per second (2xx only).
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// An open connection to `addr`.
async fn connect(addr: SocketAddr) -> BenchResult<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when its sender is dropped or the server closes it; either
        // is reported through the sender.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `call` on `sender`; the status and body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    token: Option<&str>,
    call: &Call,
) -> BenchResult<(u16, Bytes)> {
    sender.ready().await?;
    let mut req = Request::builder()
        .method(call.method.clone())
        .uri(call.path.as_str())
        .header(header::HOST, addr.to_string());
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if call.body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(call.body.clone().unwrap_or_default()))?;
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(req)).await??;
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
        .await??
        .to_bytes();
    Ok((status, body))
}

/// One request on a fresh connection (setting up: logins, password change).
pub async fn once(
    addr: SocketAddr,
    token: Option<&str>,
    call: &Call,
) -> BenchResult<(u16, serde_json::Value)> {
    let mut sender = connect(addr).await?;
    let (status, body) = send(&mut sender, addr, token, call).await?;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// Latencies and counts of one connection.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    errors: u64,
}

/// Runs `plan` over `conns` connections for `duration`.
pub async fn run(
    addr: SocketAddr,
    token: Option<Arc<str>>,
    plan: Arc<[Call]>,
    conns: usize,
    duration: Duration,
) -> BenchResult<Summary> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let (token, plan) = (token.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender = None;
            let mut i = c;
            while Instant::now() < deadline {
                let call = &plan[i % plan.len()];
                i += 1;
                if sender.is_none() {
                    match connect(addr).await {
                        Ok(s) => sender = Some(s),
                        Err(_) => {
                            tally.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(s) = sender.as_mut() else { continue };
                let t = Instant::now();
                match send(s, addr, token.as_deref(), call).await {
                    Ok((status, _)) if (200..300).contains(&status) => {
                        if Instant::now() <= deadline {
                            tally.ok += 1;
                            let us = t.elapsed().as_micros();
                            tally
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                    }
                    Ok(_) => tally.errors += 1,
                    Err(_) => {
                        tally.errors += 1;
                        sender = None;
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        all.ok += t.ok;
        all.errors += t.errors;
        all.latencies_us.extend(t.latencies_us);
    }
    let secs = duration.as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let n = all.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let at = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        f64::from(all.latencies_us[at]) / 1000.0
    };
    Ok(Summary {
        errors: all.errors,
        rps: all.ok as f64 / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}
