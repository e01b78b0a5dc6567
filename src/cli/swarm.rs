//! `decnet swarm …`: the operator's view of the swarm, through the master's controller
//! (swarm.md §11).
//!
//! The controller is `--url`, else `$DECNET_SWARMCTL_URL`, else `http://127.0.0.1:8770`.
//! Plain HTTP is for loopback; an `https://` controller is called with the master
//! identity from this host's PKI directory (the controller's operator gate wants CN
//! `decnet-master`) and must present the `swarmctl` certificate of the decnet CA. Every
//! request carries `Authorization: Bearer $DECNET_API_TOKEN` (an admin token from
//! `POST /api/v1/auth/login`). A controller that cannot be reached is exit 2 with the
//! address; an error answer prints its `detail` (with a token hint on 401/403), exit 1.
//! Tables by default, the controller's JSON with `--json`.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use super::{CliError, Flavor};
use crate::config::Config;
use crate::https::{Client, Response, Timeouts};
use crate::pki::{Bundle, Kind, Layout, MASTER_CN, SWARMCTL_CN};
use crate::tls::{ClientOptions, client_config};

/// The controller when neither `--url` nor `$DECNET_SWARMCTL_URL` says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8770";

/// Arguments of `decnet swarm`.
#[derive(Debug, Args)]
pub struct SwarmArgs {
    /// The swarm controller (default: $DECNET_SWARMCTL_URL, else http://127.0.0.1:8770).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Print the controller's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SwarmCommand,
}

#[derive(Debug, Subcommand)]
enum SwarmCommand {
    /// Enrol a worker: issue its certificate bundle and register it.
    Enroll(EnrollArgs),
    /// List enrolled workers.
    List {
        /// Only workers with this status (enrolled, active, unreachable).
        #[arg(long)]
        status: Option<String>,
    },
    /// Probe every worker's agent now.
    Check,
    /// List deckies and the worker running each.
    Deckies {
        /// Only this worker's (name or uuid).
        #[arg(long)]
        host: Option<String>,
        /// Only deckies in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// Deploy deckies sharded over the enrolled workers (as `decnet deploy --mode swarm`).
    Deploy(Box<super::deploy::DeployArgs>),
    /// Tear down one worker's deckies (or one decky), or every worker's.
    Teardown {
        /// The worker (name or uuid); every worker when absent.
        #[arg(long)]
        host: Option<String>,
        /// Only this decky.
        #[arg(long)]
        decky: Option<String>,
    },
    /// Remove a worker: it self-destructs, its deckies and certificate are forgotten.
    Decommission {
        /// The worker's name.
        #[arg(long, conflicts_with = "uuid")]
        name: Option<String>,
        /// The worker's uuid.
        #[arg(long)]
        uuid: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Arguments of `decnet swarm enroll`.
#[derive(Debug, Args)]
struct EnrollArgs {
    /// The worker's name (its certificate CN).
    #[arg(long)]
    name: String,
    /// The address the master reaches its agent at.
    #[arg(long)]
    address: String,
    /// Its agent's port.
    #[arg(long, default_value_t = 8765)]
    agent_port: u16,
    /// More names or addresses for its certificate, comma-separated.
    #[arg(long, value_delimiter = ',')]
    sans: Vec<String>,
    /// Free-form notes.
    #[arg(long)]
    notes: Option<String>,
    /// Write the bundle here (keys 0600; the updater's next to it in `<dir>-updater`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Also issue the worker's updater certificate.
    #[arg(long)]
    updater: bool,
}

/// The controller, as this command reaches it.
struct Controller {
    client: Client,
    url: String,
}

impl Controller {
    fn connect(url: &str, config: &Config) -> anyhow::Result<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(CliError::BadArguments(format!(
                "--url {url}: use http://HOST:PORT (loopback) or https://HOST:PORT"
            ))
            .into());
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>().map_err(|_| {
                    CliError::BadArguments(format!("--url {url}: {p:?} is not a port"))
                })?,
            ),
            None => (authority, 8770),
        };
        let client = if tls {
            let layout = Layout::new(&config.pki_dir);
            let dir = layout.bundle_dir(Kind::Master, MASTER_CN);
            let bundle = Bundle::load(&dir, Kind::Master.stem()).with_context(|| {
                format!(
                    "an https controller is called with the master identity in {}",
                    dir.display()
                )
            })?;
            let opts = ClientOptions {
                identity: Some(SWARMCTL_CN.to_owned()),
                pin: None,
                verify_hostname: config.verify_hostname,
            };
            Client::new(client_config(&bundle, &opts)?, host, port)
        } else {
            Client::plain(host, port)
        };
        let client = match &config.api_token {
            Some(token) => client.with_bearer(token.expose()),
            None => client,
        };
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// Sends a request; unreachable → exit 2, an error answer → its detail, exit 1.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        t: Timeouts,
    ) -> anyhow::Result<Response> {
        let sent = match body {
            Some(b) => self.client.json(method, path, b, t).await,
            None => self.client.send(method, path, None, t).await,
        };
        let resp = sent.map_err(|e| {
            CliError::BadArguments(format!(
                "cannot reach the swarm controller at {}: {e}; is `decnet master` running \
                 (or pass --url)?",
                self.url
            ))
        })?;
        if resp.status.as_u16() >= 400 {
            let hint = match resp.status.as_u16() {
                401 | 403 => {
                    " (set DECNET_API_TOKEN to an admin's token from POST /api/v1/auth/login)"
                }
                _ => "",
            };
            bail!("{} {}: {}{hint}", resp.status.as_u16(), path, resp.detail());
        }
        Ok(resp)
    }

