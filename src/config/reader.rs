//! The lookup helpers [`parse`](super::parse) reads every setting through: each records
//! the value it resolved and whether it came from the environment, for `decnet config`.
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Entry, Origin, Secret, Source};

/// Records each lookup so `decnet config` can show values with their origin.
pub(super) struct Reader<'a, S: Source> {
    pub(super) src: &'a S,
    pub(super) entries: Vec<Entry>,
}

impl<S: Source> Reader<'_, S> {
    pub(super) fn raw(&self, key: &str) -> Option<String> {
        self.src.get(key).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn record(&mut self, key: &'static str, shown: String, from_env: bool) {
        let origin = if from_env {
            Origin::Env
        } else {
            Origin::Default
        };
        self.entries.push(Entry { key, shown, origin });
    }

    pub(super) fn path(
        &mut self,
        key: &'static str,
        default: PathBuf,
    ) -> Result<PathBuf, ConfigError> {
        let raw = self.raw(key);
        let from_env = raw.is_some();
        let path = raw.map(PathBuf::from).unwrap_or(default);
        if !path.is_absolute() {
            return Err(ConfigError::Invalid {
                key,
                value: path.display().to_string(),
                reason: "must be an absolute path".into(),
            });
        }
        self.record(key, path.display().to_string(), from_env);
        Ok(path)
    }

    pub(super) fn port(&mut self, key: &'static str, default: u16) -> Result<u16, ConfigError> {
        let port = match self.raw(key) {
            Some(v) => match v.trim().parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(ConfigError::Invalid {
                        key,
                        value: v,
                        reason: "expected a TCP port between 1 and 65535".into(),
                    });
                }
            },
            None => default,
        };
        let from_env = self.raw(key).is_some();
        self.record(key, port.to_string(), from_env);
        Ok(port)
    }

    pub(super) fn flag(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        let value = match self.raw(key) {
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError::Invalid {
                key,
                value: v.clone(),
                reason: "expected one of 1/0, true/false, yes/no, on/off".into(),
            })?,
            None => default,
        };
        let from_env = self.raw(key).is_some();
        self.record(key, value.to_string(), from_env);
        Ok(value)
    }

    pub(super) fn text(&mut self, key: &'static str) -> Option<String> {
        let value = self.raw(key);
        let shown = value.clone().unwrap_or_else(|| "(unset)".into());
        let from_env = value.is_some();
        self.record(key, shown, from_env);
        value
    }

    pub(super) fn text_or(&mut self, key: &'static str, default: &str) -> String {
        let value = self.raw(key);
        let from_env = value.is_some();
        let value = value.unwrap_or_else(|| default.to_owned());
        self.record(key, value.clone(), from_env);
        value
    }

    /// A comma-separated list; blanks around items and empty items are dropped.
    pub(super) fn list(&mut self, key: &'static str, default: &str) -> Vec<String> {
        let value = self.text_or(key, default);
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A number of seconds (fractions allowed); `None` when it is zero or negative.
    pub(super) fn seconds(
        &mut self,
        key: &'static str,
        default: f64,
    ) -> Result<Option<Duration>, ConfigError> {
        let raw = self.raw(key);
        let value = match &raw {
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s < 1e9),
            None => Some(default),
        }
        .ok_or_else(|| ConfigError::Invalid {
            key,
            value: raw.clone().unwrap_or_default(),
            reason: "expected a number of seconds, e.g. 1.5".into(),
        })?;
        self.record(key, value.to_string(), raw.is_some());
        Ok(Some(value)
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64))
    }

    pub(super) fn secret(&mut self, key: &'static str) -> Option<Secret> {
        let value = self.raw(key).map(Secret);
        let shown = value
            .as_ref()
            .map_or_else(|| "(unset)".into(), |s| s.to_string());
        let from_env = value.is_some();
        self.record(key, shown, from_env);
        value
    }
}

/// Accepts the usual spellings of a boolean switch.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}
