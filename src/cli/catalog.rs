//! `decnet services`, `decnet archetypes`, `decnet distros`: the catalogues as tables or
//! JSON, read straight from [`crate::catalog`] so the listing can never disagree with
//! what deploys accept.
use std::io::{self, Write};

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::catalog::{self, ARCHETYPES, DISTROS, KeyKind, SERVICES, Service};

/// Arguments of `decnet services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Show one service in detail (ports, capabilities, persona keys).
    name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `decnet archetypes` and `decnet distros`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists the services, or details one.
pub fn services(args: &ServicesArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        let svc = catalog::service(name).map_err(|e| CliError::BadArguments(e.to_string()))?;
        return if args.json {
            print_json(&service_json(svc), out)
        } else {
            Ok(service_detail(svc, out)?)
        };
    }
    if args.json {
        return print_json(
            &Value::Array(SERVICES.iter().map(service_json).collect()),
            out,
        );
    }
    let rows = SERVICES.iter().map(|s| {
        vec![
            s.name.to_owned(),
            ports(s.tcp_ports),
            ports(s.udp_ports),
            if s.singleton { "fleet" } else { "decky" }.to_owned(),
            s.implementation().to_owned(),
            s.summary.to_owned(),
        ]
    });
    table(
        &[
            "SERVICE",
            "TCP",
            "UDP",
            "SCOPE",
            "IMPLEMENTATION",
            "DESCRIPTION",
        ],
        rows,
        out,
    )?;
    let stubs = SERVICES.iter().filter(|s| s.stub).count();
    if stubs > 0 {
        writeln!(
            out,
            "\n{stubs} of {} services are stubs: they listen on their ports and \
             only log `connect` events.",
            SERVICES.len()
        )?;
    }
    Ok(())
}

/// Lists the archetypes.
pub fn archetypes(args: &ListArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.json {
        let all = ARCHETYPES
            .iter()
            .map(|a| {
                json!({
                    "slug": a.slug,
                    "display_name": a.display_name,
                    "description": a.description,
                    "services": a.services,
                    "preferred_distros": a.preferred_distros,
                    "nmap_os": a.nmap_os,
                })
            })
            .collect();
        return print_json(&Value::Array(all), out);
    }
    let rows = ARCHETYPES.iter().map(|a| {
        vec![
            a.slug.to_owned(),
            a.display_name.to_owned(),
            a.services.join(","),
            a.preferred_distros.join(","),
            a.nmap_os.to_owned(),
        ]
    });
    Ok(table(
        &["ARCHETYPE", "NAME", "SERVICES", "DISTROS", "NMAP_OS"],
        rows,
        out,
    )?)
}

/// Lists the distro profiles.
pub fn distros(args: &ListArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.json {
        let all = DISTROS
            .iter()
            .map(|d| {
                json!({
                    "slug": d.slug,
                    "display_name": d.display_name,
                    "base_image": d.base_image,
                    "build_base": d.build_base,
                    "hostname_style": d.hostname_style.name(),
                })
            })
            .collect();
        return print_json(&Value::Array(all), out);
    }
    let rows = DISTROS.iter().map(|d| {
        vec![
            d.slug.to_owned(),
            d.display_name.to_owned(),
            d.hostname_style.name().to_owned(),
            d.base_image.to_owned(),
        ]
    });
    Ok(table(
        &["DISTRO", "NAME", "HOSTNAME STYLE", "IMAGE (METADATA)"],
        rows,
        out,
    )?)
}

fn service_json(s: &Service) -> Value {
    let persona: Vec<Value> = s
        .persona
        .iter()
        .map(|k| {
            let mut v = json!({
                "key": k.key,
                "env": k.env,
                "type": k.kind.name(),
                "default": k.default,
                "secret": k.secret,
            });
            if let KeyKind::Enum(choices) | KeyKind::MultiEnum(choices) = k.kind {
                v["enum"] = json!(choices);
            }
            v
        })
        .collect();
    json!({
        "name": s.name,
        "description": s.summary,
        "tcp_ports": s.tcp_ports,
        "udp_ports": s.udp_ports,
        "singleton": s.singleton,
        "cap_add": s.cap_add,
        "stub": s.stub,
        "implementation": s.implementation(),
        "persona": persona,
    })
}

