//! The envelope: `MAIL FROM:` / `RCPT TO:` paths and their parameters, and where a
//! recipient goes (a local mailbox, an unknown local user, or a relay the decky refuses).
//!
//! Parsing follows Postfix's leniency: `FROM:<a>` and `FROM: <a>` are the same, a bare
//! address without brackets is taken, a source route (`<@relay:user@host>`) is dropped.
use super::flavor;
use crate::roles::decky::Persona;

/// Why a path did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// No `FROM:`/`TO:` keyword or no address at all (`501 5.5.4 Syntax: …`).
    Syntax,
    /// The address itself is malformed (`501 5.1.x Bad … address syntax`).
    Address,
}

/// Splits `FROM:<addr> PARAM…` (keyword `FROM:` or `TO:`) into the bare address and the
/// parameters.
pub fn parse_path<'a>(args: &'a str, keyword: &str) -> Result<(String, Vec<&'a str>), PathError> {
    let args = args.trim_start();
    let prefix = args.get(..keyword.len()).ok_or(PathError::Syntax)?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return Err(PathError::Syntax);
    }
    let rest = args[keyword.len()..].trim_start();
    if rest.is_empty() {
        return Err(PathError::Syntax);
    }
    let (inner, after) = if let Some(bracketed) = rest.strip_prefix('<') {
        let end = bracketed.find('>').ok_or(PathError::Address)?;
        (&bracketed[..end], &bracketed[end + 1..])
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if after.starts_with(|c: char| !c.is_whitespace()) {
        return Err(PathError::Address);
    }
    let inner = match inner.strip_prefix('@') {
        Some(route) => route.split_once(':').map_or("", |(_, a)| a),
        None => inner,
    };
    if inner
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | ' ' | ',' | ';'))
    {
        return Err(PathError::Address);
    }
    Ok((inner.to_owned(), after.split_whitespace().collect()))
}

/// The domain of `addr`, lower case (empty for a bare local part).
pub fn domain(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Who receives mail on the decky: its domains and mailboxes, and what it says to the
/// rest.
#[derive(Debug, Clone)]
pub struct Mailboxes {
    domains: Vec<String>,
    users: Vec<String>,
    /// Whether the decky is an open relay (`SMTP_OPEN_RELAY`): every remote recipient
    /// is taken (and kept, never sent on).
    pub open_relay: bool,
    /// `554 5.7.1` (`reject_unauth_destination`, the hardened setting most guides give)
    /// or `454 4.7.1` (`defer_unauth_destination`, Postfix's own default).
    relay_reply: (u16, &'static str),
}

impl Mailboxes {
    /// The mailboxes of `persona`'s mail server.
    pub fn new(persona: &Persona, open_relay: bool) -> Self {
        let myhostname = flavor::myhostname(persona).to_ascii_lowercase();
        let mut domains = vec![
            myhostname.clone(),
            persona.hostname.to_ascii_lowercase(),
            "localhost.localdomain".to_owned(),
            "localhost".to_owned(),
        ];
        domains.dedup();
        let relay_reply = if persona.number("smtp-relay-restriction", 3) == 0 {
            (454, "4.7.1")
        } else {
            (554, "5.7.1")
        };
        Mailboxes {
            domains,
            users: flavor::local_users(persona),
            open_relay,
            relay_reply,
        }
    }

    /// Postfix's answer to `RCPT TO:<addr>` (and to `VRFY addr`): `Ok` to accept, else
    /// the rejection line.
    pub fn check(&self, addr: &str, local_ip: &str) -> Result<(), String> {
        let (local, domain) = match addr.rsplit_once('@') {
            Some((l, d)) => (l, d.to_ascii_lowercase()),
            None => (addr, String::new()),
        };
        let literal = format!("[{local_ip}]");
        let is_local = domain.is_empty() || domain == literal || self.domains.contains(&domain);
        if !is_local {
            if self.open_relay {
                return Ok(());
            }
            let (code, dsn) = self.relay_reply;
            return Err(format!("{code} {dsn} <{addr}>: Relay access denied"));
        }
        let user = local.to_ascii_lowercase();
        let user = user.split('+').next().unwrap_or_default();
        if self.users.iter().any(|u| u == user) {
            Ok(())
        } else {
            Err(format!(
                "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in local recipient table"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::decky::persona::tests::persona;

    #[test]
    fn paths_parse_like_postfix() {
        assert_eq!(
            parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:"),
            Ok(("a@b.c".to_owned(), vec!["SIZE=10", "BODY=8BITMIME"]))
        );
        assert_eq!(parse_path("from: <>", "FROM:"), Ok((String::new(), vec![])));
        assert_eq!(
            parse_path("To:bob@x", "TO:"),
            Ok(("bob@x".to_owned(), vec![]))
        );
        assert_eq!(
            parse_path("TO:<@r1,@r2:u@h>", "TO:").map(|p| p.0),
            Ok("u@h".to_owned())
        );
        assert_eq!(parse_path("bob@x", "TO:"), Err(PathError::Syntax));
        assert_eq!(parse_path("TO:", "TO:"), Err(PathError::Syntax));
        assert_eq!(parse_path("TO:<bob", "TO:"), Err(PathError::Address));
        assert_eq!(parse_path("TO:<a>b", "TO:"), Err(PathError::Address));
        assert_eq!(parse_path("é", "TO:"), Err(PathError::Syntax));
    }

    #[test]
    fn remote_recipients_are_refused_unless_open() {
        let p = persona(4, "debian");
        let closed = Mailboxes::new(&p, false);
        let refused = closed.check("victim@example.com", "192.0.2.1").unwrap_err();
        assert!(
            refused.ends_with(" <victim@example.com>: Relay access denied"),
            "{refused}"
        );
        assert!(closed.check("root", "192.0.2.1").is_ok());
        assert!(closed.check("postmaster@localhost", "192.0.2.1").is_ok());
        assert!(closed.check("root+x@[192.0.2.1]", "192.0.2.1").is_ok());
        let host = format!("nosuchuser@{}", flavor::myhostname(&p));
        assert!(
            closed
                .check(&host, "192.0.2.1")
                .unwrap_err()
                .starts_with("550 5.1.1 <")
        );
        assert!(
            Mailboxes::new(&p, true)
                .check("victim@example.com", "x")
                .is_ok()
        );
    }
}
