//! Builder tests: determinism, allocation order, service and distro choices, errors.
use super::*;
use crate::model::Ipv4Net;
use crate::model::detect::InterfaceAddr;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect(s)
}

fn net(subnet: &str, gateway: &str, host: Option<&str>) -> Network {
    Network {
        interface: "br0".to_owned(),
        subnet: subnet.parse::<Ipv4Net>().expect(subnet),
        gateway: ip(gateway),
        host_ip: host.map(ip),
    }
}

fn lan() -> Network {
    net("192.0.2.0/24", "192.0.2.1", Some("192.0.2.2"))
}

fn opts(seed: u64) -> IniOptions {
    IniOptions {
        seed,
        now: 1_700_000_000.0,
        ..IniOptions::default()
    }
}

/// The deckies of INI `text` (which must parse) on [`lan`].
fn build(text: &str, seed: u64) -> Result<Vec<DeckyConfig>, Error> {
    from_ini(&parse(text), &lan(), &opts(seed))
}

/// INI `text`, parsed; the builders' tests start from text because it is readable.
fn parse(text: &str) -> IniConfig {
    crate::ini::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn flags(count: usize) -> FlagOptions {
    FlagOptions {
        count,
        randomize_services: true,
        seed: 7,
        now: 1.0,
        ..FlagOptions::default()
    }
}

#[test]
fn ini_explicit_ips_first_then_ascending() {
    let d = build(
        "[a]\nservices=ssh\n[b]\nip=192.0.2.3\nservices=ssh\n[c]\nservices=ssh\n",
        1,
    )
    .expect("builds");
    let ips: Vec<_> = d.iter().map(|d| d.ip).collect();
    // .1 gateway, .2 host, .3 claimed by b.
    assert_eq!(ips, [ip("192.0.2.4"), ip("192.0.2.3"), ip("192.0.2.5")]);
    assert!(
        d.iter()
            .all(|d| d.last_mutated == 1_700_000_000.0 && d.host_uuid.is_none())
    );
}

#[test]
fn ini_is_deterministic_for_a_seed() {
    let text = "[fleet]\namount=12\n[web]\narchetype=linux-server\n";
    let a = build(text, 99).expect("builds");
    let again = build(text, 99).expect("builds");
    assert_ne!(a[0].seed, again[0].seed, "secret seeds never repeat");
    assert_eq!(without_seeds(&a), without_seeds(&again));
    let b = build(text, 100).expect("builds");
    assert_ne!(
        a.iter()
            .map(|d| (&d.hostname, &d.services))
            .collect::<Vec<_>>(),
        b.iter()
            .map(|d| (&d.hostname, &d.services))
            .collect::<Vec<_>>()
    );
}

#[test]
fn ini_distros_cycle_by_position() {
    let d = build(
        "[x]\namount=10\nservices=ssh\n[y]\namount=3\narchetype=iot-device\n",
        3,
    )
    .expect("builds");
    let distros: Vec<_> = d.iter().map(|d| d.distro.as_str()).collect();
    assert_eq!(
        &distros[..10],
        [
            "debian", "ubuntu22", "ubuntu20", "rocky9", "centos7", "alpine", "fedora", "kali",
            "arch", "debian"
        ]
    );
    assert_eq!(&distros[10..], ["alpine", "alpine", "alpine"]);
    let rocky = &d[3];
    assert_eq!(
        (rocky.base_image.as_str(), rocky.build_base.as_str()),
        ("rockylinux:9-minimal", "debian:bookworm-slim")
    );
    assert!(
        rocky.hostname.ends_with(".localdomain"),
        "{}",
        rocky.hostname
    );
    assert!(d[0].hostname.starts_with("SRV-"), "{}", d[0].hostname);
}

#[test]
fn ini_services_nmap_os_and_intervals() {
    let text = "[a]\narchetype=windows-server\n[b]\narchetype=windows-server\nnmap_os=bsd\nservices=ssh\n\
                [c]\nmutate_interval=5\nservices=ssh, ssh ,http\n";
    let d = build(text, 1).expect("builds");
    assert_eq!(d[0].services, ["smb", "rdp", "ldap"]);
    assert_eq!(
        (d[0].nmap_os.as_str(), d[0].archetype.as_deref()),
        ("windows_server", Some("windows-server"))
    );
    assert_eq!(
        (d[1].nmap_os.as_str(), d[1].services.as_slice()),
        ("bsd", &["ssh".to_owned()][..])
    );
    assert_eq!(d[2].services, ["ssh", "http"], "duplicates dropped");
    assert_eq!(
        (d[2].nmap_os.as_str(), d[2].mutate_interval),
        ("linux", Some(5))
    );
    assert_eq!(d[0].mutate_interval, None);
    let global = format!("[general]\nmutate_interval=45\n{text}");
    let d = build(&global, 1).expect("builds");
    assert_eq!(
        (d[0].mutate_interval, d[2].mutate_interval),
        (Some(45), Some(5))
    );
    let ini = parse(text);
    let cli = IniOptions {
        cli_mutate_interval: Some(30),
        ..opts(1)
    };
    let d = from_ini(&ini, &lan(), &cli).expect("builds");
    assert!(
        d.iter().all(|d| d.mutate_interval == Some(30)),
        "the flag wins"
    );
}

#[test]
fn ini_random_services_are_small_known_and_clash_free() {
    let d = build("[r]\namount=100\n", 5).expect("builds");
    let known = catalog::deployable_names();
    for decky in &d {
        assert!(
            (1..=3).contains(&decky.services.len()),
            "{:?}",
            decky.services
        );
        assert!(decky.services.iter().all(|s| known.contains(&s.as_str())));
        assert_eq!(catalog::port_clash(&decky.services), None);
    }
}

#[test]
fn ini_personas_and_custom_services_carry_through() {
    let d = build(
        "[custom-erp]\nbinary=img\nports=8069\n[box]\nservices=erp,ssh\n[box.ssh]\npassword=p\n",
        1,
    )
    .expect("builds");
    assert_eq!(d[0].services, ["erp", "ssh"]);
    assert_eq!(d[0].service_config["ssh"]["password"], "p");
    let d = build(
        "[custom-erp]\nbinary=img\n[box]\nservices=erp,http\n[box.erp]\nanything=goes\n[box.http]\nresponse_code=301\nflavour=x\n",
        1,
    )
    .expect("builds");
    assert_eq!(d[0].service_config["erp"]["anything"], "goes");
    assert_eq!(
        d[0].service_config["http"].len(),
        1,
        "unknown persona keys dropped"
    );
    let e = build("[box]\nservices=http\n[box.http]\nresponse_code=ok\n", 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "[box.http] response_code: expected an integer, got 'ok'"
    );
}

#[test]
fn ini_errors() {
    let e = build("[a]\nservices=ssh, gopher, sniffer\n", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "Unknown service(s) in [a]: ['gopher', 'sniffer']. Available: ['conpot', 'dns',"
        ),
        "{e}"
    );
    assert!(e.ends_with("'tftp', 'vnc']"), "{e}");
    let e = build("[custom-erp]\nbinary=i\n[a]\nservices=nope\n", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'elasticsearch', 'erp', 'ftp'"),
        "custom names are available: {e}"
    );
    assert_eq!(
        build("[a]\narchetype=mainframe\n", 1)
            .unwrap_err()
            .to_string(),
        format!("Unknown archetype 'mainframe'. Available: {}", {
            let mut s: Vec<_> = catalog::ARCHETYPES.iter().map(|a| a.slug).collect();
            s.sort_unstable();
            s.join(", ")
        })
    );
    assert_eq!(
        build("[a]\nservices=smtp,smtp_relay\n", 1)
            .unwrap_err()
            .to_string(),
        "[a] services 'smtp' and 'smtp_relay' both listen on tcp/25; put them on different deckies."
    );
    assert_eq!(
        build("[a]\nip=192.0.2.1\nservices=ssh\n", 1)
            .unwrap_err()
            .to_string(),
        "[a] ip=192.0.2.1 is the gateway; pick another address."
    );
    assert_eq!(
        build("[a]\nip=192.0.2.9\n[b]\nip=192.0.2.9\n", 1)
            .unwrap_err()
            .to_string(),
        "[b] ip=192.0.2.9 is already used by another decky."
    );
}

