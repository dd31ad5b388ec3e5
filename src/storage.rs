//! Storage: the only owner of the torrent's files and their memory maps.
//!
//! Every file of the torrent is created at its full size under the output directory (0-byte
//! files and directories included) and mapped once with memmap2. Verified pieces are copied
//! into the maps across file boundaries using [`Layout::spans`]. Blocks served to peers (and
//! pieces checked at start) are read back with positional reads (`pread`) from the same page
//! cache: a seeder then never maps the content into its own address space, so serving costs no
//! page faults, and a page that hundreds of seeders on one machine serve is not mapped
//! hundreds of times over.
//!
//! Concurrency: the maps are written by the verifier threads, and the same files are read by the
//! threads that serve blocks to peers. They never touch the same bytes at the same time because
//! the coordinator hands a piece to exactly one writer, and serves a piece only after that write
//! has completed and been reported back (a verified piece is never written again). That
//! invariant is what makes the raw-pointer copies below sound.
//!
//! Space: every file's blocks are reserved at open (posix_fallocate where the filesystem has
//! it), so a full disk is reported at start naming the file, not met as a SIGBUS mid-write.
//!
//! Paths: every path comes from the validated metainfo (relative, no `..`, no empty or absolute
//! components), and before a file is created its parent is checked to still lie inside the
//! output directory after resolving symlinks, so nothing is ever written outside it.

