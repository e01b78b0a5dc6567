//! The INI deployment file (engine.md §1.2): what an operator writes to describe a fleet.
//!
//! ```ini
//! [general]
//! net = 192.168.1.0/24       ; decky LAN (else detected)
//! gw = 192.168.1.1
//! interface = eth0
//! mutate_interval = 60       ; minutes, for deckies that set none
//!
//! [web]                      ; one decky per section…
//! services = http, ssh
//! ip = 192.168.1.50
//!
//! [office]                   ; …or `amount` of them: office-01 … office-05
//! archetype = windows-workstation
//! amount = 5
//!
//! [web.ssh]                  ; persona of one service (§2.2)
//! password = hunter2
//!
//! [custom-erp]               ; bring your own service image
//! binary = registry.local/erp:1.4
//! exec = /srv/erp --listen 8069
//! ports = 8069
//! ```
//!
//! [`parse`] is the string path (web deploys): lenient about duplicates, as the original.
//! [`load`] is the file path: strict. Both refuse more than 512 KiB. The result is an
//! [`IniConfig`] of [`DeckySpec`]s; the builders in [`crate::model::build`] turn it into
//! deployable deckies. [`IniConfig`] is plain data and lives in [`crate::model`] (it is
//! re-exported here): this module depends on the model, never the other way round.
//!
//! Where decnet differs from the original, on purpose: inline `;`/`#` comments are
//! stripped (decision #8); `[general] mutate_interval=` fills the global interval (the
//! original has the field but no key for it); persona sub-sections of custom services are recognised; a
//! custom service may not shadow a built-in one; `ip=`, `net=` and `gw=` are checked here
//! rather than failing later inside Docker; and two sections expanding to one decky name
//! are refused.
mod syntax;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::catalog;
use crate::model::{self, DeckySpec};
use syntax::Section;

pub use crate::model::{CustomService, IniConfig};

/// Largest INI text accepted, in bytes.
pub const MAX_INI_BYTES: usize = 512 * 1024;

/// Most deckies one section may expand to with `amount=`.
pub const MAX_AMOUNT: u32 = 100;

/// The section holding network settings.
const GENERAL: &str = "general";

/// Prefix of bring-your-own-service sections.
const CUSTOM_PREFIX: &str = "custom-";

/// Why an INI deployment file was refused.
#[derive(Debug, Error)]
pub enum Error {
    /// More than [`MAX_INI_BYTES`].
    #[error("INI content is too large (max 512KB)")]
    TooLarge,
    /// Nothing but whitespace.
    #[error("INI content is empty")]
    Empty,
    /// Not a single `[section]`.
    #[error("The provided INI content must contain at least one section (no sections found)")]
    NoSections,
    /// Malformed lines.
    #[error("Invalid INI format: {0}")]
    Syntax(String),
    /// Sections, but none describing a decky.
    #[error("INI must contain at least one decky section")]
    NoDeckies,
    /// `amount=` not an integer ≥ 1.
    #[error("[{section}] amount= must be a positive integer, got '{value}'")]
    BadAmount {
        /// The section.
        section: String,
        /// The value given.
        value: String,
    },
    /// `amount=` above [`MAX_AMOUNT`].
    #[error("[{section}] amount={amount} exceeds maximum allowed (100).")]
    AmountTooLarge {
        /// The section.
        section: String,
        /// The value given.
        amount: u64,
    },
    /// `ip=` together with `amount>1`.
    #[error("Cannot combine ip= with amount={amount}. Remove ip= or use amount=1.")]
    IpWithAmount {
        /// The section.
        section: String,
        /// The amount given.
        amount: u32,
    },
    /// `mutate_interval=` not an integer.
    #[error("[{section}] mutate_interval= must be an integer, got '{value}'")]
    BadInterval {
        /// The section.
        section: String,
        /// The value given.
        value: String,
    },
    /// `ip=` not an IPv4 address.
    #[error("[{section}] ip= must be an IPv4 address, got '{value}'")]
    BadIp {
        /// The section.
        section: String,
        /// The value given.
        value: String,
    },
    /// `[general] net=` not a CIDR network.
    #[error("[general] net= must be an IPv4 network like 192.168.1.0/24, got '{0}'")]
    BadSubnet(String),
    /// `[general] gw=` not an IPv4 address.
    #[error("[general] gw= must be an IPv4 address, got '{0}'")]
    BadGateway(String),
    /// `[custom-]` without a name, or a name a decky service cannot have.
    #[error(
        "[{section}] is not a usable custom service name: use letters, digits, '-' and '_' after 'custom-'"
    )]
    BadCustomName {
        /// The section.
        section: String,
    },
    /// A custom service named like a built-in one.
    #[error("[{section}] would replace the built-in service '{name}'; give it another name.")]
    CustomShadowsBuiltin {
        /// The section.
        section: String,
        /// The built-in name.
        name: String,
    },
    /// A custom service without an image.
    #[error("[{section}] needs binary= (the Docker image to run).")]
    CustomWithoutBinary {
        /// The section.
        section: String,
    },
    /// A decky name or interval breaks the model's rules.
    #[error(transparent)]
    Decky(Box<model::Error>),
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl From<model::Error> for Error {
    fn from(e: model::Error) -> Self {
        Error::Decky(Box::new(e))
    }
}

