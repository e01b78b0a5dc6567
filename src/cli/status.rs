//! `decnet status [--json]`: every deployed decky with its address, MAC, services and
//! whether it is `up` (base and every service running) or `degraded`.
use super::Flavor;
use std::io::Write;

use clap::Args;

use super::catalog::table;
use crate::config::Config;
use crate::engine::teardown::{self, DeckyStatus};
use crate::engine::{Engine, Error, state};

/// Arguments of `decnet status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `decnet status`.
pub fn run(args: &StatusArgs, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(state) = state::load(&state::path_in(&config.home))? else {
        if args.json {
            writeln!(out, "[]")?;
        } else {
            writeln!(out, "{}", Error::NoDeployment)?;
        }
        return Ok(());
    };
    let runtime = super::runtime(Flavor::Current)?;
    let rows = runtime.block_on(async {
        let engine = Engine::connect(config.docker_host.as_deref()).await?;
        teardown::status(&engine, &state).await
    })?;
    if args.json {
        // Rendered first: serde_json's writer errors hide a closed stdout from `report`.
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    print_table(&rows, out)?;
    let up = rows.iter().filter(|r| r.state == "up").count();
    writeln!(
        out,
        "{up} of {} decky(ies) up on {} ({})",
        rows.len(),
        state.names.network,
        state.driver
    )?;
    Ok(())
}

/// The final table of a deploy and of `status`: decky, IP, MAC, services, state.
pub fn print_table(rows: &[DeckyStatus], out: &mut impl Write) -> std::io::Result<()> {
    let lines = rows.iter().map(|r| {
        let services: Vec<String> = r
            .services
            .iter()
            .map(|s| format!("{}({})", s.service, s.state.as_deref().unwrap_or("absent")))
            .collect();
        vec![
            r.name.clone(),
            r.ip.clone(),
            r.mac.clone().unwrap_or_else(|| "-".into()),
            r.hostname.clone(),
            services.join(" "),
            r.state.to_owned(),
        ]
    });
    table(
        &["DECKY", "IP", "MAC", "HOSTNAME", "SERVICES", "STATE"],
        lines,
        out,
    )
}
