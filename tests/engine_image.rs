//! The decky image against the real Docker engine: built once, reused, and runnable.
mod util;

use decnet::engine::image::{self, ImageSpec};
use decnet::engine::{Engine, Error};

#[tokio::test(flavor = "multi_thread")]
async fn decky_image_is_built_once_from_the_static_binary_and_runs() {
    let Some(engine) = util::docker().await else {
        return;
    };
    let tag = format!("decnet-test/decky:{}", std::process::id());
    let _cleanup = util::RemoveImageOnDrop(tag.clone());
    let spec = ImageSpec {
        tag: tag.clone(),
        binary: util::static_binary(),
    };

    let mut lines = Vec::new();
    let first = image::ensure(&engine, &spec, &mut |l| lines.push(l.to_owned()))
        .await
        .expect("build image");
    assert!(first.built);
    assert!(lines.iter().any(|l| l.contains("COPY decnet")), "{lines:?}");

    let mut quiet = Vec::new();
    let second = image::ensure(&engine, &spec, &mut |l| quiet.push(l.to_owned()))
        .await
        .expect("reuse image");
    assert_eq!(
        second,
        image::Ensured {
            id: first.id.clone(),
            built: false
        }
    );
    assert!(
        quiet.is_empty(),
        "an up-to-date image is not rebuilt: {quiet:?}"
    );

    let out = util::docker_cli(&["run", "--rm", "--network", "none", &tag, "--version"]);
    assert!(
        out.starts_with(&format!("decnet {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );

    // The binary the test harness runs is dynamically linked: refused with a way out.
    let dynamic = ImageSpec {
        tag,
        binary: util::bin(),
    };
    match image::ensure(&engine, &dynamic, &mut |_| {}).await {
        Err(Error::NotStatic { .. }) => {}
        other => panic!("a dynamic binary must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_engine_says_how_to_start_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = format!("unix://{}/nope.sock", dir.path().display());
    let err = Engine::connect(Some(&socket))
        .await
        .expect_err("no engine there");
    let msg = err.to_string();
    assert!(
        msg.contains("nope.sock") && msg.contains("systemctl start docker"),
        "{msg}"
    );
}