/// The sections of INI text, strictly (duplicates refused), for files other than the
/// deployment format (the host's `decnet.ini`).
pub(crate) fn sections(text: &str) -> Result<Vec<syntax::Section>, String> {
    syntax::parse(text, true)
}

/// Parses INI text as the web deploy does: lenient about duplicate sections and keys.
pub fn parse(text: &str) -> Result<IniConfig, Error> {
    parse_with(text, false)
}

/// Parses INI text as a deployment file: duplicate sections or keys are errors.
pub fn parse_strict(text: &str) -> Result<IniConfig, Error> {
    parse_with(text, true)
}

/// Reads and strictly parses the deployment file at `path` (at most 512 KiB).
pub fn load(path: &Path) -> Result<IniConfig, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_INI_BYTES as u64 {
        return Err(Error::TooLarge);
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_strict(&text)
}

fn parse_with(text: &str, strict: bool) -> Result<IniConfig, Error> {
    if text.len() > MAX_INI_BYTES {
        return Err(Error::TooLarge);
    }
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    let sections = syntax::parse(text, strict).map_err(Error::Syntax)?;
    if sections.is_empty() {
        return Err(Error::NoSections);
    }

    let mut ini = IniConfig::default();
    for section in sections
        .iter()
        .filter(|s| s.name.starts_with(CUSTOM_PREFIX))
    {
        ini.custom_services.push(custom_service(section)?);
    }
    let mut known: BTreeSet<String> = catalog::deployable_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    known.extend(ini.custom_services.iter().map(|c| c.name.clone()));

    let mut personas: Vec<(&str, &str, &Section)> = Vec::new();
    for section in &sections {
        let name = section.name.as_str();
        if name == GENERAL {
            general(section, &mut ini)?;
        } else if name.starts_with(CUSTOM_PREFIX) {
            continue;
        } else if let Some((decky, svc)) = name.rsplit_once('.').filter(|(_, s)| known.contains(*s))
        {
            personas.push((decky, svc, section));
        } else {
            ini.deckies.extend(decky_specs(section)?);
        }
    }
    if ini.deckies.is_empty() {
        return Err(Error::NoDeckies);
    }
    let mut names = BTreeSet::new();
    for spec in &ini.deckies {
        if !names.insert(spec.name.as_str()) {
            return Err(model::Error::DuplicateName {
                name: spec.name.clone(),
            }
            .into());
        }
    }
    for (decky, svc, section) in personas {
        apply_persona(&mut ini.deckies, decky, svc, section);
    }
    Ok(ini)
}

fn general(section: &Section, ini: &mut IniConfig) -> Result<(), Error> {
    if let Some(net) = non_empty(section.get("net")) {
        ini.subnet = Some(net.parse().map_err(|_| Error::BadSubnet(net.to_owned()))?);
    }
    if let Some(gw) = non_empty(section.get("gw")) {
        ini.gateway = Some(gw.parse().map_err(|_| Error::BadGateway(gw.to_owned()))?);
    }
    ini.interface = non_empty(section.get("interface")).map(str::to_owned);
    ini.mutate_interval = ["mutate_interval", "mutate-interval"]
        .iter()
        .find_map(|k| non_empty(section.get(k)))
        .map(|raw| interval(GENERAL, raw))
        .transpose()?;
    Ok(())
}