fn service_detail(s: &Service, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}: {}", s.name, s.summary)?;
    writeln!(out, "  tcp:            {}", ports(s.tcp_ports))?;
    writeln!(out, "  udp:            {}", ports(s.udp_ports))?;
    let scope = if s.singleton {
        "one per fleet"
    } else {
        "per decky"
    };
    writeln!(out, "  scope:          {scope}")?;
    writeln!(out, "  implementation: {}", s.implementation())?;
    if !s.cap_add.is_empty() {
        writeln!(out, "  capabilities:   {}", s.cap_add.join(", "))?;
    }
    if s.persona.is_empty() {
        return writeln!(out, "  persona keys:   none");
    }
    writeln!(out, "  persona keys ([<decky>.{}] INI section):", s.name)?;
    let rows = s.persona.iter().map(|k| {
        let kind = match k.kind {
            KeyKind::Enum(c) | KeyKind::MultiEnum(c) => {
                format!("{} ({})", k.kind.name(), c.join("|"))
            }
            _ => k.kind.name().to_owned(),
        };
        vec![
            format!("    {}", k.key),
            kind,
            k.default.unwrap_or("-").to_owned(),
            k.env.unwrap_or("-").to_owned(),
        ]
    });
    table(&["    KEY", "TYPE", "DEFAULT", "ENV"], rows, out)
}

fn ports(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "-".to_owned();
    }
    let p: Vec<String> = ports.iter().map(u16::to_string).collect();
    p.join(",")
}

fn print_json(value: &Value, out: &mut impl Write) -> anyhow::Result<()> {
    // Rendered first: serde_json's writer errors hide a closed stdout from `report`.
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Writes `rows` under `header` in space-padded columns (no trailing spaces).
pub(super) fn table(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    out: &mut impl Write,
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .collect();
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:w$}  "));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("prints");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn service_table_marks_stubs() {
        let t = text(|o| {
            services(
                &ServicesArgs {
                    name: None,
                    json: false,
                },
                o,
            )
        });
        let vnc = t.lines().find(|l| l.starts_with("vnc ")).expect("vnc row");
        assert!(
            vnc.contains("5900") && vnc.contains("stub (logs connects)"),
            "{vnc}"
        );
        let http = t
            .lines()
            .find(|l| l.starts_with("http "))
            .expect("http row");
        assert!(http.contains(" emulated "), "{http}");
        assert_eq!(t.lines().filter(|l| l.contains(" stub (")).count(), 19);
        assert!(t.lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn service_detail_and_json() {
        let args = ServicesArgs {
            name: Some("ssh".into()),
            json: false,
        };
        let t = text(|o| services(&args, o));
        assert!(t.contains("SSH_ROOT_PASSWORD"), "{t}");
        let args = ServicesArgs {
            name: Some("https".into()),
            json: true,
        };
        let v: Value = serde_json::from_str(&text(|o| services(&args, o))).expect("json");
        assert_eq!(v["tcp_ports"], json!([443]));
        assert_eq!(
            v["persona"][5]["enum"],
            json!(["http/1.1", "http/2", "http/3"])
        );
        let err = services(
            &ServicesArgs {
                name: Some("gopher".into()),
                json: false,
            },
            &mut Vec::new(),
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .starts_with("Unknown service 'gopher'")
        );
    }

    #[test]
    fn archetype_and_distro_listings() {
        let t = text(|o| archetypes(&ListArgs { json: false }, o));
        assert_eq!(t.lines().count(), 16);
        assert!(t.contains("windows-server") && t.contains("smb,rdp,ldap"));
        let v: Value =
            serde_json::from_str(&text(|o| distros(&ListArgs { json: true }, o))).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(9));
        assert_eq!(v[3]["hostname_style"], "rhel");
    }
}
