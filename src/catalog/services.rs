//! The honeypot services a decky can run (engine.md §2.1), with their ports.
//!
//! Each service runs in its own container, `decnet decky --service <name>`, sharing the
//! decky's network namespace, so two services of one decky must never bind the same
//! port: [`port_clash`] finds such pairs. `sniffer` is a fleet singleton: it is listed
//! for completeness but is never a per-decky service, so it is not in
//! [`deployable_names`].
//!
//! Services with a protocol emulation (`decnet decky`'s ftp, http, https, redis, smtp, smtp_relay) are marked
//! `emulated`; the others are still stubs that accept TCP connections (and datagrams) on
//! their ports and log `connect` events. The `stub` flag says which, and
//! `decnet services` prints it.
use std::collections::BTreeMap;
use std::fmt;

use super::Error;
use super::persona::{self, PersonaKey};

/// The transport of a listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// A TCP listener.
    Tcp,
    /// A UDP socket.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One honeypot service of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The slug used in INI files, flags and container names.
    pub name: &'static str,
    /// What it pretends to be, in a few words.
    pub summary: &'static str,
    /// TCP ports it listens on (only ports it really serves, engine decision #5).
    pub tcp_ports: &'static [u16],
    /// UDP ports it always listens on (see [`Service::udp_ports_for`] for optional ones).
    pub udp_ports: &'static [u16],
    /// One per fleet rather than one per decky.
    pub singleton: bool,
    /// Linux capabilities its container needs.
    pub cap_add: &'static [&'static str],
    /// The persona keys it accepts.
    pub persona: &'static [PersonaKey],
    /// Environment variables always set in its container, whatever the persona.
    pub fixed_env: &'static [(&'static str, &'static str)],
    /// Still the connect-logging stub rather than a protocol emulation.
    pub stub: bool,
}

impl Service {
    /// Container name of this service in decky `decky`: `<decky>-<service>`, with `_`
    /// turned into `-` everywhere (engine decision #4).
    pub fn container_name(&self, decky: &str) -> String {
        format!("{decky}-{}", self.name.replace('_', "-"))
    }

    /// UDP ports for a given persona: `https` adds 443 when `http/3` is among its
    /// `http_versions` (a comma list or a JSON list).
    pub fn udp_ports_for(&self, config: Option<&BTreeMap<String, String>>) -> Vec<u16> {
        let mut ports = self.udp_ports.to_vec();
        let http3 = config
            .and_then(|c| c.get("http_versions"))
            .is_some_and(|v| v.contains("http/3"));
        if self.name == "https" && http3 {
            ports.push(443);
        }
        ports
    }

    /// The persona key `key`, if this service has it.
    pub fn persona_key(&self, key: &str) -> Option<&'static PersonaKey> {
        self.persona.iter().find(|k| k.key == key)
    }

    /// How the service is implemented, as listings show it.
    pub fn implementation(&self) -> &'static str {
        match (self.stub, self.singleton) {
            (false, _) => "emulated",
            (true, false) => "stub (logs connects)",
            (true, true) => "stub (not built yet)",
        }
    }
}

const NET_BIND: &[&str] = &["NET_BIND_SERVICE"];

const fn svc(name: &'static str, summary: &'static str, tcp: &'static [u16]) -> Service {
    Service {
        name,
        summary,
        tcp_ports: tcp,
        udp_ports: &[],
        singleton: false,
        cap_add: &[],
        persona: &[],
        fixed_env: &[],
        stub: true,
    }
}

const fn emulated(mut s: Service) -> Service {
    s.stub = false;
    s
}

const fn udp(mut s: Service, ports: &'static [u16]) -> Service {
    s.udp_ports = ports;
    s
}

const fn caps(mut s: Service, cap_add: &'static [&'static str]) -> Service {
    s.cap_add = cap_add;
    s
}

const fn keys(mut s: Service, persona: &'static [PersonaKey]) -> Service {
    s.persona = persona;
    s
}

