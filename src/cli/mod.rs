//! The command line: parsing, dispatch to roles and commands, and exit codes.
//!
//! Exit codes are decided in one place ([`report`]): 0 success (a closed stdout pipe
//! counts as success, a broken pipe anywhere else does not: see [`output`]), 1 runtime
//! failure, 2 usage errors and features not built yet.
mod agent;
mod bus;
mod catalog;
mod collect;
mod decky;
mod deploy;
mod dispatch;
mod forwarder;
mod links;
mod listener;
mod logs;
mod master;
mod output;
mod pki;
mod status;
mod swarm;
mod teardown;
mod up;

pub use dispatch::{ROLES, normalize, role_from_argv0};

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use thiserror::Error;

use crate::config::{self, Config, LogFormat, Origin};
use output::Stdout;

/// `decnet --version`: the crate version and the commit it was built from.
const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("DECNET_GIT_COMMIT"),
    ")"
);

/// Errors the CLI maps to exit code 2.
#[derive(Debug, Error)]
pub enum CliError {
    /// The command exists in the plan but not in this build.
    #[error("`decnet {0}` is not implemented yet in this build")]
    NotImplemented(&'static str),
    /// The command line is malformed (clap has the rendered message).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The arguments parse but do not make sense together.
    #[error("{0}")]
    BadArguments(String),
    /// A refusal whose text the spec fixes: printed as is, without the `decnet:` prefix.
    #[error("{0}")]
    Verbatim(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "decnet",
    version = VERSION_LINE,
    about = "A honeypot deception network: fake machines on your LAN, one static binary",
    after_help = "Every role is also reachable through a symlink named after it \
                  (decnet-agent = decnet agent); `decnet links DIR` creates them."
)]
struct Cli {
    /// Diagnostic output format (default: $DECNET_LOG_FORMAT, else pretty).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// Diagnostic filter, e.g. `info` or `decnet=debug` (default: $RUST_LOG, $DECNET_LOG_LEVEL, info).
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Arguments of a command that is not built yet: accepted verbatim, then refused clearly.
#[derive(Debug, Args)]
struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the master: REST API, dashboard, swarm controller, log listener, ingester.
    Master(master::MasterArgs),
    /// Run a worker agent: the mTLS API the master drives to deploy deckies.
    Agent(agent::AgentArgs),
    /// Run the updater: installs releases pushed by the master, rolls back on failure.
    Updater(Pending),
    /// Ship this worker's honeypot log to the master over mTLS.
    Forwarder(forwarder::ForwarderArgs),
    /// Receive worker logs over syslog-over-TLS (part of the master).
    Listener(listener::ListenerArgs),
    /// Run the host-local publish/subscribe broker.
    Bus(bus::BusArgs),
    /// Compare desired and real fleet state.
    Reconciler(Pending),
    /// Run honeypot services inside a decky container.
    Decky(decky::DeckyArgs),
    /// Follow decky service containers' stdout into the local event log.
    Collect(collect::CollectArgs),
    /// Deploy deckies from an INI file or flags.
    Deploy(Box<deploy::DeployArgs>),
    /// Remove one decky, or the whole fleet with --all.
    Teardown(teardown::TeardownArgs),
    /// Show the fleet's state.
    Status(status::StatusArgs),
    /// Manage worker hosts of the swarm.
    Swarm(swarm::SwarmArgs),
    /// Manage MazeNET topologies.
    Topology(Pending),
    /// Prepare this host (state directory, CA, units).
    Init(Pending),
    /// Run every role on this host with SQLite.
    Up(up::UpArgs),
    /// Show the attack log stored on the master.
    Logs(logs::LogsArgs),
    /// Manage the decnet CA and certificate bundles.
    Pki(pki::PkiArgs),
    /// Print the resolved configuration (secrets masked).
    Config,
    /// Create `decnet-<role>` symlinks to this binary in a directory.
    Links(links::LinksArgs),
    /// List the honeypot services a decky can run.
    Services(catalog::ServicesArgs),
    /// List the archetypes (ready-made decky roles).
    Archetypes(catalog::ListArgs),
    /// List the distro profiles deckies can claim.
    Distros(catalog::ListArgs),
}

impl Command {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Master(_) => "master",
            Command::Agent(_) => "agent",
            Command::Updater(_) => "updater",
            Command::Forwarder(_) => "forwarder",
            Command::Listener(_) => "listener",
            Command::Bus(_) => "bus",
            Command::Reconciler(_) => "reconciler",
            Command::Decky(_) => "decky",
            Command::Collect(_) => "collect",
            Command::Deploy(_) => "deploy",
            Command::Teardown(_) => "teardown",
            Command::Status(_) => "status",
            Command::Swarm(_) => "swarm",
            Command::Topology(_) => "topology",
            Command::Init(_) => "init",
            Command::Up(_) => "up",
            Command::Logs(_) => "logs",
            Command::Pki(_) => "pki",
            Command::Config => "config",
            Command::Links(_) => "links",
            Command::Services(_) => "services",
            Command::Archetypes(_) => "archetypes",
            Command::Distros(_) => "distros",
        }
    }
}

