//! Artifact volumes for real: a file uploaded with Python's ftplib to a decky's ftp lands
//! in `$DECNET_ARTIFACTS_ROOT/<decky>/ftp` on the host, byte for byte, and stays there
//! after the teardown.
mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Tears the fleet down through the CLI even when an assertion fails.
struct Fleet<'a>(&'a util::Dir);

impl Drop for Fleet<'_> {
    fn drop(&mut self) {
        let _ = self.0.decnet().args(["teardown", "--all"]).output();
    }
}

/// Logs in, uploads the file named and prints the server's answer. The persona refuses
/// about one credential in ten, always the same ones (so a retry with the same password
/// fails again): the client goes on to the next password, and retries while the service
/// starts.
const CLIENT: &str = r#"
import ftplib, io, itertools, sys, time
host, data = sys.argv[1], open(sys.argv[2], "rb").read()
deadline = time.time() + 60
for n in itertools.count():
    try:
        ftp = ftplib.FTP()
        ftp.connect(host, 21, timeout=10)
        ftp.login("backup", "Backup-2024!" if n == 0 else "Backup-2024!%d" % n)
        break
    except (OSError, ftplib.Error) as e:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
print("STOR", ftp.storbinary("STOR nightly.sh", io.BytesIO(data)))
print("QUIT", ftp.quit())
"#;

/// Files directly in `dir`, none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ftp_upload_lands_in_the_hosts_artifacts_root_and_outlives_teardown() {
    if util::docker().await.is_none() {
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        util::skip("python3");
        return;
    }
    let home = util::Dir::new();
    let root = home.path().join("evidence");
    let network = format!("decnet_ar{}", std::process::id());
    let decnet = || {
        let mut cmd = home.decnet();
        cmd.env("DECNET_DECKY_BINARY", util::static_binary());
        cmd.env("DECNET_ARTIFACTS_ROOT", &root);
        cmd
    };
    let _fleet = Fleet(&home);
    let out = util::run(decnet().args([
        "deploy",
        "-n",
        "1",
        "--services",
        "ftp",
        "--bridge",
        "--subnet",
        "203.0.113.160/27",
        "--gateway",
        "203.0.113.161",
        "--ip-start",
        "203.0.113.170",
        "--seed",
        "5",
        "--network-name",
        &network,
    ]));
    util::assert_code(&out, 0);

    let deckies = files_in(&root);
    assert_eq!(deckies.len(), 1, "one decky directory: {deckies:?}");
    let dir = deckies[0].join("ftp");
    assert!(dir.is_dir(), "{} made before the container", dir.display());
    assert_eq!((mode(&deckies[0]), mode(&dir)), (0o700, 0o700));

    let upload: Vec<u8> = format!("#!/bin/sh\n# {}\n", std::process::id())
        .into_bytes()
        .into_iter()
        .chain((0..=255u8).cycle().take(70_000))
        .collect();
    let sha = hex::encode(Sha256::digest(&upload));
    let file = home.path().join("nightly.sh");
    std::fs::write(&file, &upload).expect("write the upload");
    let client = Command::new("python3")
        .args(["-c", CLIENT, "203.0.113.170"])
        .arg(&file)
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&client.stdout).into_owned();
    assert!(
        client.status.success() && said.contains("STOR 226 "),
        "{said}{}",
        String::from_utf8_lossy(&client.stderr)
    );

    let mut captured = Vec::new();
    for _ in 0..40 {
        captured = files_in(&dir);
        if !captured.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(captured.len(), 1, "one capture in {}", dir.display());
    let name = captured[0]
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.ends_with(&format!("_{}_nightly.sh", &sha[..12])),
        "quarantine name of engine.md §2.8: {name}"
    );
    let kept = std::fs::read(&captured[0]).expect("read the capture");
    assert_eq!(hex::encode(Sha256::digest(&kept)), sha, "byte for byte");

    util::assert_code(&util::run(decnet().args(["teardown", "--all"])), 0);
    assert!(captured[0].is_file(), "teardown leaves the evidence");
}