use crate::layout::Layout;
use memmap2::MmapRaw;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// A storage failure: always names the path involved.
#[derive(Debug)]
pub struct StorageError {
    pub path: PathBuf,
    pub what: String,
    pub source: io::Error,
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn err(path: &Path, what: &str, source: io::Error) -> StorageError {
    StorageError {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    }
}

struct MappedFile {
    path: PathBuf,
    /// `None` for 0-byte files, which cannot be mapped.
    map: Option<MmapRaw>,
    /// `None` for BEP 47 padding files, which are never created.
    file: Option<File>,
}

/// The torrent's content on disk.
pub struct Storage {
    layout: Layout,
    files: Vec<MappedFile>,
    /// Some file already held bytes before we opened it (so there may be data to check).
    had_data: bool,
}

impl Storage {
    /// Creates (or reopens) every file of `layout` under `root` at its full size and maps it.
    /// Existing data is kept: a file is only grown or shrunk to the torrent's size.
    pub fn open(root: &Path, layout: &Layout) -> Result<Storage, StorageError> {
        fs::create_dir_all(root).map_err(|e| err(root, "cannot create output directory", e))?;
        let root_real = root
            .canonicalize()
            .map_err(|e| err(root, "cannot resolve output directory", e))?;
        let mut files = Vec::with_capacity(layout.files().len());
        let mut had_data = false;
        for slot in layout.files() {
            let path = safe_join(&root_real, &slot.path)?;
            if slot.padding {
                // BEP 47: padding is zeros by definition; it never touches the disk.
                files.push(MappedFile {
                    path,
                    map: None,
                    file: None,
                });
                continue;
            }
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| err(parent, "cannot create directory", e))?;
                let parent_real = parent
                    .canonicalize()
                    .map_err(|e| err(parent, "cannot resolve directory", e))?;
                if !parent_real.starts_with(&root_real) {
                    return Err(err(
                        &path,
                        "refusing to write outside the output directory:",
                        io::Error::new(io::ErrorKind::PermissionDenied, "path escapes via a link"),
                    ));
                }
            }
            if let Ok(meta) = fs::symlink_metadata(&path) {
                if !meta.file_type().is_file() {
                    return Err(err(
                        &path,
                        "refusing to use",
                        io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                    ));
                }
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| err(&path, "cannot open", e))?;
            let current = file
                .metadata()
                .map_err(|e| err(&path, "cannot stat", e))?
                .len();
            had_data |= current > 0;
            if current != slot.length {
                file.set_len(slot.length)
                    .map_err(|e| err(&path, "cannot size", e))?;
            }
            reserve(&file, slot.length)
                .map_err(|e| err(&path, "cannot reserve disk space for", e))?;
            let map = if slot.length == 0 {
                None
            } else {
                Some(MmapRaw::map_raw(&file).map_err(|e| err(&path, "cannot map", e))?)
            };
            files.push(MappedFile {
                path,
                map,
                file: Some(file),
            });
        }
        Ok(Storage {
            layout: layout.clone(),
            files,
            had_data,
        })
    }

    /// True when some file held bytes before [`Storage::open`] (data worth checking).
    pub fn had_data(&self) -> bool {
        self.had_data
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Absolute paths of the torrent's files, in metainfo order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Copies `data` (a whole verified piece, or any range of it at `begin`) into the files.
    ///
    /// The caller guarantees no other thread reads or writes this piece meanwhile (see the
    /// module doc). Out-of-range writes are refused.
    pub fn write(&self, piece: u32, begin: u32, data: &[u8]) -> io::Result<()> {
        if !self.layout.range_in_piece(piece, begin, data.len() as u32) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside piece",
            ));
        }
        for span in self.layout.spans(piece, begin, data.len() as u32) {
            // Spans never cover 0-byte files, so an unmapped file is padding: nothing to store.
            let Some(map) = self.files[span.file].map.as_ref() else {
                continue;
            };
            let src = &data[span.buf_offset..span.buf_offset + span.len];
            // SAFETY: the span lies inside the file (Layout guarantees file_offset + len <=
            // length, and the file was sized to length when mapped); no other thread touches
            // these bytes while the piece is being written (module doc). The file must not be
            // truncated by another process while mapped, or the copy faults with SIGBUS.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    map.as_mut_ptr().add(span.file_offset as usize),
                    span.len,
                );
            }
        }
        Ok(())
    }

    /// Copies `out.len()` bytes at `begin` inside `piece` out of the files.
    pub fn read(&self, piece: u32, begin: u32, out: &mut [u8]) -> io::Result<()> {
        if !self.layout.range_in_piece(piece, begin, out.len() as u32) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside piece",
            ));
        }
        for span in self.layout.spans(piece, begin, out.len() as u32) {
            let dest = &mut out[span.buf_offset..span.buf_offset + span.len];
            match self.files[span.file].file.as_ref() {
                Some(file) => file.read_exact_at(dest, span.file_offset)?,
                // Padding (BEP 47) reads as zeros.
                None => dest.fill(0),
            }
        }
        Ok(())
    }

    /// Flushes every map to disk (msync). Only needed where the resume state cannot record a
    /// boot id instead (`crate::resume_store`).
    pub fn flush(&self) -> Result<(), StorageError> {
        (0..self.files.len()).try_for_each(|i| self.flush_file(i))
    }

    /// Flushes one file's map (file index in metainfo order).
    pub fn flush_file(&self, index: usize) -> Result<(), StorageError> {
        let f = &self.files[index];
        match &f.map {
            Some(map) => map.flush().map_err(|e| err(&f.path, "cannot flush", e)),
            None => Ok(()),
        }
    }
}

/// Reserves the file's blocks, so a full disk is an error now rather than a SIGBUS when a
/// write through the map finds no space. Filesystems without fallocate are left sparse.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let Ok(len) = libc::off_t::try_from(len) else {
            return Ok(());
        };
        if len == 0 {
            return Ok(());
        }
        // Already fully allocated (a finished or resumed file): nothing to reserve, and
        // fallocate would touch the mtime the resume state relies on.
        use std::os::unix::fs::MetadataExt;
        if file.metadata()?.blocks().saturating_mul(512) >= len as u64 {
            return Ok(());
        }
        // SAFETY: a plain syscall on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match rc {
            0 => Ok(()),
            libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => Ok(()),
            code => Err(io::Error::from_raw_os_error(code)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Ok(())
    }
}

