//! Closed sets of names (resources, states, statuses): each is an enum
//! whose one list of names is what the intake, the worker, the store's SQL
//! and the console all derive from, so none of them spells a name itself.

/// A name that is not one of its set's: a value this version cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

/// Declares an enum of names: `ALL`, `as_str`, `FromStr`, `Display`,
/// serde as the name, `TryFrom<String>` (how the store reads a column),
/// and comparison with `&str`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every name, in the order people read them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, $crate::domain::names::UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| $crate::domain::names::UnknownName { what: $what, name: s.to_owned() })
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::names::UnknownName;
            fn try_from(s: String) -> Result<Self, $crate::domain::names::UnknownName> {
                s.parse()
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
pub(crate) use named_enum;
