//! The runtime archives: per target a `.tar.gz` holding a folder of its own name with the binary,
//! executable again (artifacts lose the mode), and the LICENSE; `SHA256SUMS` over them all.

use super::names::{BINARY, LICENSE, archive_name, archive_stem};
use super::{Pieces, Release};
use crate::plan::{Action, Cmd, Step};

pub fn archive_steps(r: &Release, p: &Pieces) -> [Step; 4] {
    let folder = archive_stem(&r.version, p.platform);
    let archive = archive_name(&r.version, p.platform);
    [
        Step::new(
            format!("stage {folder}"),
            Action::MakeDirs(vec![r.stage.join(&folder)]),
        ),
        Cmd::new("install", &r.stage)
            .args(["-m", "755"])
            .arg_path(&r.artifacts.join(&p.binary))
            .arg_path(&r.stage.join(&folder).join(BINARY))
            .into_step(format!("stage {folder}/{BINARY}")),
        Step::new(
            format!("stage {folder}/{LICENSE}"),
            Action::CopyInto {
                files: vec![r.host.root.join(LICENSE)],
                dir: r.stage.join(&folder),
            },
        ),
        Cmd::new("tar", &r.stage)
            .args(["-czf"])
            .arg_path(&r.out.join("runtime").join(&archive))
            .args([folder.as_str()])
            .into_step(format!("archive {archive}")),
    ]
}

pub fn checksums(r: &Release) -> Step {
    let archives = (r.platforms.iter()).map(|p| archive_name(&r.version, *p));
    Cmd::new("sh", &r.out.join("runtime"))
        .args(["-c", "sha256sum -- \"$@\" > SHA256SUMS", "sh"])
        .args(archives)
        .into_step("runtime/SHA256SUMS")
}