#[test]
fn ini_exhaustion_names_the_decky() {
    let ini = parse("[w]\namount=5\nservices=ssh\n");
    // /29: six hosts minus gateway and host address → four free.
    let small = net("192.0.2.0/29", "192.0.2.1", Some("192.0.2.2"));
    let e = from_ini(&ini, &small, &opts(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Not enough free IPs in 192.0.2.0/29 while assigning IP for 'w-05'."
    );
    let taken = IniOptions {
        existing_ips: vec![ip("192.0.2.3")],
        ..opts(1)
    };
    let e = from_ini(&ini, &small, &taken).unwrap_err();
    assert!(e.to_string().ends_with("for 'w-04'."), "{e}");
}

#[test]
fn from_text_settles_the_network() {
    let host = HostNetwork {
        default_routes: vec![crate::model::detect::DefaultRoute {
            interface: "eth0".into(),
            gateway: Some(ip("198.51.100.1")),
        }],
        addrs: vec![InterfaceAddr {
            interface: "eth0".into(),
            addr: ip("198.51.100.2"),
            prefix: 24,
        }],
    };
    let plan = plan_from_ini(
        parse("[a]\nservices=ssh\n"),
        &NetworkHints::default(),
        &host,
        &opts(1),
    )
    .expect("plans");
    assert_eq!(plan.network.subnet.to_string(), "198.51.100.0/24");
    assert_eq!(plan.deckies[0].ip, ip("198.51.100.3"));
    let text = "[general]\nnet=192.0.2.0/24\ngw=192.0.2.254\n[a]\nservices=ssh\n";
    let plan =
        plan_from_ini(parse(text), &NetworkHints::default(), &host, &opts(1)).expect("plans");
    assert_eq!(
        (plan.network.interface.as_str(), plan.deckies[0].ip),
        ("eth0", ip("192.0.2.1"))
    );
    let e = plan_from_ini(
        parse("[a]\n"),
        &NetworkHints::default(),
        &HostNetwork::default(),
        &opts(1),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Could not auto-detect network interface. Use --interface."
    );
}

#[test]
fn flags_names_ips_and_determinism() {
    let d = from_flags(&lan(), &flags(3)).expect("builds");
    let names: Vec<_> = d.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["decky-01", "decky-02", "decky-03"]);
    let ips: Vec<_> = d.iter().map(|d| d.ip).collect();
    assert_eq!(ips, [ip("192.0.2.3"), ip("192.0.2.4"), ip("192.0.2.5")]);
    let again = from_flags(&lan(), &flags(3)).expect("builds");
    assert_eq!(without_seeds(&d), without_seeds(&again));
    assert_ne!(d[0].seed, d[1].seed, "each decky has its own secret seed");
    let sets: BTreeSet<Vec<String>> = d.iter().map(|d| d.services.clone()).collect();
    assert_eq!(sets.len(), 3, "distinct random sets");
    let more = FlagOptions {
        existing_names: vec!["decky-01".into(), "decky-03".into()],
        existing_ips: vec![ip("192.0.2.3")],
        ip_start: Some(ip("192.0.2.3")),
        ..flags(2)
    };
    let d = from_flags(&lan(), &more).expect("builds");
    assert_eq!((d[0].name.as_str(), d[0].ip), ("decky-02", ip("192.0.2.4")));
    assert_eq!((d[1].name.as_str(), d[1].ip), ("decky-04", ip("192.0.2.5")));
}