/// Which Tokio scheduler a command runs on.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    /// One thread: operator commands and small roles.
    Current,
    /// A worker per core: roles that serve many connections.
    Multi,
}

/// The async runtime of a command, with I/O and timers enabled.
fn runtime(flavor: Flavor) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match flavor {
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
        Flavor::Multi => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Parses `args` (argv[0] included) and runs the chosen role or command.
pub fn run(args: Vec<OsString>) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(normalize(args)) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print to stdout and succeed.
            write!(Stdout(io::stdout().lock()), "{e}")?;
            return Ok(());
        }
        Err(e) => return Err(CliError::Usage(e).into()),
    };
    let mut config = Config::from_env()?;
    if let Some(format) = cli.log_format {
        config.log_format = format;
    }
    if let Some(level) = cli.log_level {
        config.log_filter = level;
    }
    crate::logging::init(config.log_format, &config.log_filter)?;

    // Each arm locks stdout itself: roles like `decky` write to it from other tasks.
    let out = || Stdout(io::stdout().lock());
    match cli.command {
        Command::Master(args) => master::run(args, &config),
        Command::Agent(args) => agent::run(args, &config),
        Command::Decky(args) => decky::run(args, &config),
        Command::Collect(args) => collect::run(args, &config),
        Command::Pki(args) => pki::run(args, &config, &mut out()),
        Command::Forwarder(args) => forwarder::run(args, &config),
        Command::Listener(args) => listener::run(args, &config, &mut out()),
        Command::Logs(args) => logs::run(args, &config, &mut out()),
        Command::Bus(args) => bus::run(args, &config, &mut out()),
        Command::Config => print_config(&config, &mut out()).context("writing the configuration"),
        Command::Links(args) => links::run(&args, &mut out()),
        Command::Services(args) => catalog::services(&args, &mut out()),
        Command::Archetypes(args) => catalog::archetypes(&args, &mut out()),
        Command::Distros(args) => catalog::distros(&args, &mut out()),
        Command::Deploy(args) => deploy::run(*args, &config, &mut out()),
        Command::Teardown(args) => teardown::run(args, &config, &mut out()),
        Command::Status(args) => status::run(&args, &config, &mut out()),
        Command::Up(args) => up::run(args, &config),
        Command::Swarm(args) => swarm::run(args, &config, &mut out()),
        other => Err(CliError::NotImplemented(other.name()).into()),
    }
}

fn print_config(config: &Config, out: &mut impl Write) -> io::Result<()> {
    let width = config
        .entries()
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0);
    for entry in config.entries() {
        let origin = match entry.origin {
            Origin::Default => "default",
            Origin::Env => "env",
        };
        writeln!(out, "{:width$}  {}  ({origin})", entry.key, entry.shown)?;
    }
    writeln!(
        out,
        "# defaults: {}={} , {}={}",
        config::HOME,
        config::DEFAULT_HOME,
        config::LOG_DIR,
        config::DEFAULT_LOG_DIR
    )
}

/// Prints `err` for the operator and returns the process exit code.
pub fn report(err: &anyhow::Error) -> u8 {
    if let Some(CliError::Usage(clap_err)) = err.downcast_ref::<CliError>() {
        // clap renders its own usage text; don't prefix it.
        let _ = write!(io::stderr().lock(), "{clap_err}");
        return 2;
    }
    if let Some(CliError::Verbatim(text)) = err.downcast_ref::<CliError>() {
        let _ = writeln!(io::stderr().lock(), "{text}");
        return 2;
    }
    if output::is_stdout_closed(err) {
        return 0;
    }
    let _ = writeln!(io::stderr().lock(), "decnet: {err:#}");
    match err.downcast_ref::<CliError>() {
        Some(_) => 2,
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize(args.iter().map(OsString::from).collect()))
    }

    #[test]
    fn every_role_in_the_table_is_a_subcommand() {
        // `--help` reaches the role's own parser whatever arguments the role requires.
        for (role, _) in ROLES {
            for argv in [
                vec!["decnet".to_owned(), (*role).to_owned(), "--help".to_owned()],
                vec![format!("/usr/local/bin/decnet-{role}"), "--help".to_owned()],
            ] {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let err = parse(&argv).expect_err("help is an early exit");
                assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{argv:?}");
                let usage = err.render().to_string();
                assert!(usage.contains(&format!("Usage: decnet {role}")), "{usage}");
            }
        }
    }

    #[test]
    fn each_outcome_has_its_exit_code() {
        let err: anyhow::Error = CliError::NotImplemented("updater").into();
        assert_eq!(report(&err), 2);
        let err = anyhow::anyhow!("disk on fire");
        assert_eq!(report(&err), 1);

        // A closed stdout is the reader's choice (`| head`): success.
        let closed = write!(Stdout(Closed), "x").expect_err("closed");
        let err = anyhow::Error::from(closed).context("writing the configuration");
        assert_eq!(report(&err), 0);
        // The same EPIPE from a socket (bus, TLS peer, Docker) is a runtime failure.
        let socket = write!(Closed, "x").expect_err("closed");
        let err = anyhow::Error::from(socket).context("sending to the bus");
        assert_eq!(report(&err), 1);
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(report(&err), 1);
    }

    /// A writer whose reader has gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }
}
