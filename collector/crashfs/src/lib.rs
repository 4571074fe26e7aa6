//! A power cut for tests, after LazyFS and ALICE: what a file system keeps when the power goes is
//! what was made durable, not what was written.
//!
//! ```text
//! process under test (LD_PRELOAD=libcablewatch_crashfs.so, CRASHFS_ROOT, CRASHFS_JOURNAL, CRASHFS_STASH)
//!   open(O_CREAT) / mkdir / rename / unlink under the root --> journal line first (a name that
//!       goes away is hard-linked into the stash first, so it can come back)
//!   fsync / fdatasync                                      --> journal line after it returns:
//!       SYNC <inode> <size> <path>  for a file (its bytes up to size are durable),
//!       DSYNC <dir>          for a directory (its names are durable)
//! test, after SIGKILL: [`cut`] replays the journal over the directory tree:
//!   undo every name change whose directory was not synced after it (newest first),
//!   then cut every file back to its last synced size (or to its size when the run started)
//! ```
//!
//! The model is the pessimistic one of POSIX: data is durable after `fsync`/`fdatasync` of the file,
//! a name (create, rename, delete) after `fsync` of its directory, and nothing else is. Writes are
//! taken to be appends (true of the collector's log, parts and checkpoint file), so cutting a file
//! back to its synced size restores its synced content. The interposed calls are the ones Rust's
//! standard library makes on Linux with glibc (`open64`, `open`, `mkdir`, `rename`, `unlink`,
//! `fsync`, `fdatasync`); the journal is written with the real `write`, one line per call, so that
//! a line is in the journal before the call it records returns to the program.
//!
//! Linked into a program as a library (the collector's integration tests call [`cut`]), the
//! interposed functions pass every call straight through: they journal only when `CRASHFS_ROOT`,
//! `CRASHFS_JOURNAL` and `CRASHFS_STASH` are all set.

// An LD_PRELOAD shim is foreign functions through and through.
#![allow(unsafe_code)]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ffi::{CStr, CString, c_char, c_int},
    io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

/// Where the shim writes and what it watches, from the environment.
struct Setup {
    root: PathBuf,
    journal: c_int,
    stash: PathBuf,
}

static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
static STASHED: AtomicU64 = AtomicU64::new(0);
static JOURNAL_LOCK: Mutex<()> = Mutex::new(());

fn setup() -> Option<&'static Setup> {
    SETUP
        .get_or_init(|| {
            let root = PathBuf::from(std::env::var_os("CRASHFS_ROOT")?);
            let journal = CString::new(std::env::var("CRASHFS_JOURNAL").ok()?).ok()?;
            let stash = PathBuf::from(std::env::var_os("CRASHFS_STASH")?);
            let open = real_open64();
            // SAFETY: a valid C string and flags; the mode is read because of O_CREAT.
            let fd = unsafe {
                open(
                    journal.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
                    0o644,
                )
            };
            (fd >= 0).then_some(Setup {
                root,
                journal: fd,
                stash,
            })
        })
        .as_ref()
}

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, libc::mode_t) -> c_int;
type MkdirFn = unsafe extern "C" fn(*const c_char, libc::mode_t) -> c_int;
type RenameFn = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
type PathFn = unsafe extern "C" fn(*const c_char) -> c_int;
type FdFn = unsafe extern "C" fn(c_int) -> c_int;

/// The next definition of `name` after this library's (libc's).
fn next(name: &CStr) -> *mut libc::c_void {
    // SAFETY: RTLD_NEXT with a valid symbol name.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    assert!(!f.is_null(), "crashfs: no {name:?} after the shim");
    f
}

macro_rules! real {
    ($fn_name:ident, $ty:ty, $sym:literal) => {
        fn $fn_name() -> $ty {
            static F: OnceLock<usize> = OnceLock::new();
            let f = *F.get_or_init(|| next($sym) as usize);
            // SAFETY: the symbol's C signature is `$ty`.
            unsafe { std::mem::transmute::<usize, $ty>(f) }
        }
    };
}

real!(real_open64, OpenFn, c"open64");
real!(real_open, OpenFn, c"open");
real!(real_mkdir, MkdirFn, c"mkdir");
real!(real_rename, RenameFn, c"rename");
real!(real_unlink, PathFn, c"unlink");
real!(real_fsync, FdFn, c"fsync");
real!(real_fdatasync, FdFn, c"fdatasync");

