//! The guide's naming rules.

/// Names of VPCs, VSwitches, route tables, security groups and flow logs: 2-128 characters,
/// beginning with a Latin or Chinese letter, then letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if !(2..=128).contains(&count) {
        return Err(format!("name '{name}' has {count} characters; 2 to 128 are allowed"));
    }
    let first = name.chars().next().unwrap_or(' ');
    if !(first.is_ascii_alphabetic() || is_chinese(first)) {
        return Err(format!("name '{name}' must begin with a Latin or Chinese letter"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || is_chinese(*c) || *c == '-' || *c == '_')) {
        return Err(format!("name '{name}' contains '{bad}'; only letters, digits, '-' and '_' are allowed"));
    }
    Ok(())
}

/// Descriptions: 2-256 characters, not beginning with `http://` or `https://`.
pub fn check_description(text: &str) -> Result<(), String> {
    let count = text.chars().count();
    if !(2..=256).contains(&count) {
        return Err(format!("description has {count} characters; 2 to 256 are allowed"));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Err("description must not begin with http:// or https://".into());
    }
    Ok(())
}

fn is_chinese(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "prod", "web-1_a", "生产网络", "a中", &"a".repeat(128)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "1abc", "-ab", "_ab", "ab c", "ab.c", "ab/c", &"a".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn descriptions() {
        assert!(check_description("my vpc").is_ok());
        assert!(check_description("x").is_err());
        assert!(check_description(&"x".repeat(257)).is_err());
        assert!(check_description("http://x").is_err());
        assert!(check_description("https://x").is_err());
        assert!(check_description("see http://x").is_ok());
    }
}
