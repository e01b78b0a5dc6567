//! `decnet teardown NAME | --all`: removes one decky (base and services, pruned from the
//! state file) or the whole fleet (containers, hairpin link, network, state file).
//! Captured artifacts stay unless `--purge-artifacts` says otherwise.
use super::Flavor;
use std::io::Write;

use clap::Args;

use super::CliError;
use crate::config::Config;
use crate::engine::teardown::{self, Target};
use crate::engine::{Engine, Error, artifacts, state};

/// Arguments of `decnet teardown`.
#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// The decky to remove.
    #[arg(conflicts_with = "all")]
    name: Option<String>,
    /// The decky to remove (the original's spelling).
    #[arg(long = "id", conflicts_with_all = ["all", "name"])]
    id: Option<String>,
    /// Remove the whole fleet.
    #[arg(long)]
    all: bool,
    /// Also delete the removed deckies' captured artifacts (kept by default: evidence).
    #[arg(long)]
    purge_artifacts: bool,
}

/// Runs `decnet teardown`.
pub fn run(args: TeardownArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let target = match (args.name.or(args.id), args.all) {
        (Some(name), false) => Target::Decky(name),
        (None, true) => Target::All,
        _ => {
            return Err(CliError::BadArguments(
                "name a decky to remove, or pass --all for the whole fleet".into(),
            )
            .into());
        }
    };
    let state_path = state::path_in(&config.home);
    let runtime = super::runtime(Flavor::Current)?;
    runtime.block_on(async {
        let started = tokio::time::Instant::now();
        let engine = Engine::connect(config.docker_host.as_deref()).await?;
        match teardown::teardown(&engine, &state_path, &target).await {
            Ok(done) => {
                let took = started.elapsed().as_secs_f64();
                let what = if done.fleet_removed {
                    "the fleet (network, hairpin link and state file included)".to_owned()
                } else {
                    done.deckies.join(", ")
                };
                writeln!(
                    out,
                    "removed {what}: {} decky(ies), {} container(s) in {took:.1} s",
                    done.deckies.len(),
                    done.containers
                )?;
                if args.purge_artifacts {
                    for decky in &done.deckies {
                        if artifacts::purge(&config.artifacts_root, decky)? {
                            writeln!(out, "deleted the artifacts of {decky}")?;
                        }
                    }
                }
                Ok(())
            }
            Err(Error::NoDeployment) => {
                writeln!(out, "{}", Error::NoDeployment)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    })
}