/// A `mutate_interval=` value of section `sec`: an integer of at least 1 minute.
fn interval(sec: &str, raw: &str) -> Result<u32, Error> {
    let n: i64 = raw.parse().map_err(|_| Error::BadInterval {
        section: sec.to_owned(),
        value: raw.to_owned(),
    })?;
    let n =
        u32::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| model::Error::ZeroInterval {
                name: sec.to_owned(),
            })?;
    Ok(n)
}

fn custom_service(section: &Section) -> Result<CustomService, Error> {
    let name = &section.name[CUSTOM_PREFIX.len()..];
    let usable = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !usable {
        return Err(Error::BadCustomName {
            section: section.name.clone(),
        });
    }
    if catalog::service(name).is_ok() {
        return Err(Error::CustomShadowsBuiltin {
            section: section.name.clone(),
            name: name.to_owned(),
        });
    }
    let image = non_empty(section.get("binary")).ok_or_else(|| Error::CustomWithoutBinary {
        section: section.name.clone(),
    })?;
    let exec = section
        .get("exec")
        .map(|e| e.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let ports = section
        .get("ports")
        .map(|p| {
            p.split(',')
                .filter_map(|t| t.trim().parse::<u16>().ok())
                .filter(|p| *p != 0)
                .collect()
        })
        .unwrap_or_default();
    Ok(CustomService {
        name: name.to_owned(),
        image: image.to_owned(),
        exec,
        ports,
    })
}

/// The specs of one decky section: one, or `amount` of them named `<sec>-01` ….
fn decky_specs(section: &Section) -> Result<Vec<DeckySpec>, Error> {
    let sec = section.name.as_str();
    let get = |keys: &[&str]| keys.iter().find_map(|k| non_empty(section.get(k)));

    let amount = match get(&["amount"]) {
        None => 1,
        Some(raw) => {
            let bad = || Error::BadAmount {
                section: sec.to_owned(),
                value: raw.to_owned(),
            };
            let n: i64 = raw.parse().map_err(|_| bad())?;
            let n = u64::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(bad)?;
            if n > u64::from(MAX_AMOUNT) {
                return Err(Error::AmountTooLarge {
                    section: sec.to_owned(),
                    amount: n,
                });
            }
            // n <= MAX_AMOUNT, which fits in u32.
            n as u32
        }
    };
    let ip = match get(&["ip"]) {
        None => None,
        Some(_) if amount > 1 => {
            return Err(Error::IpWithAmount {
                section: sec.to_owned(),
                amount,
            });
        }
        Some(raw) => Some(raw.parse::<Ipv4Addr>().map_err(|_| Error::BadIp {
            section: sec.to_owned(),
            value: raw.to_owned(),
        })?),
    };
    let mutate_interval = get(&["mutate_interval", "mutate-interval"])
        .map(|raw| interval(sec, raw))
        .transpose()?;
    let services = get(&["services"])
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty());
    let template = DeckySpec {
        name: sec.to_owned(),
        ip,
        services,
        archetype: get(&["archetype"]).map(str::to_owned),
        service_config: Default::default(),
        nmap_os: get(&["nmap_os", "nmap-os"]).map(str::to_owned),
        mutate_interval,
    };
    let specs: Vec<DeckySpec> = if amount == 1 {
        vec![template]
    } else {
        (1..=amount)
            .map(|i| DeckySpec {
                name: format!("{sec}-{i:02}"),
                ..template.clone()
            })
            .collect()
    };
    for spec in &specs {
        spec.validate()?;
    }
    Ok(specs)
}

/// Attaches a `[<decky>.<svc>]` section to decky `decky`, or, when no decky has that
/// exact name, to every decky named `<decky>-…`; unmatched sections are ignored.
fn apply_persona(deckies: &mut [DeckySpec], decky: &str, svc: &str, section: &Section) {
    let exact = deckies.iter().any(|d| d.name == decky);
    let prefix = format!("{decky}-");
    for spec in deckies.iter_mut() {
        let hit = if exact {
            spec.name == decky
        } else {
            spec.name.starts_with(&prefix)
        };
        if hit {
            let cfg = spec.service_config.entry(svc.to_owned()).or_default();
            for (k, v) in &section.entries {
                cfg.insert(k.clone(), v.clone());
            }
        }
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
