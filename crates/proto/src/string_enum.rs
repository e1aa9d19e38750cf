//! One table per fieldless enum for its wire text: `as_str`, `ALL`, `Display` and `FromStr`
//! come from it, so a variant's text is written once and parsing can never drift from printing.

/// `string_enum!(Type, "what it is" { Variant => "text", … })`
macro_rules! string_enum {
    ($ty:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::message::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::message::UnknownVariant {
                        kind: $what,
                        value: s.to_owned(),
                    })
            }
        }
    };
}

pub(crate) use string_enum;
