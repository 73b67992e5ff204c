//! Reading the few ELF facts an image needs: CPU architecture, the program interpreter
//! (`PT_INTERP`), and the dynamic section's `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH`.

use std::path::Path;

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use crate::ImageError;

/// What an ELF file says about how it is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    /// `e_machine`.
    pub machine: u16,
    /// ELFCLASS64?
    pub is_64: bool,
    /// Little-endian?
    pub little_endian: bool,
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`; `None` for static binaries and libraries.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` names in file order.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (unexpanded).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries (unexpanded).
    pub runpath: Vec<String>,
}

impl ElfInfo {
    /// The OCI architecture name (`amd64`, `arm64`, ...) of this ELF file.
    pub fn architecture(&self, path: &Path) -> Result<&'static str, ImageError> {
        let arch = match (self.machine, self.is_64, self.little_endian) {
            (elf::EM_X86_64, true, _) => "amd64",
            (elf::EM_AARCH64, true, _) => "arm64",
            (elf::EM_386, false, _) => "386",
            (elf::EM_ARM, false, _) => "arm",
            (elf::EM_PPC64, true, true) => "ppc64le",
            (elf::EM_S390, true, _) => "s390x",
            (elf::EM_RISCV, true, _) => "riscv64",
            _ => {
                return Err(ImageError::UnsupportedArchitecture {
                    path: path.to_path_buf(),
                    machine: self.machine,
                });
            }
        };
        Ok(arch)
    }

    /// Whether a library with `other`'s header can be loaded into a process described by `self`.
    pub fn compatible_with(&self, other: &ElfInfo) -> bool {
        self.machine == other.machine
            && self.is_64 == other.is_64
            && self.little_endian == other.little_endian
    }
}

/// Parses an ELF file's loading facts. `path` is only used in error messages.
pub(crate) fn parse(data: &[u8], path: &Path) -> Result<ElfInfo, ImageError> {
    let not_elf = |reason: String| ImageError::NotElf {
        path: path.to_path_buf(),
        reason,
    };
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => parse_as::<elf::FileHeader64<Endianness>>(data).map_err(not_elf),
        Ok(FileKind::Elf32) => parse_as::<elf::FileHeader32<Endianness>>(data).map_err(not_elf),
        Ok(other) => Err(not_elf(format!("it is a {other:?} file"))),
        Err(e) => Err(not_elf(e.to_string())),
    }
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfInfo, String> {
    let header = Elf::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let mut info = ElfInfo {
        machine: header.e_machine(endian),
        is_64: header.is_class_64(),
        little_endian: header.is_little_endian(),
        interpreter: None,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
    };
    for segment in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if let Some(interp) = segment
            .interpreter(endian, data)
            .map_err(|e| e.to_string())?
        {
            let interp =
                std::str::from_utf8(interp).map_err(|_| "PT_INTERP is not UTF-8".to_string())?;
            info.interpreter = Some(interp.to_string());
        }
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((entries, strings_index)) =
        sections.dynamic(endian, data).map_err(|e| e.to_string())?
    else {
        if header
            .program_headers(endian, data)
            .map_err(|e| e.to_string())?
            .iter()
            .any(|p| p.p_type(endian) == elf::PT_DYNAMIC)
        {
            return Err("it has a dynamic segment but no section headers to read it".into());
        }
        return Ok(info);
    };
    let strings = sections
        .strings(endian, data, strings_index)
        .map_err(|e| e.to_string())?;
    for entry in entries {
        let Some(tag) = entry.tag32(endian) else {
            continue;
        };
        if !matches!(tag, elf::DT_NEEDED | elf::DT_RPATH | elf::DT_RUNPATH) {
            continue;
        }
        let value = entry.string(endian, strings).map_err(|e| e.to_string())?;
        let value = std::str::from_utf8(value)
            .map_err(|_| "a dynamic string is not UTF-8".to_string())?
            .to_string();
        match tag {
            elf::DT_NEEDED => info.needed.push(value),
            elf::DT_RPATH => info.rpath.extend(split_search_path(&value)),
            _ => info.runpath.extend(split_search_path(&value)),
        }
    }
    Ok(info)
}

fn split_search_path(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal, valid, static x86-64 ELF executable header (no segments, no sections).
    pub(crate) fn static_elf_x86_64() -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // ELFCLASS64
        h[5] = 1; // little endian
        h[6] = 1; // EV_CURRENT
        h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h
    }

    #[test]
    fn reads_interpreter_and_needed_from_a_real_binary() {
        let path = Path::new("/usr/bin/env");
        let data = std::fs::read(path).expect("read /usr/bin/env");
        let info = parse(&data, path).expect("parse");
        let interp = info
            .interpreter
            .clone()
            .expect("dynamic binary has PT_INTERP");
        assert!(
            interp.starts_with('/') && interp.contains("ld-"),
            "{interp}"
        );
        assert!(
            info.needed.iter().any(|n| n.starts_with("libc.so")),
            "{:?}",
            info.needed
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(info.architecture(path).unwrap(), "amd64");
        }
    }

    #[test]
    fn static_header_has_no_interpreter_or_needed() {
        let data = static_elf_x86_64();
        let info = parse(&data, Path::new("static")).expect("parse");
        assert_eq!(info.interpreter, None);
        assert!(info.needed.is_empty());
        assert_eq!(info.architecture(Path::new("static")).unwrap(), "amd64");
    }

    #[test]
    fn rejects_non_elf() {
        let err = parse(b"#!/bin/sh\necho hi\n", Path::new("script.sh")).unwrap_err();
        assert!(matches!(err, ImageError::NotElf { .. }), "{err}");
        assert!(err.to_string().contains("script.sh"));
    }
}