/// `path` made absolute against the working directory, if it is under the root.
fn watched(path: *const c_char) -> Option<(&'static Setup, PathBuf)> {
    use std::os::unix::ffi::OsStrExt as _;
    let s = setup()?;
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller passed a C string.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    let p = Path::new(std::ffi::OsStr::from_bytes(bytes));
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    abs.starts_with(&s.root).then_some((s, abs))
}

fn journal(s: &Setup, line: &str) {
    let _one = JOURNAL_LOCK.lock();
    let bytes = format!("{line}\n");
    // SAFETY: a valid fd and buffer; O_APPEND keeps lines whole.
    unsafe { libc::write(s.journal, bytes.as_ptr().cast(), bytes.len()) };
}

fn show(p: &Path) -> String {
    p.to_string_lossy().replace('\t', " ")
}

/// Hard-links `path` into the stash; the stash name, or `-` when there is nothing to keep.
fn stash(s: &Setup, path: &Path) -> String {
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return "-".into();
    }
    let name = s.stash.join(format!(
        "{}-{}",
        std::process::id(),
        STASHED.fetch_add(1, Ordering::Relaxed)
    ));
    match std::fs::hard_link(path, &name) {
        Ok(()) => show(&name),
        Err(_) => "-".into(),
    }
}

fn before_open(path: *const c_char, flags: c_int) {
    if flags & libc::O_CREAT != 0
        && let Some((s, abs)) = watched(path)
        && abs.symlink_metadata().is_err()
    {
        journal(s, &format!("CREATE\t{}", show(&abs)));
    }
}

/// Interposed `open64`.
///
/// # Safety
/// As `open64(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    before_open(path, flags);
    // SAFETY: forwarded as given.
    unsafe { real_open64()(path, flags, mode) }
}

/// Interposed `open`.
///
/// # Safety
/// As `open(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    before_open(path, flags);
    // SAFETY: forwarded as given.
    unsafe { real_open()(path, flags, mode) }
}

/// Interposed `mkdir`.
///
/// # Safety
/// As `mkdir(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    if let Some((s, abs)) = watched(path)
        && abs.symlink_metadata().is_err()
    {
        journal(s, &format!("MKDIR\t{}", show(&abs)));
    }
    // SAFETY: forwarded as given.
    unsafe { real_mkdir()(path, mode) }
}

/// Interposed `rename`.
///
/// # Safety
/// As `rename(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    if let (Some((s, from)), Some((_, to))) = (watched(old), watched(new)) {
        let kept = stash(s, &to);
        // The moved inode, so that undoing a rename the kill stopped before it happened does
        // not move an unrelated file.
        let ino = from.symlink_metadata().map_or(0, |m| m.ino());
        journal(
            s,
            &format!("RENAME\t{}\t{}\t{kept}\t{ino}", show(&from), show(&to)),
        );
    }
    // SAFETY: forwarded as given.
    unsafe { real_rename()(old, new) }
}

/// Interposed `unlink`.
///
/// # Safety
/// As `unlink(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    if let Some((s, abs)) = watched(path) {
        let kept = stash(s, &abs);
        journal(s, &format!("UNLINK\t{}\t{kept}", show(&abs)));
    }
    // SAFETY: forwarded as given.
    unsafe { real_unlink()(path) }
}

fn after_sync(fd: c_int) {
    let Some(s) = setup() else { return };
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return;
    }
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
        return;
    };
    // The root's own name lives in its parent: syncs of its ancestors count too.
    if !path.starts_with(&s.root) && !s.root.starts_with(&path) {
        return;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => journal(s, &format!("DSYNC\t{}", show(&path))),
        libc::S_IFREG => journal(
            s,
            &format!("SYNC\t{}\t{}\t{}", st.st_ino, st.st_size, show(&path)),
        ),
        _ => {}
    }
}

/// Interposed `fsync`.
///
/// # Safety
/// As `fsync(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    // SAFETY: forwarded as given.
    let r = unsafe { real_fsync()(fd) };
    if r == 0 {
        after_sync(fd);
    }
    r
}

