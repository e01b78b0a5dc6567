//! `decnet links DIR`: busybox-style symlinks so `decnet-agent` runs `decnet agent`.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use super::ROLES;

/// Arguments of `decnet links`.
#[derive(Debug, Args)]
pub struct LinksArgs {
    /// Directory to create the links in (e.g. /usr/local/bin).
    dir: PathBuf,
    /// Binary the links point at (default: this executable).
    #[arg(long)]
    target: Option<PathBuf>,
    /// Replace files that already exist under those names.
    #[arg(long)]
    force: bool,
}

/// Creates one `decnet-<role>` symlink per role; existing correct links are left alone.
pub fn run(args: &LinksArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let target = match &args.target {
        Some(t) => t.clone(),
        None => std::env::current_exe().context("cannot tell where this executable is")?,
    };
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    for (role, _) in ROLES {
        let link = args.dir.join(format!("decnet-{role}"));
        ensure_link(&link, &target, args.force)?;
        writeln!(out, "{} -> {}", link.display(), target.display())?;
    }
    Ok(())
}

fn ensure_link(link: &Path, target: &Path, force: bool) -> anyhow::Result<()> {
    if link.symlink_metadata().is_ok() {
        if fs::read_link(link).is_ok_and(|existing| existing == target) {
            return Ok(());
        }
        if !force {
            bail!(
                "{} already exists and is not a link to {}; pass --force to replace it",
                link.display(),
                target.display()
            );
        }
        fs::remove_file(link).with_context(|| format!("removing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link).with_context(|| format!("creating {}", link.display()))
}