/// Every service, sorted by name.
pub static SERVICES: &[Service] = &[
    svc("conpot", "ICS/SCADA PLC (Modbus, web HMI)", &[502, 80]),
    keys(udp(svc("dns", "DNS server", &[53]), &[53]), persona::DNS),
    svc("docker_api", "Docker Engine API", &[2375, 2376]),
    svc("elasticsearch", "Elasticsearch REST API", &[9200]),
    emulated(svc("ftp", "FTP server", &[21])),
    emulated(keys(svc("http", "web server", &[80]), persona::HTTP)),
    emulated(keys(svc("https", "TLS web server", &[443]), persona::HTTPS)),
    svc("imap", "IMAP mail store", &[143, 993]),
    svc("k8s", "Kubernetes API server", &[6443, 8080]),
    caps(svc("ldap", "LDAP directory", &[389]), NET_BIND),
    udp(svc("llmnr", "LLMNR and mDNS responder", &[]), &[5355, 5353]),
    svc("mongodb", "MongoDB server", &[27017]),
    svc("mqtt", "MQTT broker", &[1883]),
    svc("mssql", "Microsoft SQL Server", &[1433]),
    emulated(keys(svc("mysql", "MySQL server", &[3306]), persona::MYSQL)),
    svc("pop3", "POP3 mail store", &[110, 995]),
    emulated(svc("postgres", "PostgreSQL server", &[5432])),
    keys(svc("rdp", "Windows Remote Desktop", &[3389]), persona::RDP),
    emulated(keys(svc("redis", "Redis server", &[6379]), persona::REDIS)),
    udp(svc("sip", "SIP VoIP endpoint", &[5060]), &[5060]),
    caps(svc("smb", "Windows file sharing (SMB2)", &[445]), NET_BIND),
    emulated(keys(
        caps(svc("smtp", "SMTP mail server", &[25, 587]), NET_BIND),
        persona::SMTP,
    )),
    Service {
        fixed_env: &[
            ("SMTP_OPEN_RELAY", "1"),
            ("SMTP_SERVICE_NAME", "smtp_relay"),
        ],
        ..emulated(keys(
            caps(svc("smtp_relay", "open SMTP relay", &[25, 587]), NET_BIND),
            persona::SMTP_RELAY,
        ))
    },
    Service {
        singleton: true,
        cap_add: &["NET_RAW", "NET_ADMIN"],
        ..svc("sniffer", "fleet-wide TLS/QUIC fingerprint sniffer", &[])
    },
    udp(svc("snmp", "SNMP agent", &[]), &[161]),
    emulated(keys(
        caps(svc("ssh", "OpenSSH server", &[22]), NET_BIND),
        persona::SSH,
    )),
    emulated(keys(
        caps(svc("telnet", "telnet login", &[23]), NET_BIND),
        persona::TELNET,
    )),
    udp(svc("tftp", "TFTP server", &[]), &[69]),
    svc("vnc", "VNC remote desktop (RFB)", &[5900]),
];

/// The service named `name`.
pub fn service(name: &str) -> Result<&'static Service, Error> {
    SERVICES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::UnknownService {
            name: name.to_owned(),
        })
}

/// Names of the services a decky may run (every non-singleton), sorted.
pub fn deployable_names() -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| !s.singleton)
        .map(|s| s.name)
        .collect()
}

/// Whether container variable `var` carries a secret: the decky's seed, or a secret
/// persona value of some service (passwords, private keys), so printed plans mask it.
pub fn is_secret_env(var: &str) -> bool {
    var == crate::config::DECKY_SEED
        || SERVICES
            .iter()
            .flat_map(|s| s.persona)
            .any(|k| k.secret && k.env == Some(var))
}

/// Two services of one decky that would bind the same port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortClash {
    /// The transport of the shared port.
    pub proto: Proto,
    /// The shared port.
    pub port: u16,
    /// The service listed first.
    pub first: &'static str,
    /// The service listed later.
    pub second: &'static str,
}

impl fmt::Display for PortClash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "services '{}' and '{}' both listen on {}/{}",
            self.first, self.second, self.proto, self.port
        )
    }
}