/// Interposed `fdatasync`.
///
/// # Safety
/// As `fdatasync(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    // SAFETY: forwarded as given.
    let r = unsafe { real_fdatasync()(fd) };
    if r == 0 {
        after_sync(fd);
    }
    r
}

/// Sizes of the regular files under `root` by inode: what is durable when a run starts.
pub fn baseline(root: &Path) -> io::Result<HashMap<u64, u64>> {
    let mut sizes = HashMap::new();
    for path in files(root)? {
        let m = path.symlink_metadata()?;
        sizes.insert(m.ino(), m.len());
    }
    Ok(sizes)
}

fn files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// What [`cut`] undid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CutReport {
    /// Syncs the journal recorded (files and directories): none means the shim was not loaded.
    pub syncs: usize,
    /// The journal's last whole line: the last call the process made before the cut.
    pub last_line: String,
    /// Name changes undone (creates, directories, renames, deletes).
    pub names_undone: usize,
    /// Files cut back to their synced size.
    pub files_cut: usize,
    /// Bytes dropped from them.
    pub bytes_dropped: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Create(PathBuf),
    Mkdir(PathBuf),
    Rename(PathBuf, PathBuf, Option<PathBuf>, u64),
    Unlink(PathBuf, Option<PathBuf>),
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Applies a power cut to the tree under `root` after the process that wrote `journal` was
/// killed: every name change not made durable by a sync of its directory is undone, newest first,
/// and every file is cut back to its last synced size (`durable` holds the sizes when the run
/// started, [`baseline`]).
pub fn cut(root: &Path, journal: &Path, mut durable: HashMap<u64, u64>) -> io::Result<CutReport> {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut ops: Vec<Op> = Vec::new();
    // Per directory: the ops (by index) not yet made durable there.
    let mut pending: BTreeMap<PathBuf, BTreeSet<usize>> = BTreeMap::new();
    let opt = |s: &str| (s != "-").then(|| PathBuf::from(s));
    let mut syncs = 0;
    let mut last_line = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        last_line = line.to_owned();
        let op = match f.as_slice() {
            ["CREATE", p] => Op::Create(p.into()),
            ["MKDIR", p] => Op::Mkdir(p.into()),
            ["RENAME", a, b, k, ino] => Op::Rename(a.into(), b.into(), opt(k), ino.parse().unwrap_or(0)),
            ["UNLINK", p, k] => Op::Unlink(p.into(), opt(k)),
            ["DSYNC", d] => {
                syncs += 1;
                pending.remove(Path::new(d));
                continue;
            }
            ["SYNC", ino, size, _path] => {
                syncs += 1;
                if let (Ok(ino), Ok(size)) = (ino.parse(), size.parse()) {
                    durable.insert(ino, size);
                }
                continue;
            }
            // A line cut short by the kill: its call may not have happened; ignore it.
            _ => continue,
        };
        let i = ops.len();
        let dirs = match &op {
            Op::Create(p) | Op::Mkdir(p) | Op::Unlink(p, _) => vec![parent(p)],
            Op::Rename(a, b, _, _) => vec![parent(a), parent(b)],
        };
        for d in dirs {
            pending.entry(d).or_default().insert(i);
        }
        ops.push(op);
    }
    let undo: BTreeSet<usize> = pending.into_values().flatten().collect();
    let mut report = CutReport {
        syncs,
        last_line,
        ..CutReport::default()
    };
    for &i in undo.iter().rev() {
        report.names_undone += 1;
        match &ops[i] {
            Op::Create(p) => {
                let _ = std::fs::remove_file(p);
            }
            Op::Mkdir(p) => {
                let _ = std::fs::remove_dir_all(p);
            }
            Op::Rename(a, b, kept, ino) => {
                let moved = b.symlink_metadata().is_ok_and(|m| m.ino() == *ino);
                if moved && a.parent().is_some_and(Path::exists) {
                    let _ = std::fs::rename(b, a);
                }
                if let Some(k) = kept {
                    let _ = std::fs::hard_link(k, b);
                }
            }
            Op::Unlink(p, Some(k)) => {
                if p.symlink_metadata().is_err() && p.parent().is_some_and(Path::exists) {
                    let _ = std::fs::hard_link(k, p);
                }
            }
            Op::Unlink(_, None) => {}
        }
    }
    if !root.exists() {
        return Ok(report);
    }
    for path in files(root)? {
        let m = path.symlink_metadata()?;
        let keep = durable.get(&m.ino()).copied().unwrap_or(0);
        if m.len() > keep {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(keep)?;
            report.files_cut += 1;
            report.bytes_dropped += m.len() - keep;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, bytes: &[u8]) {
        std::fs::write(p, bytes).unwrap();
    }

    fn ino(p: &Path) -> u64 {
        p.symlink_metadata().unwrap().ino()
    }

    /// A tree after a run whose last name changes were never synced, and a journal as the shim
    /// writes it: the cut puts back what the directory held at its last sync and cuts files back
    /// to their synced sizes.
    #[test]
    fn unsynced_names_and_bytes_are_undone() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("data");
        let stash = top.path().join("stash");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&stash).unwrap();
        // Before the run: `old` (durable, 6 bytes) and `gone` (durable).
        write(&root.join("final"), b"before");
        write(&root.join("gone"), b"keep me");
        let durable = baseline(&root).unwrap();
        // The run: appends to `log` (synced at 3 of 8 bytes), writes `.tmp` and renames it over
        // `final`, deletes `gone`, makes a directory; the directory is never synced after that.
        write(&root.join("log"), b"abcdefgh");
        write(&root.join(".tmp"), b"after");
        let tmp_ino = ino(&root.join(".tmp"));
        std::fs::hard_link(root.join("final"), stash.join("1")).unwrap();
        std::fs::rename(root.join(".tmp"), root.join("final")).unwrap();
        std::fs::hard_link(root.join("gone"), stash.join("2")).unwrap();
        std::fs::remove_file(root.join("gone")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        write(&root.join("sub/x"), b"x");
        let r = root.display();
        let s = stash.display();
        let log_ino = ino(&root.join("log"));
        let journal = top.path().join("journal");
        std::fs::write(
            &journal,
            format!(
                "CREATE\t{r}/log\nDSYNC\t{r}\nSYNC\t{log_ino}\t3\t{r}/log\nCREATE\t{r}/.tmp\n\
                 RENAME\t{r}/.tmp\t{r}/final\t{s}/1\t{tmp_ino}\nUNLINK\t{r}/gone\t{s}/2\n\
                 MKDIR\t{r}/sub\nCREATE\t{r}/sub/x\nDSYNC\t{r}/sub\nUNLINK\t{r}/cut-sh"
            ),
        )
        .unwrap();
        let report = cut(&root, &journal, durable).unwrap();
        assert_eq!(std::fs::read(root.join("log")).unwrap(), b"abc");
        assert_eq!(std::fs::read(root.join("final")).unwrap(), b"before");
        assert_eq!(std::fs::read(root.join("gone")).unwrap(), b"keep me");
        // The renamed file went back under its name, whose creation was not durable either.
        assert!(!root.join(".tmp").exists());
        assert!(!root.join("sub").exists(), "a directory never made durable");
        assert_eq!(report.syncs, 3);
        // .tmp created, renamed, gone deleted, sub made (sub/x was synced in sub, but sub goes).
        assert_eq!(report.names_undone, 4);
        // The last line is cut short by the kill: not a call that happened.
        assert_eq!(report.last_line, format!("UNLINK\t{r}/cut-sh"));
    }

    /// Name changes followed by a sync of their directory stay.
    #[test]
    fn synced_names_stay() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let durable = baseline(&root).unwrap();
        write(&root.join(".tmp"), b"new");
        let tmp_ino = ino(&root.join(".tmp"));
        std::fs::rename(root.join(".tmp"), root.join("final")).unwrap();
        let r = root.display();
        let journal = top.path().join("journal");
        std::fs::write(
            &journal,
            format!(
                "CREATE\t{r}/.tmp\nSYNC\t{tmp_ino}\t3\t{r}/.tmp\n\
                 RENAME\t{r}/.tmp\t{r}/final\t-\t{tmp_ino}\nDSYNC\t{r}\n"
            ),
        )
        .unwrap();
        let report = cut(&root, &journal, durable).unwrap();
        assert_eq!(std::fs::read(root.join("final")).unwrap(), b"new");
        assert!(!root.join(".tmp").exists());
        assert_eq!(report.names_undone, 0);
        assert_eq!(report.bytes_dropped, 0);
    }
}
