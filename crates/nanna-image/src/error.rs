//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while describing, building or loading an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A host file could not be read.
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Read {
        /// The host path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file that should be an ELF binary is not one (or is damaged).
    #[error(
        "{path} is not a usable ELF binary ({reason}); pass a Linux executable or shared library"
    )]
    NotElf {
        /// The host path.
        path: PathBuf,
        /// What the parser objected to.
        reason: String,
    },
    /// The binary's CPU type has no OCI architecture name known to this crate.
    #[error(
        "{path} is built for ELF machine {machine}, which has no known OCI architecture; build for amd64, arm64, arm, 386, ppc64le, s390x or riscv64"
    )]
    UnsupportedArchitecture {
        /// The host path.
        path: PathBuf,
        /// The ELF `e_machine` value.
        machine: u16,
    },
    /// A binary added to an image does not match the image's architecture.
    #[error(
        "{path} is built for {found} but the image is {expected}; add binaries of one architecture only"
    )]
    ArchitectureMismatch {
        /// The host path.
        path: PathBuf,
        /// The image's architecture.
        expected: String,
        /// The binary's architecture.
        found: String,
    },
    /// A shared library a binary needs was not found on the host.
    #[error(
        "shared library {name} (needed by {needed_by}) was not found in {searched}; install it on the host or add it with ImageSpec::add_file"
    )]
    MissingLibrary {
        /// The `DT_NEEDED` name.
        name: String,
        /// The object that needs it.
        needed_by: PathBuf,
        /// The directories searched, separated by `:`.
        searched: String,
    },
    /// A path inside the image is not acceptable.
    #[error("image path {path:?} is invalid: {reason}")]
    InvalidImagePath {
        /// The offending path.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The image reference is not a valid `name[:tag]`.
    #[error(
        "image reference {reference:?} is invalid: {reason}; use a lower-case name such as localhost/my-image:latest"
    )]
    InvalidReference {
        /// The offending reference.
        reference: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The image user is not defined in the image's `/etc/passwd`.
    #[error(
        "image user {user:?} is unknown; use \"nanna\", \"root\" or a numeric uid[:gid] (the image defines root 0 and nanna 1000)"
    )]
    UnknownUser {
        /// The offending user string.
        user: String,
    },
    /// `SOURCE_DATE_EPOCH` is not a number of seconds, or lies past the year 9999.
    #[error(
        "SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds between 1970 and the end \
         of 9999; unset it or fix it"
    )]
    InvalidSourceDateEpoch {
        /// The variable's value.
        value: String,
    },
    /// A program the assistant image must contain is not installed on the host.
    #[error(
        "the assistant image needs `{program}` (nixpkgs `{package}`), which is not installed on \
         this host (looked for in {searched}); {fix}"
    )]
    MissingProgram {
        /// The program, e.g. `bwrap`.
        program: String,
        /// Its nixpkgs package, as `images/assistant.json` names it.
        package: String,
        /// The directories searched, separated by `:`.
        searched: String,
        /// What to install.
        fix: String,
    },
    /// The bundled `images/assistant.json` could not be understood.
    #[error(
        "images/assistant.json is invalid: {0}; fix the file (its keys are shared with the Nix image)"
    )]
    AssistantSpec(#[source] serde_json::Error),
    /// Writing the archive failed.
    #[error(
        "writing the image archive failed: {0}; check free space and that the output is writable"
    )]
    Write(#[source] std::io::Error),
    /// The engine refused or failed to load the archive.
    #[error(
        "the engine failed to load {archive}: {message}; check that the engine is running and the archive is a docker-archive"
    )]
    Load {
        /// The archive on the host.
        archive: PathBuf,
        /// The engine's (or transport's) message.
        message: String,
    },
    /// The engine accepted the archive but reported no image.
    #[error(
        "the engine loaded {archive} but reported no image name or id; inspect the engine's images"
    )]
    NothingLoaded {
        /// The archive on the host.
        archive: PathBuf,
    },
}
