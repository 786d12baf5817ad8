//! Device paths as the building agents take them: `campus/building/unit`, with or without
//! VOLTTRON's `devices/` prefix and surrounding slashes, and `<device>/<point>` topics.

/// The device's path: without a `devices/` prefix or surrounding slashes.
pub fn device_path(topic: &str) -> &str {
    let t = topic.trim().trim_matches('/');
    t.strip_prefix("devices/").unwrap_or(t)
}

/// `(device, point)`: `point` when given, otherwise the topic's last part; `None` when the
/// topic has no `/` to split at.
pub fn device_and_point<'a>(topic: &'a str, point: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    let path = device_path(topic);
    match point {
        Some(p) => Some((path, p)),
        None => path.rsplit_once('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_points() {
        assert_eq!(device_path("/devices/campus/b/rtu1/ "), "campus/b/rtu1");
        assert_eq!(
            device_and_point("devices/campus/b/rtu1/Temp", None),
            Some(("campus/b/rtu1", "Temp"))
        );
        assert_eq!(
            device_and_point("campus/b/rtu1", Some("Temp")),
            Some(("campus/b/rtu1", "Temp"))
        );
        assert_eq!(device_and_point("rtu1", None), None);
    }
}
