//! Allocator settings for the workspace's binaries: mimalloc, told how long to keep freed memory
//! before giving it back to the operating system, and whether to ask for transparent huge pages.
//!
//! Collector: under load a checkpoint allocates and frees some hundred megabytes of arrays and
//! Parquet pages every half second. With mimalloc's default purge delay (1 s) much of that memory
//! went back to the kernel and came back as fresh pages the kernel had to zero again: in the ingest
//! bench, keeping it for 10 s made durable ingest about 15 % faster (`benches/README.md`). Idle
//! memory still goes back to the system ten seconds after a burst.
//!
//! Analyzer: a run reads partition after partition, each some hundred megabytes of frames and
//! matrices freed moments later. A run is a batch job that ends, so it keeps what it freed. It
//! also asks for ordinary pages: with transparent huge pages the kernel zeroes 2 MB at every first
//! touch, and on this project's 2-core virtual machine two threads doing so at once spent 1.0 to
//! 1.3 s in the kernel per `large` run against 0.3 to 0.4 s with 4 kB pages (`benches/README.md`).
//!
//! This is the one place in the workspace with `unsafe`: FFI calls that read and store integers in
//! mimalloc's option table. Huge pages are turned off with a `prctl` (through rustix).

use std::ffi::c_long;

/// How long freed memory stays with the process before mimalloc gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeDelay {
    /// This many milliseconds.
    Ms(c_long),
    /// Until the process ends.
    Never,
}

/// What a program asks of mimalloc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorSettings {
    /// How long freed memory stays.
    pub purge_delay: PurgeDelay,
    /// Whether mimalloc may ask for transparent huge pages (its default: yes).
    pub huge_pages: bool,
}

/// The collector's settings: freed memory kept 10 s, huge pages as mimalloc likes.
pub const COLLECTOR: AllocatorSettings = AllocatorSettings {
    purge_delay: PurgeDelay::Ms(10_000),
    huge_pages: true,
};

/// The analyzer's settings: freed memory kept until the run ends, ordinary pages.
pub const ANALYZER: AllocatorSettings = AllocatorSettings {
    purge_delay: PurgeDelay::Never,
    huge_pages: false,
};

/// One of mimalloc's options. The Rust bindings name no constant for these; the indices come from
/// `mimalloc.h` of the bundled mimalloc 3, and each is checked against its documented default
/// before anything is set.
struct MiOption {
    index: libmimalloc_sys::mi_option_t,
    default: c_long,
    /// The environment variable through which an operator sets it.
    env: &'static str,
}

/// `mi_option_purge_delay`, ms (default 1 s; -1: never).
const PURGE_DELAY: MiOption = MiOption {
    index: 15,
    default: 1_000,
    env: "MIMALLOC_PURGE_DELAY",
};

/// What [`tune_allocator`] did with one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// The option now holds the value asked for.
    Set,
    /// Its environment variable is set; left as the operator chose.
    LeftToEnvironment,
    /// The option held neither its documented default nor the value asked for, so it may not be
    /// that option in this mimalloc build; nothing was set.
    Unrecognised,
    /// Left as it was: nothing asked otherwise.
    Unchanged,
    /// The operating system refused.
    Refused,
}

/// What [`tune_allocator`] did with each option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorTunings {
    /// The purge delay.
    pub purge_delay: AllocatorTuning,
    /// Transparent huge pages.
    pub huge_pages: AllocatorTuning,
}

#[allow(unsafe_code)]
fn set_option(option: &MiOption, value: c_long) -> AllocatorTuning {
    if std::env::var_os(option.env).is_some() {
        return AllocatorTuning::LeftToEnvironment;
    }
    // SAFETY: `mi_option_get` and `mi_option_set` read and store one integer in mimalloc's option
    // table; mimalloc documents them as callable at any time from any thread.
    unsafe {
        let current = libmimalloc_sys::mi_option_get(option.index);
        if current != option.default && current != value {
            return AllocatorTuning::Unrecognised;
        }
        libmimalloc_sys::mi_option_set(option.index, value);
        if libmimalloc_sys::mi_option_get(option.index) == value {
            AllocatorTuning::Set
        } else {
            AllocatorTuning::Unrecognised
        }
    }
}

/// Applies `settings` to mimalloc. Call at the start of a program whose global allocator is
/// `mimalloc::MiMalloc` (the binaries, the benches), before its threads start; harmless otherwise.
pub fn tune_allocator(settings: AllocatorSettings) -> AllocatorTunings {
    let delay = match settings.purge_delay {
        PurgeDelay::Ms(ms) => ms,
        PurgeDelay::Never => -1,
    };
    AllocatorTunings {
        purge_delay: set_option(&PURGE_DELAY, delay),
        huge_pages: huge_pages(settings.huge_pages),
    }
}

/// Transparent huge pages are refused for the whole process (`prctl(PR_SET_THP_DISABLE)`, as
/// `MIMALLOC_ALLOW_THP=0` would at start-up): mimalloc's option alone, set now, would not reach the
/// memory it reserved before `main`.
fn huge_pages(allowed: bool) -> AllocatorTuning {
    if allowed {
        AllocatorTuning::Unchanged
    } else if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        AllocatorTuning::LeftToEnvironment
    } else {
        match rustix::thread::disable_transparent_huge_pages(true) {
            Ok(()) => AllocatorTuning::Set,
            Err(_) => AllocatorTuning::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(option: &MiOption) -> AllocatorTuning {
        if std::env::var_os(option.env).is_some() {
            AllocatorTuning::LeftToEnvironment
        } else {
            AllocatorTuning::Set
        }
    }

    #[test]
    fn options_are_found_by_their_defaults_and_set() {
        let want = AllocatorTunings {
            purge_delay: expected(&PURGE_DELAY),
            huge_pages: AllocatorTuning::Unchanged,
        };
        assert_eq!(tune_allocator(COLLECTOR), want);
        // Setting them again is harmless.
        assert_eq!(tune_allocator(COLLECTOR), want);
    }

    #[test]
    fn huge_pages_are_turned_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            assert_eq!(huge_pages(false), AllocatorTuning::LeftToEnvironment);
            return;
        }
        assert_eq!(huge_pages(false), AllocatorTuning::Set);
        assert!(rustix::thread::transparent_huge_pages_are_disabled().unwrap());
    }

    #[test]
    fn an_option_holding_an_unknown_value_is_left_alone() {
        // An index whose value is neither the default nor the one asked for is not touched.
        let option = MiOption {
            index: PURGE_DELAY.index,
            default: 123_456,
            env: "CABLEWATCH_TEST_NO_SUCH_VARIABLE",
        };
        assert_eq!(set_option(&option, 654_321), AllocatorTuning::Unrecognised);
    }
}
