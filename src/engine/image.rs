//! The decky image: this binary `FROM scratch`, built locally, rebuilt only when it changes.
//!
//! The build context is a tar holding a three-line Dockerfile and the binary. The image
//! carries the binary's SHA-256 as a label, so [`ensure`] can tell an up-to-date image
//! from a stale one without rebuilding: deploys stay fast and a new release always ends
//! up in new containers. Nothing is pulled: `FROM scratch` needs no base image.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{Engine, Error, elf};

/// Label holding the SHA-256 of the binary inside the image.
pub const LABEL_BINARY_SHA256: &str = "decnet.binary.sha256";
/// Label holding the decnet version that built the image.
pub const LABEL_VERSION: &str = "decnet.version";

/// Path of the binary inside the image.
const IN_IMAGE: &str = "/decnet";

const DOCKERFILE: &str =
    "FROM scratch\nCOPY decnet /decnet\nENTRYPOINT [\"/decnet\"]\nCMD [\"decky\", \"--idle\"]\n";

/// The image every decky container runs, by default.
pub fn default_tag() -> String {
    format!("decnet/decky:{}", crate::VERSION)
}

/// What to build: a tag and the static binary to put in it.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Image tag, e.g. `decnet/decky:0.1.0`.
    pub tag: String,
    /// A statically linked `decnet` binary.
    pub binary: PathBuf,
}

/// The image that [`ensure`] found or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// Docker's image id (`sha256:…`).
    pub id: String,
    /// Whether it had to be built now.
    pub built: bool,
}

/// Makes sure `spec.tag` holds `spec.binary`, building it only if the label differs.
///
/// `progress` receives the builder's output lines, for operators watching a deploy.
pub async fn ensure(
    engine: &Engine,
    spec: &ImageSpec,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Ensured, Error> {
    let io = |source| Error::Io {
        path: spec.binary.clone(),
        source,
    };
    if !elf::is_static(&spec.binary).map_err(io)? {
        return Err(Error::NotStatic {
            path: spec.binary.clone(),
        });
    }
    let binary = tokio::fs::read(&spec.binary).await.map_err(io)?;
    let sha = hex::encode(Sha256::digest(&binary));

    let existing = current(engine, &spec.tag).await?;
    if let Some((id, Some(label))) = &existing
        && *label == sha
    {
        return Ok(Ensured {
            id: id.clone(),
            built: false,
        });
    }

    progress(&format!(
        "building {} from {}",
        spec.tag,
        spec.binary.display()
    ));
    let context = context_tar(&binary).map_err(io)?;
    let labels = HashMap::from([
        (LABEL_BINARY_SHA256, sha.as_str()),
        (LABEL_VERSION, crate::VERSION),
    ]);
    let options = BuildImageOptionsBuilder::new()
        .t(&spec.tag)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream =
        engine
            .docker()
            .build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item?;
        if let Some(message) = info.error {
            return Err(Error::Build {
                tag: spec.tag.clone(),
                message,
            });
        }
        if let Some(line) = info
            .stream
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            progress(line);
        }
    }

    let (id, _) = current(engine, &spec.tag)
        .await?
        .ok_or_else(|| Error::Build {
            tag: spec.tag.clone(),
            message: "the build finished but the tag does not exist".into(),
        })?;
    if let Some((old, _)) = existing.filter(|(old, _)| *old != id) {
        // The superseded image is only removable once no container uses it; leaving it
        // for `docker image prune` is harmless, so a refusal is not an error.
        let opts = RemoveImageOptionsBuilder::new().force(false).build();
        let _ = engine.docker().remove_image(&old, Some(opts), None).await;
    }
    Ok(Ensured { id, built: true })
}

/// The id and binary label of the image tagged `tag`, if it exists.
async fn current(engine: &Engine, tag: &str) -> Result<Option<(String, Option<String>)>, Error> {
    match engine.docker().inspect_image(tag).await {
        Ok(img) => {
            let label = img
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(LABEL_BINARY_SHA256));
            Ok(img.id.map(|id| (id, label)))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The build context: the Dockerfile and the binary (mode 0755) as an uncompressed tar.
fn context_tar(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::with_capacity(binary.len() + 4096));
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    add("Dockerfile", DOCKERFILE.as_bytes(), 0o644)?;
    add(
        Path::new(IN_IMAGE)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("decnet"),
        binary,
        0o755,
    )?;
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_the_dockerfile_and_an_executable_binary() {
        let tar_bytes = context_tar(b"\x7fELF-not-really").expect("tar");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            seen.push((path, entry.header().mode().expect("mode")));
        }
        assert_eq!(
            seen,
            vec![
                ("Dockerfile".to_owned(), 0o644),
                ("decnet".to_owned(), 0o755)
            ]
        );
        assert!(DOCKERFILE.starts_with("FROM scratch\n"));
    }
}
