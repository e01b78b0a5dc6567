//! The state file `decnet-state.json`: the deployed fleet, in the state directory
//! (`DECNET_HOME`, decision engine #2).
//!
//! Shape: the original's `{"config": …, "compose_path": …}` plus what decnet needs to
//! undo a deploy without guessing: the network's driver and names, the hairpin link and
//! the image. It is written only after a deploy fully succeeded, atomically (temporary
//! file + rename), so a crash or a failed deploy leaves the previous state in place.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use super::hostnet::Hairpin;
use super::plan::{Driver, Names};
use crate::fsutil;
use crate::model::DecnetConfig;

/// File name of the state file inside the state directory.
pub const FILE_NAME: &str = "decnet-state.json";

/// The deployed fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The fleet.
    pub config: DecnetConfig,
    /// Where a compose file for it was written, if one was.
    #[serde(default)]
    pub compose_path: Option<PathBuf>,
    /// How the deckies attach.
    pub driver: Driver,
    /// Docker network and hairpin names.
    pub names: Names,
    /// The hairpin link, when the driver has one.
    #[serde(default)]
    pub hairpin: Option<Hairpin>,
    /// The decky image the containers run.
    pub image: String,
}

/// The state file's path in state directory `home`.
pub fn path_in(home: &Path) -> PathBuf {
    home.join(FILE_NAME)
}

/// Loads the state at `path`; `None` when there is no deployment.
pub fn load(path: &Path) -> Result<Option<State>, Error> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| Error::StateCorrupt {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `state` to `path` atomically (pretty JSON, mode 0600), creating the directory.
///
/// 0600 because the fleet holds secrets: persona passwords and keys given in the INI,
/// and each decky's secret seed.
pub fn save(path: &Path, state: &State) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut json = serde_json::to_vec_pretty(state).map_err(|e| io(e.into()))?;
    json.push(b'\n');
    fsutil::write_atomic(path, &json, 0o600).map_err(io)
}

/// Removes the state file; an absent one is not an error.
pub fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::tests::decky;
    use crate::model::{Mode, detect::Network};

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_in(dir.path());
        assert_eq!(load(&path).expect("no file is no state"), None);
        let net = Network {
            interface: "dnt0".into(),
            subnet: "192.0.2.0/24".parse().expect("cidr"),
            gateway: "192.0.2.1".parse().expect("ip"),
            host_ip: None,
        };
        let config = DecnetConfig::new(
            Mode::Unihost,
            &net,
            vec![decky("a", [192, 0, 2, 9], &["ssh"], "linux")],
        )
        .expect("fleet");
        let state = State {
            config,
            compose_path: None,
            driver: Driver::Macvlan,
            names: Names::default(),
            hairpin: Some(Hairpin {
                link: "decnet_macvlan0".into(),
                route: "192.0.2.8/29".parse().ok(),
            }),
            image: "decnet/decky:0.1.0".into(),
        };
        // A state file left world-readable by an older build is replaced by a private one.
        std::fs::write(&path, b"{}").expect("old file");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        save(&path, &state).expect("save");
        assert_eq!(fsutil::mode_of(&path).expect("mode"), 0o600);
        assert_eq!(load(&path).expect("load"), Some(state));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(json["config"]["deckies"][0]["name"], "a");
        assert_eq!(json["driver"], "macvlan");
        remove(&path).expect("remove");
        remove(&path).expect("removing twice is fine");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);

        std::fs::write(&path, b"{not json").expect("write");
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains(FILE_NAME), "{e}");
    }
}