#[test]
fn flags_services_and_distros() {
    let explicit = FlagOptions {
        services: Some(vec!["ssh".into(), " http".into()]),
        randomize_services: false,
        distros: Some(vec!["alpine".into(), "kali".into()]),
        ..flags(3)
    };
    let d = from_flags(&lan(), &explicit).expect("builds");
    assert!(
        d.iter()
            .all(|d| d.services == ["ssh", "http"] && d.nmap_os == "linux")
    );
    let distros: Vec<_> = d.iter().map(|d| d.distro.as_str()).collect();
    assert_eq!(distros, ["alpine", "kali", "alpine"]);
    assert!(
        !d[1].hostname.chars().any(|c| c.is_ascii_digit()),
        "rolling style: {}",
        d[1].hostname
    );

    let arch = FlagOptions {
        archetype: Some("printer".into()),
        randomize_services: false,
        ..flags(3)
    };
    let d = from_flags(&lan(), &arch).expect("builds");
    let distros: Vec<_> = d.iter().map(|d| d.distro.as_str()).collect();
    assert_eq!(distros, ["alpine", "debian", "alpine"]);
    assert!(
        d.iter()
            .all(|d| d.services == ["snmp", "ftp"] && d.nmap_os == "embedded")
    );

    let random = FlagOptions {
        randomize_distros: true,
        ..flags(20)
    };
    let d = from_flags(&lan(), &random).expect("builds");
    let distinct: BTreeSet<_> = d.iter().map(|d| d.distro.as_str()).collect();
    assert!(distinct.len() > 1);

    let plain = from_flags(&lan(), &flags(10)).expect("builds");
    assert_eq!(plain[9].distro, "debian", "catalogue order cycled");
}

