//! INI deployment-file tests: every error text, expansion, personas, custom services.
use super::*;

fn ok(text: &str) -> IniConfig {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(ini) => panic!("{text:?} parsed: {ini:?}"),
        Err(e) => e.to_string(),
    }
}

fn names(ini: &IniConfig) -> Vec<&str> {
    ini.deckies.iter().map(|d| d.name.as_str()).collect()
}

#[test]
fn a_full_file() {
    let ini = ok(
        "[general]\nnet = 192.0.2.0/24\ngw = 192.0.2.1\ninterface = br0\n\n\
                  [web]\nip = 192.0.2.50 ; fixed\nservices = http, ssh\nnmap-os = bsd\n\
                  mutate-interval = 15\n\n[office]\narchetype = windows-workstation\n",
    );
    assert_eq!(ini.subnet, "192.0.2.0/24".parse().ok());
    assert_eq!(ini.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(ini.interface.as_deref(), Some("br0"));
    assert_eq!(ini.mutate_interval, None);
    assert_eq!(names(&ini), ["web", "office"]);
    assert_eq!(
        ok("[general]\nmutate-interval=45\n[a]\n").mutate_interval,
        Some(45)
    );
    let web = &ini.deckies[0];
    assert_eq!(web.ip, Some(Ipv4Addr::new(192, 0, 2, 50)));
    assert_eq!(
        web.services,
        Some(vec!["http".to_owned(), "ssh".to_owned()])
    );
    assert_eq!(web.nmap_os.as_deref(), Some("bsd"));
    assert_eq!(web.mutate_interval, Some(15));
    let office = &ini.deckies[1];
    assert_eq!(office.archetype.as_deref(), Some("windows-workstation"));
    assert_eq!((office.ip, &office.services), (None, &None));
    let hints = ini.network_hints();
    assert_eq!(hints.interface.as_deref(), Some("br0"));
}

#[test]
fn input_checks_before_parsing() {
    assert_eq!(err(""), "INI content is empty");
    assert_eq!(err(" \n\t\n"), "INI content is empty");
    assert_eq!(
        err("# only a comment\n"),
        "The provided INI content must contain at least one section (no sections found)"
    );
    let huge = format!("[a]\nservices=ssh\n#{}\n", "x".repeat(MAX_INI_BYTES));
    assert_eq!(err(&huge), "INI content is too large (max 512KB)");
    // Exactly at the cap is fine.
    let head = "[a]\nservices=ssh\n#";
    let at_cap = format!("{head}{}", "x".repeat(MAX_INI_BYTES - head.len()));
    assert_eq!(at_cap.len(), MAX_INI_BYTES);
    assert_eq!(names(&ok(&at_cap)), ["a"]);
}

#[test]
fn syntax_errors_are_invalid_format() {
    assert_eq!(
        err("services=ssh\n[a]\n"),
        "Invalid INI format: line 1: \"services=ssh\" comes before any [section] header"
    );
    assert_eq!(
        err("[a]\nnonsense\n"),
        "Invalid INI format: line 2: \"nonsense\" is neither a [section], a key = value pair \
         nor a comment"
    );
}

#[test]
fn sections_without_deckies() {
    assert_eq!(
        err("[general]\nnet=192.0.2.0/24\n"),
        "INI must contain at least one decky section"
    );
    assert_eq!(
        err("[general]\n[custom-x]\nbinary=img\n[web.ssh]\npassword=x\n"),
        "INI must contain at least one decky section"
    );
}

#[test]
fn amount_expands_with_two_digit_names() {
    let ini = ok("[web]\namount = 3\nservices = http\nnmap_os = bsd\n");
    assert_eq!(names(&ini), ["web-01", "web-02", "web-03"]);
    assert!(ini.deckies.iter().all(
        |d| d.services == Some(vec!["http".to_owned()]) && d.nmap_os.as_deref() == Some("bsd")
    ));
    assert_eq!(names(&ok("[web]\namount=1\n")), ["web"]);
    assert_eq!(ok("[w]\namount=100\n").deckies.len(), 100);
    assert_eq!(ok("[w]\namount=100\n").deckies[99].name, "w-100");
}

#[test]
fn amount_errors() {
    assert_eq!(
        err("[w]\namount=x\n"),
        "[w] amount= must be a positive integer, got 'x'"
    );
    assert_eq!(
        err("[w]\namount=0\n"),
        "[w] amount= must be a positive integer, got '0'"
    );
    assert_eq!(
        err("[w]\namount=-3\n"),
        "[w] amount= must be a positive integer, got '-3'"
    );
    assert_eq!(
        err("[w]\namount=2.5\n"),
        "[w] amount= must be a positive integer, got '2.5'"
    );
    assert_eq!(
        err("[w]\namount=101\n"),
        "[w] amount=101 exceeds maximum allowed (100)."
    );
    assert_eq!(
        err("[w]\namount=3\nip=192.0.2.5\n"),
        "Cannot combine ip= with amount=3. Remove ip= or use amount=1."
    );
    assert!(parse("[w]\namount=1\nip=192.0.2.5\n").is_ok());
}

#[test]
fn value_errors() {
    assert_eq!(
        err("[w]\nmutate_interval=soon\n"),
        "[w] mutate_interval= must be an integer, got 'soon'"
    );
    assert_eq!(
        err("[w]\nmutate-interval=0\n"),
        "[w] mutate_interval= must be at least 1 (minutes)."
    );
    assert_eq!(
        err("[w]\nip=192.0.2.256\n"),
        "[w] ip= must be an IPv4 address, got '192.0.2.256'"
    );
    assert_eq!(
        err("[general]\nnet=192.0.2.0\n[w]\n"),
        "[general] net= must be an IPv4 network like 192.168.1.0/24, got '192.0.2.0'"
    );
    assert_eq!(
        err("[general]\ngw=gateway\n[w]\n"),
        "[general] gw= must be an IPv4 address, got 'gateway'"
    );
    assert_eq!(
        err("[bad name]\n"),
        "Invalid decky name 'bad name': use 1 to 128 characters from A-Z, a-z, 0-9, '-', '_' and '.'."
    );
    assert!(err(&format!("[{}]\n", "a".repeat(129))).starts_with("Invalid decky name"));
    assert_eq!(
        err("[web]\namount=2\n[web-01]\n"),
        "Two deckies are named 'web-01'; decky names must be unique."
    );
}

#[test]
fn services_lists_are_trimmed() {
    let ini = ok("[a]\nservices = ssh ,, http ,\n[b]\nservices =\n[c]\nservices = ,\n");
    assert_eq!(
        ini.deckies[0].services,
        Some(vec!["ssh".to_owned(), "http".to_owned()])
    );
    assert_eq!(ini.deckies[1].services, None);
    assert_eq!(ini.deckies[2].services, None);
}

#[test]
fn personas_attach_to_exact_or_expanded_names() {
    let ini = ok("[web]\nservices=ssh\n[fleet]\namount=2\n[other]\n\
                  [web.ssh]\nPassword = hunter2\nuser=root\n\
                  [fleet.http]\nserver_header=nginx\n\
                  [ghost.ssh]\npassword=x\n");
    assert_eq!(names(&ini), ["web", "fleet-01", "fleet-02", "other"]);
    let web = &ini.deckies[0].service_config;
    assert_eq!(web["ssh"]["password"], "hunter2");
    assert_eq!(web["ssh"]["user"], "root");
    for d in &ini.deckies[1..3] {
        assert_eq!(d.service_config["http"]["server_header"], "nginx");
    }
    assert!(
        ini.deckies[3].service_config.is_empty(),
        "ghost matched nothing"
    );
}

#[test]
fn exact_name_beats_prefix_and_last_dot_decides() {
    let ini = ok("[web]\n[web-01]\n[web.ssh]\npassword=a\n[db.lan]\n[db.lan.mysql]\nversion=8\n");
    assert_eq!(names(&ini), ["web", "web-01", "db.lan"]);
    assert!(ini.deckies[0].service_config.contains_key("ssh"));
    assert!(ini.deckies[1].service_config.is_empty());
    assert_eq!(ini.deckies[2].service_config["mysql"]["version"], "8");
}

#[test]
fn custom_services() {
    let ini = ok(
        "[custom-erp_app]\nbinary = registry.local/erp:1.4\nexec = /srv/erp  --listen 8069\n\
                  ports = 8069, http, 70000, 0, 8070\n\
                  [box]\nservices = erp_app, ssh\n[box.erp_app]\nmode=demo\n",
    );
    let erp = ini.custom_service("erp_app").expect("registered");
    assert_eq!(erp.image, "registry.local/erp:1.4");
    assert_eq!(erp.exec, ["/srv/erp", "--listen", "8069"]);
    assert_eq!(erp.ports, [8069, 8070]);
    assert_eq!(erp.container_name("box"), "box-erp-app");
    assert_eq!(names(&ini), ["box"], "custom sections are not deckies");
    assert_eq!(ini.deckies[0].service_config["erp_app"]["mode"], "demo");
    let bare = ok("[custom-x]\nbinary=img\n[d]\n");
    assert!(bare.custom_services[0].exec.is_empty() && bare.custom_services[0].ports.is_empty());
}

#[test]
fn custom_service_errors() {
    assert_eq!(
        err("[custom-x]\nexec=/bin/x\n[d]\n"),
        "[custom-x] needs binary= (the Docker image to run)."
    );
    assert_eq!(
        err("[custom-ssh]\nbinary=img\n[d]\n"),
        "[custom-ssh] would replace the built-in service 'ssh'; give it another name."
    );
    assert_eq!(
        err("[custom-]\nbinary=img\n[d]\n"),
        "[custom-] is not a usable custom service name: use letters, digits, '-' and '_' after 'custom-'"
    );
    assert!(err("[custom-a.b]\nbinary=img\n[d]\n").contains("not a usable custom service name"));
}

#[test]
fn inline_comments_and_line_endings() {
    let ini = ok("[web] # the web box\r\nip = 192.0.2.9 # optional\r\nservices = ssh;http\r\n");
    assert_eq!(ini.deckies[0].ip, Some(Ipv4Addr::new(192, 0, 2, 9)));
    assert_eq!(
        ini.deckies[0].services,
        Some(vec!["ssh;http".to_owned()]),
        "no space, no comment"
    );
}

#[test]
fn string_path_is_lenient_file_path_is_strict() {
    let text = "[web]\nservices=ssh\nservices=http\n";
    assert_eq!(ok(text).deckies[0].services, Some(vec!["http".to_owned()]));
    let e = parse_strict(text).unwrap_err().to_string();
    assert_eq!(
        e,
        "Invalid INI format: line 3: key 'services' appears twice in section [web]"
    );
}

#[test]
fn load_reads_files_strictly_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.ini");
    std::fs::write(&path, "[web]\nservices=ssh\n").expect("write");
    assert_eq!(names(&load(&path).expect("loads")), ["web"]);
    std::fs::write(&path, "[web]\n[web]\n").expect("write");
    assert!(
        load(&path)
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );
    std::fs::write(&path, vec![b'#'; MAX_INI_BYTES + 1]).expect("write");
    assert_eq!(
        load(&path).unwrap_err().to_string(),
        "INI content is too large (max 512KB)"
    );
    let missing = dir.path().join("nope.ini");
    assert!(
        load(&missing)
            .unwrap_err()
            .to_string()
            .starts_with(&missing.display().to_string())
    );
}
