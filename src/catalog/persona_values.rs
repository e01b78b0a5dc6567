//! Persona values: checking an operator's `[<decky>.<service>]` settings against the
//! service's schema, and turning them into the container's environment.
//!
//! [`Service::validate_persona`] follows the original's `validate_cfg` (engine.md §2.2):
//! unknown keys and empty values are dropped, the rest is checked and normalised, still
//! as strings (`int` canonical, `bool` as `true`/`false`, `multi_enum` as a JSON list,
//! `textarea` `b64:` payloads decoded). [`Service::persona_env`] is what the engine puts
//! into the service container: every given key that has a variable, plus the defaults of
//! the keys that are always set, plus the service's fixed variables.
use std::collections::BTreeMap;

use base64::Engine as _;
use thiserror::Error;

use super::persona::{KeyKind, PersonaKey};
use super::services::Service;

/// A persona value its key's type does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersonaError {
    /// Not a whole number.
    #[error("{key}: expected an integer, got '{value}'")]
    NotInt {
        /// The key.
        key: String,
        /// The value given.
        value: String,
    },
    /// Not a truth value.
    #[error("{key}: expected true/false (or 1/0, yes/no, on/off), got '{value}'")]
    NotBool {
        /// The key.
        key: String,
        /// The value given.
        value: String,
    },
    /// A choice that is not offered.
    #[error("{key}: '{value}' is not one of: {}", .choices.join(", "))]
    NotAChoice {
        /// The key.
        key: String,
        /// The offending choice.
        value: String,
        /// The allowed choices.
        choices: &'static [&'static str],
    },
    /// A list that picks nothing.
    #[error("{key}: choose at least one of: {}", .choices.join(", "))]
    NoChoice {
        /// The key.
        key: String,
        /// The allowed choices.
        choices: &'static [&'static str],
    },
    /// A `b64:` payload that is not base64 of UTF-8 text.
    #[error("{key}: malformed b64: payload")]
    BadBase64 {
        /// The key.
        key: String,
    },
}

/// Accepted spellings of true and false.
const TRUTHY: &[&str] = &["true", "1", "yes", "on"];
const FALSY: &[&str] = &["false", "0", "no", "off"];