    async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .call(Method::GET, path, None, Timeouts::CONTROL)
            .await?;
        resp.json().context("the controller's answer is not JSON")
    }

    /// The uuid of the host named or numbered `key` (exit 1 when unknown).
    async fn host_uuid(&self, key: &str) -> anyhow::Result<String> {
        let hosts = self.get_json("/swarm/hosts").await?;
        hosts
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["name"] == key || h["uuid"] == key)
            .and_then(|h| h["uuid"].as_str().map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("no enrolled worker is named or numbered {key:?}"))
    }
}

/// `?k=v&…` of the pairs that are set, percent-encoded.
fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A field of a JSON row as table text.
fn cell(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) => crate::term::escape(s).into_owned(),
        other => other.to_string(),
    }
}

/// Prints `rows` as a table of `columns` (header, JSON key).
fn table(rows: &Value, columns: &[(&str, &str)], out: &mut impl Write) -> std::io::Result<()> {
    let rows: Vec<&Value> = rows.as_array().into_iter().flatten().collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, k)| cell(r, k)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<&str>, out: &mut dyn Write| {
        let text: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:w$}"))
            .collect();
        writeln!(out, "{}", text.join("  ").trim_end())
    };
    line(columns.iter().map(|(h, _)| *h).collect(), out)?;
    for c in &cells {
        line(c.iter().map(String::as_str).collect(), out)?;
    }
    if cells.is_empty() {
        writeln!(out, "(none)")?;
    }
    Ok(())
}

/// Runs `decnet swarm …`.
pub fn run(args: SwarmArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let url = args
        .url
        .clone()
        .or_else(|| config.swarmctl_url.clone())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let ctl = Controller::connect(&url, config)?;
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(dispatch(args, &ctl, config, out))
}

