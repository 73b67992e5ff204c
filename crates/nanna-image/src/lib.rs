//! Reproducible minimal container images built from host files, loaded straight into a
//! Docker or Podman engine: no registry, no Dockerfile, no base image.
//!
//! An image holds a binary plus the dynamic loader and shared libraries it needs (read
//! from its ELF headers), CA certificates, `/etc/passwd` and `/etc/group` with a non-root
//! user `nanna` (1000:1000, home `/home/nanna`), `/tmp`, and the run configuration.
//! Entries are sorted and timestamps and owners fixed, so the same input gives the same
//! archive bytes and image id.
//!
//! ```no_run
//! # async fn demo(docker: &bollard::Docker) -> Result<(), nanna_image::ImageError> {
//! use std::path::Path;
//! let spec = nanna_image::ImageSpec::assistant(Path::new("target/release/nanna"))?;
//! let file = std::fs::File::create("/tmp/assistant.tar").map_err(nanna_image::ImageError::Write)?;
//! let built = nanna_image::write_docker_archive(&spec, std::io::BufWriter::new(file))?;
//! let loaded = nanna_image::load_archive(docker, Path::new("/tmp/assistant.tar")).await?;
//! println!("{} loaded as {loaded:?}", built.image_id);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod archive;
mod elf;
mod error;
mod libs;
mod load;
mod spec;

pub use archive::{BuiltImage, write_docker_archive, write_oci_archive};
pub use error::ImageError;
pub use load::{PROGRESS_EVERY, load_archive, load_archive_with_progress};
pub use spec::ImageSpec;