/// The first pair among `names` that binds one port twice, if any. Names that are not
/// in the catalogue (custom services) are skipped: their ports are the operator's call.
pub fn port_clash<S: AsRef<str>>(names: &[S]) -> Option<PortClash> {
    let mut taken: BTreeMap<(Proto, u16), &'static str> = BTreeMap::new();
    for name in names {
        let Ok(svc) = service(name.as_ref()) else {
            continue;
        };
        let tcp = svc.tcp_ports.iter().map(|p| (Proto::Tcp, *p));
        let udp = svc.udp_ports.iter().map(|p| (Proto::Udp, *p));
        for (proto, port) in tcp.chain(udp) {
            match taken.get(&(proto, port)) {
                Some(first) if *first != svc.name => {
                    return Some(PortClash {
                        proto,
                        port,
                        first,
                        second: svc.name,
                    });
                }
                _ => {
                    taken.insert((proto, port), svc.name);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn passwords_and_private_keys_are_secret() {
        for var in [
            "SSH_ROOT_PASSWORD",
            "SSH_USER_PASSWORD",
            "TELNET_ROOT_PASSWORD",
            "TELNET_USER_PASSWORD",
            "TLS_KEY",
        ] {
            assert!(is_secret_env(var), "{var}");
        }
        for var in ["SSH_USER", "TLS_CERT", "NODE_NAME", "SMTP_BANNER"] {
            assert!(!is_secret_env(var), "{var}");
        }
        // Every password-kind key is secret, wherever it appears.
        for k in SERVICES.iter().flat_map(|s| s.persona) {
            if k.kind == persona::KeyKind::Password {
                assert!(k.secret, "{}", k.key);
            }
        }
    }

    #[test]
    fn twenty_eight_deployable_services_plus_the_sniffer() {
        assert_eq!(SERVICES.len(), 29);
        assert_eq!(deployable_names().len(), 28);
        let singletons: Vec<_> = SERVICES.iter().filter(|s| s.singleton).collect();
        assert_eq!(singletons.len(), 1);
        assert_eq!(singletons[0].name, "sniffer");
    }

    #[test]
    fn names_are_unique_sorted_slugs() {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted and without duplicates");
        for n in names {
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
        }
    }

    #[test]
    fn every_service_serves_something_and_ports_are_unique_per_service() {
        for s in SERVICES.iter().filter(|s| !s.singleton) {
            assert!(
                !s.tcp_ports.is_empty() || !s.udp_ports.is_empty(),
                "{} serves no port",
                s.name
            );
            let tcp: BTreeSet<_> = s.tcp_ports.iter().collect();
            let udp: BTreeSet<_> = s.udp_ports.iter().collect();
            assert_eq!(tcp.len(), s.tcp_ports.len(), "{}", s.name);
            assert_eq!(udp.len(), s.udp_ports.len(), "{}", s.name);
            assert!(s.tcp_ports.iter().all(|p| *p != 0), "{}", s.name);
            let keys: BTreeSet<_> = s.persona.iter().map(|k| k.key).collect();
            assert_eq!(keys.len(), s.persona.len(), "{} persona keys", s.name);
        }
    }

    #[test]
    fn ports_follow_the_spec() {
        let tcp = |n: &str| service(n).map(|s| s.tcp_ports).unwrap_or_default();
        assert_eq!(tcp("ssh"), &[22]);
        assert_eq!(tcp("http"), &[80], "443 was declared, never served");
        assert_eq!(tcp("smb"), &[445], "139 was declared, never served");
        assert_eq!(tcp("smtp"), tcp("smtp_relay"));
        assert_eq!(tcp("docker_api"), &[2375, 2376]);
        assert!(tcp("snmp").is_empty());
        assert_eq!(service("tftp").map(|s| s.udp_ports), Ok(&[69][..]));
    }

    #[test]
    fn container_names_turn_underscores_into_dashes() {
        let relay = service("smtp_relay").expect("catalogued");
        assert_eq!(relay.container_name("decky-01"), "decky-01-smtp-relay");
        let api = service("docker_api").expect("catalogued");
        assert_eq!(api.container_name("web"), "web-docker-api");
    }

    #[test]
    fn https_listens_on_udp_443_only_with_http3() {
        let https = service("https").expect("catalogued");
        assert!(https.udp_ports_for(None).is_empty());
        let mut cfg = BTreeMap::new();
        cfg.insert("http_versions".to_owned(), "http/1.1,http/3".to_owned());
        assert_eq!(https.udp_ports_for(Some(&cfg)), vec![443]);
        let dns = service("dns").expect("catalogued");
        assert_eq!(dns.udp_ports_for(Some(&cfg)), vec![53]);
    }

    #[test]
    fn clashes_are_found() {
        let clash = port_clash(&["ssh", "smtp", "smtp_relay"]).expect("clash");
        assert_eq!(
            clash.to_string(),
            "services 'smtp' and 'smtp_relay' both listen on tcp/25"
        );
        assert!(port_clash(&["http", "conpot"]).is_some());
        assert_eq!(port_clash(&["ssh", "http", "my-custom", "ssh"]), None);
    }

    #[test]
    fn persona_keys_follow_the_spec() {
        let ssh = service("ssh").expect("catalogued");
        let pw = ssh.persona_key("password").expect("key");
        assert_eq!(pw.env, Some("SSH_ROOT_PASSWORD"));
        assert_eq!(pw.default, Some("admin"));
        assert!(pw.always);
        assert!(service("ftp").expect("catalogued").persona.is_empty());
        let emulated: Vec<_> = SERVICES
            .iter()
            .filter(|s| !s.stub)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            emulated,
            [
                "ftp",
                "http",
                "https",
                "mysql",
                "postgres",
                "redis",
                "smtp",
                "smtp_relay",
                "ssh",
                "telnet"
            ]
        );
        assert_eq!(ssh.implementation(), "emulated");
        let vnc = service("vnc").expect("catalogued");
        assert_eq!(vnc.implementation(), "stub (logs connects)");
    }
}