async fn dispatch(
    args: SwarmArgs,
    ctl: &Controller,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let json = args.json;
    let print = |v: &Value, out: &mut dyn Write| -> anyhow::Result<()> {
        writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
        Ok(())
    };
    match args.command {
        SwarmCommand::Enroll(e) => enroll(ctl, e, json, out).await,
        SwarmCommand::List { status } => {
            let v = ctl
                .get_json(&format!(
                    "/swarm/hosts{}",
                    query(&[("host_status", status.as_deref())])
                ))
                .await?;
            if json {
                return print(&v, out);
            }
            let cols = [
                ("NAME", "name"),
                ("ADDRESS", "address"),
                ("PORT", "agent_port"),
                ("STATUS", "status"),
                ("LAST HEARTBEAT", "last_heartbeat"),
                ("ENROLLED", "enrolled_at"),
            ];
            Ok(table(&v, &cols, out)?)
        }
        SwarmCommand::Check => {
            let t = Timeouts {
                read: std::time::Duration::from_secs(60),
                ..Timeouts::CONTROL
            };
            let v: Value = ctl
                .call(Method::POST, "/swarm/check", None, t)
                .await?
                .json()?;
            if json {
                return print(&v, out);
            }
            let cols = [
                ("NAME", "name"),
                ("ADDRESS", "address"),
                ("REACHABLE", "reachable"),
                ("DETAIL", "detail"),
            ];
            Ok(table(&v["results"], &cols, out)?)
        }
        SwarmCommand::Deckies { host, state } => {
            let uuid = match &host {
                Some(h) => Some(ctl.host_uuid(h).await?),
                None => None,
            };
            let q = query(&[("host_uuid", uuid.as_deref()), ("state", state.as_deref())]);
            let v = ctl.get_json(&format!("/swarm/deckies{q}")).await?;
            if json {
                return print(&v, out);
            }
            let cols = [
                ("DECKY", "decky_name"),
                ("IP", "decky_ip"),
                ("HOST", "host_name"),
                ("HOST STATUS", "host_status"),
                ("STATE", "state"),
                ("SERVICES", "services"),
                ("ERROR", "last_error"),
            ];
            Ok(table(&v, &cols, out)?)
        }
        SwarmCommand::Deploy(d) => {
            let v = deploy(ctl, *d, config, out).await?;
            if json {
                return print(&v, out);
            }
            results(&v, out)
        }
        SwarmCommand::Teardown { host, decky } => {
            let uuid = match &host {
                Some(h) => Some(ctl.host_uuid(h).await?),
                None => None,
            };
            let body = json!({ "host_uuid": uuid, "decky_id": decky });
            let v: Value = ctl
                .call(Method::POST, "/swarm/teardown", Some(&body), Timeouts::LONG)
                .await?
                .json()?;
            if json {
                return print(&v, out);
            }
            results(&v, out)
        }
        SwarmCommand::Decommission { name, uuid, yes } => {
            let key = match (name, uuid) {
                (Some(n), None) => n,
                (None, Some(u)) => u,
                _ => {
                    return Err(
                        CliError::BadArguments("give --name NAME or --uuid UUID".into()).into(),
                    );
                }
            };
            let uuid = ctl.host_uuid(&key).await?;
            if !yes
                && !confirm(&format!(
                    "decommission worker {key} ({uuid})? it self-destructs"
                ))?
            {
                writeln!(out, "not decommissioned")?;
                return Ok(());
            }
            ctl.call(
                Method::DELETE,
                &format!("/swarm/hosts/{uuid}"),
                None,
                Timeouts::CONTROL,
            )
            .await?;
            writeln!(out, "decommissioned {key} ({uuid})")?;
            Ok(())
        }
    }
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Prints per-host results; exit 1 when any host failed.
fn results(v: &Value, out: &mut impl Write) -> anyhow::Result<()> {
    let cols = [("HOST", "host_name"), ("OK", "ok"), ("DETAIL", "detail")];
    table(&v["results"], &cols, out)?;
    let failed: Vec<String> = v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["ok"] != true)
        .map(|r| cell(r, "host_name"))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("failed on {}", failed.join(", "))
    }
}

async fn enroll(
    ctl: &Controller,
    e: EnrollArgs,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let body = json!({
        "name": e.name, "address": e.address, "agent_port": e.agent_port, "sans": e.sans,
        "notes": e.notes, "issue_updater_bundle": e.updater,
    });
    let v: Value = ctl
        .call(
            Method::POST,
            "/swarm/enroll",
            Some(&body),
            Timeouts::CONTROL,
        )
        .await?
        .json()?;
    if let Some(dir) = &e.out_dir {
        write_bundle(&v, dir)?;
    }
    if json {
        // The private keys are in the answer; they go to stdout only when asked for.
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "enrolled {} ({})",
        cell(&v, "name"),
        cell(&v, "host_uuid")
    )?;
    writeln!(out, "fingerprint {}", cell(&v, "fingerprint"))?;
    if !v["updater"].is_null() {
        writeln!(
            out,
            "updater fingerprint {}",
            cell(&v["updater"], "fingerprint")
        )?;
    }
    match &e.out_dir {
        Some(dir) => writeln!(out, "bundle written to {} (keys 0600)", dir.display())?,
        None => writeln!(
            out,
            "warning: the keys were only in the answer and are gone; enrol with --out-dir DIR \
             (or decommission and enrol again)"
        )?,
    }
    Ok(())
}