/// Joins a validated relative path onto `root`, refusing anything but normal components.
fn safe_join(root: &Path, relative: &Path) -> Result<PathBuf, StorageError> {
    let mut out = root.to_path_buf();
    let mut depth = 0;
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            _ => {
                return Err(err(
                    relative,
                    "refusing unsafe path",
                    io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path"),
                ))
            }
        }
    }
    if depth == 0 {
        return Err(err(
            relative,
            "refusing empty path",
            io::Error::new(io::ErrorKind::InvalidInput, "empty path"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("minibt-storage-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_all_files_and_round_trips_across_boundaries() {
        let dir = temp_dir("roundtrip");
        let layout = Layout::new(
            16,
            vec![
                (PathBuf::from("t/a"), 10),
                (PathBuf::from("t/empty"), 0),
                (PathBuf::from("t/sub/b"), 30),
            ],
        )
        .unwrap();
        let storage = Storage::open(&dir, &layout).unwrap();
        assert_eq!(fs::metadata(dir.join("t/empty")).unwrap().len(), 0);
        assert_eq!(fs::metadata(dir.join("t/sub/b")).unwrap().len(), 30);
        let content: Vec<u8> = (0..40u8).collect();
        for p in 0..layout.num_pieces() {
            let start = layout.piece_offset(p) as usize;
            let len = layout.piece_len(p) as usize;
            storage.write(p, 0, &content[start..start + len]).unwrap();
        }
        storage.flush().unwrap();
        let a = fs::read(dir.join("t/a")).unwrap();
        let b = fs::read(dir.join("t/sub/b")).unwrap();
        assert_eq!([a, b].concat(), content);
        let mut block = [0u8; 4];
        storage.read(0, 8, &mut block).unwrap();
        assert_eq!(block, [8, 9, 10, 11]);
        assert!(storage.write(2, 8, &[0; 9]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_shrunk_by_another_process_reads_as_an_error_not_a_crash() {
        // Reads are `pread`s, not copies out of the map: bytes past the new end of the file
        // are an error for the serving peer, where a copy from the map would die of SIGBUS.
        let dir = temp_dir("shrunk");
        let layout = Layout::new(16, vec![(PathBuf::from("f"), 32)]).unwrap();
        let storage = Storage::open(&dir, &layout).unwrap();
        storage.write(1, 0, &[5; 16]).unwrap();
        let mut block = [0u8; 16];
        storage.read(1, 0, &mut block).unwrap();
        assert_eq!(block, [5; 16]);
        OpenOptions::new()
            .write(true)
            .open(dir.join("f"))
            .unwrap()
            .set_len(8)
            .unwrap();
        let err = storage.read(1, 0, &mut block).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn padding_files_are_never_created_and_read_as_zeros() {
        let dir = temp_dir("padding");
        let layout = Layout::new(
            16,
            vec![
                (PathBuf::from("t/a"), 10),
                (PathBuf::from("t/.pad/6"), 6),
                (PathBuf::from("t/b"), 16),
            ],
        )
        .unwrap()
        .with_padding([false, true, false]);
        let storage = Storage::open(&dir, &layout).unwrap();
        assert!(!dir.join("t/.pad").exists());
        let mut piece0: Vec<u8> = (1..=10).collect();
        piece0.extend_from_slice(&[0; 6]);
        storage.write(0, 0, &piece0).unwrap();
        storage.write(1, 0, &[7; 16]).unwrap();
        let mut back = [0xffu8; 16];
        storage.read(0, 0, &mut back).unwrap();
        assert_eq!(back.to_vec(), piece0);
        assert!(!dir.join("t/.pad").exists());
        assert_eq!(fs::read(dir.join("t/b")).unwrap(), vec![7; 16]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_paths_that_escape() {
        let dir = temp_dir("escape");
        for bad in ["../x", "/etc/x", "a/../../x"] {
            let layout = Layout::new(16, vec![(PathBuf::from(bad), 4)]).unwrap();
            assert!(Storage::open(&dir, &layout).is_err(), "{bad}");
        }
        assert!(!dir.parent().unwrap().join("x").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symlinked_directory_leading_outside() {
        let dir = temp_dir("symlink");
        let outside = temp_dir("symlink-outside");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        let layout = Layout::new(16, vec![(PathBuf::from("link/f"), 4)]).unwrap();
        assert!(Storage::open(&dir, &layout).is_err());
        assert!(!outside.join("f").exists());
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }
}
