//! What the host probe found of the tools directory: which venvs and installs are there and current.

use std::path::{Path, PathBuf};

use super::{ExtraVenv, Tools, VERDACCIO_PROJECT, VERDACCIO_STAMP, pin_lines, requirements, stamp};
use crate::platform::linux_platforms;

/// What the host probe found of one venv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VenvState {
    /// Its interpreter is there: not a restored venv whose Python is gone.
    pub exists: bool,
    /// Usable, and installed from exactly today's pins.
    pub current: bool,
}

impl VenvState {
    /// `stamp` holds `pins` once an install completed.
    pub fn probe(dir: &Path, stamp: &Path, pins: &str) -> VenvState {
        // `exists` follows the link to the interpreter the venv was made from.
        let exists = dir.join("bin/python").exists();
        VenvState {
            exists,
            current: exists && std::fs::read_to_string(stamp).ok().as_deref() == Some(pins),
        }
    }
}

/// What the host probe found of the tools directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolsState {
    pub venv: VenvState,
    pub linker_current: bool,
    /// Each `ExtraVenv`, in `ExtraVenv::ALL` order.
    pub extra: [VenvState; 3],
    /// The aarch64 node for emulated smoke tests is unpacked.
    pub emulated_node: bool,
    /// The act test's runner Node is installed.
    pub runner_node: bool,
    /// verdaccio is installed from today's lockfile.
    pub verdaccio_current: bool,
}

impl ToolsState {
    pub fn probe(tools: &Tools, root: &Path) -> ToolsState {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        ToolsState {
            venv: VenvState::probe(&tools.venv(), &stamp(&tools.venv()), &requirements()),
            linker_current: linux_platforms()
                .all(|p| read(tools.linker(p)).as_deref() == Some(tools.linker_script(p).as_str())),
            extra: ExtraVenv::ALL.map(|v| {
                let dir = tools.extra_venv(v);
                VenvState::probe(&dir, &stamp(&dir), &pin_lines(v.pins()))
            }),
            emulated_node: tools.emulated_node().is_file(),
            runner_node: tools.runner_node().is_file(),
            verdaccio_current: read(root.join(VERDACCIO_PROJECT).join("package-lock.json"))
                .is_some_and(|lock| {
                    read(tools.verdaccio_dir().join(VERDACCIO_STAMP)) == Some(lock)
                }),
        }
    }

    pub fn extra(&self, venv: ExtraVenv) -> VenvState {
        self.extra[venv as usize]
    }

    pub fn ready(&self) -> bool {
        self.venv.current && self.linker_current
    }
}
