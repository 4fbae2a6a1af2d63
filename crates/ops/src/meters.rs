//! Progress as the use cases report it and the front ends show it.

use lifeboat_sources::Progress;

/// How a front end shows progress: one meter per phase ("dumping", "backing up"), with
/// the bytes expected when they are known. A meter is finished when dropped.
pub trait Meters {
    fn start(&self, phase: &str, total: Option<u64>) -> Box<dyn Progress + '_>;

    /// Whether anybody sees the meters: a total that costs a walk of the source is only
    /// worth reading then.
    fn shown(&self) -> bool;
}

/// No progress shown.
pub struct NoMeters;

impl Meters for NoMeters {
    fn start(&self, _phase: &str, _total: Option<u64>) -> Box<dyn Progress + '_> {
        Box::new(lifeboat_sources::NoProgress)
    }

    fn shown(&self) -> bool {
        false
    }
}
