//! What `decnet up` tells the operator: progress lines while it starts (stderr), then
//! one summary (stdout) with the dashboard address, the admin account, the password when
//! one was set now, and each decky with what to try against it. The summary ends with a
//! line `ready`, which scripts and tests wait for.
use std::io::Write;
use std::net::SocketAddr;

use super::fleet;
use crate::model::Ipv4Net;

/// One decky as the summary shows it.
#[derive(Debug, Clone)]
pub struct DeckyLine {
    /// Name.
    pub name: String,
    /// Address.
    pub ip: String,
    /// Services.
    pub services: Vec<String>,
    /// Archetype, when it came from one.
    pub archetype: Option<String>,
    /// `up` or `degraded`.
    pub state: &'static str,
}

/// Everything `decnet up` started, for the summary it prints.
#[derive(Debug, Clone)]
pub struct Started {
    /// The API's address.
    pub api: SocketAddr,
    /// The listener's address.
    pub listener: SocketAddr,
    /// The admin account's name.
    pub admin_user: String,
    /// A password set now (print it once), `None` when the account already had one.
    pub new_password: Option<String>,
    /// Whether the account was there before this run.
    pub admin_existed: bool,
    /// The fleet's network and subnet, when there is a fleet.
    pub network: Option<(String, Ipv4Net)>,
    /// The deckies.
    pub deckies: Vec<DeckyLine>,
    /// Whether the fleet was deployed by this run.
    pub deployed_now: bool,
}

/// Receives what `up` has to say: progress lines while it starts, then the summary.
pub trait Console: Send {
    /// A progress line (image build, deckies starting).
    fn progress(&mut self, line: &str);
    /// Everything is up.
    fn started(&mut self, started: &Started);
}

/// A [`Console`] writing progress to `err` and the summary to `out`.
#[derive(Debug)]
pub struct Terminal<O, E> {
    /// Where the summary goes (stdout).
    pub out: O,
    /// Where progress goes (stderr).
    pub err: E,
}

impl<O: Write + Send, E: Write + Send> Console for Terminal<O, E> {
    fn progress(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}");
    }

    fn started(&mut self, s: &Started) {
        let _ = write_summary(&mut self.out, s);
    }
}

/// The operator's summary: where to log in, with what, and what to attack.
pub fn write_summary(out: &mut impl Write, s: &Started) -> std::io::Result<()> {
    writeln!(out, "decnet is up")?;
    writeln!(out, "  dashboard:     http://{}/", s.api)?;
    writeln!(out, "  API:           http://{}/api/v1", s.api)?;
    writeln!(out, "  log listener:  {} (mTLS)", s.listener)?;
    writeln!(out, "  admin user:    {}", s.admin_user)?;
    match &s.new_password {
        Some(p) => writeln!(
            out,
            "  admin password: {p}\n  (shown only now; you choose your own at first login)"
        )?,
        None if !s.admin_existed => writeln!(
            out,
            "  admin password: the one in DECNET_ADMIN_PASSWORD (changed at first login)"
        )?,
        None => writeln!(
            out,
            "  admin password was printed on first run; reset it with \
             `decnet up --reset-admin-password`"
        )?,
    }
    if let Some((network, subnet)) = &s.network {
        let how = if s.deployed_now {
            "deployed now"
        } else {
            "found again"
        };
        writeln!(out, "deckies ({how}, network {network}, {subnet}):")?;
        for d in &s.deckies {
            let tries = fleet::what_to_try(&d.ip, &d.services);
            writeln!(
                out,
                "  {:<10} {:<15} {:<14} {:<9} {}",
                d.name,
                d.ip,
                d.archetype.as_deref().unwrap_or("-"),
                d.state,
                d.services.join(",")
            )?;
            for t in tries {
                writeln!(out, "      try: {t}")?;
            }
        }
        writeln!(
            out,
            "Ctrl-C stops decnet; the deckies keep running (`decnet teardown --all` removes them)"
        )?;
    } else {
        writeln!(out, "no fleet (--no-fleet); Ctrl-C stops decnet")?;
    }
    writeln!(out, "ready")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(password: Option<&str>) -> Started {
        Started {
            api: "127.0.0.1:8000".parse().expect("addr"),
            listener: "127.0.0.1:6514".parse().expect("addr"),
            admin_user: "admin".into(),
            new_password: password.map(str::to_owned),
            admin_existed: password.is_none(),
            network: Some(("decnet_up".into(), "10.213.47.0/24".parse().expect("cidr"))),
            deckies: vec![DeckyLine {
                name: "decky-01".into(),
                ip: "10.213.47.2".into(),
                services: vec!["ssh".into(), "http".into()],
                archetype: Some("linux-server".into()),
                state: "up",
            }],
            deployed_now: password.is_some(),
        }
    }

    fn summary(s: &Started) -> String {
        let mut out = Vec::new();
        write_summary(&mut out, s).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_password_is_shown_on_the_first_run_only() {
        let first = summary(&started(Some("0123456789abcdef0123")));
        assert!(
            first.contains("admin password: 0123456789abcdef0123"),
            "{first}"
        );
        assert!(first.contains("http://127.0.0.1:8000/"), "{first}");
        assert!(first.contains("try: ssh root@10.213.47.2"), "{first}");
        assert!(first.ends_with("ready\n"), "{first}");
        let later = summary(&started(None));
        assert!(!later.contains("0123456789abcdef"), "{later}");
        assert!(later.contains("--reset-admin-password"), "{later}");
        assert!(later.contains("found again"), "{later}");
        let given = Started {
            admin_existed: false,
            ..started(None)
        };
        assert!(summary(&given).contains("DECNET_ADMIN_PASSWORD"));
    }
}
