//! The login accounts of a shell service (engine.md §2.2), shared by ssh and telnet:
//! `root` with `<P>_ROOT_PASSWORD` and one sudo-capable user `<P>_USER` with
//! `<P>_USER_PASSWORD`, where `<P>` is `SSH` or `TELNET`. A setting left out takes the
//! catalogue default (`admin`, `ubuntu`, `admin`), as the engine always sets them.
use std::collections::BTreeMap;

/// Who may log in, and with which password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    root_password: Vec<u8>,
    user: String,
    user_password: Vec<u8>,
}

/// The settings a shell service with setting prefix `prefix` reads for its accounts.
pub fn setting_names(prefix: &str) -> [String; 3] {
    [
        format!("{prefix}_ROOT_PASSWORD"),
        format!("{prefix}_USER"),
        format!("{prefix}_USER_PASSWORD"),
    ]
}

impl Accounts {
    /// The accounts from a service's `settings`, whose variables start with `prefix`
    /// (`SSH`, `TELNET`).
    pub fn from_settings(prefix: &str, settings: &BTreeMap<String, String>) -> Self {
        let [root, user, user_pw] = setting_names(prefix);
        let get = |key: &str, default: &str| {
            settings
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        };
        let user = get(&user, "ubuntu");
        Accounts {
            root_password: get(&root, "admin").into_bytes(),
            user_password: get(&user_pw, "admin").into_bytes(),
            user: if user == "root" {
                "ubuntu".to_owned()
            } else {
                user
            },
        }
    }

    /// The unprivileged (sudo-capable) user's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The account `user` logs in to with `password`, if the pair is right.
    pub fn check(&self, user: &[u8], password: &[u8]) -> Option<String> {
        if user == b"root" && eq(password, &self.root_password) {
            Some("root".to_owned())
        } else if user == self.user.as_bytes() && eq(password, &self.user_password) {
            Some(self.user.clone())
        } else {
            None
        }
    }
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_configured_accounts() {
        let none = Accounts::from_settings("TELNET", &BTreeMap::new());
        assert_eq!(none.check(b"root", b"admin").as_deref(), Some("root"));
        assert_eq!(none.check(b"ubuntu", b"admin").as_deref(), Some("ubuntu"));
        assert_eq!(none.check(b"root", b"admin "), None);
        let settings: BTreeMap<String, String> = [
            ("SSH_ROOT_PASSWORD", "t0p s\"ecret]"),
            ("SSH_USER", "deploy"),
            ("SSH_USER_PASSWORD", "hunter2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let a = Accounts::from_settings("SSH", &settings);
        assert_eq!(a.user(), "deploy");
        assert_eq!(a.check(b"root", b"t0p s\"ecret]").as_deref(), Some("root"));
        assert_eq!(a.check(b"root", b"admin"), None);
        assert_eq!(a.check(b"deploy", b"hunter2").as_deref(), Some("deploy"));
        assert_eq!(a.check(b"ubuntu", b"hunter2"), None);
    }
}
