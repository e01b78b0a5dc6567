//! The host's INI file (`$DECNET_CONFIG`, default `/etc/decnet/decnet.ini`): defaults for
//! `DECNET_*` variables, under the real environment (swarm.md §11–§12).
//!
//! Mechanics, as in the original: keys of `[decnet]` and of the role section named by
//! the mode (`[agent]` or `[master]`) map mechanically, `some-key` → `DECNET_SOME_KEY`;
//! inline `#`/`;` comments are allowed (the deployment INI's syntax); a variable set in
//! the environment always wins. A file that is absent is no error (most hosts have
//! none); one that exists but cannot be read or parsed is, so a worker never runs on
//! half its configuration. Keys of other sections are ignored.
use std::collections::HashMap;

use super::{ConfigError, Source};

/// The variable naming the INI file.
pub const CONFIG_FILE: &str = "DECNET_CONFIG";
/// The INI file when `DECNET_CONFIG` is unset.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/decnet/decnet.ini";

/// The environment, falling back to the INI file's values.
#[derive(Debug, Clone)]
pub struct Layered<S> {
    env: S,
    file: HashMap<String, String>,
}

impl<S: Source> Source for Layered<S> {
    fn get(&self, key: &str) -> Option<String> {
        self.env.get(key).or_else(|| self.file.get(key).cloned())
    }
}

impl<S: Source> Layered<S> {
    /// `env` over the INI file it names (or the default file), if that exists.
    pub fn over(env: S) -> Result<Self, ConfigError> {
        let path = env
            .get(CONFIG_FILE)
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_owned());
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => variables(&text).map_err(|reason| ConfigError::File {
                path: path.clone(),
                reason,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                return Err(ConfigError::File {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Self { env, file })
    }
}

/// The `DECNET_*` variables an INI text sets.
pub fn variables(text: &str) -> Result<HashMap<String, String>, String> {
    let sections = crate::ini::sections(text)?;
    let mode = sections
        .iter()
        .find(|s| s.name == "decnet")
        .and_then(|s| s.get("mode"))
        .unwrap_or("master")
        .to_owned();
    let mut out = HashMap::new();
    for s in sections
        .iter()
        .filter(|s| s.name == "decnet" || s.name == mode)
    {
        for (key, value) in &s.entries {
            let name = format!("DECNET_{}", key.replace('-', "_").to_ascii_uppercase());
            out.insert(name, value.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_section_and_decnet_map_mechanically_and_env_wins() {
        let text = "; written by the bundle\n[decnet]\nmode = agent\n\
                    [agent]\nmaster-host = 198.51.100.1  # the master\nhost-uuid = u-1\n\
                    [master]\napi-port = 1\n";
        let vars = variables(text).unwrap_or_default();
        assert_eq!(vars.get("DECNET_MODE").map(String::as_str), Some("agent"));
        assert_eq!(
            vars.get("DECNET_MASTER_HOST").map(String::as_str),
            Some("198.51.100.1")
        );
        assert_eq!(
            vars.get("DECNET_HOST_UUID").map(String::as_str),
            Some("u-1")
        );
        assert!(
            !vars.contains_key("DECNET_API_PORT"),
            "other role's section"
        );

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("d.ini");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let mut env = HashMap::new();
        env.insert(CONFIG_FILE.to_owned(), path.display().to_string());
        env.insert("DECNET_HOST_UUID".to_owned(), "from-env".to_owned());
        let layered = Layered::over(env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layered.get("DECNET_HOST_UUID").as_deref(), Some("from-env"));
        assert_eq!(layered.get("DECNET_MODE").as_deref(), Some("agent"));

        std::fs::write(&path, "[decnet\n").unwrap_or_else(|e| panic!("{e}"));
        let mut env = HashMap::new();
        env.insert(CONFIG_FILE.to_owned(), path.display().to_string());
        assert!(Layered::over(env).is_err(), "a broken file is an error");
    }
}