#[test]
fn flags_errors() {
    let text = |o: FlagOptions| from_flags(&lan(), &o).unwrap_err().to_string();
    assert_eq!(
        text(FlagOptions {
            randomize_services: false,
            ..flags(1)
        }),
        "Specify --services, --archetype, or --randomize-services."
    );
    assert_eq!(text(flags(0)), "--deckies must be at least 1.");
    assert!(
        text(FlagOptions {
            services: Some(vec!["ssh".into(), "x".into()]),
            ..flags(1)
        })
        .starts_with("Unknown service(s) in --services: ['x']. Available: ['conpot',")
    );
    assert!(
        text(FlagOptions {
            distros: Some(vec!["gentoo".into()]),
            ..flags(1)
        })
        .starts_with("Unknown distro 'gentoo'. Available: alpine, arch,")
    );
    assert!(
        text(FlagOptions {
            archetype: Some("x".into()),
            ..flags(1)
        })
        .starts_with("Unknown archetype 'x'.")
    );
    let small = net("192.0.2.0/29", "192.0.2.1", Some("192.0.2.2"));
    assert_eq!(
        from_flags(&small, &flags(5)).unwrap_err().to_string(),
        "Not enough free IPs in 192.0.2.0/29 for 5 deckies (found 4)."
    );
}

#[test]
fn hostnames_follow_their_style() {
    let mut rng = Rng::new(3);
    for _ in 0..50 {
        let g = hostname(HostnameStyle::Generic, &mut rng);
        let parts: Vec<_> = g.split('-').collect();
        assert_eq!(parts.len(), 3, "{g}");
        assert_eq!(parts[0], "SRV");
        assert!(
            HOSTNAME_WORDS.iter().any(|w| w.to_uppercase() == parts[1]),
            "{g}"
        );
        let n: u32 = parts[2].parse().expect("number");
        assert!((10..=99).contains(&n));
        let m = hostname(HostnameStyle::Minimal, &mut rng);
        assert!(
            m.rsplit_once('-')
                .is_some_and(|(w, n)| HOSTNAME_WORDS.contains(&w) && n.len() == 2),
            "{m}"
        );
    }
}

/// The fleet with every secret seed blanked: builders are deterministic in all but those.
fn without_seeds(deckies: &[DeckyConfig]) -> Vec<DeckyConfig> {
    let blank = crate::model::DeckySeed::from_hex(&"0".repeat(64)).expect("valid hex");
    deckies
        .iter()
        .map(|d| DeckyConfig {
            seed: blank.clone(),
            ..d.clone()
        })
        .collect()
}