impl Service {
    /// Checks and normalises persona settings for this service.
    pub fn validate_persona(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, PersonaError> {
        let mut clean = BTreeMap::new();
        for (key, value) in config {
            let Some(spec) = self.persona_key(key) else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            clean.insert(key.clone(), normalise(spec, value)?);
        }
        Ok(clean)
    }

    /// The container environment for persona settings `config` (already validated).
    pub fn persona_env(
        &self,
        config: Option<&BTreeMap<String, String>>,
    ) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        for spec in self.persona {
            let Some(var) = spec.env else {
                continue;
            };
            let given = config
                .and_then(|c| c.get(spec.key))
                .filter(|v| !v.is_empty());
            match (given, spec.always, spec.default) {
                (Some(v), _, _) => env.push((var, v.clone())),
                (None, true, Some(default)) => env.push((var, default.to_owned())),
                _ => {}
            }
        }
        env.extend(self.fixed_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env
    }
}

fn normalise(spec: &PersonaKey, value: &str) -> Result<String, PersonaError> {
    let key = || spec.key.to_owned();
    match spec.kind {
        KeyKind::String | KeyKind::Password => Ok(value.to_owned()),
        KeyKind::Int => {
            value
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| PersonaError::NotInt {
                    key: key(),
                    value: value.to_owned(),
                })
        }
        KeyKind::Bool => {
            let lower = value.to_ascii_lowercase();
            if TRUTHY.contains(&lower.as_str()) {
                Ok("true".to_owned())
            } else if FALSY.contains(&lower.as_str()) {
                Ok("false".to_owned())
            } else {
                Err(PersonaError::NotBool {
                    key: key(),
                    value: value.to_owned(),
                })
            }
        }
        KeyKind::Enum(choices) => {
            if choices.contains(&value) {
                Ok(value.to_owned())
            } else {
                Err(PersonaError::NotAChoice {
                    key: key(),
                    value: value.to_owned(),
                    choices,
                })
            }
        }
        KeyKind::MultiEnum(choices) => {
            let items: Vec<String> = match serde_json::from_str::<Vec<String>>(value) {
                Ok(list) => list,
                Err(_) => value.split(',').map(|s| s.trim().to_owned()).collect(),
            };
            let mut picked: Vec<&str> = Vec::new();
            for item in items.iter().map(String::as_str).filter(|s| !s.is_empty()) {
                if !choices.contains(&item) {
                    return Err(PersonaError::NotAChoice {
                        key: key(),
                        value: item.to_owned(),
                        choices,
                    });
                }
                if !picked.contains(&item) {
                    picked.push(item);
                }
            }
            if picked.is_empty() {
                return Err(PersonaError::NoChoice {
                    key: key(),
                    choices,
                });
            }
            Ok(serde_json::Value::from(picked).to_string())
        }
        KeyKind::Textarea => match value.strip_prefix("b64:") {
            None => Ok(value.to_owned()),
            Some(payload) => base64::engine::general_purpose::STANDARD
                .decode(payload.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| PersonaError::BadBase64 { key: key() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::service;
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn svc(name: &str) -> &'static Service {
        service(name).expect("catalogued")
    }

    #[test]
    fn normalises_and_drops_unknown_or_empty() {
        let got = svc("http")
            .validate_persona(&cfg(&[
                ("response_code", " 0404 "),
                ("fake_app", "wordpress"),
                ("http_versions", "http/2, http/1.1, http/2"),
                ("custom_body", "b64:PGgxPmhpPC9oMT4="),
                ("server_header", ""),
                ("colour", "blue"),
            ]))
            .expect("valid");
        assert_eq!(
            got,
            cfg(&[
                ("custom_body", "<h1>hi</h1>"),
                ("fake_app", "wordpress"),
                ("http_versions", "[\"http/2\",\"http/1.1\"]"),
                ("response_code", "404"),
            ])
        );
        let json_list = svc("https")
            .validate_persona(&cfg(&[("http_versions", "[\"http/3\"]")]))
            .expect("valid");
        assert_eq!(json_list["http_versions"], "[\"http/3\"]");
        let rdp = svc("rdp")
            .validate_persona(&cfg(&[("nla", "YES")]))
            .expect("valid");
        assert_eq!(rdp["nla"], "true");
    }

    #[test]
    fn type_errors() {
        let err = |s: &str, k: &str, v: &str| {
            svc(s)
                .validate_persona(&cfg(&[(k, v)]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("http", "response_code", "ok"),
            "response_code: expected an integer, got 'ok'"
        );
        assert_eq!(
            err("dns", "real_recursive", "maybe"),
            "real_recursive: expected true/false (or 1/0, yes/no, on/off), got 'maybe'"
        );
        assert_eq!(
            err("smtp", "mta", "qmail"),
            "mta: 'qmail' is not one of: postfix, exim, sendmail"
        );
        assert_eq!(
            err("http", "http_versions", "http/3"),
            "http_versions: 'http/3' is not one of: http/1.1, http/2"
        );
        assert_eq!(
            err("http", "http_versions", " , "),
            "http_versions: choose at least one of: http/1.1, http/2"
        );
        assert_eq!(
            err("http", "http_versions", "[]"),
            "http_versions: choose at least one of: http/1.1, http/2"
        );
        assert_eq!(
            err("http", "custom_body", "b64:***"),
            "custom_body: malformed b64: payload"
        );
    }

    #[test]
    fn environment_of_a_persona() {
        let ssh = svc("ssh");
        let env = ssh.persona_env(None);
        assert_eq!(
            env,
            [
                ("SSH_ROOT_PASSWORD", "admin".to_owned()),
                ("SSH_USER", "ubuntu".to_owned()),
                ("SSH_USER_PASSWORD", "admin".to_owned()),
            ]
        );
        let given = cfg(&[("password", "hunter2"), ("hostname", "bastion")]);
        let env = ssh.persona_env(Some(&given));
        assert!(env.contains(&("SSH_ROOT_PASSWORD", "hunter2".to_owned())));
        assert!(env.contains(&("SSH_HOSTNAME", "bastion".to_owned())));
        assert!(
            svc("http").persona_env(None).is_empty(),
            "http injects only what is given"
        );
        let relay = svc("smtp_relay").persona_env(Some(&cfg(&[("upstream_host", "mx")])));
        assert_eq!(
            relay,
            [
                ("SMTP_OPEN_RELAY", "1".to_owned()),
                ("SMTP_SERVICE_NAME", "smtp_relay".to_owned()),
            ]
        );
    }
}
