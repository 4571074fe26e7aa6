//! Identifiers of cables and landing stations.
//!
//! Ids appear in partition directory names (`cable=<id>`) and in certificate bindings, so they are
//! restricted to characters that are safe everywhere: ASCII letters, digits, `-`, `_` and `.`, not
//! starting with `.`, at most 64 bytes.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("id is empty")]
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    #[error("id {id:?} is longer than {MAX_ID_LEN} bytes")]
    TooLong {
        /// The offending id.
        id: String,
    },
    /// The id holds a character outside `[A-Za-z0-9._-]` or starts with `.`.
    #[error("id {id:?} has {found:?} at byte {at}; ids use only A-Z a-z 0-9 . _ - and do not start with .")]
    BadChar {
        /// The offending id.
        id: String,
        /// The first bad character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
}

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// What of a string that should be an id may be echoed into an error or a log line: all of it up
/// to [`MAX_ID_LEN`] bytes, else its first [`MAX_ID_LEN`] bytes (cut at a character) and its
/// length. A station can send a megabyte where an id belongs; that must not become a megabyte of
/// error message (which gRPC cannot carry in a header) or of log.
pub fn preview(s: &str) -> String {
    if s.len() <= MAX_ID_LEN {
        return s.to_owned();
    }
    let mut end = MAX_ID_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { id: preview(s) });
    }
    for (at, c) in s.char_indices() {
        let ok = c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && at > 0);
        if !ok {
            return Err(IdError::BadChar {
                id: preview(s),
                found: c,
                at,
            });
        }
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s` and wraps it.
            pub fn try_new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::try_new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::try_new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A cable's id, as in the topology file and the `cable=<id>` partition directories.
    CableId
);
id_type!(
    /// A landing station's id, as in the topology file and in batches' `station_id`.
    StationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_path_safe_ids() {
        assert_eq!(CableId::try_new("atl-1.b_2").unwrap().as_str(), "atl-1.b_2");
    }

    #[test]
    fn rejects_path_traversal_and_separators() {
        assert!(matches!(
            CableId::try_new(".."),
            Err(IdError::BadChar { at: 0, .. })
        ));
        assert!(matches!(
            CableId::try_new("a/b"),
            Err(IdError::BadChar {
                found: '/',
                at: 1,
                ..
            })
        ));
        assert!(matches!(
            CableId::try_new("a=b"),
            Err(IdError::BadChar { found: '=', .. })
        ));
        assert_eq!(StationId::try_new(""), Err(IdError::Empty));
        assert!(matches!(
            StationId::try_new("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }
}
