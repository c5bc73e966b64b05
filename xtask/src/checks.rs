//! Checks a plan makes of its artifacts: the glibc floor of an ELF file, and that an expected file exists.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Fails unless the file is an ELF file for `machine` that needs no `GLIBC_` symbol version newer than
/// 2.`max_minor`; says what it needs.
pub fn elf_floor(path: &Path, machine: u16, max_minor: u32) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match elf_machine(&bytes) {
        Some(found) if found == machine => {}
        found => bail!(
            "{} is not an ELF file for machine {machine} (found {found:?}): built for another platform?",
            path.display()
        ),
    }
    match newest_glibc(&bytes) {
        Some(minor) if minor > max_minor => bail!(
            "{} needs GLIBC_2.{minor}, newer than the GLIBC_2.{max_minor} the artifacts promise \
             (was it linked without the zig wrapper?)",
            path.display()
        ),
        None => Ok(format!("{}: needs no GLIBC_ symbol", path.display())),
        Some(m) => Ok(format!("{}: needs at most GLIBC_2.{m}", path.display())),
    }
}

/// Fails unless the file exists, naming what its directory holds instead (a wheel with another tag).
pub fn expect_file(path: &Path) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(path);
    let found: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    bail!(
        "expected {} but {} holds {found:?}",
        path.display(),
        dir.display()
    )
}

/// `e_machine` of an ELF file (little-endian, at offset 18), if it is one.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    match bytes {
        [0x7f, b'E', b'L', b'F', ..] if bytes.len() >= 20 => {
            Some(u16::from_le_bytes([bytes[18], bytes[19]]))
        }
        _ => None,
    }
}

/// Fails unless the file is a 64-bit Mach-O file for `cputype` (a Mac artifact checked on any host).
pub fn macho(path: &Path, cputype: u32) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match macho_cputype(&bytes) {
        Some(found) if found == cputype => Ok(format!(
            "{}: Mach-O for cputype {cputype:#x}",
            path.display()
        )),
        found => bail!(
            "{} is not a Mach-O file for cputype {cputype:#x} (found {found:?}): built for another platform?",
            path.display()
        ),
    }
}

/// `cputype` of a 64-bit little-endian Mach-O file (magic 0xfeedfacf), if it is one.
pub fn macho_cputype(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0xcf, 0xfa, 0xed, 0xfe, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The newest `GLIBC_2.N` version an ELF file names. Version requirements live in `.dynstr` as plain
/// strings, so a byte scan finds them without an ELF parser.
pub fn newest_glibc(bytes: &[u8]) -> Option<u32> {
    const NEEDLE: &[u8] = b"GLIBC_2.";
    let mut newest = None;
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(NEEDLE.len()).position(|w| w == NEEDLE) {
        let start = i + pos + NEEDLE.len();
        let digits: Vec<u8> = bytes[start..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        if let Ok(minor) = std::str::from_utf8(&digits).unwrap_or("").parse::<u32>() {
            newest = newest.max(Some(minor));
        }
        i = start;
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machine_is_read_from_the_header() {
        let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        header.resize(18, 0);
        let aarch64 = [header.clone(), vec![0xb7, 0x00]].concat();
        let x86_64 = [header, vec![0x3e, 0x00]].concat();
        assert_eq!(elf_machine(&aarch64), Some(183));
        assert_eq!(elf_machine(&x86_64), Some(62));
        assert_eq!(elf_machine(b"MZ not an ELF file at all"), None);
    }

    #[test]
    fn macho_cputype_is_read_from_the_header() {
        let arm64 = [0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0, 0, 0x01, 0, 0, 0, 0];
        assert_eq!(macho_cputype(&arm64), Some(0x0100_000c));
        assert_eq!(macho_cputype(b"\x7fELF not a Mach-O file"), None);
    }

    #[test]
    fn glibc_scan() {
        assert_eq!(
            newest_glibc(b"\0GLIBC_2.2.5\0GLIBC_2.14\0GLIBC_2.3\0"),
            Some(14)
        );
        assert_eq!(newest_glibc(b"\0GLIBC_2.34\0GLIBC_2.17\0"), Some(34));
        assert_eq!(newest_glibc(b"no versions here"), None);
    }
}
