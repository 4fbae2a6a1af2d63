//! The tags the agent puts on the snapshots it takes, so that `status`, `plan`, drills,
//! `recover` and retention find a source's restore points whatever kind of source it is.

/// `source:<name>`: the `lifeboat.toml` source a snapshot is a restore point of.
pub fn source_tag(source: &str) -> String {
    format!("source:{source}")
}

/// `plan:<name>`: the plan whose run took a snapshot (its retention applies to it).
pub fn plan_tag(plan: &str) -> String {
    format!("plan:{plan}")
}

/// The source a tag names, if it is a source tag.
pub fn source_of_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix("source:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_tag_names_its_source_back() {
        assert_eq!(source_of_tag(&source_tag("app")), Some("app"));
        assert_eq!(source_of_tag(&plan_tag("app")), None);
    }
}
