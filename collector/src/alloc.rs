//! The collector's allocator settings: mimalloc, told to keep freed memory for a while before
//! giving it back to the operating system.
//!
//! Under load a checkpoint allocates and frees some hundred megabytes of arrays and Parquet pages
//! every half second. With mimalloc's default purge delay (1 s) much of that memory went back to the
//! kernel and came back as fresh pages the kernel had to zero again: in the ingest bench, keeping it
//! for 10 s made durable ingest about 15 % faster (`benches/README.md`). Idle memory still goes back
//! to the system ten seconds after a burst.
//!
//! This is the one place in the workspace with `unsafe`: a single FFI call that stores an integer
//! in mimalloc's option table.

/// How long freed memory stays with the process, ms.
pub const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// mimalloc's `mi_option_purge_delay`. The Rust bindings name no constant for it; the value comes
/// from `mimalloc.h` of the bundled mimalloc 3 and is checked against the option's documented
/// default before anything is set.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// `mi_option_purge_delay`'s default in mimalloc 3, ms.
const MIMALLOC_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1_000;

/// What [`tune_allocator`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// The purge delay is now [`PURGE_DELAY_MS`].
    Set,
    /// `MIMALLOC_PURGE_DELAY` is set in the environment; left as the operator chose.
    LeftToEnvironment,
    /// The option held neither its documented default nor our value, so it may not be the purge
    /// delay in this mimalloc build; nothing was set.
    Unrecognised,
}

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`]. Call at the start of a program whose global
/// allocator is `mimalloc::MiMalloc` (the collector binary, the ingest bench); harmless otherwise.
#[allow(unsafe_code)]
pub fn tune_allocator() -> AllocatorTuning {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return AllocatorTuning::LeftToEnvironment;
    }
    // SAFETY: `mi_option_get` and `mi_option_set` read and store one integer in mimalloc's option
    // table; mimalloc documents them as callable at any time from any thread.
    unsafe {
        let current = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
        if current != MIMALLOC_DEFAULT_PURGE_DELAY_MS && current != PURGE_DELAY_MS {
            return AllocatorTuning::Unrecognised;
        }
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == PURGE_DELAY_MS {
            AllocatorTuning::Set
        } else {
            AllocatorTuning::Unrecognised
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_found_by_its_default_and_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            assert_eq!(tune_allocator(), AllocatorTuning::LeftToEnvironment);
            return;
        }
        assert_eq!(tune_allocator(), AllocatorTuning::Set);
        // Setting it again is harmless.
        assert_eq!(tune_allocator(), AllocatorTuning::Set);
    }
}