/// Writes an enrolment answer's bundle files into `dir` (and `<dir>-updater`).
fn write_bundle(v: &Value, dir: &std::path::Path) -> anyhow::Result<()> {
    let text = |v: &Value, k: &str| -> anyhow::Result<String> {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the enrolment answer has no {k}"))
    };
    let write = |dir: &std::path::Path, name: &str, data: &str, mode: u32| {
        crate::fsutil::create_dir_with_mode(dir, 0o700)
            .and_then(|()| crate::fsutil::write_atomic(&dir.join(name), data.as_bytes(), mode))
            .with_context(|| format!("writing {}", dir.join(name).display()))
    };
    let ca = text(v, "ca_cert_pem")?;
    write(dir, "ca.crt", &ca, 0o644)?;
    write(dir, "worker.crt", &text(v, "worker_cert_pem")?, 0o644)?;
    write(dir, "worker.key", &text(v, "worker_key_pem")?, 0o600)?;
    if let Some(pin) = v["master_fingerprint"].as_str() {
        write(dir, crate::pki::MASTER_PIN_FILE, &format!("{pin}\n"), 0o644)?;
    }
    if let Some(pin) = v["swarmctl_fingerprint"].as_str() {
        write(
            dir,
            crate::pki::SWARMCTL_PIN_FILE,
            &format!("{pin}\n"),
            0o644,
        )?;
    }
    if v["updater"].is_object() {
        let mut name = dir.as_os_str().to_owned();
        name.push("-updater");
        let up = PathBuf::from(name);
        write(&up, "ca.crt", &ca, 0o644)?;
        write(
            &up,
            "updater.crt",
            &text(&v["updater"], "updater_cert_pem")?,
            0o644,
        )?;
        write(
            &up,
            "updater.key",
            &text(&v["updater"], "updater_key_pem")?,
            0o600,
        )?;
    }
    Ok(())
}

/// Shards the fleet `args` describe over the active and enrolled workers (round-robin,
/// by name) and has the controller dispatch it.
async fn deploy(
    ctl: &Controller,
    args: super::deploy::DeployArgs,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<Value> {
    let hosts = ctl.get_json("/swarm/hosts").await?;
    let mut targets: Vec<(String, String)> = hosts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| {
            matches!(h["status"].as_str(), Some("active" | "enrolled"))
                && h["address"].as_str().is_some_and(|a| !a.is_empty())
        })
        .filter_map(|h| {
            Some((
                h["name"].as_str()?.to_owned(),
                h["uuid"].as_str()?.to_owned(),
            ))
        })
        .collect();
    targets.sort();
    if targets.is_empty() {
        bail!("no enrolled worker to deploy to: enrol one with `decnet swarm enroll`");
    }
    let (mut fleet, seed, dry_run) = super::deploy::swarm_fleet(args, config)?;
    for (i, d) in fleet.deckies.iter_mut().enumerate() {
        d.host_uuid = Some(targets[i % targets.len()].1.clone());
    }
    writeln!(
        out,
        "sharding {} decky(ies) over {} worker(s) (seed {seed})",
        fleet.deckies.len(),
        targets.len()
    )?;
    let body = json!({ "config": fleet, "dry_run": dry_run, "no_cache": false });
    let t = Timeouts {
        read: std::time::Duration::from_secs(900),
        ..Timeouts::LONG
    };
    Ok(ctl
        .call(Method::POST, "/swarm/deploy", Some(&body), t)
        .await?
        .json()?)
}

/// `decnet deploy --mode swarm`: the same path as `decnet swarm deploy`.
pub fn deploy_from_cli(
    args: super::deploy::DeployArgs,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let url = config
        .swarmctl_url
        .clone()
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let ctl = Controller::connect(&url, config)?;
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(async {
        let v = deploy(&ctl, args, config, out).await?;
        results(&v, out)
    })
}
