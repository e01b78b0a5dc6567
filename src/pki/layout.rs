//! Where the master keeps its PKI: one directory for every master role.
//!
//! ```text
//! <pki>/ca/{ca.key, ca.crt}                     the root CA (dir 0700, key 0600)
//! <pki>/master/{ca.crt, master.crt, master.key} CN decnet-master: client of agents and
//!                                               updaters, server of the log listener
//! <pki>/server/{ca.crt, server.crt, server.key} CN swarmctl: the controller's server cert
//! <pki>/workers/<name>/{ca.crt, worker.*,       issued worker bundles, kept for replay,
//!                        master.fingerprint}    with the pin of master/master.crt
//! <pki>/workers/<name>/updater/{ca.crt, updater.*}
//! ```
//! The original split these between `~/.decnet/ca` and `/etc/decnet/ca` (swarm #12/#13);
//! decnet has a single root, `DECNET_PKI_DIR` (default `<DECNET_HOME>/pki`).
use std::path::{Path, PathBuf};

use super::{Bundle, Ca, Error, IssueRequest, MASTER_CN, Result, SWARMCTL_CN, updater_cn};

/// The kinds of identity decnet issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A worker host's agent identity (CN = worker name).
    Worker,
    /// A worker's updater identity (CN = `updater@<worker>`).
    Updater,
    /// The master's own client identity (CN = `decnet-master`).
    Master,
    /// A server certificate for a master mTLS endpoint (CN = `swarmctl` by default).
    Server,
}

impl Kind {
    /// File stem of this kind's certificate and key inside a bundle.
    pub fn stem(self) -> &'static str {
        match self {
            Kind::Worker => "worker",
            Kind::Updater => "updater",
            Kind::Master => "master",
            Kind::Server => "server",
        }
    }
}

/// The master's PKI directory tree.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (nothing is created until used).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The PKI root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of the CA key and certificate.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    /// Default bundle directory of an identity of `kind` named `name`.
    pub fn bundle_dir(&self, kind: Kind, name: &str) -> PathBuf {
        match kind {
            Kind::Worker => self.root.join("workers").join(name),
            Kind::Updater => self.root.join("workers").join(name).join("updater"),
            Kind::Master => self.root.join("master"),
            Kind::Server => self.root.join("server"),
        }
    }

    /// Loads the CA, creating it on first use.
    pub fn ensure_ca(&self) -> Result<(Ca, bool)> {
        Ca::ensure(&self.ca_dir())
    }

    /// Loads the existing CA; never creates one.
    pub fn load_ca(&self) -> Result<Ca> {
        Ca::load(&self.ca_dir())
    }

    /// The master's client identity, issued on first use and reused afterwards.
    pub fn ensure_master(&self) -> Result<Bundle> {
        self.ensure_stable(
            Kind::Master,
            &IssueRequest::new(MASTER_CN, ["127.0.0.1", MASTER_CN]).with_kind(Kind::Master),
        )
    }

    /// A master server certificate, issued once and reused so its fingerprint stays stable.
    ///
    /// `sans` should name every address workers use to reach the master. The certificate is
    /// reissued only when it is missing or was signed by a different CA.
    pub fn ensure_server(&self, sans: &[String]) -> Result<Bundle> {
        let mut all = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        all.extend(sans.iter().cloned());
        self.ensure_stable(
            Kind::Server,
            &IssueRequest::new(SWARMCTL_CN, all).with_kind(Kind::Server),
        )
    }

    fn ensure_stable(&self, kind: Kind, req: &IssueRequest) -> Result<Bundle> {
        let (ca, _) = self.ensure_ca()?;
        let dir = self.bundle_dir(kind, &req.cn);
        if Bundle::exists(&dir, kind.stem()) {
            let bundle = Bundle::load(&dir, kind.stem())?;
            if bundle.ca_pem() == ca.cert_pem() {
                return Ok(bundle);
            }
        }
        let bundle = ca.issue(req)?;
        bundle.write(&dir, kind.stem())?;
        Ok(bundle)
    }

    /// Issues a worker or updater bundle for host `name` into its default directory.
    ///
    /// Refuses to overwrite an existing bundle unless `force`: reissuing changes the
    /// fingerprint the master pins, which cuts the worker off until it gets the new bundle.
    /// Refuses a `name` that is a role identity ([`Error::ReservedName`]). A worker bundle
    /// also gets the master identity's pin (`master.fingerprint`), the identity being
    /// issued first if the master has none yet.
    pub fn issue_host(
        &self,
        kind: Kind,
        name: &str,
        sans: &[String],
        out: Option<&Path>,
        force: bool,
    ) -> Result<(Bundle, PathBuf)> {
        validate_name(name)?;
        let ca = self.load_ca()?;
        let cn = match kind {
            Kind::Updater => updater_cn(name),
            Kind::Worker => name.to_owned(),
            Kind::Master => MASTER_CN.to_owned(),
            Kind::Server => name.to_owned(),
        };
        let mut all: Vec<String> = sans.to_vec();
        if kind == Kind::Updater {
            all.push("127.0.0.1".into());
        }
        let dir = out.map_or_else(|| self.bundle_dir(kind, name), Path::to_path_buf);
        if !force && Bundle::exists(&dir, kind.stem()) {
            return Err(Error::Exists { path: dir });
        }
        let bundle = ca.issue(&IssueRequest::new(cn, all).with_kind(kind))?;
        let master = match kind {
            Kind::Worker => Some(self.ensure_master()?),
            _ => None,
        };
        bundle.write(&dir, kind.stem())?;
        if let Some(master) = master {
            super::write_master_pin(&dir, master.fingerprint())?;
        }
        Ok((bundle, dir))
    }
}

/// Checks that `name` can be a worker name: it becomes a CN and a directory name, and it
/// must not be a role identity ([`super::roles::check_host_name`]).
pub fn validate_name(name: &str) -> Result<()> {
    super::roles::check_host_name(name)?;
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    if name.starts_with(['.', '-']) {
        return bad("must not start with '.' or '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            ".hidden",
            "-x",
            "sp ace",
            &"x".repeat(64),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["worker-1", "db01.lan", "edge_2"] {
            assert!(validate_name(good).is_ok(), "{good:?} refused");
        }
    }
}
