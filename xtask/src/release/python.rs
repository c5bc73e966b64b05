//! The Python packages: every target's wheel as built, and an sdist made here with maturin.

use super::names::sdist_name;
use super::{Pieces, Release};
use crate::plan::{Action, Cmd, Step};

pub fn wheel_step(r: &Release, p: &Pieces) -> Step {
    Step::new(
        format!("the {} wheel", p.platform.triple),
        Action::CopyInto {
            files: vec![r.artifacts.join(&p.wheel)],
            dir: r.out.join("python"),
        },
    )
}

pub fn sdist_steps(r: &Release) -> [Step; 2] {
    let host = r.host;
    [
        Cmd::new(host.tools.bin("maturin"), &host.root)
            .args([
                "sdist",
                "--manifest-path",
                "sdks/python/Cargo.toml",
                "--out",
            ])
            .arg_path(&r.out.join("python"))
            .into_step("maturin sdist"),
        Step::new(
            "expect the sdist",
            Action::ExpectFile(r.out.join("python").join(sdist_name(&r.version))),
        ),
    ]
}
