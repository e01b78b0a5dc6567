//! `decnet pki …`: create the CA, issue bundles, inspect certificates.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::CliError;
use crate::config::Config;
use crate::pki::{self, Bundle, CertInfo, Kind, Layout, cert_info, pem_to_der, read_master_pin};

/// Arguments of `decnet pki`.
#[derive(Debug, Args)]
pub struct PkiArgs {
    /// PKI directory (default: $DECNET_PKI_DIR, else $DECNET_HOME/pki).
    #[arg(long, global = true)]
    pki_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create the decnet CA; running it again keeps the same CA.
    Init,
    /// Issue a certificate bundle (ca.crt, <kind>.crt, <kind>.key).
    Issue {
        /// What the certificate is for.
        #[arg(value_enum)]
        kind: Kind,
        /// Worker name (required for worker and updater).
        name: Option<String>,
        /// Extra subject alternative names: IP addresses or DNS names (repeat or comma-separate).
        #[arg(long = "san", value_delimiter = ',')]
        sans: Vec<String>,
        /// Write the bundle here instead of the PKI directory (worker and updater only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing bundle (its fingerprint changes).
        #[arg(long)]
        force: bool,
    },
    /// Show a certificate file, or every certificate of a bundle directory.
    Show {
        /// A .crt file or a bundle directory.
        path: PathBuf,
    },
}

/// Runs a `decnet pki` command.
pub fn run(args: PkiArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let layout = Layout::new(args.pki_dir.unwrap_or_else(|| config.pki_dir.clone()));
    match args.command {
        PkiCommand::Init => {
            let (ca, created) = layout.ensure_ca()?;
            let verb = if created {
                "created"
            } else {
                "already present, kept"
            };
            writeln!(out, "CA {verb}: {}", layout.ca_dir().display())?;
            writeln!(out, "fingerprint: {}", ca.fingerprint())?;
        }
        PkiCommand::Issue {
            kind,
            name,
            sans,
            out: out_dir,
            force,
        } => {
            let (bundle, dir) = issue(&layout, kind, name, &sans, out_dir, force)?;
            writeln!(out, "issued {} certificate CN={}", kind.stem(), bundle.cn())?;
            writeln!(out, "bundle: {}", dir.display())?;
            writeln!(out, "fingerprint: {}", bundle.fingerprint())?;
            if let Some(pin) = read_master_pin(&dir)?.filter(|_| kind == Kind::Worker) {
                writeln!(out, "master fingerprint (pinned by its forwarder): {pin}")?;
            }
        }
        PkiCommand::Show { path } => show(&path, out)?,
    }
    Ok(())
}

fn issue(
    layout: &Layout,
    kind: Kind,
    name: Option<String>,
    sans: &[String],
    out_dir: Option<PathBuf>,
    force: bool,
) -> anyhow::Result<(Bundle, PathBuf)> {
    match kind {
        Kind::Worker | Kind::Updater => {
            let name = name.ok_or_else(|| {
                CliError::BadArguments(
                    format!("`pki issue {kind:?}` needs the worker name").to_lowercase(),
                )
            })?;
            layout
                .issue_host(kind, &name, sans, out_dir.as_deref(), force)
                .map_err(|err| match err {
                    // A reserved name is a usage error: exit 2 with the reason.
                    pki::Error::ReservedName { .. } => {
                        CliError::BadArguments(err.to_string()).into()
                    }
                    other => other.into(),
                })
        }
        Kind::Master | Kind::Server => {
            if name.is_some() || out_dir.is_some() {
                return Err(CliError::BadArguments(
                    "the master and server identities live in the PKI directory; \
                     they take no name and no --out"
                        .into(),
                )
                .into());
            }
            let dir = layout.bundle_dir(kind, "");
            if force && dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            let bundle = match kind {
                Kind::Master => layout.ensure_master()?,
                _ => layout.ensure_server(sans)?,
            };
            Ok((bundle, dir))
        }
    }
}

fn show(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        anyhow::bail!("no .crt files in {}", path.display());
    }
    for file in files {
        let pem =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let der = pem_to_der(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let info = cert_info(&der).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        print_info(&file, &info, out)?;
    }
    Ok(())
}

fn print_info(file: &Path, info: &CertInfo, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{}", file.display())?;
    writeln!(
        out,
        "  subject CN:  {}{}",
        info.cn,
        if info.is_ca { " (CA)" } else { "" }
    )?;
    writeln!(out, "  issuer CN:   {}", info.issuer_cn)?;
    writeln!(out, "  SANs:        {}", info.sans.join(", "))?;
    writeln!(
        out,
        "  valid:       {} .. {}",
        info.not_before, info.not_after
    )?;
    writeln!(out, "  fingerprint: {}", info.fingerprint)
}
