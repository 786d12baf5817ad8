//! How long a profile samples: checked before anything starts.

use std::time::Duration;

use super::{MAX_SECONDS, ProfileError};

/// Checks a profile's duration: a whole number of seconds from 1 to [`MAX_SECONDS`].
pub fn checked_seconds(seconds: u64) -> Result<Duration, ProfileError> {
    if (1..=MAX_SECONDS).contains(&seconds) {
        Ok(Duration::from_secs(seconds))
    } else {
        Err(ProfileError::InvalidSeconds {
            given: seconds.to_string(),
        })
    }
}

/// [`checked_seconds`] for a duration as it arrives over RPC (any JSON number).
pub(crate) fn checked_value(seconds: &crate::Value) -> Result<Duration, ProfileError> {
    match seconds.as_u64() {
        Some(s) => checked_seconds(s),
        None => Err(ProfileError::InvalidSeconds {
            given: seconds.to_json_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_huge_and_fractions_are_refused() {
        assert_eq!(checked_seconds(1).unwrap(), Duration::from_secs(1));
        assert_eq!(
            checked_seconds(MAX_SECONDS).unwrap(),
            Duration::from_secs(MAX_SECONDS)
        );
        for bad in [0, MAX_SECONDS + 1, u64::MAX] {
            let e = checked_seconds(bad).unwrap_err();
            assert!(matches!(e, ProfileError::InvalidSeconds { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("1 to {MAX_SECONDS}")), "{e}");
        }
        for bad in [
            crate::Value::from(1.5),
            crate::Value::from(-1),
            crate::Value::from("5"),
        ] {
            assert!(
                matches!(checked_value(&bad), Err(ProfileError::InvalidSeconds { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            checked_value(&crate::Value::from(2)).unwrap(),
            Duration::from_secs(2)
        );
    }
}
